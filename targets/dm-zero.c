// SPDX-License-Identifier: GPL-2.0-only
/*
 * zero: a device that reads as zeroes and swallows writes.
 *
 * Useful as a sparse backing for snapshots and as a test sink.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/bio.h>

#define DM_MSG_PREFIX "zero"

static int zero_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	if (argc) {
		ti->error = "No arguments required";
		return -EINVAL;
	}

	/*
	 * Stock asks for one discard bio but never advertises discard
	 * support, so the block layer refuses discards before they get here.
	 */
	ti->num_discard_bios = 1;
	return 0;
}

static int zero_map(struct dm_target *ti, struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		/* Caching zeroes read ahead would only waste page cache. */
		if (bio->bi_opf & REQ_RAHEAD)
			return DM_MAPIO_KILL;
		zero_fill_bio(bio);
		break;
	case REQ_OP_WRITE:
		break;
	default:
		return DM_MAPIO_KILL;
	}

	bio_endio(bio);
	return DM_MAPIO_SUBMITTED;
}

static struct target_type zero_target = {
	.name = "zero",
	.version = {1, 1, 0},
	.features = DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = zero_ctr,
	.map = zero_map,
};

static int __init zero_init(void)
{
	return dm_register_target(&zero_target);
}

static void __exit zero_exit(void)
{
	dm_unregister_target(&zero_target);
}

module_init(zero_init);
module_exit(zero_exit);

MODULE_DESCRIPTION(DM_NAME " target that reads zeroes and discards writes");
MODULE_LICENSE("GPL");
