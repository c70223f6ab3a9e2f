// SPDX-License-Identifier: GPL-2.0-only
/*
 * ebs: emulate a smaller logical block size over a device with a larger one,
 * e.g. 512-byte sectors over a 4K-sector disk.
 *
 * Bios that cover whole underlying blocks go straight down (after dropping
 * any cached copy of those blocks). Others are handled by an ordered worker
 * through dm-bufio, which reads the underlying blocks, merges the partial
 * writes into them and writes them back before the write bios complete.
 * Sizes on the table line are in 512-byte sectors.
 */
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/workqueue.h>

#define DM_MSG_PREFIX "ebs"

struct ebs {
	struct dm_dev *dev;
	struct dm_bufio_client *bufio;
	struct workqueue_struct *wq;
	struct work_struct work;
	spinlock_t lock;		/* queued */
	struct bio_list queued;
	sector_t start;
	unsigned int e_bs;		/* emulated block size, sectors */
	unsigned int u_bs;		/* underlying block size, sectors */
	unsigned int block_shift;	/* log2(u_bs) */
	bool u_bs_set;			/* given on the table line */
};

static bool valid_bs(unsigned int bs)
{
	return bs && is_power_of_2(bs);
}

static bool unaligned(struct ebs *ec, sector_t s)
{
	return s & (ec->u_bs - 1);
}

/* Copy between the bio's pages and the buffered underlying blocks. */
static int ebs_rw(struct ebs *ec, struct bio *bio)
{
	unsigned int bsz = ec->u_bs << SECTOR_SHIFT;
	u64 pos = (u64)bio->bi_iter.bi_sector << SECTOR_SHIFT;
	bool write = op_is_write(bio_op(bio));
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		unsigned int done = 0;
		char *p = bvec_kmap_local(&bv);

		while (done < bv.bv_len) {
			sector_t block = pos >> (ec->block_shift + SECTOR_SHIFT);
			unsigned int off = pos & (bsz - 1);
			unsigned int n = min(bv.bv_len - done, bsz - off);
			struct dm_buffer *b;
			char *data;

			if (write && !off && n == bsz)
				data = dm_bufio_new(ec->bufio, block, &b);
			else
				data = dm_bufio_read(ec->bufio, block, &b);
			if (IS_ERR(data)) {
				kunmap_local(p);
				return PTR_ERR(data);
			}
			if (write) {
				memcpy(data + off, p + done, n);
				dm_bufio_mark_partial_buffer_dirty(b, off, off + n);
			} else {
				memcpy(p + done, data + off, n);
			}
			dm_bufio_release(b);
			done += n;
			pos += n;
		}
		kunmap_local(p);
	}
	return 0;
}

/* Discard the whole underlying blocks inside the range; drop their cache. */
static int ebs_discard(struct ebs *ec, struct bio *bio)
{
	sector_t first = bio->bi_iter.bi_sector, end = bio_end_sector(bio);
	sector_t b0 = (first + ec->u_bs - 1) >> ec->block_shift;
	sector_t b1 = end >> ec->block_shift;

	if (b1 <= b0)
		return 0;
	dm_bufio_forget_buffers(ec->bufio, b0, b1 - b0);
	return dm_bufio_issue_discard(ec->bufio, b0, b1 - b0);
}

static void ebs_work(struct work_struct *w)
{
	struct ebs *ec = container_of(w, struct ebs, work);
	struct bio_list todo, writes;
	bool want_flush = false;
	struct bio *bio;
	int r;

	bio_list_init(&writes);
	spin_lock_irq(&ec->lock);
	todo = ec->queued;
	bio_list_init(&ec->queued);
	spin_unlock_irq(&ec->lock);

	while ((bio = bio_list_pop(&todo))) {
		switch (bio_op(bio)) {
		case REQ_OP_READ:
			r = ebs_rw(ec, bio);
			break;
		case REQ_OP_WRITE:
			want_flush |= !!(bio->bi_opf & (REQ_PREFLUSH | REQ_FUA));
			r = bio_sectors(bio) ? ebs_rw(ec, bio) : 0;
			if (!r) {
				/* Completed once the buffers are on disk. */
				bio_list_add(&writes, bio);
				continue;
			}
			break;
		case REQ_OP_DISCARD:
			r = ebs_discard(ec, bio);
			break;
		default:
			r = -EIO;
		}
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
	}

	if (bio_list_empty(&writes))
		return;
	r = dm_bufio_write_dirty_buffers(ec->bufio);
	if (!r && want_flush)
		r = dm_bufio_issue_flush(ec->bufio);
	while ((bio = bio_list_pop(&writes))) {
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
	}
}

static int ebs_map(struct dm_target *ti, struct bio *bio)
{
	struct ebs *ec = ti->private;

	bio_set_dev(bio, ec->dev->bdev);
	bio->bi_iter.bi_sector = ec->start + dm_target_offset(ti, bio->bi_iter.bi_sector);

	/*
	 * Partial blocks need read-modify-write; flushes must follow the
	 * dirty buffers. With ebs == ubs everything takes the buffered path.
	 */
	if (!bio_sectors(bio) || unaligned(ec, bio->bi_iter.bi_sector) ||
	    unaligned(ec, bio_end_sector(bio)) || ec->e_bs == ec->u_bs) {
		spin_lock_irq(&ec->lock);
		bio_list_add(&ec->queued, bio);
		spin_unlock_irq(&ec->lock);
		queue_work(ec->wq, &ec->work);
		return DM_MAPIO_SUBMITTED;
	}

	/* Direct I/O to whole blocks: cached copies would go stale. */
	dm_bufio_forget_buffers(ec->bufio, bio->bi_iter.bi_sector >> ec->block_shift,
				bio_sectors(bio) >> ec->block_shift);
	return DM_MAPIO_REMAPPED;
}

