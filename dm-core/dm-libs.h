/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Set-up and tear-down of the libraries linked into dm-mod: dm-io (region
 * I/O for targets) and dm-kcopyd (asynchronous copy and zeroing). The core's
 * module init calls the init functions, in this order, and the exit functions
 * in reverse.
 */
#ifndef DM_LIBS_H
#define DM_LIBS_H

int dm_io_init(void);
void dm_io_exit(void);

int dm_kcopyd_init(void);
void dm_kcopyd_exit(void);

#endif /* DM_LIBS_H */
