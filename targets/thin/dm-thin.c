// SPDX-License-Identifier: GPL-2.0-only
/*
 * thin-pool and thin targets: thinly provisioned devices and their
 * snapshots, sharing the data blocks of one pool.
 *
 * The pool target owns the metadata (thin-metadata.h) and the data
 * device; each thin target maps a thin device of the pool.  Bios to
 * provisioned, unshared blocks are remapped in the map function from a
 * non-blocking metadata lookup.  Everything else (first writes, writes to
 * shared blocks, discards, flushes, lookups that would block) goes to the
 * pool's worker, which changes the metadata; blocks being zeroed or copied
 * are guarded by bio prison cells so later bios wait for them.
 */
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/refcount.h>
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/math64.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-bio-prison.h"
#include "dm-exports.h"
#include "thin-metadata.h"

#define DM_MSG_PREFIX "thin"

#define BLOCK_SIZE_MIN_SECTORS	128
#define BLOCK_SIZE_MAX_SECTORS	2097152
#define COMMIT_PERIOD		HZ
#define JOB_POOL_SIZE		1024
/* Largest discard a thin device takes in one bio (16 GiB). */
#define THIN_MAX_DISCARD_SECTORS	(2048 * 1024 * 16)

/* Generations of in-flight remapped bios kept apart (a power of two). */
#define IO_GENS			64

/* Prison key kinds. */
#define KEY_VIRTUAL		0

static unsigned int no_space_timeout_secs = 60;
module_param_named(no_space_timeout, no_space_timeout_secs, uint, 0644);
MODULE_PARM_DESC(no_space_timeout,
		 "Out of data space queue IO timeout in seconds");

DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM(snapshot_copy_throttle,
		"A percentage of time allocated for copy on write");

/* Ordered from healthy to broken: a pool only moves right by itself. */
enum pool_mode {
	PM_WRITE,
	PM_OUT_OF_DATA_SPACE,
	/* Read-only until the metadata device grows. */
	PM_OUT_OF_METADATA_SPACE,
	PM_READ_ONLY,
	PM_FAIL,
};

struct pool_features {
	enum pool_mode mode;
	bool zero_new_blocks;
	bool discard_enabled;
	bool discard_passdown;
	bool error_if_no_space;
};

struct pool {
	struct list_head list;
	unsigned int ref;
	struct mapped_device *pool_md;
	struct block_device *md_bdev;
	/* Identity only (pool_find): I/O goes through the pool device. */
	struct block_device *data_bdev;
	/* The bound (resumed) pool target; NULL until the first resume. */
	struct dm_target *ti;
	struct thin_md *md;
	u32 sectors_per_block;
	struct pool_features pf;
	u64 low_water_blocks;
	bool low_water_triggered;
	bool suspended;

	struct workqueue_struct *wq;
	struct work_struct worker;
	struct delayed_work waker;
	struct delayed_work no_space_work;
	unsigned long last_commit;

	spinlock_t lock;
	struct bio_list deferred;
	/* Bios that need a new block while the pool is out of data space. */
	struct bio_list retry;
	/* Zeroes and copies that finished, waiting for their mapping. */
	struct list_head prepared;
	struct list_head active_thins;

	struct dm_kcopyd_client *copier;
	struct dm_prison *prison;
	mempool_t job_pool;

	/*
	 * Bios remapped to the data device and not yet completed, counted
	 * by generation.  The worker starts a new generation before it
	 * frees, reuses or passes a discard down to a data block, then
	 * waits until the older ones are empty (io_barrier, io_wait_for).
	 * Bios count into slot io_gen % IO_GENS; only the worker moves
	 * io_gen and io_oldest (the oldest generation maybe not empty).
	 */
	atomic_t io_count[IO_GENS];
	unsigned int io_gen;
	unsigned int io_oldest;
	wait_queue_head_t io_wait;
};

struct pool_c {
	struct dm_target *ti;
	struct pool *pool;
	struct dm_dev *data_dev;
	struct dm_dev *metadata_dev;
	u64 low_water_blocks;
	/* As the table asked; adjusted: what the devices allow. */
	struct pool_features requested_pf;
	struct pool_features adjusted_pf;
};

struct thin_c {
	/* In pool->active_thins until the destructor has waited for refs. */
	struct list_head list;
	refcount_t refcount;
	struct completion can_destroy;
	bool dying;
	struct mapped_device *thin_md;
	struct dm_dev *pool_dev;
	struct dm_dev *origin_dev;
	sector_t origin_size;
	u32 dev_id;
	struct pool *pool;
	struct thin_md_dev *td;
	bool requeue_mode;
};

/* Per-bio data of a thin target. */
struct thin_hook {
	struct thin_c *tc;
	/* Slot in pool->io_count while remapped to the data device, or -1. */
	int io_slot;
};

/* A block being zeroed or copied before its mapping goes in. */
struct thin_job {
	struct list_head list;
	struct thin_c *tc;
	struct bio *bio;
	struct dm_prison_cell *cell;
	u64 vblock;
	u64 dblock;
	/* The tail past the external origin still has to be copied. */
	sector_t copy_len;
	/* Breaking sharing: bios up to this generation must finish first. */
	bool quiesce;
	unsigned int io_gen;
	int err;
};

/* Pools by metadata device; tables on the same one share the pool. */
static DEFINE_MUTEX(pools_mutex);
static LIST_HEAD(pools);

/* ---------------------------------------------------------------- */

static enum pool_mode get_pool_mode(struct pool *pool)
{
	return READ_ONCE(pool->pf.mode);
}

static const char *mode_name(struct pool *pool, enum pool_mode mode)
{
	switch (mode) {
	case PM_WRITE:
		return "write";
	case PM_OUT_OF_DATA_SPACE:
		return pool->pf.error_if_no_space ?
		       "out-of-data-space (error IO)" :
		       "out-of-data-space (queue IO)";
	case PM_OUT_OF_METADATA_SPACE:
	case PM_READ_ONLY:
		return "read-only";
	default:
		return "fail";
	}
}

static const char *pool_name(struct pool *pool)
{
	return dm_device_name(pool->pool_md);
}

static void pool_event(struct pool *pool)
{
	if (pool->ti)
		dm_table_event(pool->ti->table);
}

static void wake_worker(struct pool *pool)
{
	queue_work(pool->wq, &pool->worker);
}

static void defer_bio(struct pool *pool, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&pool->lock, flags);
	bio_list_add(&pool->deferred, bio);
	spin_unlock_irqrestore(&pool->lock, flags);
	wake_worker(pool);
}

static void defer_bios(struct pool *pool, struct bio_list *bios)
{
	unsigned long flags;

	if (bio_list_empty(bios))
		return;
	spin_lock_irqsave(&pool->lock, flags);
	bio_list_merge(&pool->deferred, bios);
	spin_unlock_irqrestore(&pool->lock, flags);
	bio_list_init(bios);
	wake_worker(pool);
}

/* ---------------------------------------------------- in-flight bios */

/*
 * Count a bio that is about to be remapped to the data device.  Called
 * before the mapping lookup: either io_barrier() sees this count, or the
 * lookup sees the metadata change the barrier was taken for.
 */
static int io_get(struct pool *pool)
{
	int slot = READ_ONCE(pool->io_gen) & (IO_GENS - 1);

	atomic_inc(&pool->io_count[slot]);
	/* Count before lookup; pairs with the smp_mb() in io_barrier(). */
	smp_mb__after_atomic();
	return slot;
}

static void io_put(struct pool *pool, int slot)
{
	if (atomic_dec_and_test(&pool->io_count[slot]) &&
	    wq_has_sleeper(&pool->io_wait))
		wake_up(&pool->io_wait);
}

/* Have all bios of generations up to gen completed?  Worker only. */
static bool io_drained(struct pool *pool, unsigned int gen)
{
	while (pool->io_oldest != pool->io_gen &&
	       !atomic_read(&pool->io_count[pool->io_oldest & (IO_GENS - 1)]))
		pool->io_oldest++;
	return (int)(pool->io_oldest - gen) > 0;
}

static void issue_flushes(struct pool *pool, struct bio_list *flushes);

/*
 * Wait for the bios of generations up to gen.  Remapped bios the worker
 * holds for a commit are counted too: issue them first.
 */
static void io_wait_for(struct pool *pool, unsigned int gen,
			struct bio_list *flushes)
{
	if (io_drained(pool, gen))
		return;
	issue_flushes(pool, flushes);
	wait_event(pool->io_wait, io_drained(pool, gen));
}

/*
 * Close the current generation and return it: it and the older ones hold
 * every bio remapped before now.  The caller has already made the
 * metadata change that keeps new bios away from the blocks concerned.
 */
static unsigned int io_barrier(struct pool *pool, struct bio_list *flushes)
{
	unsigned int gen = pool->io_gen;

	/* Every slot busy: wait for the oldest so the next one is free. */
	if (!io_drained(pool, gen) && gen + 1 - pool->io_oldest >= IO_GENS)
		io_wait_for(pool, pool->io_oldest, flushes);
	WRITE_ONCE(pool->io_gen, gen + 1);
	/* Metadata change before reading counts; pairs with io_get(). */
	smp_mb();
	return gen;
}

/* ---------------------------------------------------------------- */

static void end_bios(struct bio_list *bios, blk_status_t status)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios))) {
		bio->bi_status = status;
		bio_endio(bio);
	}
}