static int parse_bs(const char *s, unsigned int *bs)
{
	unsigned short v;
	char dummy;

	if (sscanf(s, "%hu%c", &v, &dummy) != 1 || !valid_bs(v))
		return -EINVAL;
	*bs = v;
	return 0;
}

/* <dev> <offset> <emulated_bs> [<underlying_bs>], sizes in sectors */
static int ebs_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	unsigned long long start;
	struct ebs *ec;
	char dummy;
	int r;

	if (argc < 3 || argc > 4) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}

	ec = kzalloc(sizeof(*ec), GFP_KERNEL);
	if (!ec) {
		ti->error = "Cannot allocate ebs context";
		return -ENOMEM;
	}

	r = -EINVAL;
	if (sscanf(argv[1], "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start || start >= ti->len) {
		ti->error = "Invalid device offset sector";
		goto bad;
	}
	ec->start = start;

	if (parse_bs(argv[2], &ec->e_bs) || ec->e_bs > PAGE_SECTORS) {
		ti->error = "Invalid emulated block size";
		goto bad;
	}
	if (argc > 3) {
		if (parse_bs(argv[3], &ec->u_bs)) {
			ti->error = "Invalid underlying block size";
			goto bad;
		}
		ec->u_bs_set = true;
	}

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &ec->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}

	r = -EINVAL;
	if (!ec->u_bs_set) {
		ec->u_bs = to_sector(bdev_logical_block_size(ec->dev->bdev));
		if (!valid_bs(ec->u_bs)) {
			ti->error = "Invalid retrieved underlying block size";
			goto bad_dev;
		}
		if (ec->e_bs == ec->u_bs)
			DMINFO("Emulation superfluous: emulated equal to underlying block size");
	}
	if (unaligned(ec, ec->start)) {
		ti->error = "Device offset must be multiple of underlying block size";
		goto bad_dev;
	}

	ec->bufio = dm_bufio_client_create(ec->dev->bdev, ec->u_bs << SECTOR_SHIFT,
					   1, 0, NULL, NULL, 0);
	if (IS_ERR(ec->bufio)) {
		ti->error = "Cannot create dm bufio client";
		r = PTR_ERR(ec->bufio);
		goto bad_dev;
	}
	ec->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!ec->wq) {
		ti->error = "Cannot create dm-" DM_MSG_PREFIX " workqueue";
		r = -ENOMEM;
		goto bad_bufio;
	}

	ec->block_shift = __ffs(ec->u_bs);
	INIT_WORK(&ec->work, ebs_work);
	bio_list_init(&ec->queued);
	spin_lock_init(&ec->lock);

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_secure_erase_bios = 0;
	ti->num_write_zeroes_bios = 0;
	ti->private = ec;
	return 0;

bad_bufio:
	dm_bufio_client_destroy(ec->bufio);
bad_dev:
	dm_put_device(ti, ec->dev);
bad:
	kfree(ec);
	return r;
}

static void ebs_target_dtr(struct dm_target *ti)
{
	struct ebs *ec = ti->private;

	destroy_workqueue(ec->wq);
	dm_bufio_client_destroy(ec->bufio);
	dm_put_device(ti, ec->dev);
	kfree(ec);
}

static void ebs_postsuspend(struct dm_target *ti)
{
	struct ebs *ec = ti->private;

	/* Drop the cache: the device may change while we are suspended. */
	flush_workqueue(ec->wq);
	dm_bufio_client_reset(ec->bufio);
}

static void ebs_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	struct ebs *ec = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %llu %u", ec->dev->name, (unsigned long long)ec->start,
		       ec->e_bs);
		if (ec->u_bs_set)
			DMEMIT(" %u", ec->u_bs);
		break;
	}
}

static int ebs_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct ebs *ec = ti->private;

	/* Only pass through if the emulation changes nothing. */
	*bdev = ec->dev->bdev;
	return ec->start || ti->len != bdev_nr_sectors(*bdev);
}

static void ebs_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct ebs *ec = ti->private;

	limits->logical_block_size = ec->e_bs << SECTOR_SHIFT;
	limits->physical_block_size = ec->u_bs << SECTOR_SHIFT;
	blk_limits_io_min(limits, limits->logical_block_size);
}

static int ebs_iterate_devices(struct dm_target *ti,
			       iterate_devices_callout_fn fn, void *data)
{
	struct ebs *ec = ti->private;

	return fn(ti, ec->dev, ec->start, ti->len, data);
}

static struct target_type ebs_target = {
	.name = "ebs",
	.version = {1, 0, 1},
	.module = THIS_MODULE,
	.ctr = ebs_ctr,
	.dtr = ebs_target_dtr,
	.map = ebs_map,
	.status = ebs_status,
	.postsuspend = ebs_postsuspend,
	.prepare_ioctl = ebs_prepare_ioctl,
	.iterate_devices = ebs_iterate_devices,
	.io_hints = ebs_io_hints,
};

static int __init ebs_init(void)
{
	int r = dm_register_target(&ebs_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit ebs_exit(void)
{
	dm_unregister_target(&ebs_target);
}

module_init(ebs_init);
module_exit(ebs_exit);

MODULE_DESCRIPTION(DM_NAME " target emulating a smaller logical block size");
MODULE_LICENSE("GPL");
