// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm core: mapped devices, the bio mapping path, suspend/resume and the
 * helpers exported to targets.
 */
#include "dm-core.h"
#include "dm-uevent.h"

#include <linux/module.h>
#include <linux/init.h>
#include <linux/idr.h>
#include <linux/slab.h>
#include <linux/delay.h>
#include <linux/blkpg.h>
#include <linux/audit.h>
#include <linux/blk-integrity.h>
#include <linux/sched/signal.h>
#include <linux/miscdevice.h>

#include "dm-libs.h"

#define DM_MSG_PREFIX "core"

#define DM_RESERVED_MAX_IOS	1024
#define DM_RESERVED_DEF_IOS	16
#define MINOR_ALLOCED ((void *)-1)

static const char *dm_claim_ptr = "I belong to device-mapper";

static unsigned int major;
static unsigned int reserved_bio_based_ios = DM_RESERVED_DEF_IOS;
static int dm_numa_node = NUMA_NO_NODE;
static int swap_bios = 8 * 1024 * 1024 / PAGE_SIZE;
static unsigned int reserved_rq_based_ios = 256;
static bool use_blk_mq = true;
static unsigned int dm_mq_nr_hw_queues = 1;
static unsigned int dm_mq_queue_depth = 2048;

module_param(major, uint, 0);
MODULE_PARM_DESC(major, "The major number of the device mapper");
module_param(reserved_bio_based_ios, uint, 0644);
MODULE_PARM_DESC(reserved_bio_based_ios, "Reserved IOs in bio-based mempools");
module_param(dm_numa_node, int, 0644);
MODULE_PARM_DESC(dm_numa_node, "NUMA node for DM device memory allocations");
module_param(swap_bios, int, 0644);
MODULE_PARM_DESC(swap_bios, "Maximum allowed inflight swap IOs");
module_param(reserved_rq_based_ios, uint, 0644);
MODULE_PARM_DESC(reserved_rq_based_ios, "Reserved IOs in request-based mempools");
module_param(use_blk_mq, bool, 0644);
MODULE_PARM_DESC(use_blk_mq, "Use block multiqueue for request-based DM devices");
module_param(dm_mq_nr_hw_queues, uint, 0644);
MODULE_PARM_DESC(dm_mq_nr_hw_queues, "Number of hardware queues for request-based dm-mq devices");
module_param(dm_mq_queue_depth, uint, 0644);
MODULE_PARM_DESC(dm_mq_queue_depth, "Queue depth for request-based dm-mq devices");

static int dm_major;
static DEFINE_IDR(minor_idr);
static DEFINE_SPINLOCK(minor_lock);
static struct kmem_cache *io_cache;
static struct workqueue_struct *deferred_remove_wq;

static void do_deferred_remove(struct work_struct *w)
{
	dm_deferred_remove();
}

static DECLARE_WORK(deferred_remove_work, do_deferred_remove);

static atomic_t global_event_nr = ATOMIC_INIT(0);
DECLARE_WAIT_QUEUE_HEAD(dm_global_eventq);

void dm_issue_global_event(void)
{
	atomic_inc(&global_event_nr);
	wake_up(&dm_global_eventq);
}

u32 dm_get_global_event_nr(void)
{
	return atomic_read(&global_event_nr);
}

unsigned int dm_get_reserved_bio_based_ios(void)
{
	unsigned int v = READ_ONCE(reserved_bio_based_ios);

	if (!v)
		return DM_RESERVED_DEF_IOS;
	return min_t(unsigned int, v, DM_RESERVED_MAX_IOS);
}
EXPORT_SYMBOL_GPL(dm_get_reserved_bio_based_ios);

/* ------------------------------------------------------------------ */
/* Simple accessors                                                    */

bool dm_suspended_md(struct mapped_device *md)
{
	return test_bit(DMF_SUSPENDED, &md->flags);
}

bool dm_suspended_internally_md(struct mapped_device *md)
{
	return test_bit(DMF_SUSPENDED_INTERNALLY, &md->flags);
}

bool dm_test_deferred_remove_flag(struct mapped_device *md)
{
	return test_bit(DMF_DEFERRED_REMOVE, &md->flags);
}

bool dm_is_deleting(struct mapped_device *md)
{
	return test_bit(DMF_DELETING, &md->flags);
}

bool dm_disk_added(struct mapped_device *md)
{
	return test_bit(DMF_DISK_ADDED, &md->flags);
}

int dm_open_count(struct mapped_device *md)
{
	return atomic_read(&md->open_count);
}

int dm_suspended(struct dm_target *ti)
{
	return dm_suspended_md(ti->table->md);
}
EXPORT_SYMBOL_GPL(dm_suspended);

int dm_post_suspending(struct dm_target *ti)
{
	return test_bit(DMF_POST_SUSPENDING, &ti->table->md->flags);
}
EXPORT_SYMBOL_GPL(dm_post_suspending);

int dm_noflush_suspending(struct dm_target *ti)
{
	return test_bit(DMF_NOFLUSH_SUSPENDING, &ti->table->md->flags);
}
EXPORT_SYMBOL_GPL(dm_noflush_suspending);

const char *dm_device_name(struct mapped_device *md)
{
	return md->name;
}
EXPORT_SYMBOL_GPL(dm_device_name);

struct gendisk *dm_disk(struct mapped_device *md)
{
	return md->disk;
}
EXPORT_SYMBOL_GPL(dm_disk);

struct queue_limits *dm_get_queue_limits(struct mapped_device *md)
{
	return &md->queue->limits;
}
EXPORT_SYMBOL_GPL(dm_get_queue_limits);

void dm_set_mdptr(struct mapped_device *md, void *ptr)
{
	md->interface_ptr = ptr;
}

void *dm_get_mdptr(struct mapped_device *md)
{
	return md->interface_ptr;
}

u32 dm_get_event_nr(struct mapped_device *md)
{
	return atomic_read(&md->event_nr);
}

int dm_wait_event(struct mapped_device *md, int event_nr)
{
	return wait_event_interruptible(md->eventq,
			(event_nr != atomic_read(&md->event_nr)));
}

u32 dm_next_uevent_seq(struct mapped_device *md)
{
	return atomic_add_return(1, &md->uevent_seq);
}

void dm_uevent_add(struct mapped_device *md, struct list_head *elist)
{
	unsigned long flags;

	spin_lock_irqsave(&md->uevent_lock, flags);
	list_add(elist, &md->uevent_list);
	spin_unlock_irqrestore(&md->uevent_lock, flags);
}

void dm_lock_md_type(struct mapped_device *md)
{
	mutex_lock(&md->type_lock);
}

void dm_unlock_md_type(struct mapped_device *md)
{
	mutex_unlock(&md->type_lock);
}

void dm_set_md_type(struct mapped_device *md, enum dm_queue_mode type)
{
	md->type = type;
}

enum dm_queue_mode dm_get_md_type(struct mapped_device *md)
{
	return md->type;
}

struct target_type *dm_get_immutable_target_type(struct mapped_device *md)
{
	return md->immutable_target_type;
}

int dm_get_geometry(struct mapped_device *md, struct hd_geometry *geo)
{
	*geo = md->geometry;
	return 0;
}

