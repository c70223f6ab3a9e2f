// SPDX-License-Identifier: GPL-2.0-only
/*
 * log-writes: pass I/O through to a data device and record every write in
 * a log on a second device, in an order that models what reached stable
 * media, so a replay can rebuild the device as of any flush, FUA or mark.
 *
 * Plain writes are remembered when they complete and are logged only when
 * a later flush completes; a flush takes the writes completed before it
 * was submitted. FUA writes are logged as soon as they complete. A single
 * ordered worker appends entries to the log; the super block (entry count)
 * is rewritten after each FUA or mark entry. Format:
 * Documentation of the project, formats/log-writes.md.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#define DM_MSG_PREFIX "log-writes"

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL

#define LW_FLUSH	(1ULL << 0)
#define LW_FUA		(1ULL << 1)
#define LW_DISCARD	(1ULL << 2)
#define LW_MARK		(1ULL << 3)
#define LW_METADATA	(1ULL << 4)

#define LW_END_MARK	"dm-log-writes-end"

/* On-disk layouts, little-endian, each padded with zeroes to a log block. */
struct lw_super_disk {
	__le64 magic;
	__le64 version;
	__le64 nr_entries;
	__le32 sectorsize;
} __packed;

struct lw_entry_disk {
	__le64 sector;
	__le64 nr_sectors;
	__le64 flags;
	__le64 data_len;
} __packed;

/* One write (or flush, or mark) waiting to be logged. */
struct lw_entry {
	struct list_head list;	/* for a flush: the writes it covers */
	u64 flags;
	u64 sector;		/* in log blocks */
	u64 nr_sectors;		/* in log blocks */
	char *mark;
	size_t mark_len;
	size_t data_len;	/* bytes held in pages[] */
	unsigned int nr_pages;
	struct page *pages[];
};

struct log_writes {
	struct dm_dev *dev;
	struct dm_dev *logdev;
	u32 blksz;		/* log block = data device logical block */
	unsigned int blk_shift;	/* log2(blksz / 512) */

	spinlock_t lock;	/* everything below */
	struct list_head unflushed;	/* completed plain writes */
	struct list_head to_log;	/* ready for the worker */
	u64 logged_entries;
	sector_t next_sector;	/* next free 512-byte sector of the log */
	bool logging;
	bool discard_ok;	/* data device takes discards */
	unsigned int busy;	/* entries created and not yet freed */

	struct workqueue_struct *wq;
	struct work_struct log_work;
	wait_queue_head_t idle;
};

struct lw_bio {
	struct lw_entry *entry;
};

static void lw_free_entry(struct log_writes *lw, struct lw_entry *e)
{
	unsigned int i;
	bool idle;

	for (i = 0; i < e->nr_pages; i++)
		__free_page(e->pages[i]);
	kfree(e->mark);
	kfree(e);

	spin_lock_irq(&lw->lock);
	idle = !--lw->busy;
	spin_unlock_irq(&lw->lock);
	if (idle)
		wake_up(&lw->idle);
}

static void lw_disable(struct log_writes *lw)
{
	unsigned long flags;

	spin_lock_irqsave(&lw->lock, flags);
	lw->logging = false;
	spin_unlock_irqrestore(&lw->lock, flags);
}

/* Write LEN bytes from the page array at log sector SECTOR, and wait. */
static int lw_write_pages(struct log_writes *lw, sector_t sector,
			  struct page **pages, unsigned int nr, size_t len,
			  blk_opf_t extra)
{
	unsigned int i = 0;
	struct bio *bio;
	int r;

	while (i < nr) {
		unsigned int n = min_t(unsigned int, nr - i, BIO_MAX_VECS);
		size_t chunk = 0;

		bio = bio_alloc(lw->logdev->bdev, n, REQ_OP_WRITE | REQ_SYNC | extra,
				GFP_NOIO);
		bio->bi_iter.bi_sector = sector;
		for (; n; n--, i++) {
			unsigned int plen = min_t(size_t, len, PAGE_SIZE);

			if (bio_add_page(bio, pages[i], plen, 0) != plen)
				break;
			len -= plen;
			chunk += plen;
		}
		r = submit_bio_wait(bio);
		bio_put(bio);
		if (r) {
			DMERR("Error writing log block, error=%d", r);
			return r;
		}
		sector += chunk >> SECTOR_SHIFT;
	}
	return 0;
}

static int lw_write_block(struct log_writes *lw, sector_t sector, void *buf,
			  blk_opf_t extra)
{
	struct page *page = virt_to_page(buf);

	return lw_write_pages(lw, sector, &page, 1, lw->blksz, extra);
}

