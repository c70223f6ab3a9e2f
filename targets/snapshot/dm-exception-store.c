// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exception store registry and the table arguments they share:
 * "<store> <chunk_size>", where only the first character of <store> picks
 * the type (P or N) and the rest are options for that type.
 */
#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/kmod.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "dm-snap.h"

#define DM_MSG_PREFIX "snapshot exception stores"

static LIST_HEAD(store_types);
static DEFINE_SPINLOCK(store_types_lock);

static struct dm_exception_store_type *find_type(const char *name)
{
	struct dm_exception_store_type *t;

	list_for_each_entry(t, &store_types, list)
		if (!strcasecmp(t->name, name))
			return t;
	return NULL;
}

static struct dm_exception_store_type *get_type(const char *name)
{
	struct dm_exception_store_type *t;

	spin_lock(&store_types_lock);
	t = find_type(name);
	if (t && !try_module_get(t->module))
		t = NULL;
	spin_unlock(&store_types_lock);
	return t;
}

int dm_exception_store_type_register(struct dm_exception_store_type *type)
{
	int r = 0;

	spin_lock(&store_types_lock);
	if (find_type(type->name))
		r = -EEXIST;
	else
		list_add(&type->list, &store_types);
	spin_unlock(&store_types_lock);
	return r;
}
EXPORT_SYMBOL(dm_exception_store_type_register);

int dm_exception_store_type_unregister(struct dm_exception_store_type *type)
{
	spin_lock(&store_types_lock);
	list_del_init(&type->list);
	spin_unlock(&store_types_lock);
	return 0;
}
EXPORT_SYMBOL(dm_exception_store_type_unregister);

int dm_exception_store_set_chunk_size(struct dm_exception_store *store,
				      unsigned int chunk_size, char **error)
{
	unsigned int lbs;

	/* 0: the persistent store takes it from its header */
	if (!chunk_size) {
		store->chunk_size = 0;
		store->chunk_mask = 0;
		store->chunk_shift = 0;
		return 0;
	}
	if (!is_power_of_2(chunk_size)) {
		*error = "Chunk size is not a power of 2";
		return -EINVAL;
	}
	lbs = bdev_logical_block_size(dm_snap_cow(store->snap)->bdev) >> SECTOR_SHIFT;
	if (chunk_size % lbs) {
		*error = "Chunk size is not a multiple of device blocksize";
		return -EINVAL;
	}
	if (chunk_size > INT_MAX >> SECTOR_SHIFT) {
		*error = "Chunk size is too high";
		return -EINVAL;
	}
	store->chunk_size = chunk_size;
	store->chunk_mask = chunk_size - 1;
	store->chunk_shift = __ffs(chunk_size);
	return 0;
}

int dm_exception_store_create(struct dm_target *ti, int argc, char **argv,
			      struct dm_snapshot *snap, unsigned int *args_used,
			      struct dm_exception_store **store)
{
	struct dm_exception_store_type *type;
	struct dm_exception_store *st;
	unsigned int chunk_size;
	char name[2];
	int r;

	if (argc < 2) {
		ti->error = "Insufficient exception store arguments";
		return -EINVAL;
	}
	name[0] = toupper(argv[0][0]);
	name[1] = '\0';
	type = get_type(name);
	if (!type) {
		/* A store type living in its own module, as stock allows. */
		request_module("dm-exstore-%s", name);
		type = get_type(name);
	}
	if (!type) {
		ti->error = "Exception store type not recognised";
		return -EINVAL;
	}

	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st) {
		ti->error = "Exception store allocation failed";
		r = -ENOMEM;
		goto bad_alloc;
	}
	st->type = type;
	st->snap = snap;

	if (kstrtouint(argv[1], 10, &chunk_size)) {
		ti->error = "Invalid chunk size";
		r = -EINVAL;
		goto bad;
	}
	r = dm_exception_store_set_chunk_size(st, chunk_size, &ti->error);
	if (r)
		goto bad;

	r = type->ctr(st, argv[0] + 1);
	if (r) {
		ti->error = "Exception store type constructor failed";
		goto bad;
	}
	*args_used = 2;
	*store = st;
	return 0;

bad:
	kfree(st);
bad_alloc:
	module_put(type->module);
	return r;
}
EXPORT_SYMBOL(dm_exception_store_create);

void dm_exception_store_destroy(struct dm_exception_store *store)
{
	store->type->dtr(store);
	module_put(store->type->module);
	kfree(store);
}
EXPORT_SYMBOL(dm_exception_store_destroy);
