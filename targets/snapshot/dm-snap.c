// SPDX-License-Identifier: GPL-2.0-only
/*
 * Snapshots: snapshot-origin, snapshot and snapshot-merge.
 *
 * A snapshot keeps the contents an origin device had when it was taken.
 * Before an origin chunk is first overwritten, it is copied (kcopyd) to a
 * free chunk of the snapshot's COW device and the pair is recorded in the
 * snapshot's exception store. Snapshot reads of copied chunks come from the
 * COW device, the rest from the origin; snapshot writes copy the chunk first
 * too, then land in the COW chunk.
 *
 * A copy in flight is a "pending exception": bios that need the chunk wait on
 * it. Completed copies are committed to the store strictly in allocation
 * order from one ordered workqueue per snapshot, which then releases the
 * waiting bios.
 *
 * snapshot-merge replaces the origin's mapping and copies the COW chunks
 * back onto the origin, newest first, removing each exception as it goes.
 */
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/log2.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-snap.h"

#define DM_MSG_PREFIX "snapshots"

#define PENDING_POOL_SIZE 256
#define TRACK_BUCKETS 16
#define PENDING_BUCKETS 256

DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM(snapshot_copy_throttle,
	"A percentage of time allocated for copy on write");

static unsigned int cow_threshold = 2048;
module_param_named(snapshot_cow_threshold, cow_threshold, uint, 0644);
MODULE_PARM_DESC(snapshot_cow_threshold, "Maximum number of chunks being copied on write");

struct exception_table {
	struct hlist_head *buckets;
	unsigned int mask;
};

struct dm_snapshot {
	struct list_head list;		/* on the origin's snapshot list */
	struct dm_target *ti;
	struct dm_dev *origin;
	struct dm_dev *cow;
	struct dm_exception_store *store;
	bool is_merge;

	struct mutex lock;		/* tables, flags, pending lists */
	bool valid;
	bool active;			/* resumed at least once */
	bool overflowed;
	bool merge_failed;
	bool discard_zeroes_cow;
	bool discard_passdown_origin;

	struct exception_table complete;
	struct exception_table pending;

	/* handover of the exception table between two tables of one device */
	struct dm_snapshot *handover_src;
	struct dm_snapshot *handover_dest;

	struct dm_kcopyd_client *kcopyd;
	atomic_t pending_count;		/* pending exceptions alive */
	wait_queue_head_t pending_wait;
	u64 next_seq;			/* given to the next new exception */

	/* completion, in allocation order (ordered workqueue) */
	struct workqueue_struct *wq;
	struct work_struct complete_work;
	spinlock_t done_lock;
	struct list_head done;		/* copies finished, unsorted */
	struct list_head out_of_order;	/* sorted, waiting for earlier ones */
	u64 commit_seq;			/* next sequence to commit */

	/* bios mapped to the origin (reads) or COW (merge writes) in flight */
	spinlock_t track_lock;
	struct hlist_head tracked[TRACK_BUCKETS];

	/* merging */
	struct work_struct merge_work;
	bool merge_stop;
	sector_t first_merging;
	unsigned int num_merging;
	struct bio_list queued_during_merge;
};

struct pending_exception {
	struct dm_exception e;
	struct dm_snapshot *snap;
	struct bio_list origin_bios;
	struct bio_list snapshot_bios;
	struct list_head done_list;
	u64 seq;
	int copy_error;
};

struct snap_bio {
	struct hlist_node node;
	sector_t chunk;
	bool tracked;
};

/* Snapshots grouped by origin device. */
struct origin {
	struct list_head list;
	dev_t dev;
	struct list_head snapshots;
};

struct snap_origin_ctx {
	struct dm_dev *dev;
	unsigned int split_boundary;
};

static DECLARE_RWSEM(origins_lock);
static LIST_HEAD(origins);

static struct kmem_cache *exception_cache;
static struct kmem_cache *pending_cache;
static mempool_t pending_pool;

/* Counts every finished pending exception; merge waits on it. */
static atomic_t pending_done_count = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(pending_done_wait);

struct dm_dev *dm_snap_origin(struct dm_snapshot *s)
{
	return s->origin;
}
EXPORT_SYMBOL(dm_snap_origin);

struct dm_dev *dm_snap_cow(struct dm_snapshot *s)
{
	return s->cow;
}
EXPORT_SYMBOL(dm_snap_cow);

static sector_t sector_to_chunk(struct dm_snapshot *s, sector_t sector)
{
	return sector >> s->store->chunk_shift;
}

/* ------------------------------------------------------ exception tables */

static int table_init(struct exception_table *t, sector_t want)
{
	unsigned int i, size;

	size = roundup_pow_of_two(clamp_t(sector_t, want, 64, 1U << 17));
	t->buckets = kvmalloc_array(size, sizeof(*t->buckets), GFP_KERNEL);
	if (!t->buckets)
		return -ENOMEM;
	for (i = 0; i < size; i++)
		INIT_HLIST_HEAD(&t->buckets[i]);
	t->mask = size - 1;
	return 0;
}

static void table_exit(struct exception_table *t, struct kmem_cache *cache)
{
	struct dm_exception *e;
	struct hlist_node *tmp;
	unsigned int i;

	if (!t->buckets)
		return;
	for (i = 0; i <= t->mask; i++)
		hlist_for_each_entry_safe(e, tmp, &t->buckets[i], hash) {
			hlist_del(&e->hash);
			if (cache)
				kmem_cache_free(cache, e);
		}
	kvfree(t->buckets);
	t->buckets = NULL;
}

static struct hlist_head *table_bucket(struct exception_table *t, sector_t c)
{
	return &t->buckets[hash_64(c, 32) & t->mask];
}

static struct dm_exception *table_lookup(struct exception_table *t, sector_t c)
{
	struct dm_exception *e;

	hlist_for_each_entry(e, table_bucket(t, c), hash)
		if (e->old_chunk == c)
			return e;
	return NULL;
}

static void table_insert(struct exception_table *t, struct dm_exception *e)
{
	hlist_add_head(&e->hash, table_bucket(t, e->old_chunk));
}

