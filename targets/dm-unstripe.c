// SPDX-License-Identifier: GPL-2.0-only
/*
 * unstriped: expose one member of a striped layout as a linear device.
 *
 * A device striped over N members with chunk C holds chunk k of member i
 * at physical chunk k * N + i. Given N, C and i, this target maps its own
 * chunk k there, so a RAID-0 set can be taken apart without copying.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/math64.h>

#define DM_MSG_PREFIX "unstriped"

struct unstripe {
	struct dm_dev *dev;
	sector_t start;		/* offset of the striped area on dev */
	u32 stripes;
	u32 index;		/* which member this target exposes */
	u32 chunk;		/* sectors per chunk */
};

static int unstripe_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct unstripe *u;
	unsigned long long start;
	u32 rem;
	char dummy;
	int r;

	if (argc != 5) {
		ti->error = "Invalid number of arguments";
		return -EINVAL;
	}

	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (!u) {
		ti->error = "Memory allocation for unstriped context failed";
		return -ENOMEM;
	}

	r = -EINVAL;
	if (kstrtou32(argv[0], 10, &u->stripes) || !u->stripes) {
		ti->error = "Invalid stripe count";
		goto bad;
	}
	if (kstrtou32(argv[1], 10, &u->chunk) || !u->chunk) {
		ti->error = "Invalid chunk_size";
		goto bad;
	}
	if (kstrtou32(argv[2], 10, &u->index)) {
		ti->error = "Invalid stripe number";
		goto bad;
	}
	/* Stock accepts index == #stripes (off by one); so must we. */
	if (u->index > u->stripes) {
		ti->error = "Please provide stripe between [0, # of stripes]";
		goto bad;
	}
	if (sscanf(argv[4], "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start) {
		ti->error = "Invalid striped device offset";
		goto bad;
	}
	u->start = start;

	div_u64_rem(ti->len, u->chunk, &rem);
	if (rem) {
		ti->error = "Target length not divisible by chunk size";
		goto bad;
	}

	r = dm_get_device(ti, argv[3], dm_table_get_mode(ti->table), &u->dev);
	if (r) {
		ti->error = "Couldn't get striped device";
		goto bad;
	}

	r = dm_set_target_max_io_len(ti, u->chunk);
	if (r) {
		ti->error = "Failed to set max io len";
		dm_put_device(ti, u->dev);
		goto bad;
	}

	ti->private = u;
	return 0;
bad:
	kfree(u);
	return r;
}

static void unstripe_dtr(struct dm_target *ti)
{
	struct unstripe *u = ti->private;

	dm_put_device(ti, u->dev);
	kfree(u);
}

/* Bios never cross a chunk (max_io_len), so one remap per bio suffices. */
static sector_t unstripe_sector(struct unstripe *u, sector_t sector)
{
	u32 offset;
	u64 chunk = div_u64_rem(sector, u->chunk, &offset);

	return u->start + (chunk * u->stripes + u->index) * u->chunk + offset;
}

static int unstripe_map(struct dm_target *ti, struct bio *bio)
{
	struct unstripe *u = ti->private;

	bio_set_dev(bio, u->dev->bdev);
	if (bio_sectors(bio) || op_is_zone_mgmt(bio_op(bio)))
		bio->bi_iter.bi_sector =
			unstripe_sector(u, dm_target_offset(ti, bio->bi_iter.bi_sector));
	return DM_MAPIO_REMAPPED;
}

static void unstripe_status(struct dm_target *ti, status_type_t type,
			    unsigned int status_flags, char *result,
			    unsigned int maxlen)
{
	struct unstripe *u = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
	case STATUSTYPE_IMA:
		result[0] = '\0';
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u %u %u %s %llu", u->stripes, u->chunk, u->index,
		       u->dev->name, (unsigned long long)u->start);
		break;
	}
}

static int unstripe_iterate_devices(struct dm_target *ti,
				    iterate_devices_callout_fn fn, void *data)
{
	struct unstripe *u = ti->private;

	return fn(ti, u->dev, u->start, ti->len, data);
}

static void unstripe_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct unstripe *u = ti->private;

	limits->chunk_sectors = u->chunk;
}

static struct target_type unstripe_target = {
	.name = "unstriped",
	.version = {1, 1, 0},
	.features = DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = unstripe_ctr,
	.dtr = unstripe_dtr,
	.map = unstripe_map,
	.status = unstripe_status,
	.iterate_devices = unstripe_iterate_devices,
	.io_hints = unstripe_io_hints,
};

static int __init unstripe_init(void)
{
	return dm_register_target(&unstripe_target);
}

static void __exit unstripe_exit(void)
{
	dm_unregister_target(&unstripe_target);
}

module_init(unstripe_init);
module_exit(unstripe_exit);

MODULE_DESCRIPTION(DM_NAME " target that exposes one member of a striped set");
MODULE_ALIAS("dm-unstriped");
MODULE_LICENSE("GPL");
