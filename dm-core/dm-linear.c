// SPDX-License-Identifier: GPL-2.0-only
/*
 * linear: maps the target's range onto a contiguous range of one device.
 */
#include "dm-core.h"

#include <linux/module.h>
#include <linux/slab.h>

#define DM_MSG_PREFIX "linear"

struct linear_c {
	struct dm_dev *dev;
	sector_t start;
};

/* <dev_path> <offset> */
static int linear_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct linear_c *lc;
	unsigned long long start;
	int r;

	if (argc != 2) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}

	lc = kmalloc(sizeof(*lc), GFP_KERNEL);
	if (!lc) {
		ti->error = "Cannot allocate linear context";
		return -ENOMEM;
	}

	r = -EINVAL;
	if (kstrtoull(argv[1], 10, &start) || start != (sector_t)start) {
		ti->error = "Invalid device sector";
		goto bad;
	}
	lc->start = start;

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &lc->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_secure_erase_bios = 1;
	ti->num_write_zeroes_bios = 1;
	ti->private = lc;
	return 0;
bad:
	kfree(lc);
	return r;
}

static void linear_dtr(struct dm_target *ti)
{
	struct linear_c *lc = ti->private;

	dm_put_device(ti, lc->dev);
	kfree(lc);
}

static int linear_map(struct dm_target *ti, struct bio *bio)
{
	struct linear_c *lc = ti->private;

	bio_set_dev(bio, lc->dev->bdev);
	bio->bi_iter.bi_sector = lc->start +
		dm_target_offset(ti, bio->bi_iter.bi_sector);
	return DM_MAPIO_REMAPPED;
}

static void linear_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	struct linear_c *lc = ti->private;
	size_t sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		result[0] = '\0';
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %llu", lc->dev->name, (unsigned long long)lc->start);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",device_name=%s,start=%llu;", lc->dev->name,
		       (unsigned long long)lc->start);
		break;
	}
}

static int linear_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct linear_c *lc = ti->private;
	struct dm_dev *dev = lc->dev;

	*bdev = dev->bdev;
	/* Only a target covering the whole device passes ioctls freely. */
	if (lc->start || ti->len != bdev_nr_sectors(dev->bdev))
		return 1;
	return 0;
}

#ifdef CONFIG_BLK_DEV_ZONED
static int linear_report_zones(struct dm_target *ti,
			       struct dm_report_zones_args *args,
			       unsigned int nr_zones)
{
	struct linear_c *lc = ti->private;
	sector_t sector = lc->start + dm_target_offset(ti, args->next_sector);

	return dm_report_zones(lc->dev->bdev, lc->start, sector, args,
			       nr_zones);
}
#else
#define linear_report_zones NULL
#endif

static int linear_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct linear_c *lc = ti->private;

	return fn(ti, lc->dev, lc->start, ti->len, data);
}

static struct target_type linear_target = {
	.name = "linear",
	.version = {1, 4, 0},
	.features = DM_TARGET_PASSES_INTEGRITY | DM_TARGET_NOWAIT |
		    DM_TARGET_ZONED_HM | DM_TARGET_PASSES_CRYPTO,
	.module = THIS_MODULE,
	.ctr = linear_ctr,
	.dtr = linear_dtr,
	.map = linear_map,
	.status = linear_status,
	.prepare_ioctl = linear_prepare_ioctl,
	.report_zones = linear_report_zones,
	.iterate_devices = linear_iterate_devices,
};

int dm_linear_init(void)
{
	return dm_register_target(&linear_target);
}

void dm_linear_exit(void)
{
	dm_unregister_target(&linear_target);
}
