/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-mod exports that linux/device-mapper.h does not declare. In the
 * kernel tree these live in private drivers/md headers; targets built
 * out of tree include this file instead.
 */
#ifndef DM_EXPORTS_H
#define DM_EXPORTS_H

#include <linux/device-mapper.h>

/* status_flags bit passed to target status methods */
#ifndef DM_STATUS_NOFLUSH_FLAG
#define DM_STATUS_NOFLUSH_FLAG (1 << 0)
#endif

unsigned int dm_get_reserved_bio_based_ios(void);
void dm_mq_kick_requeue_list(struct mapped_device *md);

/* Internal suspend: always noflush; nests; used by thin and friends. */
void dm_internal_suspend_noflush(struct mapped_device *md);
void dm_internal_resume(struct mapped_device *md);
/* Fast variants: block and drain I/O only, no target hooks. */
void dm_internal_suspend_fast(struct mapped_device *md);
void dm_internal_resume_fast(struct mapped_device *md);

#ifdef CONFIG_AUDIT
void dm_audit_log_ti(int audit_type, const char *dm_msg_prefix,
		     const char *op, struct dm_target *ti, int result);
void dm_audit_log_bio(const char *dm_msg_prefix, const char *op,
		      struct bio *bio, sector_t sector, int result);
#endif

#endif