/* Store callback while reading the on-disk table. */
static int add_exception(void *context, sector_t old, sector_t new)
{
	struct dm_snapshot *s = context;
	struct dm_exception *e;

	e = kmem_cache_alloc(exception_cache, GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->old_chunk = old;
	e->new_chunk = new;
	/* A later entry for the same chunk wins (there should be none). */
	table_insert(&s->complete, e);
	return 0;
}

/* ------------------------------------------------------ origins */

static struct origin *find_origin(dev_t dev)
{
	struct origin *o;

	list_for_each_entry(o, &origins, list)
		if (o->dev == dev)
			return o;
	return NULL;
}

/* Smallest chunk size among the snapshots of an origin; 0 if none. */
static unsigned int origin_min_chunk(struct origin *o)
{
	struct dm_snapshot *s;
	unsigned int min = 0;

	list_for_each_entry(s, &o->snapshots, list)
		if (s->store->chunk_size &&
		    (!min || s->store->chunk_size < min))
			min = s->store->chunk_size;
	return min;
}

/* ------------------------------------------------------ chunk tracking */

static void track_chunk(struct dm_snapshot *s, struct bio *bio, sector_t chunk)
{
	struct snap_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	unsigned long flags;

	pb->chunk = chunk;
	pb->tracked = true;
	spin_lock_irqsave(&s->track_lock, flags);
	hlist_add_head(&pb->node, &s->tracked[chunk & (TRACK_BUCKETS - 1)]);
	spin_unlock_irqrestore(&s->track_lock, flags);
}

static void untrack_chunk(struct dm_snapshot *s, struct bio *bio)
{
	struct snap_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	unsigned long flags;

	if (!pb->tracked)
		return;
	spin_lock_irqsave(&s->track_lock, flags);
	hlist_del(&pb->node);
	spin_unlock_irqrestore(&s->track_lock, flags);
	pb->tracked = false;
}

static bool chunk_is_tracked(struct dm_snapshot *s, sector_t chunk)
{
	struct snap_bio *pb;
	bool found = false;

	spin_lock_irq(&s->track_lock);
	hlist_for_each_entry(pb, &s->tracked[chunk & (TRACK_BUCKETS - 1)], node)
		if (pb->chunk == chunk) {
			found = true;
			break;
		}
	spin_unlock_irq(&s->track_lock);
	return found;
}

static void wait_for_tracked(struct dm_snapshot *s, sector_t chunk)
{
	while (chunk_is_tracked(s, chunk))
		usleep_range(500, 1000);
}

/* ------------------------------------------------------ invalidation */

static void invalidate_snapshot(struct dm_snapshot *s, int err)
{
	if (!s->valid)
		return;
	if (err == -EIO)
		DMERR("Invalidating snapshot: Error reading/writing.");
	else if (err == -ENOMEM)
		DMERR("Invalidating snapshot: Unable to allocate exception.");
	else
		DMERR("Invalidating snapshot: Unable to allocate exception.");
	s->store->type->drop_snapshot(s->store);
	s->valid = false;
	dm_table_event(s->ti->table);
}

/* ------------------------------------------------------ remapping */

static void remap_to_cow(struct dm_snapshot *s, struct dm_exception *e,
			 struct bio *bio)
{
	bio_set_dev(bio, s->cow->bdev);
	bio->bi_iter.bi_sector = chunk_to_sector(s->store, e->new_chunk) +
		(bio->bi_iter.bi_sector & s->store->chunk_mask);
}

static void error_bios(struct bio *bio)
{
	struct bio *next;

	while (bio) {
		next = bio->bi_next;
		bio->bi_next = NULL;
		bio_io_error(bio);
		bio = next;
	}
}

static int do_origin(struct dm_dev *origin, struct bio *bio, bool limit);

static void retry_origin_bios(struct dm_snapshot *s, struct bio *bio)
{
	struct bio *next;

	while (bio) {
		next = bio->bi_next;
		bio->bi_next = NULL;
		if (do_origin(s->origin, bio, false) == DM_MAPIO_REMAPPED)
			submit_bio_noacct(bio);
		bio = next;
	}
}

/* ------------------------------------------------------ pending exceptions */

static struct pending_exception *alloc_pending(gfp_t gfp)
{
	return mempool_alloc(&pending_pool, gfp);
}

static void free_pending(struct pending_exception *pe)
{
	struct dm_snapshot *s = pe->snap;

	mempool_free(pe, &pending_pool);
	if (s) {
		atomic_dec(&s->pending_count);
		wake_up_all(&s->pending_wait);
	}
	atomic_inc(&pending_done_count);
	wake_up_all(&pending_done_wait);
}

/*
 * Set up @pe for @chunk and allocate its COW chunk. Called with s->lock
 * held; returns 0 or the store's error (the caller frees @pe).
 */
static int start_pending(struct dm_snapshot *s, struct pending_exception *pe,
			 sector_t chunk)
{
	int r;

	pe->e.old_chunk = chunk;
	pe->snap = NULL;
	bio_list_init(&pe->origin_bios);
	bio_list_init(&pe->snapshot_bios);
	pe->copy_error = 0;
	r = s->store->type->prepare_exception(s->store, &pe->e);
	if (r)
		return r;
	pe->snap = s;
	pe->seq = s->next_seq++;
	atomic_inc(&s->pending_count);
	table_insert(&s->pending, &pe->e);
	return 0;
}

static void copy_done(int read_err, unsigned long write_err, void *context)
{
	struct pending_exception *pe = context;
	struct dm_snapshot *s = pe->snap;
	unsigned long flags;

	pe->copy_error = read_err || write_err;
	spin_lock_irqsave(&s->done_lock, flags);
	list_add_tail(&pe->done_list, &s->done);
	spin_unlock_irqrestore(&s->done_lock, flags);
	queue_work(s->wq, &s->complete_work);
}

static void start_copy(struct pending_exception *pe)
{
	struct dm_snapshot *s = pe->snap;
	struct dm_exception_store *st = s->store;
	sector_t origin_size = bdev_nr_sectors(s->origin->bdev);
	struct dm_io_region src, dest;

	src.bdev = s->origin->bdev;
	src.sector = chunk_to_sector(st, pe->e.old_chunk);
	if (src.sector >= origin_size) {
		/* A snapshot longer than its origin: nothing to copy. */
		copy_done(0, 0, pe);
		return;
	}
	src.count = min_t(sector_t, st->chunk_size, origin_size - src.sector);
	dest.bdev = s->cow->bdev;
	dest.sector = chunk_to_sector(st, pe->e.new_chunk);
	dest.count = src.count;
	dm_kcopyd_copy(s->kcopyd, &src, 1, &dest, 0, copy_done, pe);
}

/* Store callback: the exception is on disk (or failed). */
static void commit_done(void *context, int success)
{
	struct pending_exception *pe = context;
	struct dm_snapshot *s = pe->snap;
	struct dm_exception *e = NULL;
	struct bio *snap_bios, *origin_bios, *bio;
	bool ok;

	if (success) {
		e = kmem_cache_alloc(exception_cache, GFP_NOIO);
		if (!e)
			success = -ENOMEM;
	}

	mutex_lock(&s->lock);
	ok = success == 1 && s->valid;
	if (!ok) {
		invalidate_snapshot(s, success == -ENOMEM ? -ENOMEM : -EIO);
	} else {
		e->old_chunk = pe->e.old_chunk;
		e->new_chunk = pe->e.new_chunk;
		table_insert(&s->complete, e);
		e = NULL;
	}
	hlist_del(&pe->e.hash);
	snap_bios = bio_list_get(&pe->snapshot_bios);
	origin_bios = bio_list_get(&pe->origin_bios);
	mutex_unlock(&s->lock);
	if (e)
		kmem_cache_free(exception_cache, e);

	if (!ok) {
		error_bios(snap_bios);
	} else {
		while (snap_bios) {
			bio = snap_bios;
			snap_bios = bio->bi_next;
			bio->bi_next = NULL;
			remap_to_cow(s, &pe->e, bio);
			submit_bio_noacct(bio);
		}
	}

	/* Snapshot reads still reading the old origin data come first. */
	wait_for_tracked(s, pe->e.old_chunk);
	retry_origin_bios(s, origin_bios);
	free_pending(pe);
}

static void insert_sorted(struct list_head *head, struct pending_exception *pe)
{
	struct pending_exception *p;

	list_for_each_entry_reverse(p, head, done_list)
		if (p->seq < pe->seq) {
			list_add(&pe->done_list, &p->done_list);
			return;
		}
	list_add(&pe->done_list, head);
}

static void complete_work_fn(struct work_struct *work)
{
	struct dm_snapshot *s = container_of(work, struct dm_snapshot, complete_work);
	struct pending_exception *pe, *tmp;
	LIST_HEAD(batch);

	spin_lock_irq(&s->done_lock);
	list_splice_init(&s->done, &batch);
	spin_unlock_irq(&s->done_lock);

	list_for_each_entry_safe(pe, tmp, &batch, done_list) {
		list_del(&pe->done_list);
		insert_sorted(&s->out_of_order, pe);
	}

	while (!list_empty(&s->out_of_order)) {
		pe = list_first_entry(&s->out_of_order, struct pending_exception,
				      done_list);
		if (pe->seq != s->commit_seq)
			break;
		list_del(&pe->done_list);
		s->commit_seq++;
		s->store->type->commit_exception(s->store, &pe->e,
						 !pe->copy_error && s->valid,
						 commit_done, pe);
	}
}

/* ------------------------------------------------------ origin writes */

#define NEED_PE 0x7fff

/*
 * Make sure every snapshot of @o has the chunk at @sector copied before it
 * is overwritten. @bio (may be NULL) waits on one of the copies and is
 * retried when that one finishes. Returns DM_MAPIO_REMAPPED if nothing has
 * to be waited for, DM_MAPIO_SUBMITTED if @bio was queued (or, without a
 * bio, if some copy is still pending), or NEED_PE if a pending exception could
 * not be allocated without sleeping (*spare is consumed when given).
 */
static int origin_write(struct origin *o, sector_t sector, struct bio *bio,
			struct pending_exception **spare)
{
	struct pending_exception *pe, *to_start[8];
	int nr_start = 0, r = DM_MAPIO_REMAPPED, i, err;
	struct dm_exception *e;
	struct dm_snapshot *s;
	sector_t chunk;

	list_for_each_entry(s, &o->snapshots, list) {
		if (s->is_merge || !s->active)
			continue;
		if (sector >= s->ti->len)
			continue;

		mutex_lock(&s->lock);
		if (!s->valid)
			goto next;
		chunk = sector_to_chunk(s, sector);
		if (table_lookup(&s->complete, chunk))
			goto next;
		e = table_lookup(&s->pending, chunk);
		if (e) {
			pe = container_of(e, struct pending_exception, e);
		} else {
			pe = *spare;
			*spare = NULL;
			if (!pe)
				pe = alloc_pending(GFP_NOWAIT);
			if (!pe || nr_start == ARRAY_SIZE(to_start)) {
				mutex_unlock(&s->lock);
				if (pe)
					*spare = pe;
				/* The held bio is retried when its copy ends. */
				if (bio && r == DM_MAPIO_SUBMITTED)
					continue;
				r = NEED_PE;
				goto out;
			}
			err = start_pending(s, pe, chunk);
			if (err) {
				mempool_free(pe, &pending_pool);
				invalidate_snapshot(s, err);
				goto next;
			}
			to_start[nr_start++] = pe;
		}
		if (bio && r != DM_MAPIO_SUBMITTED) {
			bio_list_add(&pe->origin_bios, bio);
			r = DM_MAPIO_SUBMITTED;
		} else if (!bio) {
			r = DM_MAPIO_SUBMITTED;
		}
next:
		mutex_unlock(&s->lock);
	}
out:
	for (i = 0; i < nr_start; i++)
		start_copy(to_start[i]);
	return r;
}

static int do_origin(struct dm_dev *origin, struct bio *bio, bool limit)
{
	struct pending_exception *spare = NULL;
	int r = DM_MAPIO_REMAPPED;
	unsigned int min, avail;
	struct origin *o;

	down_read(&origins_lock);
	for (;;) {
		o = find_origin(origin->bdev->bd_dev);
		if (!o)
			break;
		if (limit) {
			/* Keep the write inside one chunk of every snapshot. */
			min = origin_min_chunk(o);
			if (min) {
				avail = min - (bio->bi_iter.bi_sector & (min - 1));
				if (bio_sectors(bio) > avail)
					dm_accept_partial_bio(bio, avail);
			}
			limit = false;
		}
		r = origin_write(o, bio->bi_iter.bi_sector, bio, &spare);
		if (r != NEED_PE)
			break;
		up_read(&origins_lock);
		if (!spare)
			spare = alloc_pending(GFP_NOIO);
		down_read(&origins_lock);
	}
	up_read(&origins_lock);
	if (spare)
		mempool_free(spare, &pending_pool);
	return r;
}

/*
 * Before merging writes to [sector, sector + size) of the origin, copy that
 * range out to the other snapshots. Returns true while copies are pending.
 */
static bool origin_write_extent(struct dm_snapshot *merging, sector_t sector,
				sector_t size)
{
	struct pending_exception *spare = NULL;
	bool pending = false;
	unsigned int min;
	struct origin *o;
	sector_t n;
	int r;

	down_read(&origins_lock);
	o = find_origin(merging->origin->bdev->bd_dev);
	if (o) {
		min = origin_min_chunk(o);
		for (n = 0; n < size; n += min) {
			r = origin_write(o, sector + n, NULL, &spare);
			if (r == NEED_PE) {
				up_read(&origins_lock);
				if (!spare)
					spare = alloc_pending(GFP_NOIO);
				down_read(&origins_lock);
				o = find_origin(merging->origin->bdev->bd_dev);
				if (!o)
					break;
				n -= min;
				continue;
			}
			if (r == DM_MAPIO_SUBMITTED)
				pending = true;
		}
	}
	up_read(&origins_lock);
	if (spare)
		mempool_free(spare, &pending_pool);
	return pending;
}

/* ------------------------------------------------------ registration */

static int register_snapshot(struct dm_snapshot *s)
{
	struct dm_snapshot *l, *src = NULL;
	struct origin *o;
	dev_t dev = s->origin->bdev->bd_dev;

	o = find_origin(dev);
	if (o) {
		list_for_each_entry(l, &o->snapshots, list) {
			if (l->cow->bdev != s->cow->bdev)
				continue;
			if (l->handover_dest || l->handover_src || src)
				return -EINVAL;
			src = l;
		}
	} else {
		o = kmalloc(sizeof(*o), GFP_KERNEL);
		if (!o)
			return -ENOMEM;
		o->dev = dev;
		INIT_LIST_HEAD(&o->snapshots);
		list_add_tail(&o->list, &origins);
	}
	if (src) {
		s->handover_src = src;
		src->handover_dest = s;
	}
	list_add_tail(&s->list, &o->snapshots);
	return 0;
}

static void unregister_snapshot(struct dm_snapshot *s)
{
	struct origin *o = find_origin(s->origin->bdev->bd_dev);

	list_del(&s->list);
	if (o && list_empty(&o->snapshots)) {
		list_del(&o->list);
		kfree(o);
	}
}

/* ------------------------------------------------------ constructor */

static void merge_work_fn(struct work_struct *work);

static int parse_features(struct dm_snapshot *s, struct dm_arg_set *as,
			  struct dm_target *ti)
{
	static const struct dm_arg args[] = {
		{0, 2, "Invalid number of feature arguments"},
	};
	unsigned int argc;
	const char *arg;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(args, as, &argc, &ti->error);
	if (r)
		return -EINVAL;
	while (argc--) {
		arg = dm_shift_arg(as);
		if (!strcasecmp(arg, "discard_zeroes_cow")) {
			s->discard_zeroes_cow = true;
		} else if (!strcasecmp(arg, "discard_passdown_origin")) {
			s->discard_passdown_origin = true;
		} else {
			ti->error = "Unrecognised feature requested";
			return -EINVAL;
		}
	}
	if (s->discard_passdown_origin && !s->discard_zeroes_cow) {
		ti->error = "discard_passdown_origin feature depends on discard_zeroes_cow";
		return -EINVAL;
	}
	return 0;
}

/*
 * snapshot <origin> <cow> <P|PO|N> <chunk_size> [<#feat> <feat>...]
 * snapshot-merge takes the same arguments (persistent store only).
 */
static int snapshot_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	bool is_merge = !strcmp(ti->type->name, "snapshot-merge");
	struct dm_arg_set as;
	struct dm_snapshot *s;
	unsigned int used, i;
	fmode_t origin_mode = FMODE_READ;
	int r;

	if (argc < 4) {
		ti->error = "requires 4 or more arguments";
		return -EINVAL;
	}
	if (is_merge && toupper(argv[2][0]) != 'P') {
		ti->error = "Snapshot exception store does not support snapshot-merge.";
		return -EINVAL;
	}

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		ti->error = "Cannot allocate private snapshot structure";
		return -ENOMEM;
	}
	s->ti = ti;
	s->is_merge = is_merge;
	s->valid = true;
	mutex_init(&s->lock);
	atomic_set(&s->pending_count, 0);
	init_waitqueue_head(&s->pending_wait);
	spin_lock_init(&s->done_lock);
	INIT_LIST_HEAD(&s->done);
	INIT_LIST_HEAD(&s->out_of_order);
	INIT_WORK(&s->complete_work, complete_work_fn);
	INIT_WORK(&s->merge_work, merge_work_fn);
	spin_lock_init(&s->track_lock);
	for (i = 0; i < TRACK_BUCKETS; i++)
		INIT_HLIST_HEAD(&s->tracked[i]);
	bio_list_init(&s->queued_during_merge);
	INIT_LIST_HEAD(&s->list);

	as.argc = argc - 4;
	as.argv = argv + 4;
	r = parse_features(s, &as, ti);
	if (r)
		goto bad_features;
	if (as.argc) {
		ti->error = "Unrecognised feature requested";
		r = -EINVAL;
		goto bad_features;
	}

	if (is_merge || s->discard_passdown_origin)
		origin_mode |= FMODE_WRITE;
	r = dm_get_device(ti, argv[0], origin_mode, &s->origin);
	if (r) {
		ti->error = "Cannot get origin device";
		goto bad_features;
	}
	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table), &s->cow);
	if (r) {
		ti->error = "Cannot get COW device";
		goto bad_cow;
	}
	if (s->cow->bdev == s->origin->bdev) {
		ti->error = "COW device cannot be the same as origin device";
		r = -EINVAL;
		goto bad_store;
	}

	r = dm_exception_store_create(ti, 2, argv + 2, s, &used, &s->store);
	if (r) {
		/* the store's reason is logged; this is what stock reports */
		DMERR("%s", ti->error ? ti->error : "exception store failed");
		ti->error = "Couldn't create exception store";
		r = -EINVAL;
		goto bad_store;
	}

	r = table_init(&s->pending, PENDING_BUCKETS);
	if (!r)
		r = table_init(&s->complete, snap_cow_size(s->store) >>
			       (s->store->chunk_shift ?: 5));
	if (r) {
		ti->error = "Unable to allocate hash table space";
		goto bad_tables;
	}

	s->kcopyd = dm_kcopyd_client_create(&dm_kcopyd_throttle);
	if (IS_ERR(s->kcopyd)) {
		r = PTR_ERR(s->kcopyd);
		s->kcopyd = NULL;
		ti->error = "Could not create kcopyd client";
		goto bad_tables;
	}
	s->wq = alloc_ordered_workqueue("ksnapd", WQ_MEM_RECLAIM);
	if (!s->wq) {
		r = -ENOMEM;
		ti->error = "Could not create workqueue";
		goto bad_tables;
	}

	down_write(&origins_lock);
	r = register_snapshot(s);
	up_write(&origins_lock);
	if (r == -EINVAL) {
		ti->error = "Snapshot cow pairing for exception table handover failed";
		goto bad_tables;
	} else if (r) {
		ti->error = "Snapshot origin struct allocation failed";
		goto bad_tables;
	}

	if (s->handover_src) {
		/* The table arrives at resume; until then share the geometry. */
		struct dm_exception_store *src = s->handover_src->store;

		s->store->chunk_size = src->chunk_size;
		s->store->chunk_mask = src->chunk_mask;
		s->store->chunk_shift = src->chunk_shift;
	} else {
		r = s->store->type->read_metadata(s->store, add_exception, s);
		if (r < 0) {
			ti->error = "Failed to read snapshot metadata";
			goto bad_read;
		}
		if (r > 0) {
			s->valid = false;
			DMWARN("Snapshot is marked invalid.");
		}
	}
	if (!s->store->chunk_size) {
		ti->error = "Chunk size not set";
		r = -EINVAL;
		goto bad_read;
	}

	r = dm_set_target_max_io_len(ti, s->store->chunk_size);
	if (r)
		goto bad_read;
	ti->private = s;
	ti->num_flush_bios = 2;
	ti->per_io_data_size = sizeof(struct snap_bio);
	if (s->discard_zeroes_cow)
		ti->num_discard_bios = s->discard_passdown_origin ? 2 : 1;
	return 0;