int dm_set_geometry(struct mapped_device *md, struct hd_geometry *geo)
{
	sector_t sz = (sector_t)geo->cylinders * geo->heads * geo->sectors;

	if (geo->start > sz) {
		DMERR("Start sector is beyond the geometry limits.");
		return -EINVAL;
	}
	md->geometry = *geo;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Live table access                                                   */

struct dm_table *dm_get_live_table(struct mapped_device *md, int *srcu_idx)
	__acquires(md->io_barrier)
{
	*srcu_idx = srcu_read_lock(&md->io_barrier);
	return srcu_dereference(md->map, &md->io_barrier);
}

void dm_put_live_table(struct mapped_device *md, int srcu_idx)
	__releases(md->io_barrier)
{
	srcu_read_unlock(&md->io_barrier, srcu_idx);
}

void dm_sync_table(struct mapped_device *md)
{
	synchronize_srcu(&md->io_barrier);
}

/* ------------------------------------------------------------------ */
/* Lower-device opens shared by all tables of a device                 */

static int link_holder(struct mapped_device *md, struct table_device *td)
{
	int r;

	if (td->linked || !dm_disk_added(md))
		return 0;
	r = bd_link_disk_holder(td->dm_dev.bdev, md->disk);
	if (!r)
		td->linked = true;
	return r;
}

int dm_get_table_device(struct mapped_device *md, dev_t dev, fmode_t mode,
			struct table_device **result)
{
	struct block_device *bdev;
	struct table_device *td;
	int r;

	mutex_lock(&md->table_devices_lock);
	list_for_each_entry(td, &md->table_devices, list) {
		if (td->dm_dev.bdev->bd_dev == dev && td->dm_dev.mode == mode) {
			refcount_inc(&td->count);
			goto out;
		}
	}

	td = kzalloc_node(sizeof(*td), GFP_KERNEL, md->numa_node_id);
	if (!td) {
		mutex_unlock(&md->table_devices_lock);
		return -ENOMEM;
	}
	bdev = blkdev_get_by_dev(dev, mode | FMODE_EXCL, (void *)dm_claim_ptr);
	if (IS_ERR(bdev)) {
		kfree(td);
		mutex_unlock(&md->table_devices_lock);
		return PTR_ERR(bdev);
	}
	td->dm_dev.bdev = bdev;
	td->dm_dev.mode = mode;
	format_dev_t(td->dm_dev.name, dev);
	r = link_holder(md, td);
	if (r) {
		blkdev_put(bdev, mode | FMODE_EXCL);
		kfree(td);
		mutex_unlock(&md->table_devices_lock);
		return r;
	}
	refcount_set(&td->count, 1);
	list_add(&td->list, &md->table_devices);
out:
	mutex_unlock(&md->table_devices_lock);
	*result = td;
	return 0;
}

void dm_put_table_device(struct mapped_device *md, struct table_device *td)
{
	mutex_lock(&md->table_devices_lock);
	if (refcount_dec_and_test(&td->count)) {
		list_del(&td->list);
		if (td->linked)
			bd_unlink_disk_holder(td->dm_dev.bdev, md->disk);
		blkdev_put(td->dm_dev.bdev, td->dm_dev.mode | FMODE_EXCL);
		kfree(td);
	}
	mutex_unlock(&md->table_devices_lock);
}

/* ------------------------------------------------------------------ */
/* Block device operations                                             */

static int dm_blk_open(struct block_device *bdev, fmode_t mode)
{
	struct mapped_device *md;

	spin_lock(&minor_lock);
	md = bdev->bd_disk->private_data;
	if (md && (test_bit(DMF_FREEING, &md->flags) || dm_is_deleting(md)))
		md = NULL;
	if (md) {
		dm_get(md);
		atomic_inc(&md->open_count);
	}
	spin_unlock(&minor_lock);
	return md ? 0 : -ENXIO;
}

static void dm_blk_close(struct gendisk *disk, fmode_t mode)
{
	struct mapped_device *md;

	spin_lock(&minor_lock);
	md = disk->private_data;
	if (md) {
		if (atomic_dec_and_test(&md->open_count) &&
		    dm_test_deferred_remove_flag(md))
			queue_work(deferred_remove_wq, &deferred_remove_work);
		dm_put(md);
	}
	spin_unlock(&minor_lock);
}

static int dm_blk_getgeo(struct block_device *bdev, struct hd_geometry *geo)
{
	struct mapped_device *md = bdev->bd_disk->private_data;

	return dm_get_geometry(md, geo);
}

/* Forwards a block ioctl to the single target's lower device. */
static int dm_blk_ioctl(struct block_device *bdev, fmode_t mode,
			unsigned int cmd, unsigned long arg)
{
	struct mapped_device *md = bdev->bd_disk->private_data;
	struct block_device *lower;
	struct dm_table *map;
	struct dm_target *ti;
	int srcu_idx, r;

	map = dm_get_live_table(md, &srcu_idx);
	r = -ENOTTY;
	if (!map || map->num_targets != 1)
		goto out;
	ti = &map->targets[0];
	if (!ti->type->prepare_ioctl)
		goto out;
	r = -EAGAIN;
	if (dm_suspended_md(md))
		goto out;
	r = ti->type->prepare_ioctl(ti, &lower);
	if (r < 0)
		goto out;
	if (r > 0) {
		/* Target maps only part of the device: raw access only. */
		r = -ENOTTY;
		if (!capable(CAP_SYS_RAWIO)) {
			DMDEBUG_LIMIT("%s: sending ioctl %x to DM device without required privilege.",
				      current->comm, cmd);
			goto out;
		}
	}
	r = -ENOTTY;
	if (lower->bd_disk->fops->ioctl)
		r = lower->bd_disk->fops->ioctl(lower, mode, cmd, arg);
out:
	dm_put_live_table(md, srcu_idx);
	return r;
}

static void dm_submit_bio(struct bio *bio);

#ifdef CONFIG_BLK_DEV_ZONED
static int dm_blk_report_zones(struct gendisk *disk, sector_t sector,
			       unsigned int nr_zones, report_zones_cb cb,
			       void *data);
#else
#define dm_blk_report_zones NULL
#endif

static const struct block_device_operations dm_blk_dops = {
	.submit_bio = dm_submit_bio,
	.open = dm_blk_open,
	.release = dm_blk_close,
	.ioctl = dm_blk_ioctl,
	.getgeo = dm_blk_getgeo,
	.report_zones = dm_blk_report_zones,
	.owner = THIS_MODULE,
};

/* ------------------------------------------------------------------ */
/* Bio path                                                            */

static void queue_io(struct mapped_device *md, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&md->deferred_lock, flags);
	bio_list_add(&md->deferred, bio);
	spin_unlock_irqrestore(&md->deferred_lock, flags);
	queue_work(md->wq, &md->work);
}

static void dm_wq_work(struct work_struct *work)
{
	struct mapped_device *md = container_of(work, struct mapped_device, work);
	struct bio *bio;

	while (!test_bit(DMF_BLOCK_IO, &md->flags)) {
		spin_lock_irq(&md->deferred_lock);
		bio = bio_list_pop(&md->deferred);
		spin_unlock_irq(&md->deferred_lock);
		if (!bio)
			break;
		submit_bio_noacct(bio);
		cond_resched();
	}
}

