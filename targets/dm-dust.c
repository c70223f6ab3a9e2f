// SPDX-License-Identifier: GPL-2.0-only
/*
 * dust: emulate a disk with bad blocks.
 *
 * The device is a linear mapping cut into blocks of blksz bytes. A list of
 * bad blocks is kept in an rbtree. While enabled, reads of a bad block fail;
 * a write to a bad block fails while its write-fail count lasts and then
 * "remaps" the block, taking it off the list, as a real drive would.
 * Block numbers count from the start of the underlying device.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/rbtree.h>
#include <linux/slab.h>

#define DM_MSG_PREFIX "dust"

#define DUST_MAX_BLOCK_SECTORS 2097152

struct bad_block {
	struct rb_node node;
	u64 block;
	u8 write_fails;		/* writes to fail before the block heals */
};

struct dust {
	struct dm_dev *dev;
	sector_t start;
	unsigned int blksz;		/* bytes */
	unsigned int block_shift;	/* log2 of sectors per block */
	unsigned int sect_per_block;

	spinlock_t lock;		/* the tree and count */
	struct rb_root bad;
	u64 nr_bad;
	bool fail_reads;
	bool quiet;
};

static struct bad_block *bb_find(struct rb_root *root, u64 block)
{
	struct rb_node *n = root->rb_node;

	while (n) {
		struct bad_block *bb = rb_entry(n, struct bad_block, node);

		if (block < bb->block)
			n = n->rb_left;
		else if (block > bb->block)
			n = n->rb_right;
		else
			return bb;
	}
	return NULL;
}

static bool bb_insert(struct rb_root *root, struct bad_block *new)
{
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		struct bad_block *bb = rb_entry(*link, struct bad_block, node);

		parent = *link;
		if (new->block < bb->block)
			link = &(*link)->rb_left;
		else if (new->block > bb->block)
			link = &(*link)->rb_right;
		else
			return false;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, root);
	return true;
}

static u64 bb_free_all(struct rb_root *root)
{
	struct bad_block *bb, *next;
	u64 n = 0;

	rbtree_postorder_for_each_entry_safe(bb, next, root, node) {
		kfree(bb);
		n++;
	}
	*root = RB_ROOT;
	return n;
}

/*
 * Kernel log lines and message replies keep stock's wording, including the
 * function-name prefixes, because the admin guide and scripts quote them.
 */
static int dust_add(struct dust *d, u64 block, u8 write_fails)
{
	struct bad_block *bb;

	bb = kmalloc(sizeof(*bb), GFP_KERNEL);
	if (!bb) {
		if (!d->quiet)
			DMERR("dust_add_block: badblock allocation failed");
		return -ENOMEM;
	}
	bb->block = block;
	bb->write_fails = write_fails;

	spin_lock_irq(&d->lock);
	if (!bb_insert(&d->bad, bb)) {
		spin_unlock_irq(&d->lock);
		if (!d->quiet)
			DMERR("dust_add_block: block %llu already in badblocklist",
			      block);
		kfree(bb);
		return -EINVAL;
	}
	d->nr_bad++;
	spin_unlock_irq(&d->lock);
	if (!d->quiet)
		DMINFO("dust_add_block: badblock added at block %llu with write fail count %u",
		       block, write_fails);
	return 0;
}

static int dust_remove(struct dust *d, u64 block)
{
	struct bad_block *bb;

	spin_lock_irq(&d->lock);
	bb = bb_find(&d->bad, block);
	if (!bb) {
		spin_unlock_irq(&d->lock);
		if (!d->quiet)
			DMERR("dust_remove_block: block %llu not found in badblocklist",
			      block);
		return -EINVAL;
	}
	rb_erase(&bb->node, &d->bad);
	d->nr_bad--;
	spin_unlock_irq(&d->lock);
	kfree(bb);
	if (!d->quiet)
		DMINFO("dust_remove_block: badblock removed at block %llu", block);
	return 0;
}

static int dust_query(struct dust *d, u64 block, char *result,
		      unsigned int maxlen)
{
	unsigned int sz = 0;
	bool found;

	spin_lock_irq(&d->lock);
	found = bb_find(&d->bad, block);
	spin_unlock_irq(&d->lock);
	DMEMIT("dust_query_block: block %llu %sfound in badblocklist", block,
	       found ? "" : "not ");
	return 1;
}