bad_read:
	down_write(&origins_lock);
	if (s->handover_src)
		s->handover_src->handover_dest = NULL;
	unregister_snapshot(s);
	up_write(&origins_lock);
bad_tables:
	table_exit(&s->complete, exception_cache);
	if (s->wq)
		destroy_workqueue(s->wq);
	if (s->kcopyd)
		dm_kcopyd_client_destroy(s->kcopyd);
	table_exit(&s->pending, NULL);
	dm_exception_store_destroy(s->store);
bad_store:
	dm_put_device(ti, s->cow);
bad_cow:
	dm_put_device(ti, s->origin);
bad_features:
	kfree(s);
	return r;
}

static void stop_merge(struct dm_snapshot *s)
{
	mutex_lock(&s->lock);
	s->merge_stop = true;
	mutex_unlock(&s->lock);
	flush_work(&s->merge_work);
}

static void snapshot_dtr(struct dm_target *ti)
{
	struct dm_snapshot *s = ti->private;

	down_write(&origins_lock);
	if (s->handover_dest) {
		/* The new table never got our exceptions. */
		mutex_lock(&s->handover_dest->lock);
		s->handover_dest->valid = false;
		s->handover_dest->handover_src = NULL;
		mutex_unlock(&s->handover_dest->lock);
		DMERR("Cancelling snapshot handover.");
	}
	if (s->handover_src)
		s->handover_src->handover_dest = NULL;
	unregister_snapshot(s);
	up_write(&origins_lock);

	if (s->is_merge)
		stop_merge(s);
	wait_event(s->pending_wait, !atomic_read(&s->pending_count));
	destroy_workqueue(s->wq);
	dm_kcopyd_client_destroy(s->kcopyd);
	table_exit(&s->pending, NULL);
	table_exit(&s->complete, exception_cache);
	dm_exception_store_destroy(s->store);
	dm_put_device(ti, s->cow);
	dm_put_device(ti, s->origin);
	kfree(s);
}