/* Errors or requeues every bio waiting for data space. */
static void flush_retry_list(struct pool *pool, bool requeue,
			     blk_status_t status)
{
	struct bio_list bios;
	unsigned long flags;

	spin_lock_irqsave(&pool->lock, flags);
	bios = pool->retry;
	bio_list_init(&pool->retry);
	spin_unlock_irqrestore(&pool->lock, flags);

	if (requeue)
		defer_bios(pool, &bios);
	else
		end_bios(&bios, status);
}

static void set_pool_mode(struct pool *pool, enum pool_mode new_mode)
{
	enum pool_mode old_mode = get_pool_mode(pool);

	/* Nothing leaves fail mode; a pool needing a check stays read-only. */
	if (old_mode == PM_FAIL)
		new_mode = PM_FAIL;
	if (new_mode == PM_WRITE && thin_md_needs_check(pool->md)) {
		DMERR("%s: unable to switch pool to write mode until repaired.",
		      pool_name(pool));
		new_mode = old_mode == PM_WRITE ? PM_READ_ONLY : old_mode;
		if (new_mode == PM_OUT_OF_DATA_SPACE)
			new_mode = PM_READ_ONLY;
	}

	switch (new_mode) {
	case PM_FAIL:
	case PM_READ_ONLY:
	case PM_OUT_OF_METADATA_SPACE:
		thin_md_set_read_only(pool->md);
		break;
	case PM_OUT_OF_DATA_SPACE:
	case PM_WRITE:
		thin_md_set_read_write(pool->md);
		break;
	}
	WRITE_ONCE(pool->pf.mode, new_mode);

	if (new_mode == PM_OUT_OF_DATA_SPACE && old_mode != new_mode &&
	    !pool->pf.error_if_no_space && no_space_timeout_secs)
		queue_delayed_work(pool->wq, &pool->no_space_work,
				   no_space_timeout_secs * HZ);
	if (new_mode != PM_OUT_OF_DATA_SPACE)
		flush_retry_list(pool, new_mode == PM_WRITE, BLK_STS_IOERR);

	if (old_mode != new_mode) {
		DMINFO("%s: switching pool to %s mode", pool_name(pool),
		       mode_name(pool, new_mode));
		pool_event(pool);
	}
}

/* A metadata change failed: go back to the last commit, read-only. */
static void metadata_failed(struct pool *pool, const char *op, int r)
{
	bool read_only = get_pool_mode(pool) >= PM_OUT_OF_METADATA_SPACE;

	DMERR_LIMIT("%s: metadata operation '%s' failed: error = %d",
		    pool_name(pool), op, r);
	DMERR_LIMIT("%s: aborting current metadata transaction",
		    pool_name(pool));
	if (thin_md_abort(pool->md)) {
		DMERR("%s: failed to abort metadata transaction",
		      pool_name(pool));
		set_pool_mode(pool, PM_FAIL);
		return;
	}
	/* As stock, read-only metadata (out of space too) cannot take it. */
	if (read_only || thin_md_set_needs_check(pool->md)) {
		DMERR("%s: failed to set 'needs_check' flag in metadata",
		      pool_name(pool));
		set_pool_mode(pool, PM_FAIL);
		return;
	}
	set_pool_mode(pool, PM_READ_ONLY);
}

/* Only the metadata reserve is left: stop before it is used up too. */
static void check_for_metadata_space(struct pool *pool)
{
	const char *reason = NULL;
	u64 nr_free;

	if (thin_md_get_free_metadata_blocks(pool->md, &nr_free))
		reason = "Could not get free metadata blocks";
	else if (!nr_free)
		reason = "No free metadata blocks";
	if (reason && get_pool_mode(pool) < PM_OUT_OF_METADATA_SPACE) {
		DMERR("%s", reason);
		set_pool_mode(pool, PM_OUT_OF_METADATA_SPACE);
	}
}

static void check_for_data_space(struct pool *pool)
{
	u64 nr_free;

	if (get_pool_mode(pool) != PM_OUT_OF_DATA_SPACE)
		return;
	if (thin_md_get_free_data_blocks(pool->md, &nr_free) || !nr_free)
		return;
	set_pool_mode(pool, PM_WRITE);
}

static int commit(struct pool *pool)
{
	int r;

	if (get_pool_mode(pool) >= PM_OUT_OF_METADATA_SPACE)
		return -EINVAL;
	r = thin_md_commit(pool->md);
	if (r) {
		metadata_failed(pool, "thin_md_commit", r);
		return r;
	}
	pool->last_commit = jiffies;
	check_for_metadata_space(pool);
	check_for_data_space(pool);
	return 0;
}

static u64 metadata_dev_blocks(struct block_device *bdev)
{
	u64 blocks = bdev_nr_sectors(bdev) >> 3;

	return min_t(u64, blocks, THIN_MD_MAX_BLOCKS);
}

/* Free metadata blocks at which userspace is told to grow the device. */
static u64 metadata_threshold(struct pool_c *pt)
{
	return min_t(u64, 1024, metadata_dev_blocks(pt->metadata_dev->bdev) / 4);
}

static void metadata_low_water(void *context)
{
	struct pool *pool = context;

	DMWARN("%s: reached low water mark for metadata device: sending event.",
	       pool_name(pool));
	pool_event(pool);
}

/* Allocation with the low water mark, out-of-space and commit-retry rules. */
static int alloc_data_block(struct pool *pool, u64 *dblock)
{
	u64 nr_free;
	int r;

	r = thin_md_get_free_data_blocks(pool->md, &nr_free);
	if (r) {
		metadata_failed(pool, "thin_md_get_free_data_blocks", r);
		return r;
	}
	if (nr_free <= pool->low_water_blocks && !pool->low_water_triggered) {
		DMWARN("%s: reached low water mark for data device: sending event.",
		       pool_name(pool));
		pool->low_water_triggered = true;
		pool_event(pool);
	}
	if (!nr_free) {
		/* Blocks freed in this transaction come back with a commit. */
		r = commit(pool);
		if (r)
			return r;
		r = thin_md_get_free_data_blocks(pool->md, &nr_free);
		if (r) {
			metadata_failed(pool, "thin_md_get_free_data_blocks", r);
			return r;
		}
		if (!nr_free) {
			set_pool_mode(pool, PM_OUT_OF_DATA_SPACE);
			return -ENOSPC;
		}
	}
	r = thin_md_alloc_data_block(pool->md, dblock);
	if (r) {
		if (r == -ENOSPC)
			set_pool_mode(pool, PM_OUT_OF_DATA_SPACE);
		else
			metadata_failed(pool, "thin_md_alloc_data_block", r);
		return r;
	}

	r = thin_md_get_free_metadata_blocks(pool->md, &nr_free);
	if (r) {
		metadata_failed(pool, "thin_md_get_free_metadata_blocks", r);
		return r;
	}
	/* Commit (and stop) before the metadata reserve is used up. */
	if (!nr_free)
		r = commit(pool);
	return r;
}

/* ---------------------------------------------------------------- bios */

static u64 bio_vblock(struct pool *pool, struct bio *bio, u32 *offset)
{
	u32 rem;
	u64 block = div_u64_rem(bio->bi_iter.bi_sector, pool->sectors_per_block,
				&rem);

	if (offset)
		*offset = rem;
	return block;
}

static void remap(struct thin_c *tc, struct bio *bio, u64 dblock)
{
	struct pool *pool = tc->pool;
	u32 offset;

	bio_vblock(pool, bio, &offset);
	/*
	 * Through the pool device, as stock: the pool's table decides what
	 * happens to thin I/O, its statistics count it, and no thin holds
	 * on to a data device the pool table has let go.
	 */
	bio_set_dev(bio, tc->pool_dev->bdev);
	bio->bi_iter.bi_sector = dblock * pool->sectors_per_block + offset;
}

/* Remap from the worker, counting the bio in flight. */
static void remap_counted(struct thin_c *tc, struct bio *bio, u64 dblock)
{
	struct thin_hook *h = dm_per_bio_data(bio, sizeof(struct thin_hook));

	h->io_slot = io_get(tc->pool);
	remap(tc, bio, dblock);
}

static bool bio_needs_commit(struct bio *bio)
{
	return bio->bi_opf & (REQ_PREFLUSH | REQ_FUA);
}

static bool bio_overwrites_block(struct pool *pool, struct bio *bio)
{
	return bio_data_dir(bio) == WRITE &&
	       bio->bi_iter.bi_size == (pool->sectors_per_block << SECTOR_SHIFT);
}

/* Issue a remapped bio; one asking for durability waits for a commit. */
static void issue(struct pool *pool, struct bio *bio, struct bio_list *flushes)
{
	if (bio_needs_commit(bio))
		bio_list_add(flushes, bio);
	else
		submit_bio_noacct(bio);
}

static void release_cell(struct pool *pool, struct dm_prison_cell *cell)
{
	struct bio_list bios;

	bio_list_init(&bios);
	dm_prison_release(pool->prison, cell, &bios);
	dm_prison_free_cell(pool->prison, cell);
	defer_bios(pool, &bios);
}