static int dust_clear(struct dust *d, char *result, unsigned int maxlen)
{
	struct rb_root old;
	unsigned int sz = 0;

	spin_lock_irq(&d->lock);
	old = d->bad;
	d->bad = RB_ROOT;
	d->nr_bad = 0;
	spin_unlock_irq(&d->lock);

	if (bb_free_all(&old))
		DMEMIT("dust_clear_badblocks: badblocks cleared");
	else
		DMEMIT("dust_clear_badblocks: no badblocks found");
	return 1;
}

static int dust_list(struct dust *d, char *result, unsigned int maxlen)
{
	unsigned int sz = 0;
	struct rb_node *n;

	spin_lock_irq(&d->lock);
	for (n = rb_first(&d->bad); n; n = rb_next(n))
		DMEMIT("%llu\n", rb_entry(n, struct bad_block, node)->block);
	spin_unlock_irq(&d->lock);
	if (!sz)
		DMEMIT("No blocks in badblocklist");
	return 1;
}

/* Bios never span blocks (max_io_len), so one lookup decides. */
static int dust_map(struct dm_target *ti, struct bio *bio)
{
	struct dust *d = ti->private;
	struct bad_block *bb;
	int r = DM_MAPIO_REMAPPED;
	unsigned long flags;
	u64 block;

	bio_set_dev(bio, d->dev->bdev);
	if (!bio_sectors(bio))
		return DM_MAPIO_REMAPPED;
	bio->bi_iter.bi_sector =
		d->start + dm_target_offset(ti, bio->bi_iter.bi_sector);

	if (!READ_ONCE(d->fail_reads))
		return DM_MAPIO_REMAPPED;

	block = bio->bi_iter.bi_sector >> d->block_shift;
	spin_lock_irqsave(&d->lock, flags);
	bb = bb_find(&d->bad, block);
	if (!bb)
		goto out;
	if (bio_data_dir(bio) == READ || bb->write_fails) {
		if (bio_data_dir(bio) == WRITE)
			bb->write_fails--;
		r = DM_MAPIO_KILL;
		goto out;
	}
	/* A successful write heals the block. */
	rb_erase(&bb->node, &d->bad);
	d->nr_bad--;
	kfree(bb);
	if (!d->quiet)
		DMINFO("block %llu removed from badblocklist by write", block);
out:
	spin_unlock_irqrestore(&d->lock, flags);
	return r;
}

static int parse_block(struct dust *d, const char *s, u64 *block)
{
	sector_t blocks = bdev_nr_sectors(d->dev->bdev) >> d->block_shift;
	unsigned long long v;
	char dummy;

	if (sscanf(s, "%llu%c", &v, &dummy) != 1)
		return -EINVAL;
	/* Stock allows the block one past the end; so do we. */
	if (v > blocks) {
		DMERR("selected block value out of range");
		return -EINVAL;
	}
	*block = v;
	return 0;
}

static int dust_message(struct dm_target *ti, unsigned int argc, char **argv,
			char *result, unsigned int maxlen)
{
	struct dust *d = ti->private;
	const char *cmd = argv[0];
	unsigned int fails;
	char dummy;
	u64 block;

	if (argc == 1) {
		if (!strcasecmp(cmd, "addbadblock") ||
		    !strcasecmp(cmd, "removebadblock") ||
		    !strcasecmp(cmd, "queryblock")) {
			DMERR("%s requires an additional argument", cmd);
			return -EINVAL;
		}
		if (!strcasecmp(cmd, "disable")) {
			DMINFO("disabling read failures on bad sectors");
			WRITE_ONCE(d->fail_reads, false);
			return 0;
		}
		if (!strcasecmp(cmd, "enable")) {
			DMINFO("enabling read failures on bad sectors");
			WRITE_ONCE(d->fail_reads, true);
			return 0;
		}
		if (!strcasecmp(cmd, "countbadblocks")) {
			unsigned int sz = 0;

			spin_lock_irq(&d->lock);
			DMEMIT("countbadblocks: %llu badblock(s) found", d->nr_bad);
			spin_unlock_irq(&d->lock);
			return 1;
		}
		if (!strcasecmp(cmd, "clearbadblocks"))
			return dust_clear(d, result, maxlen);
		if (!strcasecmp(cmd, "quiet")) {
			d->quiet = !d->quiet;
			return 0;
		}
		if (!strcasecmp(cmd, "listbadblocks"))
			return dust_list(d, result, maxlen);
	} else if (argc == 2) {
		if (parse_block(d, argv[1], &block))
			return -EINVAL;
		if (!strcasecmp(cmd, "addbadblock"))
			return dust_add(d, block, 0);
		if (!strcasecmp(cmd, "removebadblock"))
			return dust_remove(d, block);
		if (!strcasecmp(cmd, "queryblock"))
			return dust_query(d, block, result, maxlen);
	} else if (argc == 3) {
		unsigned long long v;

		if (sscanf(argv[1], "%llu%c", &v, &dummy) != 1 ||
		    sscanf(argv[2], "%u%c", &fails, &dummy) != 1)
			return -EINVAL;
		if (fails > 255) {
			DMERR("selected write fail count out of range");
			return -EINVAL;
		}
		if (parse_block(d, argv[1], &block))
			return -EINVAL;
		if (!strcasecmp(cmd, "addbadblock"))
			return dust_add(d, block, fails);
	} else {
		DMERR("invalid number of arguments '%d'", argc);
		return -EINVAL;
	}

	DMERR("unrecognized message '%s' received", cmd);
	return -EINVAL;
}

