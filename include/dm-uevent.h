/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Path uevents queued by targets (multipath) and sent by the dm core at
 * the next table event.
 */
#ifndef DM_UEVENT_H
#define DM_UEVENT_H

#include <linux/list.h>
#include <linux/kobject.h>

struct dm_target;

enum dm_uevent_type {
	DM_UEVENT_PATH_FAILED,
	DM_UEVENT_PATH_REINSTATED,
};

void dm_send_uevents(struct list_head *events, struct kobject *kobj);
void dm_path_uevent(enum dm_uevent_type event_type, struct dm_target *ti,
		    const char *path, unsigned int nr_valid_paths);
void dm_free_uevents(struct list_head *events);

#endif