/* Read of an unprovisioned block: the external origin or zeroes. */
static void read_unmapped(struct thin_c *tc, struct bio *bio)
{
	sector_t start = bio->bi_iter.bi_sector;

	if (tc->origin_dev && start < tc->origin_size) {
		if (bio_end_sector(bio) > tc->origin_size) {
			/* The part past the origin reads as zeroes. */
			zero_fill_bio(bio);
			bio->bi_iter.bi_size = (tc->origin_size - start) <<
					       SECTOR_SHIFT;
		}
		bio_set_dev(bio, tc->origin_dev->bdev);
		submit_bio_noacct(bio);
		return;
	}
	zero_fill_bio(bio);
	bio_endio(bio);
}

/* A write that needs a block the pool cannot give now. */
static void no_block_for(struct pool *pool, struct bio *bio, int r)
{
	unsigned long flags;

	if (r == -ENOSPC && get_pool_mode(pool) == PM_OUT_OF_DATA_SPACE) {
		if (pool->pf.error_if_no_space) {
			bio->bi_status = BLK_STS_NOSPC;
			bio_endio(bio);
			return;
		}
		spin_lock_irqsave(&pool->lock, flags);
		bio_list_add(&pool->retry, bio);
		spin_unlock_irqrestore(&pool->lock, flags);
		return;
	}
	bio_io_error(bio);
}

static void job_done(int read_err, unsigned long write_err, void *context)
{
	struct thin_job *job = context;
	struct pool *pool = job->tc->pool;
	unsigned long flags;

	if (read_err || write_err)
		job->err = -EIO;
	spin_lock_irqsave(&pool->lock, flags);
	list_add_tail(&job->list, &pool->prepared);
	spin_unlock_irqrestore(&pool->lock, flags);
	wake_worker(pool);
}

static void copy_from(struct thin_job *job, struct block_device *bdev,
		      sector_t src, sector_t len)
{
	struct pool *pool = job->tc->pool;
	struct dm_io_region from = {
		.bdev = bdev, .sector = src, .count = len,
	};
	struct dm_io_region to = {
		.bdev = job->tc->pool_dev->bdev,
		.sector = job->dblock * pool->sectors_per_block,
		.count = len,
	};

	dm_kcopyd_copy(pool->copier, &from, 1, &to, 0, job_done, job);
}

static void zero_block(struct thin_job *job)
{
	struct pool *pool = job->tc->pool;
	struct dm_io_region to = {
		.bdev = job->tc->pool_dev->bdev,
		.sector = job->dblock * pool->sectors_per_block,
		.count = pool->sectors_per_block,
	};

	dm_kcopyd_zero(pool->copier, 1, &to, 0, job_done, job);
}

/* Map the new block, then let the bio and the cell's waiters go. */
static void finish_job(struct thin_job *job, struct bio_list *flushes)
{
	struct thin_c *tc = job->tc;
	struct pool *pool = tc->pool;
	int r = job->err;

	/* Bios still reading the shared block keep it until they finish. */
	if (!r && job->quiesce)
		io_wait_for(pool, job->io_gen, flushes);
	if (!r) {
		r = thin_md_insert_block(tc->td, job->vblock, job->dblock);
		if (r)
			metadata_failed(pool, "thin_md_insert_block", r);
	} else if (get_pool_mode(pool) < PM_OUT_OF_METADATA_SPACE) {
		/* The block never got mapped: give it back. */
		if (thin_md_dec_data_range(pool->md, job->dblock,
					   job->dblock + 1))
			metadata_failed(pool, "thin_md_dec_data_range", r);
	}
	if (r) {
		bio_io_error(job->bio);
	} else {
		remap_counted(tc, job->bio, job->dblock);
		issue(pool, job->bio, flushes);
	}
	release_cell(pool, job->cell);
	mempool_free(job, &pool->job_pool);
}

static void process_prepared(struct pool *pool, struct bio_list *flushes)
{
	struct thin_job *job, *tmp;
	LIST_HEAD(jobs);
	unsigned long flags;

	spin_lock_irqsave(&pool->lock, flags);
	list_splice_init(&pool->prepared, &jobs);
	spin_unlock_irqrestore(&pool->lock, flags);

	list_for_each_entry_safe(job, tmp, &jobs, list) {
		list_del(&job->list);
		/*
		 * The metadata went read-only meanwhile: fail the bio, as
		 * stock, and leave the metadata (and the block) alone.
		 */
		if (get_pool_mode(pool) >= PM_OUT_OF_METADATA_SPACE) {
			bio_io_error(job->bio);
			release_cell(pool, job->cell);
			mempool_free(job, &pool->job_pool);
			continue;
		}
		/* An external origin shorter than the block: zeroes, then data. */
		if (!job->err && job->copy_len) {
			sector_t len = job->copy_len;

			job->copy_len = 0;
			copy_from(job, job->tc->origin_dev->bdev,
				  job->vblock * pool->sectors_per_block, len);
			continue;
		}
		finish_job(job, flushes);
	}
}

/*
 * Give vblock a new data block for a write: zeroed, copied from old_dblock
 * (breaking sharing) or from the external origin, unless the bio
 * overwrites all of it.  The cell stays held until the mapping is in.
 */
static void provision(struct thin_c *tc, struct bio *bio, u64 vblock,
		      struct dm_prison_cell *cell, bool copy, u64 old_dblock,
		      struct bio_list *flushes)
{
	struct pool *pool = tc->pool;
	sector_t start = vblock * pool->sectors_per_block;
	struct thin_job *job;
	u64 dblock;
	int r;

	if (get_pool_mode(pool) != PM_WRITE) {
		no_block_for(pool, bio, get_pool_mode(pool) ==
			     PM_OUT_OF_DATA_SPACE ? -ENOSPC : -EIO);
		release_cell(pool, cell);
		return;
	}
	r = alloc_data_block(pool, &dblock);
	if (r) {
		no_block_for(pool, bio, r);
		release_cell(pool, cell);
		return;
	}
	/*
	 * The allocation's commit found the metadata space used up.  Stock
	 * still tries to map a block it neither zeroes nor copies (and that
	 * fails on the read-only metadata); every other bio just fails.
	 */
	if (get_pool_mode(pool) != PM_WRITE &&
	    (copy || bio_overwrites_block(pool, bio) || tc->origin_dev ||
	     pool->pf.zero_new_blocks)) {
		bio_io_error(bio);
		release_cell(pool, cell);
		return;
	}

	job = mempool_alloc(&pool->job_pool, GFP_NOIO);
	job->tc = tc;
	job->bio = bio;
	job->cell = cell;
	job->vblock = vblock;
	job->dblock = dblock;
	job->copy_len = 0;
	job->err = 0;
	job->quiesce = copy;
	/* The cell keeps new bios off the shared block from here on. */
	if (copy)
		job->io_gen = io_barrier(pool, flushes);

	if (bio_overwrites_block(pool, bio)) {
		finish_job(job, flushes);
	} else if (copy) {
		copy_from(job, tc->pool_dev->bdev,
			  old_dblock * pool->sectors_per_block,
			  pool->sectors_per_block);
	} else if (tc->origin_dev && start < tc->origin_size) {
		sector_t len = min_t(sector_t, pool->sectors_per_block,
				     tc->origin_size - start);

		if (len < pool->sectors_per_block) {
			job->copy_len = len;
			zero_block(job);
		} else {
			copy_from(job, tc->origin_dev->bdev, start, len);
		}
	} else if (pool->pf.zero_new_blocks) {
		zero_block(job);
	} else {
		finish_job(job, flushes);
	}
}

/* Unmap the whole blocks a discard covers; pass freed ones down. */
static int discard_range(struct thin_c *tc, u64 begin, u64 end,
			 struct bio_list *flushes)
{
	struct pool *pool = tc->pool;
	u64 vb, ve, db, i, run;
	bool shared;
	int r;

	while (begin < end) {
		r = thin_md_find_mapped_range(tc->td, begin, end, &vb, &ve, &db,
					      &shared);
		if (r == -ENODATA)
			return 0;
		if (r)
			return r;

		if (!pool->pf.discard_passdown) {
			r = thin_md_remove_range(tc->td, vb, ve);
			if (r)
				goto failed;
			/*
			 * Bios still on the freed blocks finish before the
			 * worker can hand them out again.
			 */
			io_wait_for(pool, io_barrier(pool, flushes), flushes);
			begin = ve;
			continue;
		}

		/* Hold the blocks so none is reused while the discard runs. */
		r = thin_md_inc_data_range(pool->md, db, db + (ve - vb));
		if (r)
			goto failed;
		r = thin_md_remove_range(tc->td, vb, ve);
		if (r)
			goto failed;
		/* The discard must not overtake bios still on the blocks. */
		io_wait_for(pool, io_barrier(pool, flushes), flushes);
		for (i = db; i < db + (ve - vb); i += run) {
			bool held = false;

			run = 0;
			while (i + run < db + (ve - vb)) {
				r = thin_md_data_block_is_shared(pool->md,
								 i + run,
								 &shared);
				if (r)
					goto failed;
				if (run && shared != held)
					break;
				held = shared;
				run++;
			}
			if (!held)
				blkdev_issue_discard(tc->pool_dev->bdev,
						     i * pool->sectors_per_block,
						     run * pool->sectors_per_block,
						     GFP_NOIO);
		}
		r = thin_md_dec_data_range(pool->md, db, db + (ve - vb));
		if (r)
			goto failed;
		begin = ve;
	}
	return 0;

failed:
	metadata_failed(pool, "discard", r);
	return r;
}