/* <dev> <offset> <blksz> */
static int dust_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	sector_t max_sectors = min_t(sector_t, ti->len, DUST_MAX_BLOCK_SECTORS);
	unsigned long long start;
	unsigned int blksz;
	struct dust *d;
	char dummy;
	int r;

	if (argc != 3) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}
	if (kstrtouint(argv[2], 10, &blksz) || !blksz) {
		ti->error = "Invalid block size parameter";
		return -EINVAL;
	}
	if (blksz < 512) {
		ti->error = "Block size must be at least 512";
		return -EINVAL;
	}
	if (!is_power_of_2(blksz)) {
		ti->error = "Block size must be a power of 2";
		return -EINVAL;
	}
	if (to_sector(blksz) > max_sectors) {
		ti->error = "Block size is too large";
		return -EINVAL;
	}
	if (sscanf(argv[1], "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start) {
		ti->error = "Invalid device offset sector";
		return -EINVAL;
	}

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &d->dev);
	if (r) {
		ti->error = "Device lookup failed";
		kfree(d);
		return r;
	}

	d->start = start;
	d->blksz = blksz;
	d->sect_per_block = blksz >> SECTOR_SHIFT;
	d->block_shift = __ffs(d->sect_per_block);
	d->bad = RB_ROOT;
	spin_lock_init(&d->lock);

	r = dm_set_target_max_io_len(ti, d->sect_per_block);
	if (r) {
		dm_put_device(ti, d->dev);
		kfree(d);
		return r;
	}
	ti->num_discard_bios = 1;
	ti->num_flush_bios = 1;
	ti->private = d;
	return 0;
}

static void dust_dtr(struct dm_target *ti)
{
	struct dust *d = ti->private;

	bb_free_all(&d->bad);
	dm_put_device(ti, d->dev);
	kfree(d);
}

static void dust_status(struct dm_target *ti, status_type_t type,
			unsigned int status_flags, char *result,
			unsigned int maxlen)
{
	struct dust *d = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s %s %s", d->dev->name,
		       d->fail_reads ? "fail_read_on_bad_block" : "bypass",
		       d->quiet ? "quiet" : "verbose");
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %llu %u", d->dev->name, (unsigned long long)d->start,
		       d->blksz);
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int dust_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct dust *d = ti->private;

	*bdev = d->dev->bdev;
	return d->start || ti->len != bdev_nr_sectors(*bdev);
}

static int dust_iterate_devices(struct dm_target *ti,
				iterate_devices_callout_fn fn, void *data)
{
	struct dust *d = ti->private;

	return fn(ti, d->dev, d->start, ti->len, data);
}

static struct target_type dust_target = {
	.name = "dust",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = dust_ctr,
	.dtr = dust_dtr,
	.map = dust_map,
	.message = dust_message,
	.status = dust_status,
	.prepare_ioctl = dust_prepare_ioctl,
	.iterate_devices = dust_iterate_devices,
};

static int __init dust_init(void)
{
	return dm_register_target(&dust_target);
}

static void __exit dust_exit(void)
{
	dm_unregister_target(&dust_target);
}

module_init(dust_init);
module_exit(dust_exit);

MODULE_DESCRIPTION(DM_NAME " target that emulates bad blocks");
MODULE_LICENSE("GPL");