/* ------------------------------------------------------ snapshot I/O */

static void zero_done(int read_err, unsigned long write_err, void *context)
{
	struct bio *bio = context;

	if (read_err || write_err)
		bio->bi_status = BLK_STS_IOERR;
	bio_endio(bio);
}

/* A whole-chunk discard of a copied chunk zeroes it on the COW device. */
static void zero_exception(struct dm_snapshot *s, struct dm_exception *e,
			   struct bio *bio)
{
	struct dm_io_region dest = {
		.bdev = s->cow->bdev,
		.sector = chunk_to_sector(s->store, e->new_chunk),
		.count = s->store->chunk_size,
	};

	dm_kcopyd_zero(s->kcopyd, 1, &dest, 0, zero_done, bio);
}

static bool covers_chunk(struct dm_snapshot *s, struct bio *bio)
{
	return bio->bi_iter.bi_size == (s->store->chunk_size << SECTOR_SHIFT);
}

static int snapshot_map(struct dm_target *ti, struct bio *bio)
{
	struct dm_snapshot *s = ti->private;
	struct snap_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct pending_exception *pe, *spare = NULL;
	struct dm_exception *e;
	sector_t chunk;
	int r;

	pb->tracked = false;
	if (bio->bi_opf & REQ_PREFLUSH) {
		bio_set_dev(bio, dm_bio_get_target_bio_nr(bio) ?
			    s->origin->bdev : s->cow->bdev);
		return DM_MAPIO_REMAPPED;
	}
	if (!s->valid)
		return DM_MAPIO_KILL;

	chunk = sector_to_chunk(s, bio->bi_iter.bi_sector);
	if (bio_op(bio) == REQ_OP_DISCARD &&
	    s->discard_passdown_origin && dm_bio_get_target_bio_nr(bio)) {
		/* Straight to the origin: freeing space must not copy. */
		bio_set_dev(bio, s->origin->bdev);
		track_chunk(s, bio, chunk);
		return DM_MAPIO_REMAPPED;
	}

	/* Bound the copies in flight that writes to the snapshot start. */
	if (bio_data_dir(bio) == WRITE && READ_ONCE(cow_threshold))
		wait_event(s->pending_wait, atomic_read(&s->pending_count) <
			   READ_ONCE(cow_threshold));
again:
	mutex_lock(&s->lock);
	/* After an overflow no write is accepted, even into copied chunks. */
	if (!s->valid || (s->overflowed && bio_data_dir(bio) == WRITE)) {
		r = DM_MAPIO_KILL;
		goto out_unlock;
	}
	e = table_lookup(&s->complete, chunk);
	if (e) {
		remap_to_cow(s, e, bio);
		if (bio_op(bio) == REQ_OP_DISCARD && covers_chunk(s, bio)) {
			mutex_unlock(&s->lock);
			zero_exception(s, e, bio);
			r = DM_MAPIO_SUBMITTED;
			goto out;
		}
		r = DM_MAPIO_REMAPPED;
		goto out_unlock;
	}
	if (bio_op(bio) == REQ_OP_DISCARD) {
		/* Nothing copied: discarding must not trigger a copy. */
		mutex_unlock(&s->lock);
		bio_endio(bio);
		r = DM_MAPIO_SUBMITTED;
		goto out;
	}
	if (bio_data_dir(bio) != WRITE) {
		bio_set_dev(bio, s->origin->bdev);
		track_chunk(s, bio, chunk);
		r = DM_MAPIO_REMAPPED;
		goto out_unlock;
	}

	e = table_lookup(&s->pending, chunk);
	if (e) {
		pe = container_of(e, struct pending_exception, e);
		bio_list_add(&pe->snapshot_bios, bio);
		r = DM_MAPIO_SUBMITTED;
		goto out_unlock;
	}
	if (s->overflowed) {
		r = DM_MAPIO_KILL;
		goto out_unlock;
	}
	pe = spare;
	spare = NULL;
	if (!pe)
		pe = alloc_pending(GFP_NOWAIT);
	if (!pe) {
		mutex_unlock(&s->lock);
		spare = alloc_pending(GFP_NOIO);
		goto again;
	}
	r = start_pending(s, pe, chunk);
	if (r) {
		mempool_free(pe, &pending_pool);
		if (s->store->userspace_supports_overflow) {
			if (!s->overflowed)
				DMERR("Snapshot overflowed: Unable to allocate exception.");
			s->overflowed = true;
		} else {
			invalidate_snapshot(s, r);
		}
		r = DM_MAPIO_KILL;
		goto out_unlock;
	}
	bio_list_add(&pe->snapshot_bios, bio);
	mutex_unlock(&s->lock);
	start_copy(pe);
	r = DM_MAPIO_SUBMITTED;
	goto out;

out_unlock:
	mutex_unlock(&s->lock);
out:
	if (spare)
		mempool_free(spare, &pending_pool);
	return r;
}