static void process_discard(struct thin_c *tc, struct bio *bio,
			    struct bio_list *flushes)
{
	struct pool *pool = tc->pool;
	u32 bs = pool->sectors_per_block;
	u64 begin = div_u64(bio->bi_iter.bi_sector + bs - 1, bs);
	u64 end = div_u64(bio_end_sector(bio), bs);
	struct dm_prison_key key;
	struct dm_prison_cell *cell, *held;
	int r;

	/* A read-only pool keeps its mappings; the discard is a hint. */
	if (get_pool_mode(pool) >= PM_OUT_OF_METADATA_SPACE || begin >= end) {
		if (get_pool_mode(pool) == PM_FAIL)
			bio_io_error(bio);
		else
			bio_endio(bio);
		return;
	}

	key.dev = tc->dev_id;
	key.kind = KEY_VIRTUAL;
	key.begin = begin;
	key.end = end;
	cell = dm_prison_alloc_cell(pool->prison, GFP_NOIO);
	if (dm_prison_detain(pool->prison, &key, bio, cell, &held)) {
		dm_prison_free_cell(pool->prison, cell);
		return;
	}
	r = discard_range(tc, begin, end, flushes);
	release_cell(pool, cell);
	if (r)
		bio_io_error(bio);
	else
		bio_endio(bio);
}

static void process_bio(struct thin_c *tc, struct bio *bio,
			struct bio_list *flushes)
{
	struct pool *pool = tc->pool;
	struct thin_md_lookup res;
	struct dm_prison_key key;
	struct dm_prison_cell *cell, *held;
	u64 vblock;
	int r;

	if (READ_ONCE(tc->requeue_mode)) {
		bio->bi_status = BLK_STS_DM_REQUEUE;
		bio_endio(bio);
		return;
	}
	if (get_pool_mode(pool) == PM_FAIL) {
		bio_io_error(bio);
		return;
	}
	if (bio_op(bio) == REQ_OP_DISCARD) {
		process_discard(tc, bio, flushes);
		return;
	}
	if (!bio_sectors(bio)) {
		/* An empty flush: commit, then flush the data device. */
		bio_set_dev(bio, tc->pool_dev->bdev);
		bio_list_add(flushes, bio);
		return;
	}

	vblock = bio_vblock(pool, bio, NULL);
	key.dev = tc->dev_id;
	key.kind = KEY_VIRTUAL;
	key.begin = vblock;
	key.end = vblock + 1;
	cell = dm_prison_alloc_cell(pool->prison, GFP_NOIO);
	if (dm_prison_detain(pool->prison, &key, bio, cell, &held)) {
		/* The block is being provisioned: the bio waits in its cell. */
		dm_prison_free_cell(pool->prison, cell);
		return;
	}

	r = thin_md_find_block(tc->td, vblock, true, &res);
	if (!r) {
		if (res.shared && bio_data_dir(bio) == WRITE) {
			provision(tc, bio, vblock, cell, true, res.dblock,
				  flushes);
			return;
		}
		remap_counted(tc, bio, res.dblock);
		issue(pool, bio, flushes);
	} else if (r == -ENODATA) {
		if (bio_data_dir(bio) == WRITE) {
			provision(tc, bio, vblock, cell, false, 0, flushes);
			return;
		}
		read_unmapped(tc, bio);
	} else {
		DMERR_LIMIT("%s: lookup of block %llu failed: %d",
			    pool_name(pool), vblock, r);
		bio_io_error(bio);
	}
	release_cell(pool, cell);
}

static void issue_flushes(struct pool *pool, struct bio_list *flushes)
{
	struct bio *bio;
	int r = 0;

	if (bio_list_empty(flushes))
		return;
	if (thin_md_changed(pool->md))
		r = commit(pool);
	while ((bio = bio_list_pop(flushes))) {
		struct thin_hook *h = dm_per_bio_data(bio,
						      sizeof(struct thin_hook));

		/* Writes an abort threw away cannot be made durable. */
		if (r || thin_md_dev_aborted_with_changes(h->tc->td))
			bio_io_error(bio);
		else
			submit_bio_noacct(bio);
	}
}

static void do_worker(struct work_struct *ws)
{
	struct pool *pool = container_of(ws, struct pool, worker);
	struct bio_list bios, flushes;
	struct bio *bio;
	unsigned long flags;

	bio_list_init(&flushes);
	process_prepared(pool, &flushes);

	spin_lock_irqsave(&pool->lock, flags);
	bios = pool->deferred;
	bio_list_init(&pool->deferred);
	spin_unlock_irqrestore(&pool->lock, flags);

	while ((bio = bio_list_pop(&bios))) {
		struct thin_hook *h = dm_per_bio_data(bio,
						      sizeof(struct thin_hook));

		process_bio(h->tc, bio, &flushes);
		cond_resched();
	}

	issue_flushes(pool, &flushes);

	if (time_after_eq(jiffies, pool->last_commit + COMMIT_PERIOD) &&
	    get_pool_mode(pool) < PM_OUT_OF_METADATA_SPACE &&
	    thin_md_changed(pool->md))
		commit(pool);
}

/* Commits once a second even when nothing asks for it. */
static void do_waker(struct work_struct *ws)
{
	struct pool *pool = container_of(to_delayed_work(ws), struct pool,
					 waker);

	wake_worker(pool);
	queue_delayed_work(pool->wq, &pool->waker, COMMIT_PERIOD);
}

static void do_no_space_timeout(struct work_struct *ws)
{
	struct pool *pool = container_of(to_delayed_work(ws), struct pool,
					 no_space_work);

	if (get_pool_mode(pool) == PM_OUT_OF_DATA_SPACE &&
	    !pool->pf.error_if_no_space) {
		DMWARN("%s: no_space_timeout expired: failing queued I/O",
		       pool_name(pool));
		pool->pf.error_if_no_space = true;
		pool_event(pool);
		flush_retry_list(pool, false, BLK_STS_NOSPC);
	}
}

/* ---------------------------------------------------------------- pool */

static void pool_destroy(struct pool *pool)
{
	cancel_delayed_work_sync(&pool->waker);
	cancel_delayed_work_sync(&pool->no_space_work);
	flush_workqueue(pool->wq);
	thin_md_close(pool->md);
	destroy_workqueue(pool->wq);
	dm_kcopyd_client_destroy(pool->copier);
	dm_prison_destroy(pool->prison);
	mempool_exit(&pool->job_pool);
	kfree(pool);
}

static struct pool *pool_create(struct mapped_device *pool_md,
				struct block_device *md_bdev,
				struct block_device *data_bdev,
				u32 block_size, bool read_only, char **error)
{
	struct pool *pool;
	struct thin_md *md;
	int r;

	md = thin_md_open(md_bdev, block_size, read_only);
	if (IS_ERR(md)) {
		*error = "Error creating metadata object";
		return ERR_CAST(md);
	}

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool) {
		*error = "Error allocating memory for pool";
		r = -ENOMEM;
		goto bad_pool;
	}
	pool->md = md;
	pool->pool_md = pool_md;
	pool->md_bdev = md_bdev;
	pool->data_bdev = data_bdev;
	pool->sectors_per_block = block_size;
	pool->pf.mode = PM_WRITE;
	pool->pf.zero_new_blocks = true;
	pool->pf.discard_enabled = true;
	pool->pf.discard_passdown = true;
	pool->suspended = true;
	pool->ref = 1;
	spin_lock_init(&pool->lock);
	bio_list_init(&pool->deferred);
	bio_list_init(&pool->retry);
	INIT_LIST_HEAD(&pool->prepared);
	INIT_LIST_HEAD(&pool->active_thins);
	init_waitqueue_head(&pool->io_wait);
	INIT_WORK(&pool->worker, do_worker);
	INIT_DELAYED_WORK(&pool->waker, do_waker);
	INIT_DELAYED_WORK(&pool->no_space_work, do_no_space_timeout);
	pool->last_commit = jiffies;

	r = mempool_init_kmalloc_pool(&pool->job_pool, JOB_POOL_SIZE,
				      sizeof(struct thin_job));
	if (r) {
		*error = "Error creating pool's job mempool";
		goto bad_mempool;
	}
	pool->prison = dm_prison_create();
	if (!pool->prison) {
		*error = "Error creating pool's bio prison";
		r = -ENOMEM;
		goto bad_prison;
	}
	pool->copier = dm_kcopyd_client_create(&dm_kcopyd_throttle);
	if (IS_ERR(pool->copier)) {
		*error = "Error creating pool's kcopyd client";
		r = PTR_ERR(pool->copier);
		goto bad_kcopyd;
	}
	pool->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!pool->wq) {
		*error = "Error creating pool's workqueue";
		r = -ENOMEM;
		goto bad_wq;
	}
	list_add(&pool->list, &pools);
	return pool;

bad_wq:
	dm_kcopyd_client_destroy(pool->copier);
bad_kcopyd:
	dm_prison_destroy(pool->prison);
bad_prison:
	mempool_exit(&pool->job_pool);
bad_mempool:
	kfree(pool);
bad_pool:
	thin_md_close(md);
	return ERR_PTR(r);
}

/* Called with pools_mutex held. */
static void pool_put(struct pool *pool)
{
	if (--pool->ref)
		return;
	list_del(&pool->list);
	pool_destroy(pool);
}