static void dm_queue_flush(struct mapped_device *md)
{
	clear_bit(DMF_BLOCK_IO, &md->flags);
	/* The worker must see the flag clear before it runs. */
	smp_mb__after_atomic();
	queue_work(md->wq, &md->work);
}

static void dm_io_complete(struct dm_io *io)
{
	struct mapped_device *md = io->md;
	struct bio *bio = io->orig_bio;
	blk_status_t status = io->status;
	bool flush_data = io->flush_with_data;
	unsigned long flags;

	bio_end_io_acct(bio, io->start_time);
	if (unlikely(io->stats_aux.epoch))
		dm_stats_io_end(&md->stats, io->start_time, &io->stats_aux);

	if (unlikely(status == BLK_STS_DM_REQUEUE)) {
		if (test_bit(DMF_NOFLUSH_SUSPENDING, &md->flags)) {
			/* Resubmitted on resume, ahead of newer bios. */
			spin_lock_irqsave(&md->deferred_lock, flags);
			bio_list_add_head(&md->deferred, bio);
			spin_unlock_irqrestore(&md->deferred_lock, flags);
			bio = NULL;
		} else {
			status = BLK_STS_IOERR;
		}
	}

	mempool_free(io, &md->io_pool);

	if (bio && flush_data && !status) {
		/* The preflush is done; now the data, without it. */
		bio->bi_opf &= ~REQ_PREFLUSH;
		queue_io(md, bio);
		bio = NULL;
	}

	if (atomic_dec_and_test(&md->in_flight))
		wake_up(&md->wait);

	if (bio) {
		if (status)
			bio->bi_status = status;
		bio_endio(bio);
	}
}

static void dm_io_dec_pending(struct dm_io *io, blk_status_t error)
{
	if (unlikely(error)) {
		unsigned long flags;

		spin_lock_irqsave(&io->lock, flags);
		/* A pending requeue survives other errors during noflush. */
		if (!(io->status == BLK_STS_DM_REQUEUE &&
		      test_bit(DMF_NOFLUSH_SUSPENDING, &io->md->flags)))
			io->status = error;
		spin_unlock_irqrestore(&io->lock, flags);
	}
	if (atomic_dec_and_test(&io->pending))
		dm_io_complete(io);
}

static bool op_is_abnormal(struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		return true;
	default:
		return false;
	}
}

static void disable_op(struct mapped_device *md, struct bio *clone)
{
	struct request_queue *q = md->queue;

	switch (bio_op(clone)) {
	case REQ_OP_DISCARD:
		if (!bdev_max_discard_sectors(clone->bi_bdev))
			blk_queue_max_discard_sectors(q, 0);
		break;
	case REQ_OP_SECURE_ERASE:
		if (!bdev_max_secure_erase_sectors(clone->bi_bdev))
			blk_queue_max_secure_erase_sectors(q, 0);
		break;
	case REQ_OP_WRITE_ZEROES:
		if (!bdev_write_zeroes_sectors(clone->bi_bdev))
			blk_queue_max_write_zeroes_sectors(q, 0);
		break;
	default:
		break;
	}
}

static void clone_endio(struct bio *clone)
{
	struct dm_target_io *tio = clone_to_tio(clone);
	struct dm_io *io = tio->io;
	struct dm_target *ti = tio->ti;
	blk_status_t error = clone->bi_status;
	dm_endio_fn endio = ti->type->end_io;

	if (unlikely(error == BLK_STS_TARGET) && op_is_abnormal(clone))
		disable_op(io->md, clone);

	if (endio) {
		int r = endio(ti, clone, &error);

		switch (r) {
		case DM_ENDIO_REQUEUE:
			error = BLK_STS_DM_REQUEUE;
			fallthrough;
		case DM_ENDIO_DONE:
			break;
		case DM_ENDIO_INCOMPLETE:
			return;		/* the target keeps the clone */
		default:
			DMCRIT("unimplemented target endio return value: %d", r);
			error = BLK_STS_IOERR;
			break;
		}
	}

	/*
	 * A zone append lands wherever the zone's write pointer was: report
	 * the same offset into the zone the caller addressed.
	 */
	if (unlikely(bio_op(clone) == REQ_OP_ZONE_APPEND) && !error)
		io->orig_bio->bi_iter.bi_sector += clone->bi_iter.bi_sector &
			(bdev_zone_sectors(io->md->disk->part0) - 1);

	bio_put(clone);
	dm_io_dec_pending(io, error);
}

static void trim_integrity(struct bio *clone)
{
	if (bio_integrity(clone) &&
	    blk_get_integrity(clone->bi_bdev->bd_disk))
		bio_integrity_trim(clone);
}

static struct bio *alloc_tio(struct dm_io *io, struct dm_table *map,
			     struct dm_target *ti, unsigned int nr,
			     unsigned int len, unsigned int *len_ptr)
{
	struct bio *orig = io->orig_bio;
	struct dm_target_io *tio;
	struct bio *clone;

	if (!len && (orig->bi_opf & REQ_PREFLUSH)) {
		/* Empty flush: a fresh bio without payload. */
		clone = bio_alloc_bioset(orig->bi_bdev, 0,
					 REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC,
					 GFP_NOIO, &map->bs);
		bio_clone_blkg_association(clone, orig);
	} else {
		clone = bio_alloc_clone(orig->bi_bdev, orig, GFP_NOIO,
					&map->bs);
		clone->bi_iter.bi_size = len << SECTOR_SHIFT;
		/* The protection data must cover what the clone covers. */
		trim_integrity(clone);
	}
	tio = clone_to_tio(clone);
	tio->io = io;
	tio->ti = ti;
	tio->target_bio_nr = nr;
	tio->len = len;
	tio->len_ptr = len_ptr;
	clone->bi_end_io = clone_endio;
	return clone;
}

static void map_clone(struct bio *clone)
{
	struct dm_target_io *tio = clone_to_tio(clone);
	struct dm_io *io = tio->io;
	struct dm_target *ti = tio->ti;
	int r;

	atomic_inc(&io->pending);
	r = ti->type->map(ti, clone);
	switch (r) {
	case DM_MAPIO_SUBMITTED:
		break;
	case DM_MAPIO_REMAPPED:
		submit_bio_noacct(clone);
		break;
	case DM_MAPIO_KILL:
		bio_put(clone);
		dm_io_dec_pending(io, BLK_STS_IOERR);
		break;
	case DM_MAPIO_REQUEUE:
		bio_put(clone);
		dm_io_dec_pending(io, BLK_STS_DM_REQUEUE);
		break;
	default:
		DMCRIT("unimplemented target map return value: %d", r);
		bio_put(clone);
		dm_io_dec_pending(io, BLK_STS_IOERR);
		break;
	}
}

static void send_empty_flush(struct dm_io *io, struct dm_table *map)
{
	unsigned int i, n;

	for (i = 0; i < map->num_targets; i++) {
		struct dm_target *ti = &map->targets[i];

		for (n = 0; n < ti->num_flush_bios; n++)
			map_clone(alloc_tio(io, map, ti, n, 0, NULL));
	}
}

