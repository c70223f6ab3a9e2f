// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent exception store ("P", "PO"): the exception table is kept on the
 * COW device itself, in the layout of Documentation/targets/snapshot.md:
 * a header chunk, then metadata areas of 16-byte entries, each followed by
 * the data chunks it describes. Entries reach the disk in allocation order
 * and an area is only written once the next one is known to be zeroed, so
 * a reader always finds a terminating entry.
 */
#include <linux/blkdev.h>
#include <linux/dm-io.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "dm-snap.h"

#define DM_MSG_PREFIX "persistent snapshot"

#define SNAP_MAGIC 0x70416e53
#define SNAP_DISK_VERSION 1
#define SNAP_HEADER_CHUNKS 1
#define SNAP_DEFAULT_CHUNK 32

struct disk_header {
	__le32 magic;
	__le32 valid;
	__le32 version;
	__le32 chunk_size;
} __packed;

struct disk_exception {
	__le64 old_chunk;
	__le64 new_chunk;
} __packed;

struct commit_callback {
	store_commit_fn fn;
	void *context;
};

struct pstore {
	struct dm_exception_store *store;
	int valid;
	unsigned int exceptions_per_area;
	sector_t next_free;
	sector_t current_area;
	unsigned int current_committed;
	atomic_t pending_count;		/* allocated, not yet committed */

	void *area;			/* current metadata area */
	void *zero_area;		/* written to clear the next area */
	void *header_area;

	struct dm_io_client *io_client;
	struct workqueue_struct *metadata_wq;

	unsigned int nr_callbacks;
	struct commit_callback *callbacks;
};

struct chunk_io_req {
	struct work_struct work;
	struct dm_io_request req;
	struct dm_io_region where;
	int result;
};

static void chunk_io_work(struct work_struct *work)
{
	struct chunk_io_req *r = container_of(work, struct chunk_io_req, work);

	r->result = dm_io(&r->req, 1, &r->where, NULL, IOPRIO_DEFAULT);
}

/*
 * Synchronous metadata I/O. It runs on the metadata workqueue because some
 * callers are inside a map function, where bios we submitted directly would
 * only be queued until we return.
 */
static int sector_io(struct pstore *ps, void *buf, sector_t sector,
		     sector_t count, blk_opf_t opf)
{
	struct chunk_io_req r = {
		.req = {
			.bi_opf = opf,
			.mem.type = DM_IO_VMA,
			.mem.ptr.vma = buf,
			.client = ps->io_client,
		},
		.where = {
			.bdev = dm_snap_cow(ps->store->snap)->bdev,
			.sector = sector,
			.count = count,
		},
	};

	INIT_WORK_ONSTACK(&r.work, chunk_io_work);
	queue_work(ps->metadata_wq, &r.work);
	flush_work(&r.work);
	destroy_work_on_stack(&r.work);
	return r.result;
}

static int chunk_io(struct pstore *ps, void *buf, sector_t chunk, blk_opf_t opf)
{
	struct dm_exception_store *st = ps->store;

	return sector_io(ps, buf, chunk_to_sector(st, chunk), st->chunk_size, opf);
}

static sector_t area_location(struct pstore *ps, sector_t area)
{
	return SNAP_HEADER_CHUNKS + (ps->exceptions_per_area + 1) * area;
}

static struct disk_exception *area_entry(struct pstore *ps, unsigned int i)
{
	return (struct disk_exception *)ps->area + i;
}

static void skip_metadata(struct pstore *ps)
{
	if (ps->next_free % (ps->exceptions_per_area + 1) == SNAP_HEADER_CHUNKS)
		ps->next_free++;
}

static void free_areas(struct pstore *ps)
{
	vfree(ps->area);
	vfree(ps->zero_area);
	vfree(ps->header_area);
	kvfree(ps->callbacks);
	ps->area = NULL;
	ps->zero_area = NULL;
	ps->header_area = NULL;
	ps->callbacks = NULL;
}