static int snapshot_end_io(struct dm_target *ti, struct bio *bio,
			   blk_status_t *error)
{
	struct dm_snapshot *s = ti->private;

	untrack_chunk(s, bio);
	return DM_ENDIO_DONE;
}

/* ------------------------------------------------------ merge */

static int merge_map(struct dm_target *ti, struct bio *bio)
{
	struct dm_snapshot *s = ti->private;
	struct snap_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct dm_exception *e;
	sector_t chunk;

	pb->tracked = false;
	if (bio->bi_opf & REQ_PREFLUSH) {
		bio_set_dev(bio, dm_bio_get_target_bio_nr(bio) ?
			    s->cow->bdev : s->origin->bdev);
		return DM_MAPIO_REMAPPED;
	}

	chunk = sector_to_chunk(s, bio->bi_iter.bi_sector);
	mutex_lock(&s->lock);
	if (!s->valid) {
		mutex_unlock(&s->lock);
		return DM_MAPIO_KILL;
	}
	e = table_lookup(&s->complete, chunk);
	if (e) {
		if (bio_data_dir(bio) == WRITE && s->num_merging &&
		    chunk >= s->first_merging &&
		    chunk < s->first_merging + s->num_merging) {
			/* Goes to the origin once this chunk is merged. */
			bio_set_dev(bio, s->origin->bdev);
			bio_list_add(&s->queued_during_merge, bio);
			mutex_unlock(&s->lock);
			return DM_MAPIO_SUBMITTED;
		}
		remap_to_cow(s, e, bio);
		if (bio_data_dir(bio) == WRITE)
			track_chunk(s, bio, chunk);
		mutex_unlock(&s->lock);
		return DM_MAPIO_REMAPPED;
	}
	mutex_unlock(&s->lock);

	bio_set_dev(bio, s->origin->bdev);
	if (bio_data_dir(bio) == WRITE)
		return do_origin(s->origin, bio, true);
	return DM_MAPIO_REMAPPED;
}