static struct pool *pool_by_md(struct mapped_device *pool_md)
{
	struct pool *pool;

	list_for_each_entry(pool, &pools, list)
		if (pool->pool_md == pool_md)
			return pool;
	return NULL;
}

static struct pool *pool_by_metadata(struct block_device *md_bdev)
{
	struct pool *pool;

	list_for_each_entry(pool, &pools, list)
		if (pool->md_bdev == md_bdev)
			return pool;
	return NULL;
}

static struct pool *pool_by_data(struct block_device *data_bdev)
{
	struct pool *pool;

	list_for_each_entry(pool, &pools, list)
		if (pool->data_bdev == data_bdev)
			return pool;
	return NULL;
}

/* The pool of this metadata device, shared with other tables, or a new one. */
static struct pool *pool_find(struct mapped_device *pool_md,
			      struct block_device *md_bdev,
			      struct block_device *data_bdev, u32 block_size,
			      bool read_only, char **error, bool *created)
{
	struct pool *pool = pool_by_metadata(md_bdev);

	*created = false;
	if (pool) {
		if (pool->pool_md != pool_md) {
			*error = "metadata device already in use by a pool";
			return ERR_PTR(-EBUSY);
		}
		if (pool->data_bdev != data_bdev) {
			*error = "data device already in use by a pool";
			return ERR_PTR(-EBUSY);
		}
		pool->ref++;
		return pool;
	}
	pool = pool_by_md(pool_md);
	if (pool) {
		if (pool->md_bdev != md_bdev || pool->data_bdev != data_bdev) {
			*error = "different pool cannot replace a pool";
			return ERR_PTR(-EINVAL);
		}
		pool->ref++;
		return pool;
	}
	if (pool_by_data(data_bdev)) {
		*error = "data device already in use by a pool";
		return ERR_PTR(-EBUSY);
	}
	pool = pool_create(pool_md, md_bdev, data_bdev, block_size, read_only,
			   error);
	if (!IS_ERR(pool))
		*created = true;
	return pool;
}

static int parse_pool_features(struct dm_arg_set *as, struct pool_features *pf,
			       struct dm_target *ti)
{
	static const struct dm_arg args[] = {
		{0, 4, "Invalid number of pool feature arguments"},
	};
	unsigned int argc;
	const char *name;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(args, as, &argc, &ti->error);
	if (r)
		return -EINVAL;

	while (argc--) {
		name = dm_shift_arg(as);
		if (!strcasecmp(name, "skip_block_zeroing")) {
			pf->zero_new_blocks = false;
		} else if (!strcasecmp(name, "ignore_discard")) {
			pf->discard_enabled = false;
		} else if (!strcasecmp(name, "no_discard_passdown")) {
			pf->discard_passdown = false;
		} else if (!strcasecmp(name, "read_only")) {
			pf->mode = PM_READ_ONLY;
		} else if (!strcasecmp(name, "error_if_no_space")) {
			pf->error_if_no_space = true;
		} else {
			ti->error = "Unrecognised pool feature requested";
			return -EINVAL;
		}
	}
	return 0;
}

static void pool_features_init(struct pool_features *pf)
{
	pf->mode = PM_WRITE;
	pf->zero_new_blocks = true;
	pf->discard_enabled = true;
	pf->discard_passdown = true;
	pf->error_if_no_space = false;
}

/*
 * <metadata dev> <data dev> <data block size (sectors)>
 * <low water mark (blocks)> [<#features> <feature>...]
 */
static int pool_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct dm_dev *metadata_dev, *data_dev;
	struct pool_features pf;
	unsigned long block_size;
	unsigned long long low_water;
	struct pool_c *pt;
	struct pool *pool;
	bool created;
	int r;

	mutex_lock(&pools_mutex);
	if (argc < 4) {
		ti->error = "Invalid argument count";
		r = -EINVAL;
		goto out_unlock;
	}
	if (!strcmp(argv[0], argv[1])) {
		ti->error = "Error setting metadata or data device";
		r = -EINVAL;
		goto out_unlock;
	}

	pool_features_init(&pf);
	dm_consume_args(&as, 4);
	r = parse_pool_features(&as, &pf, ti);
	if (r)
		goto out_unlock;

	r = dm_get_device(ti, argv[0], pf.mode == PM_READ_ONLY ? FMODE_READ :
			  FMODE_READ | FMODE_WRITE, &metadata_dev);
	if (r) {
		ti->error = "Error opening metadata block device";
		goto out_unlock;
	}
	if (bdev_nr_sectors(metadata_dev->bdev) >
	    THIN_MD_MAX_BLOCKS * THIN_MD_BLOCK_SECTORS)
		DMWARN("Metadata device %pg is larger than %llu sectors: excess space will not be used.",
		       metadata_dev->bdev,
		       THIN_MD_MAX_BLOCKS * THIN_MD_BLOCK_SECTORS);

	r = dm_get_device(ti, argv[1], FMODE_READ | FMODE_WRITE, &data_dev);
	if (r) {
		ti->error = "Error getting data device";
		goto out_metadata;
	}

	if (kstrtoul(argv[2], 10, &block_size) || !block_size ||
	    block_size < BLOCK_SIZE_MIN_SECTORS ||
	    block_size > BLOCK_SIZE_MAX_SECTORS ||
	    block_size & (BLOCK_SIZE_MIN_SECTORS - 1)) {
		ti->error = "Invalid block size";
		r = -EINVAL;
		goto out_data;
	}
	if (kstrtoull(argv[3], 10, &low_water)) {
		ti->error = "Invalid low water mark";
		r = -EINVAL;
		goto out_data;
	}

	pt = kzalloc(sizeof(*pt), GFP_KERNEL);
	if (!pt) {
		r = -ENOMEM;
		goto out_data;
	}

	pool = pool_find(dm_table_get_md(ti->table), metadata_dev->bdev,
			 data_dev->bdev, block_size, pf.mode == PM_READ_ONLY,
			 &ti->error, &created);
	if (IS_ERR(pool)) {
		r = PTR_ERR(pool);
		goto out_pt;
	}
	/* Thin targets learnt discard support when they were loaded. */
	if (!created && pf.discard_enabled != pool->pf.discard_enabled) {
		ti->error = "Discard support cannot be disabled once enabled";
		r = -EINVAL;
		goto out_pool;
	}

	pt->ti = ti;
	pt->pool = pool;
	pt->metadata_dev = metadata_dev;
	pt->data_dev = data_dev;
	pt->low_water_blocks = low_water;
	pt->requested_pf = pf;
	pt->adjusted_pf = pf;

	ti->num_flush_bios = 1;
	ti->limit_swap_bios = true;
	if (pf.discard_enabled) {
		ti->discards_supported = true;
		ti->num_discard_bios = 1;
	}
	ti->private = pt;

	thin_md_register_metadata_threshold(pool->md, metadata_threshold(pt),
					    metadata_low_water, pool);
	mutex_unlock(&pools_mutex);
	return 0;

out_pool:
	pool_put(pool);
out_pt:
	kfree(pt);
out_data:
	dm_put_device(ti, data_dev);
out_metadata:
	dm_put_device(ti, metadata_dev);
out_unlock:
	mutex_unlock(&pools_mutex);
	return r;
}

static void pool_dtr(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;

	mutex_lock(&pools_mutex);
	if (pt->pool->ti == ti)
		pt->pool->ti = NULL;
	pool_put(pt->pool);
	dm_put_device(ti, pt->metadata_dev);
	dm_put_device(ti, pt->data_dev);
	kfree(pt);
	mutex_unlock(&pools_mutex);
}

static int pool_map(struct dm_target *ti, struct bio *bio)
{
	struct pool_c *pt = ti->private;

	bio_set_dev(bio, pt->data_dev->bdev);
	return DM_MAPIO_REMAPPED;
}

static int resize_data_dev(struct dm_target *ti, bool *need_commit)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	u64 data_size = div_u64(ti->len, pool->sectors_per_block);
	u64 sb_size;
	int r;

	r = thin_md_get_data_dev_size(pool->md, &sb_size);
	if (r) {
		DMERR("%s: failed to retrieve data device size", pool_name(pool));
		return r;
	}
	if (data_size < sb_size) {
		DMERR("%s: pool target (%llu blocks) too small: expected %llu",
		      pool_name(pool), data_size, sb_size);
		return -EINVAL;
	}
	if (data_size == sb_size)
		return 0;
	if (thin_md_needs_check(pool->md)) {
		DMERR("%s: unable to grow the data device until repaired.",
		      pool_name(pool));
		return 0;
	}
	if (sb_size)
		DMINFO("%s: growing the data device from %llu to %llu blocks",
		       pool_name(pool), sb_size, data_size);
	r = thin_md_resize_data_dev(pool->md, data_size);
	if (r) {
		metadata_failed(pool, "thin_md_resize_data_dev", r);
		return r;
	}
	*need_commit = true;
	return 0;
}

