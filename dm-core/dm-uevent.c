// SPDX-License-Identifier: GPL-2.0-only
/*
 * Path uevents: built when a target reports a path change (possibly in
 * atomic context), queued on the mapped device, sent as change events at
 * the next table event with the device's name and uuid added then.
 */
#include "dm-core.h"
#include "dm-uevent.h"

#include <linux/module.h>
#include <linux/slab.h>

#define DM_MSG_PREFIX "uevent"

struct dm_uevent {
	struct mapped_device *md;
	enum kobject_action action;
	struct kobj_uevent_env env;
	struct list_head elist;
	char name[DM_NAME_LEN];
	char uuid[DM_UUID_LEN];
};

static const char *const uevent_action_names[] = {
	[DM_UEVENT_PATH_FAILED] = "PATH_FAILED",
	[DM_UEVENT_PATH_REINSTATED] = "PATH_REINSTATED",
};

void dm_free_uevents(struct list_head *events)
{
	struct dm_uevent *ev, *tmp;

	list_for_each_entry_safe(ev, tmp, events, elist) {
		list_del_init(&ev->elist);
		kfree(ev);
	}
}

void dm_send_uevents(struct list_head *events, struct kobject *kobj)
{
	struct dm_uevent *ev, *tmp;

	list_for_each_entry_safe(ev, tmp, events, elist) {
		list_del_init(&ev->elist);

		/* Name and uuid are current as of sending, not queueing. */
		if (dm_copy_name_and_uuid(ev->md, ev->name, ev->uuid) ||
		    add_uevent_var(&ev->env, "DM_NAME=%s", ev->name) ||
		    add_uevent_var(&ev->env, "DM_UUID=%s", ev->uuid)) {
			DMERR("%s: cannot complete uevent", __func__);
			goto next;
		}
		if (kobject_uevent_env(kobj, ev->action, ev->env.envp))
			DMERR("%s: kobject_uevent_env failed", __func__);
next:
		kfree(ev);
	}
}
EXPORT_SYMBOL_GPL(dm_send_uevents);

void dm_path_uevent(enum dm_uevent_type event_type, struct dm_target *ti,
		    const char *path, unsigned int nr_valid_paths)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct dm_uevent *ev;

	if (event_type >= ARRAY_SIZE(uevent_action_names)) {
		DMERR("%s: Invalid event_type %d", __func__, event_type);
		return;
	}
	ev = kzalloc(sizeof(*ev), GFP_ATOMIC);
	if (!ev)
		return;
	ev->md = md;
	ev->action = KOBJ_CHANGE;
	INIT_LIST_HEAD(&ev->elist);
	if (add_uevent_var(&ev->env, "DM_TARGET=%s", ti->type->name) ||
	    add_uevent_var(&ev->env, "DM_ACTION=%s",
			   uevent_action_names[event_type]) ||
	    add_uevent_var(&ev->env, "DM_SEQNUM=%u", dm_next_uevent_seq(md)) ||
	    add_uevent_var(&ev->env, "DM_PATH=%s", path) ||
	    add_uevent_var(&ev->env, "DM_NR_VALID_PATHS=%d", nr_valid_paths)) {
		kfree(ev);
		return;
	}
	dm_uevent_add(md, &ev->elist);
}
EXPORT_SYMBOL_GPL(dm_path_uevent);