struct merge_copy {
	struct completion done;
	int err;
};

static void merge_copy_done(int read_err, unsigned long write_err, void *context)
{
	struct merge_copy *mc = context;

	mc->err = read_err || write_err;
	complete(&mc->done);
}

static void release_queued(struct dm_snapshot *s)
{
	struct bio *bio, *next;

	mutex_lock(&s->lock);
	s->num_merging = 0;
	bio = bio_list_get(&s->queued_during_merge);
	mutex_unlock(&s->lock);
	while (bio) {
		next = bio->bi_next;
		bio->bi_next = NULL;
		submit_bio_noacct(bio);
		bio = next;
	}
}

static void merge_failed(struct dm_snapshot *s, const char *why)
{
	DMERR("%s: shutting down merge", why);
	mutex_lock(&s->lock);
	s->merge_failed = true;
	mutex_unlock(&s->lock);
	dm_table_event(s->ti->table);
}

/* One batch: copy a run of COW chunks back onto the origin. */
static int merge_one(struct dm_snapshot *s)
{
	struct dm_exception_store *st = s->store;
	struct dm_io_region src, dest;
	sector_t origin_size = bdev_nr_sectors(s->origin->bdev);
	sector_t old, new, c, first_old, first_new;
	struct merge_copy mc;
	struct dm_exception *e;
	int n, prev, r;

	n = st->type->prepare_merge(st, &old, &new);
	if (n <= 0) {
		if (n < 0)
			merge_failed(s, "Read error in exception store");
		return n ? n : 1;
	}
	first_old = old - n + 1;
	first_new = new - n + 1;

	dest.bdev = s->origin->bdev;
	dest.sector = chunk_to_sector(st, first_old);
	if (dest.sector >= origin_size) {
		merge_failed(s, "Exception beyond the end of the origin");
		return -EIO;
	}
	dest.count = min_t(sector_t, (sector_t)n << st->chunk_shift,
			   origin_size - dest.sector);
	src.bdev = s->cow->bdev;
	src.sector = chunk_to_sector(st, first_new);
	src.count = dest.count;

	/* Other snapshots must keep what the merge is about to overwrite. */
	for (;;) {
		prev = atomic_read(&pending_done_count);
		if (!origin_write_extent(s, dest.sector, dest.count))
			break;
		wait_event(pending_done_wait,
			   atomic_read(&pending_done_count) != prev);
	}

	mutex_lock(&s->lock);
	s->first_merging = first_old;
	s->num_merging = n;
	mutex_unlock(&s->lock);
	for (c = first_old; c <= old; c++)
		wait_for_tracked(s, c);

	init_completion(&mc.done);
	dm_kcopyd_copy(s->kcopyd, &src, 1, &dest, 0, merge_copy_done, &mc);
	wait_for_completion(&mc.done);
	if (mc.err) {
		release_queued(s);
		merge_failed(s, "Read/write error while merging");
		return -EIO;
	}

	r = st->type->commit_merge(st, n);
	if (r < 0) {
		release_queued(s);
		merge_failed(s, "Write error in exception store");
		return r;
	}

	mutex_lock(&s->lock);
	for (c = first_old; c <= old; c++) {
		e = table_lookup(&s->complete, c);
		if (e) {
			hlist_del(&e->hash);
			kmem_cache_free(exception_cache, e);
		}
	}
	mutex_unlock(&s->lock);
	release_queued(s);
	return 0;
}