static int lw_write_super(struct log_writes *lw, u64 nr_entries)
{
	struct lw_super_disk *sb;
	int r;

	sb = (void *)get_zeroed_page(GFP_NOIO);
	if (!sb)
		return -ENOMEM;
	sb->magic = cpu_to_le64(LW_MAGIC);
	sb->version = cpu_to_le64(LW_VERSION);
	sb->nr_entries = cpu_to_le64(nr_entries);
	sb->sectorsize = cpu_to_le32(lw->blksz);
	/* FUA: a reader must never see a count ahead of the entries. */
	r = lw_write_block(lw, 0, sb, REQ_FUA);
	free_page((unsigned long)sb);
	if (r)
		DMERR("Couldn't write super");
	return r;
}

static int lw_write_entry(struct log_writes *lw, struct lw_entry *e,
			  sector_t sector)
{
	struct lw_entry_disk *hdr;
	int r;

	hdr = (void *)get_zeroed_page(GFP_NOIO);
	if (!hdr) {
		DMERR("Couldn't alloc log page");
		return -ENOMEM;
	}
	hdr->sector = cpu_to_le64(e->sector);
	hdr->nr_sectors = cpu_to_le64(e->nr_sectors);
	hdr->flags = cpu_to_le64(e->flags);
	hdr->data_len = cpu_to_le64(e->mark_len);
	if (e->mark_len)
		memcpy(hdr + 1, e->mark, e->mark_len);

	r = lw_write_block(lw, sector, hdr, 0);
	free_page((unsigned long)hdr);
	if (!r && e->nr_pages)
		r = lw_write_pages(lw, sector + (lw->blksz >> SECTOR_SHIFT),
				   e->pages, e->nr_pages, e->data_len, 0);
	return r;
}

/* Claim log space for E; false if logging is off or the log is full. */
static bool lw_reserve(struct log_writes *lw, struct lw_entry *e,
		       sector_t *where, u64 *count, bool *super)
{
	sector_t blocks = 1;
	bool ok = false;

	if (!(e->flags & LW_DISCARD))
		blocks += e->nr_sectors;

	spin_lock_irq(&lw->lock);
	if (!lw->logging)
		goto out;
	if (lw->next_sector + (blocks << lw->blk_shift) >=
	    bdev_nr_sectors(lw->logdev->bdev)) {
		DMERR("Ran out of space on the logdev");
		lw->logging = false;
		goto out;
	}
	*where = lw->next_sector;
	lw->next_sector += blocks << lw->blk_shift;
	*count = ++lw->logged_entries;
	*super = e->flags & (LW_FUA | LW_MARK);
	ok = true;
out:
	spin_unlock_irq(&lw->lock);
	return ok;
}

static void lw_log_work(struct work_struct *w)
{
	struct log_writes *lw = container_of(w, struct log_writes, log_work);
	struct lw_entry *e;
	sector_t where;
	bool super;
	u64 count;
	int r;

	for (;;) {
		spin_lock_irq(&lw->lock);
		e = list_first_entry_or_null(&lw->to_log, struct lw_entry, list);
		if (e)
			list_del_init(&e->list);
		spin_unlock_irq(&lw->lock);
		if (!e)
			return;

		if (lw_reserve(lw, e, &where, &count, &super)) {
			r = lw_write_entry(lw, e, where);
			if (!r && super)
				r = lw_write_super(lw, count);
			if (r)
				lw_disable(lw);
		}
		lw_free_entry(lw, e);
	}
}

static struct lw_entry *lw_alloc_entry(struct log_writes *lw,
				       unsigned int nr_pages, gfp_t gfp)
{
	struct lw_entry *e;

	e = kzalloc(struct_size(e, pages, nr_pages), gfp);
	if (!e)
		return NULL;
	INIT_LIST_HEAD(&e->list);
	spin_lock_irq(&lw->lock);
	lw->busy++;
	spin_unlock_irq(&lw->lock);
	return e;
}

static void lw_queue(struct log_writes *lw, struct lw_entry *e)
{
	unsigned long flags;

	spin_lock_irqsave(&lw->lock, flags);
	list_add_tail(&e->list, &lw->to_log);
	spin_unlock_irqrestore(&lw->lock, flags);
	queue_work(lw->wq, &lw->log_work);
}

