// SPDX-License-Identifier: GPL-2.0-only
/*
 * Transient exception store ("N"): no metadata on disk; COW chunks are
 * handed out from chunk 0 upwards and the table lives only in memory.
 */
#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "dm-snap.h"

#define DM_MSG_PREFIX "transient snapshot"

struct tstore {
	sector_t next_free;	/* in sectors */
};

static int transient_read_metadata(struct dm_exception_store *st,
				   store_add_fn add, void *context)
{
	return 0;
}

static int transient_prepare_exception(struct dm_exception_store *st,
				       struct dm_exception *e)
{
	struct tstore *ts = st->context;

	if (snap_cow_size(st) < ts->next_free + st->chunk_size)
		return -ENOSPC;
	e->new_chunk = ts->next_free >> st->chunk_shift;
	ts->next_free += st->chunk_size;
	return 0;
}

static void transient_commit_exception(struct dm_exception_store *st,
				       struct dm_exception *e, int valid,
				       store_commit_fn fn, void *context)
{
	fn(context, valid);
}

static void transient_drop_snapshot(struct dm_exception_store *st)
{
}

static void transient_usage(struct dm_exception_store *st, sector_t *total,
			    sector_t *allocated, sector_t *metadata)
{
	struct tstore *ts = st->context;

	*total = snap_cow_size(st);
	*allocated = ts->next_free;
	*metadata = 0;
}

static unsigned int transient_status(struct dm_exception_store *st,
				     status_type_t type, char *result,
				     unsigned int maxlen)
{
	unsigned int sz = 0;

	if (type == STATUSTYPE_TABLE)
		DMEMIT(" N %u", st->chunk_size);
	return sz;
}

static int transient_ctr(struct dm_exception_store *st, char *options)
{
	struct tstore *ts;

	/* Options after "N" are ignored, as in stock. */
	ts = kzalloc(sizeof(*ts), GFP_KERNEL);
	if (!ts)
		return -ENOMEM;
	st->context = ts;
	return 0;
}

static void transient_dtr(struct dm_exception_store *st)
{
	kfree(st->context);
}

static struct dm_exception_store_type transient_type = {
	.name = "N",
	.module = THIS_MODULE,
	.ctr = transient_ctr,
	.dtr = transient_dtr,
	.read_metadata = transient_read_metadata,
	.prepare_exception = transient_prepare_exception,
	.commit_exception = transient_commit_exception,
	.drop_snapshot = transient_drop_snapshot,
	.usage = transient_usage,
	.status = transient_status,
};

int dm_transient_snapshot_init(void)
{
	return dm_exception_store_type_register(&transient_type);
}

void dm_transient_snapshot_exit(void)
{
	dm_exception_store_type_unregister(&transient_type);
}