static void merge_work_fn(struct work_struct *work)
{
	struct dm_snapshot *s = container_of(work, struct dm_snapshot, merge_work);
	bool stop;
	int r;

	for (;;) {
		mutex_lock(&s->lock);
		stop = s->merge_stop || !s->valid || s->merge_failed;
		mutex_unlock(&s->lock);
		if (stop)
			return;
		r = merge_one(s);
		if (r > 0) {
			/* Everything is back on the origin. */
			dm_table_event(s->ti->table);
			return;
		}
		if (r < 0)
			return;
		cond_resched();
	}
}

static void merge_presuspend(struct dm_target *ti)
{
	stop_merge(ti->private);
}

/* ------------------------------------------------------ resume, handover */

static int snapshot_preresume(struct dm_target *ti)
{
	struct dm_snapshot *s = ti->private;
	int r = 0;

	down_read(&origins_lock);
	if (s->handover_src && !dm_suspended(s->handover_src->ti)) {
		DMERR("Unable to perform snapshot handover until source is suspended.");
		r = -EINVAL;
	}
	up_read(&origins_lock);
	return r;
}

/* Move the exception table and store of the old table to the new one. */
static void handover_exceptions(struct dm_snapshot *dest)
{
	struct exception_table tmp_table;
	struct dm_exception_store *tmp_store;
	struct dm_snapshot *src;

	for (;;) {
		down_write(&origins_lock);
		src = dest->handover_src;
		if (!src) {
			up_write(&origins_lock);
			return;
		}
		/* Origin writes are locked out; wait for copies in flight. */
		if (!atomic_read(&src->pending_count))
			break;
		up_write(&origins_lock);
		wait_event(src->pending_wait, !atomic_read(&src->pending_count));
	}

	mutex_lock(&src->lock);
	mutex_lock_nested(&dest->lock, SINGLE_DEPTH_NESTING);
	tmp_table = src->complete;
	src->complete = dest->complete;
	dest->complete = tmp_table;
	tmp_store = src->store;
	src->store = dest->store;
	dest->store = tmp_store;
	src->store->snap = src;
	dest->store->snap = dest;
	dest->valid = src->valid;
	dest->overflowed = src->overflowed;
	src->valid = false;
	src->active = false;
	src->handover_dest = NULL;
	dest->handover_src = NULL;
	mutex_unlock(&dest->lock);
	mutex_unlock(&src->lock);
	up_write(&origins_lock);
}

static void snapshot_resume(struct dm_target *ti)
{
	struct dm_snapshot *s = ti->private;

	handover_exceptions(s);
	down_write(&origins_lock);
	s->active = true;
	up_write(&origins_lock);
}

static void merge_resume(struct dm_target *ti)
{
	struct dm_snapshot *s = ti->private;

	snapshot_resume(ti);
	mutex_lock(&s->lock);
	s->merge_stop = false;
	mutex_unlock(&s->lock);
	queue_work(system_long_wq, &s->merge_work);
}

/* ------------------------------------------------------ status, limits */

static void snapshot_status(struct dm_target *ti, status_type_t type,
			    unsigned int status_flags, char *result,
			    unsigned int maxlen)
{
	struct dm_snapshot *s = ti->private;
	sector_t total, allocated, metadata;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		mutex_lock(&s->lock);
		if (!s->valid) {
			DMEMIT("Invalid");
		} else if (s->merge_failed) {
			DMEMIT("Merge failed");
		} else if (s->overflowed) {
			DMEMIT("Overflow");
		} else if (s->store->type->usage) {
			s->store->type->usage(s->store, &total, &allocated,
					      &metadata);
			DMEMIT("%llu/%llu %llu", (unsigned long long)allocated,
			       (unsigned long long)total,
			       (unsigned long long)metadata);
		} else {
			DMEMIT("Unknown");
		}
		mutex_unlock(&s->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s", s->origin->name, s->cow->name);
		sz += s->store->type->status(s->store, type, result + sz,
					     maxlen - sz);
		if (s->discard_zeroes_cow)
			DMEMIT(" %u discard_zeroes_cow%s",
			       s->discard_passdown_origin ? 2 : 1,
			       s->discard_passdown_origin ?
			       " discard_passdown_origin" : "");
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",snap_origin_name=%s,snap_cow_name=%s,snap_valid=%c,snap_merge_failed=%c,snapshot_overflowed=%c;",
		       s->origin->name, s->cow->name, s->valid ? 'y' : 'n',
		       s->merge_failed ? 'y' : 'n', s->overflowed ? 'y' : 'n');
		break;
	}
}