static int alloc_areas(struct pstore *ps)
{
	size_t len = (size_t)ps->store->chunk_size << SECTOR_SHIFT;

	free_areas(ps);
	ps->exceptions_per_area = len / sizeof(struct disk_exception);
	ps->area = vzalloc(len);
	ps->zero_area = vzalloc(len);
	ps->header_area = vzalloc(len);
	ps->callbacks = kvcalloc(ps->exceptions_per_area,
				 sizeof(*ps->callbacks), GFP_KERNEL);
	if (!ps->area || !ps->zero_area || !ps->header_area || !ps->callbacks) {
		free_areas(ps);
		return -ENOMEM;
	}
	return 0;
}

static int write_header(struct pstore *ps)
{
	struct disk_header *dh = ps->header_area;

	memset(ps->header_area, 0, ps->store->chunk_size << SECTOR_SHIFT);
	dh->magic = cpu_to_le32(SNAP_MAGIC);
	dh->valid = cpu_to_le32(ps->valid);
	dh->version = cpu_to_le32(SNAP_DISK_VERSION);
	dh->chunk_size = cpu_to_le32(ps->store->chunk_size);
	return chunk_io(ps, ps->header_area, 0,
			REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA);
}

/* Reads the header; returns 1 for a new (zeroed) store. */
static int read_header(struct pstore *ps)
{
	struct dm_exception_store *st = ps->store;
	struct block_device *cow = dm_snap_cow(st->snap)->bdev;
	unsigned int lbs = bdev_logical_block_size(cow);
	struct disk_header *dh;
	unsigned int chunk_size;
	char *err = NULL;
	void *buf;
	int r;

	buf = vzalloc(lbs);
	if (!buf)
		return -ENOMEM;
	r = sector_io(ps, buf, 0, lbs >> SECTOR_SHIFT, REQ_OP_READ);
	if (r) {
		DMWARN("unable to read snapshot header");
		goto out;
	}
	dh = buf;
	if (!le32_to_cpu(dh->magic)) {
		if (!st->chunk_size) {
			chunk_size = max_t(unsigned int, SNAP_DEFAULT_CHUNK,
					   lbs >> SECTOR_SHIFT);
			r = dm_exception_store_set_chunk_size(st, chunk_size, &err);
			if (r)
				goto out;
		}
		ps->valid = 1;
		r = 1;
		goto out;
	}
	if (le32_to_cpu(dh->magic) != SNAP_MAGIC) {
		DMWARN("Invalid or corrupt snapshot");
		r = -ENXIO;
		goto out;
	}
	if (le32_to_cpu(dh->version) != SNAP_DISK_VERSION) {
		DMWARN("unable to handle snapshot disk version %u",
		       le32_to_cpu(dh->version));
		r = -EINVAL;
		goto out;
	}
	ps->valid = le32_to_cpu(dh->valid);
	chunk_size = le32_to_cpu(dh->chunk_size);
	if (chunk_size != st->chunk_size) {
		if (st->chunk_size)
			DMWARN("chunk size %u in device metadata overrides table chunk size of %u.",
			       chunk_size, st->chunk_size);
		r = dm_exception_store_set_chunk_size(st, chunk_size, &err);
		if (!r && !chunk_size)
			r = -EINVAL;
		if (r) {
			DMWARN("invalid on-disk chunk size %u: %s", chunk_size,
			       err ? err : "zero");
			goto out;
		}
	}
	r = 0;
out:
	vfree(buf);
	return r;
}

static int read_exceptions(struct pstore *ps, store_add_fn add, void *context)
{
	unsigned int i, e = ps->exceptions_per_area;
	struct disk_exception *de;
	sector_t area = 0;
	int r;

	ps->next_free = SNAP_HEADER_CHUNKS + 1;
	for (;;) {
		r = chunk_io(ps, ps->area, area_location(ps, area), REQ_OP_READ);
		if (r)
			return r;
		for (i = 0; i < e; i++) {
			sector_t old_chunk, new_chunk;

			de = area_entry(ps, i);
			new_chunk = le64_to_cpu(de->new_chunk);
			old_chunk = le64_to_cpu(de->old_chunk);
			if (!new_chunk)
				break;
			r = add(context, old_chunk, new_chunk);
			if (r)
				return r;
			if (new_chunk >= ps->next_free)
				ps->next_free = new_chunk + 1;
		}
		if (i < e) {
			ps->current_area = area;
			ps->current_committed = i;
			break;
		}
		/* full area: the next one holds the terminator */
		area++;
	}
	skip_metadata(ps);
	return 0;
}