static int lw_mark(struct log_writes *lw, const char *text)
{
	size_t room = lw->blksz - sizeof(struct lw_entry_disk) - 1;
	struct lw_entry *e;

	e = lw_alloc_entry(lw, 0, GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->mark = kstrndup(text, room, GFP_KERNEL);
	if (!e->mark) {
		DMERR("Error copying mark data");
		lw_free_entry(lw, e);
		return -ENOMEM;
	}
	e->mark_len = strlen(e->mark);
	e->flags = LW_MARK;
	lw_queue(lw, e);
	return 0;
}

/* <dev> <log_dev> */
static int lw_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct log_writes *lw;
	int r;

	if (argc < 2) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}

	lw = kzalloc(sizeof(*lw), GFP_KERNEL);
	if (!lw) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	spin_lock_init(&lw->lock);
	INIT_LIST_HEAD(&lw->unflushed);
	INIT_LIST_HEAD(&lw->to_log);
	INIT_WORK(&lw->log_work, lw_log_work);
	init_waitqueue_head(&lw->idle);
	lw->logging = true;

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &lw->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}
	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table), &lw->logdev);
	if (r) {
		ti->error = "Log device lookup failed";
		goto bad_dev;
	}

	lw->blksz = bdev_logical_block_size(lw->dev->bdev);
	lw->blk_shift = ilog2(lw->blksz) - SECTOR_SHIFT;
	/* Log block 0 is the super block. */
	lw->next_sector = lw->blksz >> SECTOR_SHIFT;
	lw->discard_ok = bdev_max_discard_sectors(lw->dev->bdev);

	lw->wq = alloc_ordered_workqueue("dm-log-writes", WQ_MEM_RECLAIM);
	if (!lw->wq) {
		ti->error = "Couldn't alloc kthread";
		r = -ENOMEM;
		goto bad_logdev;
	}

	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
	ti->per_io_data_size = sizeof(struct lw_bio);
	ti->private = lw;
	return 0;

bad_logdev:
	dm_put_device(ti, lw->logdev);
bad_dev:
	dm_put_device(ti, lw->dev);
bad:
	kfree(lw);
	return r;
}

static void lw_dtr(struct dm_target *ti)
{
	struct log_writes *lw = ti->private;

	/* Log what never saw a flush, then the end mark, then stop. */
	spin_lock_irq(&lw->lock);
	list_splice_tail_init(&lw->unflushed, &lw->to_log);
	spin_unlock_irq(&lw->lock);
	lw_mark(lw, LW_END_MARK);
	queue_work(lw->wq, &lw->log_work);
	wait_event(lw->idle, !READ_ONCE(lw->busy));
	destroy_workqueue(lw->wq);

	dm_put_device(ti, lw->logdev);
	dm_put_device(ti, lw->dev);
	kfree(lw);
}

static void lw_remap(struct dm_target *ti, struct bio *bio)
{
	struct log_writes *lw = ti->private;

	bio_set_dev(bio, lw->dev->bdev);
}

/* Copy the payload now: the caller may reuse its pages once we complete. */
static int lw_copy_data(struct lw_entry *e, struct bio *bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t pos = 0;

	bio_for_each_segment(bv, bio, iter) {
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned int idx = pos >> PAGE_SHIFT;
			unsigned int off = offset_in_page(pos);
			unsigned int n = min_t(unsigned int, bv.bv_len - done,
					       PAGE_SIZE - off);
			struct bio_vec part = {
				.bv_page = bv.bv_page,
				.bv_offset = bv.bv_offset + done,
				.bv_len = n,
			};

			if (!e->pages[idx]) {
				e->pages[idx] = alloc_page(GFP_NOIO);
				if (!e->pages[idx]) {
					DMERR("Error allocing page");
					return -ENOMEM;
				}
				e->nr_pages = idx + 1;
			}
			memcpy_from_bvec(page_address(e->pages[idx]) + off, &part);
			done += n;
			pos += n;
		}
	}
	e->data_len = pos;
	return 0;
}

static int lw_map(struct dm_target *ti, struct bio *bio)
{
	struct log_writes *lw = ti->private;
	struct lw_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	bool flush = bio->bi_opf & REQ_PREFLUSH;
	bool discard = bio_op(bio) == REQ_OP_DISCARD;
	unsigned int nr_pages = 0;
	struct lw_entry *e;

	pb->entry = NULL;

	if (!READ_ONCE(lw->logging) || bio_data_dir(bio) == READ)
		goto remap;
	if (!bio_sectors(bio) && !flush)
		goto remap;

	if (!discard)
		nr_pages = DIV_ROUND_UP(bio->bi_iter.bi_size, PAGE_SIZE);
	e = lw_alloc_entry(lw, nr_pages, GFP_NOIO);
	if (!e) {
		DMERR("Error allocating pending block");
		lw_disable(lw);
		return DM_MAPIO_KILL;
	}
	pb->entry = e;

	if (flush)
		e->flags |= LW_FLUSH;
	if (bio->bi_opf & REQ_FUA)
		e->flags |= LW_FUA;
	if (discard)
		e->flags |= LW_DISCARD;
	if (bio->bi_opf & REQ_META)
		e->flags |= LW_METADATA;
	e->sector = bio->bi_iter.bi_sector >> lw->blk_shift;
	e->nr_sectors = bio_sectors(bio) >> lw->blk_shift;

	if (discard) {
		if (lw->discard_ok)
			goto remap;
		/* Logged all the same; end_io runs from this completion. */
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}

	if (nr_pages && lw_copy_data(e, bio)) {
		pb->entry = NULL;
		lw_free_entry(lw, e);
		lw_disable(lw);
		return DM_MAPIO_KILL;
	}

	/* A flush covers the writes that completed before it was issued. */
	if (flush) {
		spin_lock_irq(&lw->lock);
		list_splice_init(&lw->unflushed, &e->list);
		spin_unlock_irq(&lw->lock);
	}
remap:
	lw_remap(ti, bio);
	return DM_MAPIO_REMAPPED;
}