static int resize_metadata_dev(struct dm_target *ti, bool *need_commit)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	u64 dev_size = metadata_dev_blocks(pool->md_bdev);
	u64 sb_size;
	int r;

	r = thin_md_get_metadata_dev_size(pool->md, &sb_size);
	if (r) {
		DMERR("%s: failed to retrieve metadata device size",
		      pool_name(pool));
		return r;
	}
	if (dev_size < sb_size) {
		DMERR("%s: metadata device (%llu blocks) too small: expected %llu",
		      pool_name(pool), dev_size, sb_size);
		return -EINVAL;
	}
	if (dev_size == sb_size)
		return 0;
	if (thin_md_needs_check(pool->md)) {
		DMERR("%s: unable to grow the metadata device until repaired.",
		      pool_name(pool));
		return 0;
	}
	DMINFO("%s: growing the metadata device from %llu to %llu blocks",
	       pool_name(pool), sb_size, dev_size);
	if (get_pool_mode(pool) == PM_OUT_OF_METADATA_SPACE)
		set_pool_mode(pool, PM_WRITE);
	r = thin_md_resize_metadata_dev(pool->md, dev_size);
	if (r) {
		metadata_failed(pool, "thin_md_resize_metadata_dev", r);
		return r;
	}
	*need_commit = true;
	return 0;
}

/* Make this table's target the pool's: features, low water mark, mode. */
static void bind_target(struct pool *pool, struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	enum pool_mode old_mode = get_pool_mode(pool);
	enum pool_mode new_mode = pt->adjusted_pf.mode;

	pool->ti = ti;
	pool->low_water_blocks = pt->low_water_blocks;
	pool->pf.zero_new_blocks = pt->adjusted_pf.zero_new_blocks;
	pool->pf.discard_enabled = pt->adjusted_pf.discard_enabled;
	pool->pf.discard_passdown = pt->adjusted_pf.discard_passdown;
	pool->pf.error_if_no_space = pt->adjusted_pf.error_if_no_space;
	/* Out of space stays so until there is space. */
	if (new_mode == PM_WRITE && (old_mode == PM_OUT_OF_DATA_SPACE ||
				     old_mode == PM_OUT_OF_METADATA_SPACE))
		new_mode = old_mode;
	set_pool_mode(pool, new_mode);
}

static int pool_preresume(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	bool need_commit = false;
	int r;

	bind_target(pool, ti);
	if (get_pool_mode(pool) >= PM_READ_ONLY)
		return 0;
	/* Out of metadata space: only growing the metadata device helps. */
	if (get_pool_mode(pool) == PM_OUT_OF_METADATA_SPACE) {
		r = resize_metadata_dev(ti, &need_commit);
		if (!r && need_commit)
			commit(pool);
		return r;
	}

	r = resize_data_dev(ti, &need_commit);
	if (r)
		return r;
	r = resize_metadata_dev(ti, &need_commit);
	if (r)
		return r;
	if (need_commit)
		commit(pool);
	check_for_data_space(pool);
	return 0;
}

static void thin_put(struct thin_c *tc)
{
	if (refcount_dec_and_test(&tc->refcount))
		complete(&tc->can_destroy);
}

/*
 * The active thin after tc (the first if tc is NULL), with a reference
 * taken; tc's reference is dropped.  Dying thins are skipped.
 */
static struct thin_c *next_active_thin(struct pool *pool, struct thin_c *tc)
{
	struct list_head *pos;
	struct thin_c *next = NULL;
	unsigned long flags;

	spin_lock_irqsave(&pool->lock, flags);
	pos = tc ? tc->list.next : pool->active_thins.next;
	for (; pos != &pool->active_thins; pos = pos->next) {
		struct thin_c *t = list_entry(pos, struct thin_c, list);

		if (!t->dying) {
			refcount_inc(&t->refcount);
			next = t;
			break;
		}
	}
	spin_unlock_irqrestore(&pool->lock, flags);
	if (tc)
		thin_put(tc);
	return next;
}

/* Thin devices stop mapping while their pool is suspended, as stock. */
static void suspend_active_thins(struct pool *pool)
{
	struct thin_c *tc = NULL;

	while ((tc = next_active_thin(pool, tc)))
		dm_internal_suspend_noflush(tc->thin_md);
}

static void resume_active_thins(struct pool *pool)
{
	struct thin_c *tc = NULL;

	while ((tc = next_active_thin(pool, tc)))
		dm_internal_resume(tc->thin_md);
}

static void pool_presuspend(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	unsigned long flags;

	spin_lock_irqsave(&pt->pool->lock, flags);
	pt->pool->suspended = true;
	spin_unlock_irqrestore(&pt->pool->lock, flags);
	suspend_active_thins(pt->pool);
}

static void pool_presuspend_undo(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	unsigned long flags;

	resume_active_thins(pt->pool);
	spin_lock_irqsave(&pt->pool->lock, flags);
	pt->pool->suspended = false;
	spin_unlock_irqrestore(&pt->pool->lock, flags);
}

static void pool_resume(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	unsigned long flags;

	spin_lock_irqsave(&pool->lock, flags);
	pool->low_water_triggered = false;
	pool->suspended = false;
	spin_unlock_irqrestore(&pool->lock, flags);
	resume_active_thins(pool);
	queue_delayed_work(pool->wq, &pool->waker, 0);
	/* The suspend cancelled a running no_space_timeout: start again. */
	if (get_pool_mode(pool) == PM_OUT_OF_DATA_SPACE &&
	    !pool->pf.error_if_no_space && no_space_timeout_secs)
		queue_delayed_work(pool->wq, &pool->no_space_work,
				   no_space_timeout_secs * HZ);
}

static void pool_postsuspend(struct dm_target *ti)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;

	cancel_delayed_work_sync(&pool->waker);
	cancel_delayed_work_sync(&pool->no_space_work);
	flush_workqueue(pool->wq);
	commit(pool);
}

static int check_arg_count(unsigned int argc, unsigned int needed, char **argv)
{
	if (argc != needed) {
		DMWARN("Incorrect number of arguments for '%s' message",
		       argv[0]);
		return -EINVAL;
	}
	return 0;
}

static int read_dev_id(const char *arg, u32 *dev_id, bool warn)
{
	unsigned long long id;

	if (!kstrtoull(arg, 10, &id) && id <= THIN_MD_MAX_DEV_ID) {
		*dev_id = id;
		return 0;
	}
	if (warn)
		DMWARN("Message received with invalid device id: %s", arg);
	return -EINVAL;
}

static int msg_create_thin(unsigned int argc, char **argv, struct pool *pool)
{
	u32 id;
	int r = check_arg_count(argc, 2, argv);

	if (!r)
		r = read_dev_id(argv[1], &id, true);
	if (r)
		return r;
	r = thin_md_create_thin(pool->md, id);
	if (r)
		DMWARN("Creation of new thinly-provisioned device with id %s failed.",
		       argv[1]);
	return r;
}

static int msg_create_snap(unsigned int argc, char **argv, struct pool *pool)
{
	u32 id, origin;
	int r = check_arg_count(argc, 3, argv);

	if (!r)
		r = read_dev_id(argv[1], &id, true);
	if (!r)
		r = read_dev_id(argv[2], &origin, true);
	if (r)
		return r;
	r = thin_md_create_snap(pool->md, id, origin);
	if (r)
		DMWARN("Creation of new snapshot %s of device %s failed.",
		       argv[1], argv[2]);
	return r;
}

static int msg_delete(unsigned int argc, char **argv, struct pool *pool)
{
	u32 id;
	int r = check_arg_count(argc, 2, argv);

	if (!r)
		r = read_dev_id(argv[1], &id, true);
	if (r)
		return r;
	r = thin_md_delete_thin(pool->md, id);
	if (r)
		DMWARN("Deletion of thin device %s failed.", argv[1]);
	return r;
}

static int msg_set_transaction_id(unsigned int argc, char **argv,
				  struct pool *pool)
{
	unsigned long long old_id, new_id;
	int r = check_arg_count(argc, 3, argv);

	if (r)
		return r;
	if (kstrtoull(argv[1], 10, &old_id)) {
		DMWARN("set_transaction_id message: Unrecognised id %s.", argv[1]);
		return -EINVAL;
	}
	if (kstrtoull(argv[2], 10, &new_id)) {
		DMWARN("set_transaction_id message: Unrecognised new id %s.",
		       argv[2]);
		return -EINVAL;
	}
	r = thin_md_set_transaction_id(pool->md, old_id, new_id);
	if (r)
		DMWARN("Failed to change transaction id from %s to %s.",
		       argv[1], argv[2]);
	return r;
}

static int msg_reserve_metadata_snap(unsigned int argc, char **argv,
				     struct pool *pool)
{
	int r = check_arg_count(argc, 1, argv);

	if (r)
		return r;
	/* The snapshot is of the committed metadata: commit first. */
	commit(pool);
	r = thin_md_reserve_metadata_snap(pool->md);
	if (r)
		DMWARN("reserve_metadata_snap message failed.");
	return r;
}

static int msg_release_metadata_snap(unsigned int argc, char **argv,
				     struct pool *pool)
{
	int r = check_arg_count(argc, 1, argv);

	if (r)
		return r;
	r = thin_md_release_metadata_snap(pool->md);
	if (r)
		DMWARN("release_metadata_snap message failed.");
	return r;
}

