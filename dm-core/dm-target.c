// SPDX-License-Identifier: GPL-2.0-only
/*
 * Target type registry and the built-in "error" target.
 */
#include "dm-core.h"

#include <linux/module.h>
#include <linux/kmod.h>
#include <linux/rwsem.h>
#include <linux/dax.h>

#define DM_MSG_PREFIX "target"

static LIST_HEAD(target_types);
static DECLARE_RWSEM(target_types_lock);

static struct target_type *find_type_locked(const char *name)
{
	struct target_type *tt;

	list_for_each_entry(tt, &target_types, list)
		if (!strcmp(name, tt->name))
			return tt;
	return NULL;
}

static struct target_type *get_type(const char *name)
{
	struct target_type *tt;

	down_read(&target_types_lock);
	tt = find_type_locked(name);
	if (tt && !try_module_get(tt->module))
		tt = NULL;
	up_read(&target_types_lock);
	return tt;
}

/* Looks the type up, loading "dm-<name>" once if it is not registered. */
struct target_type *dm_get_target_type(const char *name)
{
	struct target_type *tt = get_type(name);

	if (!tt) {
		request_module("dm-%s", name);
		tt = get_type(name);
	}
	return tt;
}

void dm_put_target_type(struct target_type *tt)
{
	module_put(tt->module);
}

int dm_target_iterate(void (*iter)(struct target_type *tt, void *param),
		      void *param)
{
	struct target_type *tt;

	down_read(&target_types_lock);
	list_for_each_entry(tt, &target_types, list)
		iter(tt, param);
	up_read(&target_types_lock);
	return 0;
}

int dm_register_target(struct target_type *tt)
{
	int r = 0;

	down_write(&target_types_lock);
	if (find_type_locked(tt->name)) {
		DMERR("%s: '%s' target already registered", __func__, tt->name);
		r = -EEXIST;
	} else {
		list_add(&tt->list, &target_types);
	}
	up_write(&target_types_lock);
	return r;
}
EXPORT_SYMBOL(dm_register_target);

void dm_unregister_target(struct target_type *tt)
{
	down_write(&target_types_lock);
	if (!find_type_locked(tt->name))
		DMCRIT("Unregistering unrecognised target: %s", tt->name);
	else
		list_del(&tt->list);
	up_write(&target_types_lock);
}
EXPORT_SYMBOL(dm_unregister_target);

/*
 * "error": every I/O fails. It stands in for missing segments and can
 * replace any immutable target, hence WILDCARD.
 */
static int error_ctr(struct dm_target *ti, unsigned int argc, char **args)
{
	/* Discards reach the target and fail instead of being refused. */
	ti->num_discard_bios = 1;
	return 0;
}

static void error_dtr(struct dm_target *ti)
{
}

static int error_map(struct dm_target *ti, struct bio *bio)
{
	return DM_MAPIO_KILL;
}

static int error_clone_and_map_rq(struct dm_target *ti, struct request *rq,
				  union map_info *map_context,
				  struct request **clone)
{
	return DM_MAPIO_KILL;
}

static void error_release_clone_rq(struct request *clone,
				   union map_info *map_context)
{
}

static long error_dax_direct_access(struct dm_target *ti, pgoff_t pgoff,
				    long nr_pages, enum dax_access_mode mode,
				    void **kaddr, pfn_t *pfn)
{
	return -EIO;
}

static struct target_type error_target = {
	.name = "error",
	.module = THIS_MODULE,
	.version = {1, 5, 0},
	.features = DM_TARGET_WILDCARD,
	.ctr = error_ctr,
	.dtr = error_dtr,
	.map = error_map,
	.clone_and_map_rq = error_clone_and_map_rq,
	.release_clone_rq = error_release_clone_rq,
	.direct_access = error_dax_direct_access,
};

int dm_target_init(void)
{
	return dm_register_target(&error_target);
}

void dm_target_exit(void)
{
	dm_unregister_target(&error_target);
}