static int snapshot_iterate_devices(struct dm_target *ti,
				    iterate_devices_callout_fn fn, void *data)
{
	struct dm_snapshot *s = ti->private;
	int r;

	r = fn(ti, s->origin, 0, ti->len, data);
	if (!r)
		r = fn(ti, s->cow, 0, bdev_nr_sectors(s->cow->bdev), data);
	return r;
}

static void snapshot_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct dm_snapshot *s = ti->private;

	if (s->discard_zeroes_cow) {
		/* Discards are handled one chunk at a time. */
		limits->discard_granularity = s->store->chunk_size << SECTOR_SHIFT;
		limits->max_discard_sectors = s->store->chunk_size;
		limits->max_hw_discard_sectors = s->store->chunk_size;
	}
}

/* ------------------------------------------------------ snapshot-origin */

static int origin_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct snap_origin_ctx *o;
	int r;

	if (argc != 1) {
		ti->error = "origin: incorrect number of arguments";
		return -EINVAL;
	}
	o = kzalloc(sizeof(*o), GFP_KERNEL);
	if (!o) {
		ti->error = "Cannot allocate private origin structure";
		return -ENOMEM;
	}
	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &o->dev);
	if (r) {
		ti->error = "Cannot get target device";
		kfree(o);
		return r;
	}
	ti->private = o;
	ti->num_flush_bios = 1;
	return 0;
}

static void origin_dtr(struct dm_target *ti)
{
	struct snap_origin_ctx *o = ti->private;

	dm_put_device(ti, o->dev);
	kfree(o);
}

static int origin_map(struct dm_target *ti, struct bio *bio)
{
	struct snap_origin_ctx *o = ti->private;

	bio_set_dev(bio, o->dev->bdev);
	if (bio->bi_opf & REQ_PREFLUSH || bio_data_dir(bio) != WRITE)
		return DM_MAPIO_REMAPPED;
	return do_origin(o->dev, bio, true);
}

static void origin_resume(struct dm_target *ti)
{
	struct snap_origin_ctx *o = ti->private;
	struct origin *orig;

	down_read(&origins_lock);
	orig = find_origin(o->dev->bdev->bd_dev);
	o->split_boundary = orig ? origin_min_chunk(orig) : 0;
	up_read(&origins_lock);
}

static void origin_postsuspend(struct dm_target *ti)
{
	struct snap_origin_ctx *o = ti->private;

	o->split_boundary = 0;
}

static void origin_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	struct snap_origin_ctx *o = ti->private;
	unsigned int sz = 0;

	if (type == STATUSTYPE_TABLE)
		DMEMIT("%s", o->dev->name);
	else if (maxlen)
		result[0] = '\0';
}

static int origin_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct snap_origin_ctx *o = ti->private;

	return fn(ti, o->dev, 0, ti->len, data);
}

static struct target_type origin_target = {
	.name = "snapshot-origin",
	.version = {1, 9, 0},
	.module = THIS_MODULE,
	.ctr = origin_ctr,
	.dtr = origin_dtr,
	.map = origin_map,
	.resume = origin_resume,
	.postsuspend = origin_postsuspend,
	.status = origin_status,
	.iterate_devices = origin_iterate_devices,
};

static struct target_type snapshot_target = {
	.name = "snapshot",
	.version = {1, 16, 0},
	.module = THIS_MODULE,
	.ctr = snapshot_ctr,
	.dtr = snapshot_dtr,
	.map = snapshot_map,
	.end_io = snapshot_end_io,
	.preresume = snapshot_preresume,
	.resume = snapshot_resume,
	.status = snapshot_status,
	.iterate_devices = snapshot_iterate_devices,
	.io_hints = snapshot_io_hints,
};

static struct target_type merge_target = {
	.name = "snapshot-merge",
	.version = {1, 5, 0},
	.module = THIS_MODULE,
	.ctr = snapshot_ctr,
	.dtr = snapshot_dtr,
	.map = merge_map,
	.end_io = snapshot_end_io,
	.presuspend = merge_presuspend,
	.preresume = snapshot_preresume,
	.resume = merge_resume,
	.status = snapshot_status,
	.iterate_devices = snapshot_iterate_devices,
	.io_hints = snapshot_io_hints,
};

static int __init dm_snapshot_init(void)
{
	int r;

	exception_cache = KMEM_CACHE(dm_exception, 0);
	pending_cache = KMEM_CACHE(pending_exception, 0);
	if (!exception_cache || !pending_cache) {
		r = -ENOMEM;
		goto bad_cache;
	}
	r = mempool_init_slab_pool(&pending_pool, PENDING_POOL_SIZE, pending_cache);
	if (r)
		goto bad_cache;
	r = dm_persistent_snapshot_init();
	if (r)
		goto bad_persistent;
	r = dm_transient_snapshot_init();
	if (r)
		goto bad_transient;
	r = dm_register_target(&origin_target);
	if (r)
		goto bad_origin;
	r = dm_register_target(&snapshot_target);
	if (r)
		goto bad_snapshot;
	r = dm_register_target(&merge_target);
	if (r)
		goto bad_merge;
	return 0;

bad_merge:
	dm_unregister_target(&snapshot_target);
bad_snapshot:
	dm_unregister_target(&origin_target);
bad_origin:
	dm_transient_snapshot_exit();
bad_transient:
	dm_persistent_snapshot_exit();
bad_persistent:
	mempool_exit(&pending_pool);
bad_cache:
	kmem_cache_destroy(pending_cache);
	kmem_cache_destroy(exception_cache);
	return r;
}

static void __exit dm_snapshot_exit(void)
{
	dm_unregister_target(&merge_target);
	dm_unregister_target(&snapshot_target);
	dm_unregister_target(&origin_target);
	dm_transient_snapshot_exit();
	dm_persistent_snapshot_exit();
	mempool_exit(&pending_pool);
	kmem_cache_destroy(pending_cache);
	kmem_cache_destroy(exception_cache);
}

module_init(dm_snapshot_init);
module_exit(dm_snapshot_exit);

MODULE_DESCRIPTION(DM_NAME " snapshot target");
MODULE_LICENSE("GPL");
MODULE_ALIAS("dm-snapshot-origin");
MODULE_ALIAS("dm-snapshot-merge");