static int persistent_read_metadata(struct dm_exception_store *st,
				    store_add_fn add, void *context)
{
	struct pstore *ps = st->context;
	int r, fresh;

	fresh = read_header(ps);
	if (fresh < 0)
		return fresh;
	r = alloc_areas(ps);
	if (r)
		return r;
	if (fresh) {
		ps->current_area = 0;
		ps->current_committed = 0;
		ps->next_free = SNAP_HEADER_CHUNKS + 1;
		r = write_header(ps);
		if (!r)
			r = chunk_io(ps, ps->zero_area, area_location(ps, 0),
				     REQ_OP_WRITE | REQ_FUA);
		if (r)
			DMWARN("unable to initialise the snapshot store");
		return r;
	}
	if (!ps->valid)
		return 1;
	r = read_exceptions(ps, add, context);
	if (r)
		DMWARN("unable to read the exception table");
	return r;
}

static int persistent_prepare_exception(struct dm_exception_store *st,
					struct dm_exception *e)
{
	struct pstore *ps = st->context;
	sector_t size = snap_cow_size(st);

	if (size < chunk_to_sector(st, ps->next_free + 1))
		return -ENOSPC;
	e->new_chunk = ps->next_free;
	ps->next_free++;
	skip_metadata(ps);
	atomic_inc(&ps->pending_count);
	return 0;
}

static void persistent_commit_exception(struct dm_exception_store *st,
					struct dm_exception *e, int valid,
					store_commit_fn fn, void *context)
{
	struct pstore *ps = st->context;
	struct disk_exception *de;
	bool full;
	unsigned int i;

	if (!valid)
		ps->valid = 0;

	de = area_entry(ps, ps->current_committed++);
	de->old_chunk = cpu_to_le64(e->old_chunk);
	de->new_chunk = cpu_to_le64(e->new_chunk);
	ps->callbacks[ps->nr_callbacks].fn = fn;
	ps->callbacks[ps->nr_callbacks].context = context;
	ps->nr_callbacks++;

	full = ps->current_committed == ps->exceptions_per_area;
	/* Batch entries while more copies are in flight. */
	if (!atomic_dec_and_test(&ps->pending_count) && !full)
		return;

	if (ps->valid && full &&
	    chunk_io(ps, ps->zero_area, area_location(ps, ps->current_area + 1),
		     REQ_OP_WRITE))
		ps->valid = 0;
	if (ps->valid &&
	    chunk_io(ps, ps->area, area_location(ps, ps->current_area),
		     REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA))
		ps->valid = 0;
	if (full) {
		ps->current_area++;
		ps->current_committed = 0;
		memset(ps->area, 0, st->chunk_size << SECTOR_SHIFT);
	}

	for (i = 0; i < ps->nr_callbacks; i++)
		ps->callbacks[i].fn(ps->callbacks[i].context, ps->valid);
	ps->nr_callbacks = 0;
}

static int persistent_prepare_merge(struct dm_exception_store *st,
				    sector_t *last_old, sector_t *last_new)
{
	struct pstore *ps = st->context;
	struct disk_exception *de;
	unsigned int n;
	int r;

	if (!ps->current_committed) {
		if (!ps->current_area)
			return 0;
		ps->current_area--;
		r = chunk_io(ps, ps->area, area_location(ps, ps->current_area),
			     REQ_OP_READ);
		if (r)
			return r;
		ps->current_committed = ps->exceptions_per_area;
	}

	de = area_entry(ps, ps->current_committed - 1);
	*last_old = le64_to_cpu(de->old_chunk);
	*last_new = le64_to_cpu(de->new_chunk);
	/* Extend backwards over a run where both sides step down by one. */
	for (n = 1; n < ps->current_committed; n++) {
		de = area_entry(ps, ps->current_committed - 1 - n);
		if (le64_to_cpu(de->old_chunk) != *last_old - n ||
		    le64_to_cpu(de->new_chunk) != *last_new - n)
			break;
	}
	return n;
}