static int pool_message(struct dm_target *ti, unsigned int argc, char **argv,
			char *result, unsigned int maxlen)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	int r = -EINVAL;

	if (get_pool_mode(pool) >= PM_OUT_OF_METADATA_SPACE) {
		DMERR("%s: unable to service pool target messages in READ_ONLY or FAIL mode",
		      pool_name(pool));
		return -EOPNOTSUPP;
	}

	if (!strcasecmp(argv[0], "create_thin"))
		r = msg_create_thin(argc, argv, pool);
	else if (!strcasecmp(argv[0], "create_snap"))
		r = msg_create_snap(argc, argv, pool);
	else if (!strcasecmp(argv[0], "delete"))
		r = msg_delete(argc, argv, pool);
	else if (!strcasecmp(argv[0], "set_transaction_id"))
		r = msg_set_transaction_id(argc, argv, pool);
	else if (!strcasecmp(argv[0], "reserve_metadata_snap"))
		r = msg_reserve_metadata_snap(argc, argv, pool);
	else if (!strcasecmp(argv[0], "release_metadata_snap"))
		r = msg_release_metadata_snap(argc, argv, pool);
	else
		DMWARN("Unrecognised thin pool target message received: %s",
		       argv[0]);

	if (!r)
		commit(pool);
	else if (thin_md_changed(pool->md) && r != -EINVAL && r != -EEXIST &&
		 r != -ENODATA && r != -EBUSY)
		metadata_failed(pool, argv[0], r);
	return r;
}

static void emit_flags(struct pool_features *pf, char *result,
		       unsigned int sz, unsigned int maxlen)
{
	unsigned int count = !pf->zero_new_blocks + !pf->discard_enabled +
			     !pf->discard_passdown +
			     (pf->mode == PM_READ_ONLY) + pf->error_if_no_space;

	DMEMIT("%u ", count);
	if (!pf->zero_new_blocks)
		DMEMIT("skip_block_zeroing ");
	if (!pf->discard_enabled)
		DMEMIT("ignore_discard ");
	if (!pf->discard_passdown)
		DMEMIT("no_discard_passdown ");
	if (pf->mode == PM_READ_ONLY)
		DMEMIT("read_only ");
	if (pf->error_if_no_space)
		DMEMIT("error_if_no_space ");
}

static void pool_status(struct dm_target *ti, status_type_t type,
			unsigned int status_flags, char *result,
			unsigned int maxlen)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	enum pool_mode mode = get_pool_mode(pool);
	u64 trans_id, free_md, nr_md, free_data, nr_data, held;
	unsigned int sz = 0;
	int r;

	switch (type) {
	case STATUSTYPE_INFO:
		if (mode == PM_FAIL) {
			DMEMIT("Fail");
			break;
		}
		/* Counts are of committed state: commit unless asked not to. */
		if (!(status_flags & DM_STATUS_NOFLUSH_FLAG) && !dm_suspended(ti))
			commit(pool);

		r = thin_md_get_transaction_id(pool->md, &trans_id);
		if (!r)
			r = thin_md_get_free_metadata_blocks(pool->md, &free_md);
		if (!r)
			r = thin_md_get_metadata_dev_size(pool->md, &nr_md);
		if (!r)
			r = thin_md_get_free_data_blocks(pool->md, &free_data);
		if (!r)
			r = thin_md_get_data_dev_size(pool->md, &nr_data);
		if (!r)
			r = thin_md_get_metadata_snap(pool->md, &held);
		if (r) {
			DMERR("%s: pool status failed: %d", pool_name(pool), r);
			DMEMIT("Error");
			break;
		}
		mode = get_pool_mode(pool);
		DMEMIT("%llu %llu/%llu %llu/%llu ", trans_id, nr_md - free_md,
		       nr_md, nr_data - free_data, nr_data);
		if (held)
			DMEMIT("%llu ", held);
		else
			DMEMIT("- ");
		if (mode == PM_OUT_OF_DATA_SPACE)
			DMEMIT("out_of_data_space ");
		else if (mode >= PM_OUT_OF_METADATA_SPACE)
			DMEMIT("ro ");
		else
			DMEMIT("rw ");
		if (!pool->pf.discard_enabled)
			DMEMIT("ignore_discard ");
		else if (pool->pf.discard_passdown)
			DMEMIT("discard_passdown ");
		else
			DMEMIT("no_discard_passdown ");
		if (pool->pf.error_if_no_space)
			DMEMIT("error_if_no_space ");
		else
			DMEMIT("queue_if_no_space ");
		if (thin_md_needs_check(pool->md))
			DMEMIT("needs_check ");
		else
			DMEMIT("- ");
		DMEMIT("%llu ", metadata_threshold(pt));
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u:%u %u:%u %u %llu ",
		       MAJOR(pt->metadata_dev->bdev->bd_dev),
		       MINOR(pt->metadata_dev->bdev->bd_dev),
		       MAJOR(pt->data_dev->bdev->bd_dev),
		       MINOR(pt->data_dev->bdev->bd_dev),
		       pool->sectors_per_block, pt->low_water_blocks);
		emit_flags(&pt->requested_pf, result, sz, maxlen);
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int pool_iterate_devices(struct dm_target *ti,
				iterate_devices_callout_fn fn, void *data)
{
	struct pool_c *pt = ti->private;

	return fn(ti, pt->data_dev, 0, ti->len, data);
}

static void pool_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct pool_c *pt = ti->private;
	struct pool *pool = pt->pool;
	sector_t io_opt = limits->io_opt >> SECTOR_SHIFT;
	u32 bs = pool->sectors_per_block;
	struct block_device *data = pt->data_dev->bdev;

	/* Keep stacked limits that already suit the block size. */
	if (io_opt < bs || io_opt % bs) {
		if (limits->max_sectors && !(bs % limits->max_sectors))
			blk_limits_io_min(limits,
					  limits->max_sectors << SECTOR_SHIFT);
		else
			blk_limits_io_min(limits, bs << SECTOR_SHIFT);
		blk_limits_io_opt(limits, bs << SECTOR_SHIFT);
	}

	if (!pt->adjusted_pf.discard_enabled) {
		limits->discard_granularity = 0;
		limits->max_discard_sectors = 0;
		limits->max_hw_discard_sectors = 0;
		return;
	}
	if (pt->adjusted_pf.discard_passdown && !bdev_max_discard_sectors(data)) {
		DMWARN("Data device (%pg) discard unsupported: Disabling discard passdown.",
		       data);
		pt->adjusted_pf.discard_passdown = false;
	}
}

/* ---------------------------------------------------------------- thin */

/* <pool dev> <dev id> [<external origin dev>] */
static int thin_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct mapped_device *pool_md;
	struct thin_c *tc;
	unsigned long flags;
	int r;

	mutex_lock(&pools_mutex);
	if (argc != 2 && argc != 3) {
		ti->error = "Invalid argument count";
		r = -EINVAL;
		goto out_unlock;
	}
	tc = kzalloc(sizeof(*tc), GFP_KERNEL);
	if (!tc) {
		ti->error = "Out of memory";
		r = -ENOMEM;
		goto out_unlock;
	}
	INIT_LIST_HEAD(&tc->list);
	refcount_set(&tc->refcount, 1);
	init_completion(&tc->can_destroy);
	tc->thin_md = dm_table_get_md(ti->table);

	if (argc == 3) {
		if (!strcmp(argv[0], argv[2])) {
			ti->error = "Error setting origin device";
			r = -EINVAL;
			goto bad_origin;
		}
		r = dm_get_device(ti, argv[2], FMODE_READ, &tc->origin_dev);
		if (r) {
			ti->error = "Error opening origin device";
			goto bad_origin;
		}
	}

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table),
			  &tc->pool_dev);
	if (r) {
		ti->error = "Error opening pool device";
		goto bad_pool_dev;
	}
	if (read_dev_id(argv[1], &tc->dev_id, false)) {
		ti->error = "Invalid device id";
		r = -EINVAL;
		goto bad_common;
	}

	pool_md = dm_get_md(tc->pool_dev->bdev->bd_dev);
	if (!pool_md) {
		ti->error = "Couldn't get pool mapped device";
		r = -EINVAL;
		goto bad_common;
	}
	tc->pool = pool_by_md(pool_md);
	dm_put(pool_md);
	if (!tc->pool) {
		ti->error = "Couldn't find pool object";
		r = -EINVAL;
		goto bad_common;
	}
	tc->pool->ref++;

	if (get_pool_mode(tc->pool) == PM_FAIL) {
		ti->error = "Couldn't open thin device, Pool is in fail mode";
		r = -EINVAL;
		goto bad_pool;
	}
	r = thin_md_open_dev(tc->pool->md, tc->dev_id, &tc->td);
	if (r) {
		ti->error = "Couldn't open thin internal device";
		goto bad_pool;
	}
	r = dm_set_target_max_io_len(ti, tc->pool->sectors_per_block);
	if (r)
		goto bad_td;

	ti->num_flush_bios = 1;
	ti->limit_swap_bios = true;
	ti->flush_supported = true;
	ti->accounts_remapped_io = true;
	ti->per_io_data_size = sizeof(struct thin_hook);
	if (tc->pool->pf.discard_enabled) {
		ti->discards_supported = true;
		ti->num_discard_bios = 1;
	}

	spin_lock_irqsave(&tc->pool->lock, flags);
	if (tc->pool->suspended) {
		spin_unlock_irqrestore(&tc->pool->lock, flags);
		ti->error = "Unable to activate thin device while pool is suspended";
		r = -EINVAL;
		goto bad_td;
	}
	list_add_tail(&tc->list, &tc->pool->active_thins);
	spin_unlock_irqrestore(&tc->pool->lock, flags);

	ti->private = tc;
	mutex_unlock(&pools_mutex);
	return 0;