static unsigned int abnormal_count(struct dm_target *ti, struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_DISCARD:
		return ti->num_discard_bios;
	case REQ_OP_SECURE_ERASE:
		return ti->num_secure_erase_bios;
	case REQ_OP_WRITE_ZEROES:
		return ti->num_write_zeroes_bios;
	default:
		return 0;
	}
}

/* Sectors from @sector to the next boundary the target cares about. */
static sector_t max_piece(struct dm_target *ti, sector_t sector, bool abnormal)
{
	sector_t to_end = ti->begin + ti->len - sector;
	sector_t off;
	u32 rem;

	if (abnormal || !ti->max_io_len)
		return to_end;
	off = sector - ti->begin;
	div_u64_rem(off, ti->max_io_len, &rem);
	return min_t(sector_t, to_end, ti->max_io_len - rem);
}

/*
 * Maps the first target piece of @bio. Anything beyond it is split off and
 * resubmitted to us, so each pass deals with one target only.
 */
static void dm_process_bio(struct mapped_device *md, struct dm_table *map,
			   struct bio *bio)
{
	struct dm_target *ti;
	struct dm_io *io;
	unsigned int len, n, i;
	bool abnormal = op_is_abnormal(bio);

	if (unlikely(abnormal)) {
		bio = bio_split_to_limits(bio);
		if (!bio)
			return;
	}

	io = mempool_alloc(&md->io_pool, GFP_NOIO);
	io->md = md;
	io->orig_bio = bio;
	io->status = BLK_STS_OK;
	io->flush_with_data = false;
	io->stats_aux.epoch = 0;
	spin_lock_init(&io->lock);
	atomic_set(&io->pending, 1);
	atomic_inc(&md->in_flight);

	if (bio->bi_opf & REQ_PREFLUSH) {
		io->flush_with_data = bio_sectors(bio) != 0;
		io->start_time = bio_start_io_acct(bio);
		send_empty_flush(io, map);
		dm_io_dec_pending(io, BLK_STS_OK);
		return;
	}

	ti = dm_table_find_target(map, bio->bi_iter.bi_sector);
	if (unlikely(!ti)) {
		io->start_time = bio_start_io_acct(bio);
		dm_io_dec_pending(io, BLK_STS_IOERR);
		return;
	}

	len = min_t(sector_t, max_piece(ti, bio->bi_iter.bi_sector, abnormal),
		    bio_sectors(bio));

	if (unlikely(abnormal)) {
		n = abnormal_count(ti, bio);
		if (!n) {
			io->status = BLK_STS_NOTSUPP;
		} else {
			for (i = 0; i < n; i++)
				map_clone(alloc_tio(io, map, ti, i, len, NULL));
		}
	} else if (bio_sectors(bio) == 0) {
		/* Zero-length non-flush bios (e.g. zone ops) go through as is. */
		map_clone(alloc_tio(io, map, ti, 0, 0, NULL));
	} else {
		map_clone(alloc_tio(io, map, ti, 0, len, &len));
	}

	if (len < bio_sectors(bio)) {
		struct bio *split = bio_split(bio, len, GFP_NOIO, &md->split_bs);

		bio_chain(split, bio);
		io->orig_bio = split;
		submit_bio_noacct(bio);
	}
	io->start_time = bio_start_io_acct(io->orig_bio);
	if (unlikely(dm_stats_used(&md->stats)))
		dm_stats_io_start(&md->stats, io->orig_bio, &io->stats_aux);
	dm_io_dec_pending(io, BLK_STS_OK);
}

static void dm_submit_bio(struct bio *bio)
{
	struct mapped_device *md = bio->bi_bdev->bd_disk->private_data;
	struct dm_table *map;
	int srcu_idx;

	map = dm_get_live_table(md, &srcu_idx);

	if (unlikely(test_bit(DMF_BLOCK_IO, &md->flags))) {
		if (bio->bi_opf & REQ_NOWAIT)
			bio_wouldblock_error(bio);
		else if (bio->bi_opf & REQ_RAHEAD)
			bio_io_error(bio);
		else
			queue_io(md, bio);
		goto out;
	}
	if (unlikely(!map)) {
		bio_io_error(bio);
		goto out;
	}
	dm_process_bio(md, map, bio);
out:
	dm_put_live_table(md, srcu_idx);
}

/* ------------------------------------------------------------------ */
/* Helpers for targets                                                 */

void *dm_per_bio_data(struct bio *bio, size_t data_size)
{
	return (char *)clone_to_tio(bio) - data_size;
}
EXPORT_SYMBOL_GPL(dm_per_bio_data);

struct bio *dm_bio_from_per_bio_data(void *data, size_t data_size)
{
	struct dm_target_io *tio = (void *)((char *)data + data_size);

	return &tio->clone;
}
EXPORT_SYMBOL_GPL(dm_bio_from_per_bio_data);

unsigned int dm_bio_get_target_bio_nr(const struct bio *bio)
{
	return container_of(bio, struct dm_target_io, clone)->target_bio_nr;
}
EXPORT_SYMBOL_GPL(dm_bio_get_target_bio_nr);

u64 dm_start_time_ns_from_clone(struct bio *bio)
{
	return jiffies_to_nsecs(clone_to_tio(bio)->io->start_time);
}
EXPORT_SYMBOL_GPL(dm_start_time_ns_from_clone);

/*
 * Called from a target's map method: the clone is cut to @n_sectors and
 * the core resubmits the rest.
 */
void dm_accept_partial_bio(struct bio *bio, unsigned int n_sectors)
{
	struct dm_target_io *tio = clone_to_tio(bio);
	unsigned int bi_size = bio_sectors(bio);

	if (WARN_ON_ONCE(op_is_zone_mgmt(bio_op(bio)) ||
			 bio_op(bio) == REQ_OP_ZONE_APPEND ||
			 (bio->bi_opf & REQ_PREFLUSH) || !tio->len_ptr))
		return;
	if (n_sectors >= bi_size)
		return;
	bio->bi_iter.bi_size = n_sectors << SECTOR_SHIFT;
	trim_integrity(bio);
	tio->len = n_sectors;
	*tio->len_ptr = n_sectors;
}
EXPORT_SYMBOL_GPL(dm_accept_partial_bio);

void dm_submit_bio_remap(struct bio *clone, struct bio *tgt_clone)
{
	submit_bio_noacct(tgt_clone ? tgt_clone : clone);
}
EXPORT_SYMBOL_GPL(dm_submit_bio_remap);

void dm_mq_kick_requeue_list(struct mapped_device *md)
{
	/* Request-based devices are not implemented; nothing to kick. */
}
EXPORT_SYMBOL(dm_mq_kick_requeue_list);

#ifdef CONFIG_BLK_DEV_ZONED
/*
 * Translates one zone of a target's device into the mapped device's sector
 * space and hands it to the caller's callback. Zones past the end of the
 * target are skipped: the next target reports them.
 */