static int persistent_commit_merge(struct dm_exception_store *st, int nr)
{
	struct pstore *ps = st->context;
	int i, r;

	if (nr > ps->current_committed)
		return -EIO;
	for (i = 0; i < nr; i++)
		memset(area_entry(ps, ps->current_committed - 1 - i), 0,
		       sizeof(struct disk_exception));
	r = chunk_io(ps, ps->area, area_location(ps, ps->current_area),
		     REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA);
	if (r < 0)
		return r;
	ps->current_committed -= nr;
	/* The merged chunks were the last allocated: give them back. */
	ps->next_free = area_location(ps, ps->current_area) +
			ps->current_committed + 1;
	return 0;
}

static void persistent_drop_snapshot(struct dm_exception_store *st)
{
	struct pstore *ps = st->context;

	ps->valid = 0;
	if (ps->header_area && write_header(ps))
		DMWARN("write header failed");
}

static void persistent_usage(struct dm_exception_store *st, sector_t *total,
			     sector_t *allocated, sector_t *metadata)
{
	struct pstore *ps = st->context;

	*total = snap_cow_size(st);
	*allocated = chunk_to_sector(st, ps->next_free);
	*metadata = chunk_to_sector(st, ps->current_area + 1 + SNAP_HEADER_CHUNKS);
}

static unsigned int persistent_status(struct dm_exception_store *st,
				      status_type_t type, char *result,
				      unsigned int maxlen)
{
	unsigned int sz = 0;

	if (type == STATUSTYPE_TABLE)
		DMEMIT(" %s %u", st->userspace_supports_overflow ? "PO" : "P",
		       st->chunk_size);
	return sz;
}

static int persistent_ctr(struct dm_exception_store *st, char *options)
{
	struct pstore *ps;
	int r = -ENOMEM;

	if (options[0]) {
		/* Only the first option character counts, as in stock. */
		if (options[0] != 'O' && options[0] != 'o') {
			DMERR("Unsupported persistent store option: %s", options);
			return -EINVAL;
		}
		st->userspace_supports_overflow = true;
	}

	ps = kzalloc(sizeof(*ps), GFP_KERNEL);
	if (!ps)
		return -ENOMEM;
	ps->store = st;
	ps->valid = 1;
	atomic_set(&ps->pending_count, 0);
	ps->metadata_wq = alloc_workqueue("ksnaphd", WQ_MEM_RECLAIM, 0);
	if (!ps->metadata_wq)
		goto bad_wq;
	ps->io_client = dm_io_client_create();
	if (IS_ERR(ps->io_client)) {
		r = PTR_ERR(ps->io_client);
		goto bad_io;
	}
	st->context = ps;
	return 0;

bad_io:
	destroy_workqueue(ps->metadata_wq);
bad_wq:
	kfree(ps);
	return r;
}

static void persistent_dtr(struct dm_exception_store *st)
{
	struct pstore *ps = st->context;

	destroy_workqueue(ps->metadata_wq);
	dm_io_client_destroy(ps->io_client);
	free_areas(ps);
	kfree(ps);
}

static struct dm_exception_store_type persistent_type = {
	.name = "P",
	.module = THIS_MODULE,
	.ctr = persistent_ctr,
	.dtr = persistent_dtr,
	.read_metadata = persistent_read_metadata,
	.prepare_exception = persistent_prepare_exception,
	.commit_exception = persistent_commit_exception,
	.prepare_merge = persistent_prepare_merge,
	.commit_merge = persistent_commit_merge,
	.drop_snapshot = persistent_drop_snapshot,
	.usage = persistent_usage,
	.status = persistent_status,
};

int dm_persistent_snapshot_init(void)
{
	return dm_exception_store_type_register(&persistent_type);
}

void dm_persistent_snapshot_exit(void)
{
	dm_exception_store_type_unregister(&persistent_type);
}