static int lw_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct log_writes *lw = ti->private;
	struct lw_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct lw_entry *e = pb->entry;
	unsigned long flags;
	bool kick = true;

	if (!e)
		return DM_ENDIO_DONE;

	spin_lock_irqsave(&lw->lock, flags);
	if (e->flags & LW_FLUSH) {
		/* The covered writes first, then the flush itself. */
		list_splice_tail_init(&e->list, &lw->to_log);
		list_add_tail(&e->list, &lw->to_log);
	} else if (e->flags & LW_FUA) {
		list_add_tail(&e->list, &lw->to_log);
	} else {
		list_add_tail(&e->list, &lw->unflushed);
		kick = false;
	}
	spin_unlock_irqrestore(&lw->lock, flags);
	if (kick)
		queue_work(lw->wq, &lw->log_work);
	return DM_ENDIO_DONE;
}

static void lw_status(struct dm_target *ti, status_type_t type,
		      unsigned int status_flags, char *result,
		      unsigned int maxlen)
{
	struct log_writes *lw = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&lw->lock);
		DMEMIT("%llu %llu", lw->logged_entries,
		       (unsigned long long)lw->next_sector - 1);
		if (!lw->logging)
			DMEMIT(" logging_disabled");
		spin_unlock_irq(&lw->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s", lw->dev->name, lw->logdev->name);
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int lw_message(struct dm_target *ti, unsigned int argc, char **argv,
		      char *result, unsigned int maxlen)
{
	struct log_writes *lw = ti->private;

	/* Stock checks the word count before the message name. */
	if (argc != 2) {
		DMWARN("Invalid log-writes message arguments, expect 2 arguments, got %d",
		       argc);
		return -EINVAL;
	}
	if (strcasecmp(argv[0], "mark")) {
		DMWARN("Unrecognised log writes target message received: %s",
		       argv[0]);
		return -EINVAL;
	}
	return lw_mark(lw, argv[1]);
}

static int lw_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct log_writes *lw = ti->private;

	*bdev = lw->dev->bdev;
	return ti->len != bdev_nr_sectors(*bdev);
}

static int lw_iterate_devices(struct dm_target *ti,
			      iterate_devices_callout_fn fn, void *data)
{
	struct log_writes *lw = ti->private;

	return fn(ti, lw->dev, 0, ti->len, data);
}

static void lw_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct log_writes *lw = ti->private;
	struct block_device *bdev = lw->dev->bdev;

	/* Discards are logged even when the data device cannot take them. */
	if (!bdev_max_discard_sectors(bdev)) {
		lw->discard_ok = false;
		limits->discard_granularity = lw->blksz;
		limits->max_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		limits->max_hw_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
	}
	limits->logical_block_size = bdev_logical_block_size(bdev);
	limits->physical_block_size = bdev_physical_block_size(bdev);
	limits->io_min = limits->physical_block_size;
}

static struct target_type lw_target = {
	.name = "log-writes",
	.version = {1, 1, 0},
	.module = THIS_MODULE,
	.ctr = lw_ctr,
	.dtr = lw_dtr,
	.map = lw_map,
	.end_io = lw_end_io,
	.status = lw_status,
	.message = lw_message,
	.prepare_ioctl = lw_prepare_ioctl,
	.iterate_devices = lw_iterate_devices,
	.io_hints = lw_io_hints,
};

static int __init lw_init(void)
{
	int r = dm_register_target(&lw_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit lw_exit(void)
{
	dm_unregister_target(&lw_target);
}

module_init(lw_init);
module_exit(lw_exit);

MODULE_DESCRIPTION(DM_NAME " target that logs writes for crash-consistency replay");
MODULE_LICENSE("GPL");