static int remap_reported_zone(struct blk_zone *zone, unsigned int idx,
			       void *data)
{
	struct dm_report_zones_args *args = data;
	struct dm_target *ti = args->tgt;
	sector_t shift = ti->begin - args->start;

	if (zone->start >= args->start + ti->len)
		return 0;

	zone->start += shift;
	if (zone->type != BLK_ZONE_TYPE_CONVENTIONAL) {
		/* Drivers leave wp undefined for full and empty zones. */
		switch (zone->cond) {
		case BLK_ZONE_COND_FULL:
			zone->wp = zone->start + zone->len;
			break;
		case BLK_ZONE_COND_EMPTY:
			zone->wp = zone->start;
			break;
		default:
			zone->wp += shift;
			break;
		}
	}
	args->next_sector = zone->start + zone->len;
	return args->orig_cb(zone, args->zone_idx++, args->orig_data);
}

int dm_report_zones(struct block_device *bdev, sector_t start, sector_t sector,
		    struct dm_report_zones_args *args, unsigned int nr_zones)
{
	args->start = start;
	return blkdev_report_zones(bdev, sector, nr_zones, remap_reported_zone,
				   args);
}
EXPORT_SYMBOL_GPL(dm_report_zones);

static int dm_blk_report_zones(struct gendisk *disk, sector_t sector,
			       unsigned int nr_zones, report_zones_cb cb,
			       void *data)
{
	struct mapped_device *md = disk->private_data;
	struct dm_report_zones_args args = {
		.next_sector = sector,
		.orig_data = data,
		.orig_cb = cb,
	};
	struct dm_table *map;
	int srcu_idx, r = 0;

	if (dm_suspended_md(md))
		return -EAGAIN;
	map = dm_get_live_table(md, &srcu_idx);
	if (!map) {
		r = -EIO;
		goto out;
	}
	while (args.zone_idx < nr_zones &&
	       args.next_sector < get_capacity(disk)) {
		struct dm_target *ti = dm_table_find_target(map,
							    args.next_sector);

		if (WARN_ON_ONCE(!ti || !ti->type->report_zones)) {
			r = -EIO;
			goto out;
		}
		args.tgt = ti;
		r = ti->type->report_zones(ti, &args, nr_zones - args.zone_idx);
		if (r < 0)
			goto out;
	}
	r = args.zone_idx;
out:
	dm_put_live_table(md, srcu_idx);
	return r;
}
#endif

/* ------------------------------------------------------------------ */
/* Mapped device lifetime                                              */

void dm_get(struct mapped_device *md)
{
	atomic_inc(&md->holders);
	WARN_ON(test_bit(DMF_FREEING, &md->flags));
}