bad_td:
	thin_md_close_dev(tc->td);
bad_pool:
	pool_put(tc->pool);
bad_common:
	dm_put_device(ti, tc->pool_dev);
bad_pool_dev:
	if (tc->origin_dev)
		dm_put_device(ti, tc->origin_dev);
bad_origin:
	kfree(tc);
out_unlock:
	mutex_unlock(&pools_mutex);
	return r;
}

static void thin_dtr(struct dm_target *ti)
{
	struct thin_c *tc = ti->private;
	unsigned long flags;

	/* A pool suspend or resume may be walking past this thin. */
	spin_lock_irqsave(&tc->pool->lock, flags);
	tc->dying = true;
	spin_unlock_irqrestore(&tc->pool->lock, flags);
	thin_put(tc);
	wait_for_completion(&tc->can_destroy);

	mutex_lock(&pools_mutex);
	spin_lock_irqsave(&tc->pool->lock, flags);
	list_del(&tc->list);
	spin_unlock_irqrestore(&tc->pool->lock, flags);
	thin_md_close_dev(tc->td);
	pool_put(tc->pool);
	dm_put_device(ti, tc->pool_dev);
	if (tc->origin_dev)
		dm_put_device(ti, tc->origin_dev);
	kfree(tc);
	mutex_unlock(&pools_mutex);
}

static int thin_map(struct dm_target *ti, struct bio *bio)
{
	struct thin_c *tc = ti->private;
	struct pool *pool = tc->pool;
	struct thin_hook *h = dm_per_bio_data(bio, sizeof(struct thin_hook));
	struct thin_md_lookup res;
	u64 vblock;
	int slot, r;

	h->tc = tc;
	h->io_slot = -1;
	if (READ_ONCE(tc->requeue_mode)) {
		bio->bi_status = BLK_STS_DM_REQUEUE;
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (get_pool_mode(pool) == PM_FAIL) {
		bio_io_error(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (op_is_flush(bio->bi_opf) || bio_op(bio) == REQ_OP_DISCARD) {
		defer_bio(pool, bio);
		return DM_MAPIO_SUBMITTED;
	}

	vblock = bio_vblock(pool, bio, NULL);
	slot = io_get(pool);
	r = thin_md_find_block(tc->td, vblock, false, &res);
	/*
	 * Shared blocks go through the worker, reads too: a write breaking
	 * the sharing holds the block's cell and waits for those reads.
	 */
	if (!r && !res.shared) {
		h->io_slot = slot;
		remap(tc, bio, res.dblock);
		return DM_MAPIO_REMAPPED;
	}
	io_put(pool, slot);
	if (r && r != -ENODATA && r != -EWOULDBLOCK) {
		bio_io_error(bio);
		return DM_MAPIO_SUBMITTED;
	}
	/* Unmapped, shared or not cached: the worker decides. */
	defer_bio(pool, bio);
	return DM_MAPIO_SUBMITTED;
}

static int thin_end_io(struct dm_target *ti, struct bio *bio,
		       blk_status_t *error)
{
	struct thin_c *tc = ti->private;
	struct thin_hook *h = dm_per_bio_data(bio, sizeof(struct thin_hook));

	if (h->io_slot >= 0) {
		io_put(tc->pool, h->io_slot);
		h->io_slot = -1;
	}
	return DM_ENDIO_DONE;
}

/* Hand the thin's waiting bios back to dm core for after the suspend. */
static void requeue_thin_bios(struct thin_c *tc)
{
	struct pool *pool = tc->pool;
	struct bio_list keep, mine;
	struct bio *bio;
	unsigned long flags;
	struct bio_list *lists[] = { &pool->deferred, &pool->retry };
	int i;

	bio_list_init(&mine);
	spin_lock_irqsave(&pool->lock, flags);
	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		bio_list_init(&keep);
		while ((bio = bio_list_pop(lists[i]))) {
			struct thin_hook *h =
				dm_per_bio_data(bio, sizeof(struct thin_hook));

			if (h->tc == tc)
				bio_list_add(&mine, bio);
			else
				bio_list_add(&keep, bio);
		}
		*lists[i] = keep;
	}
	spin_unlock_irqrestore(&pool->lock, flags);
	end_bios(&mine, BLK_STS_DM_REQUEUE);
}

static void thin_presuspend(struct dm_target *ti)
{
	struct thin_c *tc = ti->private;

	if (dm_noflush_suspending(ti)) {
		WRITE_ONCE(tc->requeue_mode, true);
		requeue_thin_bios(tc);
	}
}

static void thin_postsuspend(struct dm_target *ti)
{
	struct thin_c *tc = ti->private;

	/* Bios of a cancelled noflush suspend may be back in the queues. */
	if (READ_ONCE(tc->requeue_mode))
		requeue_thin_bios(tc);
	WRITE_ONCE(tc->requeue_mode, false);
}

static int thin_preresume(struct dm_target *ti)
{
	struct thin_c *tc = ti->private;

	WRITE_ONCE(tc->requeue_mode, false);
	if (tc->origin_dev)
		tc->origin_size = bdev_nr_sectors(tc->origin_dev->bdev);
	return 0;
}

static void thin_status(struct dm_target *ti, status_type_t type,
			unsigned int status_flags, char *result,
			unsigned int maxlen)
{
	struct thin_c *tc = ti->private;
	struct pool *pool = tc->pool;
	unsigned int sz = 0;
	u64 mapped, highest;
	bool found;
	int r;

	if (get_pool_mode(pool) == PM_FAIL) {
		DMEMIT("Fail");
		return;
	}
	if (!tc->td) {
		DMEMIT("-");
		return;
	}

	switch (type) {
	case STATUSTYPE_INFO:
		r = thin_md_get_mapped_count(tc->td, &mapped);
		if (!r)
			r = thin_md_get_highest_mapped(tc->td, &found, &highest);
		if (r) {
			DMERR("%s: status failed: %d", pool_name(pool), r);
			DMEMIT("Error");
			return;
		}
		DMEMIT("%llu ", mapped * pool->sectors_per_block);
		if (found)
			DMEMIT("%llu", (highest + 1) * pool->sectors_per_block - 1);
		else
			DMEMIT("-");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u:%u %u", MAJOR(tc->pool_dev->bdev->bd_dev),
		       MINOR(tc->pool_dev->bdev->bd_dev), tc->dev_id);
		if (tc->origin_dev)
			DMEMIT(" %u:%u", MAJOR(tc->origin_dev->bdev->bd_dev),
			       MINOR(tc->origin_dev->bdev->bd_dev));
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int thin_iterate_devices(struct dm_target *ti,
				iterate_devices_callout_fn fn, void *data)
{
	struct thin_c *tc = ti->private;
	struct pool *pool = tc->pool;
	u64 blocks;

	if (!pool->ti)
		return 0;
	blocks = div_u64(pool->ti->len, pool->sectors_per_block);
	if (!blocks)
		return 0;
	return fn(ti, tc->pool_dev, 0, blocks * pool->sectors_per_block, data);
}

static void thin_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct thin_c *tc = ti->private;
	struct pool *pool = tc->pool;

	if (!pool->pf.discard_enabled)
		return;
	limits->discard_granularity = pool->sectors_per_block << SECTOR_SHIFT;
	limits->max_discard_sectors = THIN_MAX_DISCARD_SECTORS;
}

static struct target_type pool_target = {
	.name = "thin-pool",
	.features = DM_TARGET_SINGLETON | DM_TARGET_ALWAYS_WRITEABLE |
		    DM_TARGET_IMMUTABLE,
	.version = {1, 22, 0},
	.module = THIS_MODULE,
	.ctr = pool_ctr,
	.dtr = pool_dtr,
	.map = pool_map,
	.presuspend = pool_presuspend,
	.presuspend_undo = pool_presuspend_undo,
	.postsuspend = pool_postsuspend,
	.preresume = pool_preresume,
	.resume = pool_resume,
	.message = pool_message,
	.status = pool_status,
	.iterate_devices = pool_iterate_devices,
	.io_hints = pool_io_hints,
};

static struct target_type thin_target = {
	.name = "thin",
	.version = {1, 22, 0},
	.module = THIS_MODULE,
	.ctr = thin_ctr,
	.dtr = thin_dtr,
	.map = thin_map,
	.end_io = thin_end_io,
	.presuspend = thin_presuspend,
	.postsuspend = thin_postsuspend,
	.preresume = thin_preresume,
	.status = thin_status,
	.iterate_devices = thin_iterate_devices,
	.io_hints = thin_io_hints,
};

static int __init dm_thin_init(void)
{
	int r = dm_register_target(&thin_target);

	if (r)
		return r;
	r = dm_register_target(&pool_target);
	if (r)
		dm_unregister_target(&thin_target);
	return r;
}

static void __exit dm_thin_exit(void)
{
	dm_unregister_target(&thin_target);
	dm_unregister_target(&pool_target);
}

module_init(dm_thin_init);
module_exit(dm_thin_exit);

MODULE_DESCRIPTION("device-mapper thin provisioning targets");
MODULE_LICENSE("GPL");