int dm_hold(struct mapped_device *md)
{
	spin_lock(&minor_lock);
	if (test_bit(DMF_FREEING, &md->flags)) {
		spin_unlock(&minor_lock);
		return -EBUSY;
	}
	dm_get(md);
	spin_unlock(&minor_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(dm_hold);

void dm_put(struct mapped_device *md)
{
	atomic_dec(&md->holders);
}
EXPORT_SYMBOL_GPL(dm_put);

struct mapped_device *dm_get_md(dev_t dev)
{
	struct mapped_device *md;
	unsigned int minor = MINOR(dev);

	if (MAJOR(dev) != dm_major || minor >= (1 << MINORBITS))
		return NULL;

	spin_lock(&minor_lock);
	md = idr_find(&minor_idr, minor);
	if (!md || md == MINOR_ALLOCED || dm_disk(md)->first_minor != minor ||
	    test_bit(DMF_FREEING, &md->flags) || dm_is_deleting(md)) {
		md = NULL;
	} else {
		dm_get(md);
	}
	spin_unlock(&minor_lock);
	return md;
}
EXPORT_SYMBOL_GPL(dm_get_md);

struct mapped_device *dm_get_from_kobject(struct kobject *kobj)
{
	struct mapped_device *md = container_of(kobj, struct mapped_device,
						kobj_holder.kobj);

	spin_lock(&minor_lock);
	if (test_bit(DMF_FREEING, &md->flags) || dm_is_deleting(md)) {
		md = NULL;
		goto out;
	}
	dm_get(md);
out:
	spin_unlock(&minor_lock);
	return md;
}

static void event_callback(void *context)
{
	struct mapped_device *md = context;
	unsigned long flags;
	LIST_HEAD(uevents);

	spin_lock_irqsave(&md->uevent_lock, flags);
	list_splice_init(&md->uevent_list, &uevents);
	spin_unlock_irqrestore(&md->uevent_lock, flags);

	if (dm_disk_added(md))
		dm_send_uevents(&uevents, &disk_to_dev(md->disk)->kobj);
	else
		dm_free_uevents(&uevents);

	atomic_inc(&md->event_nr);
	wake_up(&md->eventq);
	dm_issue_global_event();
}

static void free_dev(struct mapped_device *md)
{
	int minor = md->minor;

	if (md->disk) {
		spin_lock(&minor_lock);
		md->disk->private_data = NULL;
		spin_unlock(&minor_lock);
		if (dm_disk_added(md)) {
			dm_sysfs_exit(md);
			del_gendisk(md->disk);
		}
		put_disk(md->disk);
	}
	if (md->wq)
		destroy_workqueue(md->wq);
	bioset_exit(&md->split_bs);
	mempool_exit(&md->io_pool);
	cleanup_srcu_struct(&md->io_barrier);
	mutex_destroy(&md->suspend_lock);
	mutex_destroy(&md->type_lock);
	mutex_destroy(&md->table_devices_lock);
	dm_stats_cleanup(&md->stats);
	dm_ima_exit(md);

	spin_lock(&minor_lock);
	idr_remove(&minor_idr, minor);
	spin_unlock(&minor_lock);

	kvfree(md);
	module_put(THIS_MODULE);
}

static int alloc_minor(int minor)
{
	int r;

	idr_preload(GFP_KERNEL);
	spin_lock(&minor_lock);
	if (minor >= 0)
		r = idr_alloc(&minor_idr, MINOR_ALLOCED, minor, minor + 1,
			      GFP_NOWAIT);
	else
		r = idr_alloc(&minor_idr, MINOR_ALLOCED, 0, 1 << MINORBITS,
			      GFP_NOWAIT);
	spin_unlock(&minor_lock);
	idr_preload_end();
	return r;
}

int dm_create(int minor, struct mapped_device **result)
{
	struct mapped_device *md;
	int r;

	if (minor >= (1 << MINORBITS))
		return -EINVAL;
	if (!try_module_get(THIS_MODULE))
		return -ENODEV;

	md = kvzalloc_node(sizeof(*md), GFP_KERNEL, NUMA_NO_NODE);
	if (!md) {
		module_put(THIS_MODULE);
		return -ENOMEM;
	}

	r = alloc_minor(minor);
	if (r < 0) {
		kvfree(md);
		module_put(THIS_MODULE);
		return r;
	}
	md->minor = r;
	md->numa_node_id = dm_numa_node;
	/* Messages name devices by major:minor, as stock does. */
	snprintf(md->name, sizeof(md->name), "%d:%d", dm_major, md->minor);

	r = init_srcu_struct(&md->io_barrier);
	if (r) {
		spin_lock(&minor_lock);
		idr_remove(&minor_idr, md->minor);
		spin_unlock(&minor_lock);
		kvfree(md);
		module_put(THIS_MODULE);
		return r;
	}
	mutex_init(&md->suspend_lock);
	mutex_init(&md->type_lock);
	mutex_init(&md->table_devices_lock);
	INIT_LIST_HEAD(&md->table_devices);
	dm_ima_init(md);
	INIT_LIST_HEAD(&md->uevent_list);
	spin_lock_init(&md->uevent_lock);
	spin_lock_init(&md->deferred_lock);
	bio_list_init(&md->deferred);
	INIT_WORK(&md->work, dm_wq_work);
	init_waitqueue_head(&md->wait);
	init_waitqueue_head(&md->eventq);
	init_completion(&md->kobj_holder.done);
	atomic_set(&md->holders, 1);
	atomic_set(&md->open_count, 0);
	atomic_set(&md->event_nr, 0);
	atomic_set(&md->uevent_seq, 0);
	atomic_set(&md->in_flight, 0);

	r = -ENOMEM;
	if (dm_stats_init(&md->stats))
		goto bad;
	if (mempool_init_slab_pool(&md->io_pool, dm_get_reserved_bio_based_ios(),
				   io_cache))
		goto bad;
	if (bioset_init(&md->split_bs, dm_get_reserved_bio_based_ios(), 0, 0))
		goto bad;
	md->wq = alloc_workqueue("kdmflush/%s", WQ_MEM_RECLAIM, 0, md->name);
	if (!md->wq)
		goto bad;

	md->disk = blk_alloc_disk(md->numa_node_id);
	if (!md->disk)
		goto bad;
	md->queue = md->disk->queue;
	md->disk->major = dm_major;
	md->disk->first_minor = md->minor;
	md->disk->minors = 1;
	md->disk->flags |= GENHD_FL_NO_PART;
	md->disk->fops = &dm_blk_dops;
	md->disk->private_data = md;
	snprintf(md->disk->disk_name, DISK_NAME_LEN, "dm-%d", md->minor);
	set_capacity(md->disk, 0);
	blk_queue_flag_set(QUEUE_FLAG_IO_STAT, md->queue);

	spin_lock(&minor_lock);
	idr_replace(&minor_idr, md, md->minor);
	spin_unlock(&minor_lock);

	*result = md;
	return 0;
bad:
	free_dev(md);
	return r;
}

/* First table load: fix the queue limits and make the disk visible. */
int dm_setup_md_queue(struct mapped_device *md, struct dm_table *t)
{
	struct queue_limits limits;
	struct table_device *td;
	int r;

	if (t->type == DM_TYPE_REQUEST_BASED)
		return -EINVAL;

	r = dm_calculate_queue_limits(t, &limits);
	if (r) {
		DMERR("Cannot calculate initial queue limits");
		return r;
	}
	r = dm_table_set_restrictions(t, md->queue, &limits);
	if (r)
		return r;

	r = add_disk(md->disk);
	if (r)
		return r;
	r = dm_sysfs_init(md);
	if (r) {
		del_gendisk(md->disk);
		return r;
	}
	set_bit(DMF_DISK_ADDED, &md->flags);

	/* Devices opened before the disk existed get their links now. */
	mutex_lock(&md->table_devices_lock);
	list_for_each_entry(td, &md->table_devices, list)
		if (link_holder(md, td))
			DMWARN("%s: cannot link holder for %s", md->name,
			       td->dm_dev.name);
	mutex_unlock(&md->table_devices_lock);
	return 0;
}

static struct dm_table *__unbind(struct mapped_device *md)
{
	struct dm_table *map = rcu_dereference_protected(md->map, 1);

	if (!map)
		return NULL;
	dm_table_event_callback(map, NULL, NULL);
	RCU_INIT_POINTER(md->map, NULL);
	dm_sync_table(md);
	return map;
}

static void __dm_destroy(struct mapped_device *md, bool wait)
{
	struct dm_table *map;
	int srcu_idx;

	spin_lock(&minor_lock);
	idr_replace(&minor_idr, MINOR_ALLOCED, md->minor);
	set_bit(DMF_FREEING, &md->flags);
	spin_unlock(&minor_lock);

	mutex_lock(&md->suspend_lock);
	map = dm_get_live_table(md, &srcu_idx);
	if (!dm_suspended_md(md)) {
		dm_table_presuspend_targets(map);
		set_bit(DMF_POST_SUSPENDING, &md->flags);
		dm_table_postsuspend_targets(map);
		clear_bit(DMF_POST_SUSPENDING, &md->flags);
	}
	dm_put_live_table(md, srcu_idx);
	mutex_unlock(&md->suspend_lock);

	/* The caller's own reference is the last one left. */
	if (wait) {
		while (atomic_read(&md->holders) > 1)
			usleep_range(1000, 2000);
	} else if (atomic_read(&md->holders) > 1) {
		DMWARN("%s: Forcibly removing mapped_device still in use! (%d users)",
		       md->name, atomic_read(&md->holders) - 1);
	}

	/* Disconnect the uevent queue from the disk before it goes. */
	spin_lock_irq(&md->uevent_lock);
	{
		LIST_HEAD(events);

		list_splice_init(&md->uevent_list, &events);
		spin_unlock_irq(&md->uevent_lock);
		dm_free_uevents(&events);
	}

	dm_table_destroy(__unbind(md));
	free_dev(md);
}

void dm_destroy(struct mapped_device *md)
{
	__dm_destroy(md, true);
}

void dm_destroy_immediate(struct mapped_device *md)
{
	__dm_destroy(md, false);
}

int dm_lock_for_deletion(struct mapped_device *md, bool mark_deferred,
			 bool only_deferred)
{
	int r = 0;

	spin_lock(&minor_lock);
	if (dm_open_count(md)) {
		r = -EBUSY;
		if (mark_deferred)
			set_bit(DMF_DEFERRED_REMOVE, &md->flags);
	} else if (only_deferred && !dm_test_deferred_remove_flag(md)) {
		r = -EEXIST;
	} else {
		set_bit(DMF_DELETING, &md->flags);
	}
	spin_unlock(&minor_lock);
	return r;
}

int dm_cancel_deferred_remove(struct mapped_device *md)
{
	int r = 0;

	spin_lock(&minor_lock);
	if (dm_is_deleting(md))
		r = -EBUSY;
	else
		clear_bit(DMF_DEFERRED_REMOVE, &md->flags);
	spin_unlock(&minor_lock);
	return r;
}

/* ------------------------------------------------------------------ */
/* Uevents                                                             */

int dm_kobject_uevent(struct mapped_device *md, enum kobject_action action,
		      unsigned int cookie, bool need_resize)
{
	char udev_cookie[32];
	char *envp[3] = { NULL, NULL, NULL };
	int i = 0;

	if (!dm_disk_added(md))
		return -ENODEV;
	if (cookie) {
		snprintf(udev_cookie, sizeof(udev_cookie), "DM_COOKIE=%u",
			 cookie);
		envp[i++] = udev_cookie;
	}
	if (need_resize)
		envp[i++] = "RESIZE=1";
	return kobject_uevent_env(&disk_to_dev(md->disk)->kobj, action, envp);
}

/* ------------------------------------------------------------------ */
/* Table swap, suspend and resume                                      */

static struct dm_table *__bind(struct mapped_device *md, struct dm_table *t,
			       struct queue_limits *limits)
{
	struct dm_table *old_map;
	sector_t size = dm_table_get_size(t);
	int r;

	if (size != get_capacity(md->disk))
		memset(&md->geometry, 0, sizeof(md->geometry));
	set_capacity(md->disk, size);

	dm_table_event_callback(t, event_callback, md);
	r = dm_table_set_restrictions(t, md->queue, limits);
	if (r)
		return ERR_PTR(r);
	if (t->immutable_target_type)
		md->immutable_target_type = t->immutable_target_type;

	old_map = rcu_dereference_protected(md->map,
					    lockdep_is_held(&md->suspend_lock));
	rcu_assign_pointer(md->map, t);
	if (old_map) {
		dm_table_event_callback(old_map, NULL, NULL);
		dm_sync_table(md);
	}
	return old_map;
}

struct dm_table *dm_swap_table(struct mapped_device *md, struct dm_table *t)
{
	struct dm_table *live_map, *map;
	struct queue_limits limits;
	int r;

	mutex_lock(&md->suspend_lock);
	if (!dm_suspended_md(md)) {
		map = ERR_PTR(-EINVAL);
		goto out;
	}

	live_map = rcu_dereference_protected(md->map,
					     lockdep_is_held(&md->suspend_lock));
	if (dm_table_has_no_data_devices(t) && live_map) {
		/* Nothing to stack: keep what the old devices allowed. */
		limits = md->queue->limits;
	} else {
		r = dm_calculate_queue_limits(t, &limits);
		if (r) {
			map = ERR_PTR(r);
			goto out;
		}
	}
	map = __bind(md, t, &limits);
	dm_issue_global_event();
out:
	mutex_unlock(&md->suspend_lock);
	return map;
}

static int lock_fs(struct mapped_device *md)
{
	int r;

	if (!dm_disk_added(md))
		return 0;
	r = freeze_bdev(md->disk->part0);
	if (!r)
		set_bit(DMF_FROZEN, &md->flags);
	return r;
}

static void unlock_fs(struct mapped_device *md)
{
	if (!test_bit(DMF_FROZEN, &md->flags))
		return;
	thaw_bdev(md->disk->part0);
	clear_bit(DMF_FROZEN, &md->flags);
}

static int __dm_suspend(struct mapped_device *md, struct dm_table *map,
			unsigned int suspend_flags, unsigned int task_state,
			int dmf_suspended_flag)
{
	bool do_lockfs = suspend_flags & DM_SUSPEND_LOCKFS_FLAG;
	bool noflush = suspend_flags & DM_SUSPEND_NOFLUSH_FLAG;
	int r;

	if (noflush)
		set_bit(DMF_NOFLUSH_SUSPENDING, &md->flags);

	dm_table_presuspend_targets(map);

	if (!noflush && do_lockfs) {
		r = lock_fs(md);
		if (r) {
			dm_table_presuspend_undo_targets(map);
			clear_bit(DMF_NOFLUSH_SUSPENDING, &md->flags);
			return r;
		}
	}

	set_bit(DMF_BLOCK_IO, &md->flags);
	/* Wait for submitters that saw the flag clear to leave. */
	synchronize_srcu(&md->io_barrier);
	flush_workqueue(md->wq);

	if (task_state == TASK_INTERRUPTIBLE)
		r = wait_event_interruptible(md->wait,
					     !atomic_read(&md->in_flight));
	else {
		wait_event(md->wait, !atomic_read(&md->in_flight));
		r = 0;
	}

	if (noflush)
		clear_bit(DMF_NOFLUSH_SUSPENDING, &md->flags);

	if (r) {
		dm_queue_flush(md);
		unlock_fs(md);
		dm_table_presuspend_undo_targets(map);
		return -EINTR;
	}

	set_bit(dmf_suspended_flag, &md->flags);
	return 0;
}

int dm_suspend(struct mapped_device *md, unsigned int suspend_flags)
{
	struct dm_table *map;
	int r;

retry:
	mutex_lock_nested(&md->suspend_lock, SINGLE_DEPTH_NESTING);
	if (dm_suspended_md(md)) {
		r = -EINVAL;
		goto out;
	}
	if (dm_suspended_internally_md(md)) {
		mutex_unlock(&md->suspend_lock);
		r = wait_on_bit(&md->flags, DMF_SUSPENDED_INTERNALLY,
				TASK_INTERRUPTIBLE);
		if (r)
			return r;
		goto retry;
	}

	map = rcu_dereference_protected(md->map,
					lockdep_is_held(&md->suspend_lock));
	if (!map)
		suspend_flags &= ~DM_SUSPEND_LOCKFS_FLAG;

	r = __dm_suspend(md, map, suspend_flags, TASK_INTERRUPTIBLE,
			 DMF_SUSPENDED);
	if (r)
		goto out;

	set_bit(DMF_POST_SUSPENDING, &md->flags);
	dm_table_postsuspend_targets(map);
	clear_bit(DMF_POST_SUSPENDING, &md->flags);
out:
	mutex_unlock(&md->suspend_lock);
	return r;
}

static int __dm_resume(struct mapped_device *md, struct dm_table *map)
{
	int r;

	if (map) {
		r = dm_table_resume_targets(map);
		if (r)
			return r;
	}
	dm_queue_flush(md);
	unlock_fs(md);
	return 0;
}

int dm_resume(struct mapped_device *md)
{
	struct dm_table *map;
	int r;

retry:
	r = -EINVAL;
	mutex_lock_nested(&md->suspend_lock, SINGLE_DEPTH_NESTING);
	if (!dm_suspended_md(md))
		goto out;
	if (dm_suspended_internally_md(md)) {
		mutex_unlock(&md->suspend_lock);
		r = wait_on_bit(&md->flags, DMF_SUSPENDED_INTERNALLY,
				TASK_INTERRUPTIBLE);
		if (r)
			return r;
		goto retry;
	}

	map = rcu_dereference_protected(md->map,
					lockdep_is_held(&md->suspend_lock));
	if (!map || !dm_table_get_size(map))
		goto out;

	r = __dm_resume(md, map);
	if (r)
		goto out;
	clear_bit(DMF_SUSPENDED, &md->flags);
out:
	mutex_unlock(&md->suspend_lock);
	return r;
}

static void __dm_internal_suspend(struct mapped_device *md,
				  unsigned int suspend_flags)
{
	struct dm_table *map;

	lockdep_assert_held(&md->suspend_lock);

	if (md->internal_suspend_count++)
		return;
	if (dm_suspended_md(md)) {
		set_bit(DMF_SUSPENDED_INTERNALLY, &md->flags);
		return;
	}

	map = rcu_dereference_protected(md->map,
					lockdep_is_held(&md->suspend_lock));
	set_bit(DMF_SUSPENDED_INTERNALLY, &md->flags);
	(void)__dm_suspend(md, map, suspend_flags, TASK_UNINTERRUPTIBLE,
			   DMF_SUSPENDED_INTERNALLY);

	set_bit(DMF_POST_SUSPENDING, &md->flags);
	dm_table_postsuspend_targets(map);
	clear_bit(DMF_POST_SUSPENDING, &md->flags);
}

static void __dm_internal_resume(struct mapped_device *md)
{
	struct dm_table *map;
	int r;

	if (WARN_ON_ONCE(!md->internal_suspend_count))
		return;
	if (--md->internal_suspend_count)
		return;
	if (dm_suspended_md(md))
		goto done;	/* user suspend owns the device now */

	map = rcu_dereference_protected(md->map,
					lockdep_is_held(&md->suspend_lock));
	r = __dm_resume(md, map);
	if (r) {
		/* Keep resume and postsuspend hooks paired. */
		set_bit(DMF_SUSPENDED, &md->flags);
	}
done:
	clear_bit(DMF_SUSPENDED_INTERNALLY, &md->flags);
	/* Order the clear before waking wait_on_bit() sleepers. */
	smp_mb__after_atomic();
	wake_up_bit(&md->flags, DMF_SUSPENDED_INTERNALLY);
}

void dm_internal_suspend_noflush(struct mapped_device *md)
{
	mutex_lock(&md->suspend_lock);
	__dm_internal_suspend(md, DM_SUSPEND_NOFLUSH_FLAG);
	mutex_unlock(&md->suspend_lock);
}
EXPORT_SYMBOL_GPL(dm_internal_suspend_noflush);

void dm_internal_resume(struct mapped_device *md)
{
	mutex_lock(&md->suspend_lock);
	__dm_internal_resume(md);
	mutex_unlock(&md->suspend_lock);
}
EXPORT_SYMBOL_GPL(dm_internal_resume);

/*
 * Fast variants: only block and drain I/O, without target hooks. The
 * suspend lock stays held until the matching resume.
 */
void dm_internal_suspend_fast(struct mapped_device *md)
{
	mutex_lock(&md->suspend_lock);
	if (dm_suspended_md(md) || dm_suspended_internally_md(md))
		return;
	set_bit(DMF_BLOCK_IO, &md->flags);
	synchronize_srcu(&md->io_barrier);
	flush_workqueue(md->wq);
	wait_event(md->wait, !atomic_read(&md->in_flight));
}
EXPORT_SYMBOL_GPL(dm_internal_suspend_fast);

void dm_internal_resume_fast(struct mapped_device *md)
{
	if (dm_suspended_md(md) || dm_suspended_internally_md(md))
		goto done;
	dm_queue_flush(md);
done:
	mutex_unlock(&md->suspend_lock);
}
EXPORT_SYMBOL_GPL(dm_internal_resume_fast);

/* ------------------------------------------------------------------ */
/* Audit                                                               */

#ifdef CONFIG_AUDIT
/* Records exist only while audit is on (audit=1, or auditd enabled it). */
static struct audit_buffer *dm_audit_start(int type, const char *prefix,
					   const char *op)
{
	struct audit_buffer *ab;

	if (audit_enabled == AUDIT_OFF)
		return NULL;
	ab = audit_log_start(audit_context(), GFP_KERNEL, type);
	if (ab)
		audit_log_format(ab, "module=%s op=%s", prefix, op);
	return ab;
}

/*
 * Same fields as stock: a control record names the task and, for a failed
 * step (result 0), the target's error; an event record has no sector here.
 */
void dm_audit_log_ti(int audit_type, const char *dm_msg_prefix,
		     const char *op, struct dm_target *ti, int result)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct audit_buffer *ab;

	if (audit_type != AUDIT_DM_CTRL && audit_type != AUDIT_DM_EVENT)
		return;
	ab = dm_audit_start(audit_type, dm_msg_prefix, op);
	if (!ab)
		return;
	if (audit_type == AUDIT_DM_CTRL) {
		audit_log_task_info(ab);
		audit_log_format(ab, " dev=%d:%d error_msg='%s'", dm_major,
				 md->minor, result ? "success" : ti->error);
	} else {
		audit_log_format(ab, " dev=%d:%d sector=?", dm_major, md->minor);
	}
	audit_log_format(ab, " res=%d", result);
	audit_log_end(ab);
}
EXPORT_SYMBOL_GPL(dm_audit_log_ti);

void dm_audit_log_bio(const char *dm_msg_prefix, const char *op,
		      struct bio *bio, sector_t sector, int result)
{
	dev_t dev = bio->bi_bdev->bd_dev;
	struct audit_buffer *ab;

	ab = dm_audit_start(AUDIT_DM_EVENT, dm_msg_prefix, op);
	if (!ab)
		return;
	audit_log_format(ab, " dev=%d:%d sector=%llu res=%d", MAJOR(dev),
			 MINOR(dev), (unsigned long long)sector, result);
	audit_log_end(ab);
}
EXPORT_SYMBOL_GPL(dm_audit_log_bio);
#endif

/* ------------------------------------------------------------------ */
/* Deferred removal worker and module init                             */

int dm_core_init(void)
{
	int r;

	io_cache = KMEM_CACHE(dm_io, 0);
	if (!io_cache)
		return -ENOMEM;
	deferred_remove_wq = alloc_workqueue("kdmremove", WQ_UNBOUND, 1);
	if (!deferred_remove_wq) {
		r = -ENOMEM;
		goto out_cache;
	}
	r = register_blkdev(major, "device-mapper");
	if (r < 0)
		goto out_wq;
	dm_major = major ? major : r;
	return 0;

out_wq:
	destroy_workqueue(deferred_remove_wq);
out_cache:
	kmem_cache_destroy(io_cache);
	return r;
}

void dm_core_exit(void)
{
	flush_work(&deferred_remove_work);
	destroy_workqueue(deferred_remove_wq);
	unregister_blkdev(dm_major, "device-mapper");
	kmem_cache_destroy(io_cache);
	idr_destroy(&minor_idr);
}

unsigned int dm_get_major(void)
{
	return dm_major;
}

/* dm-mod's parts, brought up in this order and taken down in reverse. */
static const struct {
	int (*init)(void);
	void (*exit)(void);
} dm_parts[] = {
	{ dm_core_init, dm_core_exit },
	{ dm_target_init, dm_target_exit },
	{ dm_linear_init, dm_linear_exit },
	{ dm_stripe_init, dm_stripe_exit },
	{ dm_io_init, dm_io_exit },
	{ dm_kcopyd_init, dm_kcopyd_exit },
	{ dm_interface_init, dm_interface_exit },
	{ dm_init_devices, dm_init_devices_exit },
};

static int __init dm_init(void)
{
	unsigned int i;
	int r;

	for (i = 0; i < ARRAY_SIZE(dm_parts); i++) {
		r = dm_parts[i].init();
		if (r)
			goto undo;
	}
	return 0;
undo:
	while (i--)
		dm_parts[i].exit();
	return r;
}

static void __exit dm_exit(void)
{
	unsigned int i = ARRAY_SIZE(dm_parts);

	while (i--)
		dm_parts[i].exit();
}

module_init(dm_init);
module_exit(dm_exit);

MODULE_DESCRIPTION("device-mapper driver");
MODULE_AUTHOR("dm-ng contributors");
MODULE_LICENSE("GPL");
MODULE_ALIAS("devname:mapper/control");
MODULE_ALIAS_MISCDEV(MAPPER_CTRL_MINOR);
