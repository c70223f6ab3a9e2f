// SPDX-License-Identifier: GPL-2.0-only
/*
 * flakey: a linear mapping that misbehaves on a timetable.
 *
 * The device is "up" for up_interval seconds and then "down" for
 * down_interval seconds, repeating from table load. While down it fails
 * all I/O, or, with features, drops or fails only writes, or corrupts one
 * byte of matching bios.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/jiffies.h>

#define DM_MSG_PREFIX "flakey"

struct flakey {
	struct dm_dev *dev;
	sector_t start;
	unsigned long born;		/* jiffies at construction */
	unsigned int up_interval;	/* seconds */
	unsigned int down_interval;	/* seconds */
	bool drop_writes;
	bool error_writes;
	/* corrupt_bio_byte: 0 means off, else the 1-based byte to hit */
	unsigned int corrupt_byte;
	int corrupt_dir;		/* READ or WRITE */
	unsigned int corrupt_value;
	unsigned int corrupt_flags;	/* bi_opf bits a bio must carry */
};

struct flakey_bio {
	bool while_down;
	struct bvec_iter iter;		/* data range, for corrupting reads */
};

static const struct dm_arg feature_count_arg = {
	0, 6, "Invalid number of feature args"
};

static int parse_corrupt(struct dm_arg_set *as, unsigned int *left,
			 struct flakey *f, struct dm_target *ti)
{
	static const struct dm_arg byte_arg = {
		1, UINT_MAX, "Invalid corrupt bio byte"
	};
	static const struct dm_arg value_arg = {
		0, 255, "Invalid corrupt value to write into bio byte (0-255)"
	};
	static const struct dm_arg flags_arg = {
		0, UINT_MAX, "Invalid corrupt bio flags mask"
	};
	const char *dir;
	int r;

	if (!*left) {
		ti->error = "Feature corrupt_bio_byte requires parameters";
		return -EINVAL;
	}
	r = dm_read_arg(&byte_arg, as, &f->corrupt_byte, &ti->error);
	if (r)
		return r;
	(*left)--;

	dir = dm_shift_arg(as);
	if (dir && !strcasecmp(dir, "w")) {
		f->corrupt_dir = WRITE;
	} else if (dir && !strcasecmp(dir, "r")) {
		f->corrupt_dir = READ;
	} else {
		ti->error = "Invalid corrupt bio direction (r or w)";
		return -EINVAL;
	}
	(*left)--;

	r = dm_read_arg(&value_arg, as, &f->corrupt_value, &ti->error);
	if (r)
		return r;
	(*left)--;

	r = dm_read_arg(&flags_arg, as, &f->corrupt_flags, &ti->error);
	if (r)
		return r;
	(*left)--;
	return 0;
}

static int parse_features(struct dm_arg_set *as, struct flakey *f,
			  struct dm_target *ti)
{
	unsigned int left;
	const char *word;
	int r;

	if (!as->argc)
		return 0;

	r = dm_read_arg_group(&feature_count_arg, as, &left, &ti->error);
	if (r)
		return r;

	while (left) {
		word = dm_shift_arg(as);
		left--;
		if (!word) {
			ti->error = "Insufficient feature arguments";
			return -EINVAL;
		}

		if (!strcasecmp(word, "drop_writes")) {
			if (f->drop_writes) {
				ti->error = "Feature drop_writes duplicated";
				return -EINVAL;
			}
			f->drop_writes = true;
			if (f->error_writes) {
				ti->error = "Feature drop_writes conflicts with feature error_writes";
				return -EINVAL;
			}
		} else if (!strcasecmp(word, "error_writes")) {
			if (f->error_writes) {
				ti->error = "Feature error_writes duplicated";
				return -EINVAL;
			}
			f->error_writes = true;
			if (f->drop_writes) {
				ti->error = "Feature error_writes conflicts with feature drop_writes";
				return -EINVAL;
			}
		} else if (!strcasecmp(word, "corrupt_bio_byte")) {
			r = parse_corrupt(as, &left, f, ti);
			if (r)
				return r;
		} else {
			ti->error = "Unrecognised flakey feature requested";
			return -EINVAL;
		}
	}

	if (f->drop_writes && f->corrupt_byte && f->corrupt_dir == WRITE) {
		ti->error = "drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set";
		return -EINVAL;
	}
	if (f->error_writes && f->corrupt_byte && f->corrupt_dir == WRITE) {
		ti->error = "error_writes is incompatible with corrupt_bio_byte with the WRITE flag set";
		return -EINVAL;
	}
	return 0;
}

/* <dev> <offset> <up> <down> [<#features> <feature>...] */
static int flakey_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	static const struct dm_arg up_arg = { 0, UINT_MAX, "Invalid up interval" };
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	unsigned long long start;
	const char *path;
	struct flakey *f;
	char dummy;
	int r;

	if (argc < 4) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	f->born = jiffies;

	path = dm_shift_arg(&as);
	r = -EINVAL;
	if (sscanf(dm_shift_arg(&as), "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start) {
		ti->error = "Invalid device sector";
		goto bad;
	}
	f->start = start;

	r = dm_read_arg(&up_arg, &as, &f->up_interval, &ti->error);
	if (r)
		goto bad;
	/* Stock reports a bad down interval with the up-interval message. */
	r = dm_read_arg(&up_arg, &as, &f->down_interval, &ti->error);
	if (r)
		goto bad;

	r = -EINVAL;
	/* A sum that wraps to zero reports as zero, as stock does. */
	if (!(f->up_interval + f->down_interval)) {
		ti->error = "Total (up + down) interval is zero";
		goto bad;
	}
	if (f->up_interval + f->down_interval < f->up_interval) {
		ti->error = "Interval overflow";
		goto bad;
	}

	r = parse_features(&as, f, ti);
	if (r)
		goto bad;

	r = dm_get_device(ti, path, dm_table_get_mode(ti->table), &f->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->per_io_data_size = sizeof(struct flakey_bio);
	ti->private = f;
	return 0;
bad:
	kfree(f);
	return r;
}

static void flakey_dtr(struct dm_target *ti)
{
	struct flakey *f = ti->private;

	dm_put_device(ti, f->dev);
	kfree(f);
}

static bool flakey_is_down(struct flakey *f)
{
	unsigned int secs = (jiffies - f->born) / HZ;

	return secs % (f->up_interval + f->down_interval) >= f->up_interval;
}

static bool corrupt_wanted(struct flakey *f, struct bio *bio, int dir)
{
	return f->corrupt_byte && f->corrupt_dir == dir &&
	       ((__force unsigned int)bio->bi_opf & f->corrupt_flags) == f->corrupt_flags;
}

/* Overwrite byte corrupt_byte of the data range ITER of BIO. */
static void corrupt_data(struct flakey *f, struct bio *bio, struct bvec_iter iter)
{
	unsigned int skip = f->corrupt_byte - 1;
	struct bio_vec bv;
	char *p;

	if (!bio_has_data(bio))
		return;

	__bio_for_each_segment(bv, bio, iter, iter) {
		if (skip >= bv.bv_len) {
			skip -= bv.bv_len;
			continue;
		}
		/* The shared zero page must never change. */
		if (bv.bv_page == ZERO_PAGE(0))
			return;
		p = bvec_kmap_local(&bv);
		p[skip] = f->corrupt_value;
		kunmap_local(p);
		DMDEBUG("corrupted byte %u of bio at sector %llu",
			f->corrupt_byte, (unsigned long long)bio->bi_iter.bi_sector);
		return;
	}
}

static void flakey_remap(struct dm_target *ti, struct bio *bio)
{
	struct flakey *f = ti->private;

	bio_set_dev(bio, f->dev->bdev);
	if (bio_sectors(bio) || op_is_zone_mgmt(bio_op(bio)))
		bio->bi_iter.bi_sector =
			f->start + dm_target_offset(ti, bio->bi_iter.bi_sector);
}

static bool only_writes_misbehave(struct flakey *f)
{
	return f->corrupt_byte || f->drop_writes || f->error_writes;
}

static int flakey_map(struct dm_target *ti, struct bio *bio)
{
	struct flakey *f = ti->private;
	struct flakey_bio *fb = dm_per_bio_data(bio, sizeof(*fb));

	fb->while_down = false;
	fb->iter = bio->bi_iter;

	if (op_is_zone_mgmt(bio_op(bio)) || !flakey_is_down(f))
		goto remap;

	fb->while_down = true;

	if (bio_data_dir(bio) == READ) {
		/* Reads fail (at completion) or are corrupted in end_io. */
		if (!only_writes_misbehave(f))
			return DM_MAPIO_KILL;
		goto remap;
	}

	if (f->drop_writes) {
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (f->error_writes) {
		bio_io_error(bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (f->corrupt_byte) {
		if (corrupt_wanted(f, bio, WRITE))
			corrupt_data(f, bio, bio->bi_iter);
		goto remap;
	}
	return DM_MAPIO_KILL;

remap:
	flakey_remap(ti, bio);
	return DM_MAPIO_REMAPPED;
}

static int flakey_end_io(struct dm_target *ti, struct bio *bio,
			 blk_status_t *error)
{
	struct flakey *f = ti->private;
	struct flakey_bio *fb = dm_per_bio_data(bio, sizeof(*fb));

	if (op_is_zone_mgmt(bio_op(bio)))
		return DM_ENDIO_DONE;

	/*
	 * Reads that got this far while down succeed; with corrupt_bio_byte
	 * they may be corrupted. Stock 6.1 does not fail them.
	 */
	if (!*error && fb->while_down && bio_data_dir(bio) == READ) {
		if (corrupt_wanted(f, bio, READ))
			corrupt_data(f, bio, fb->iter);
		else if (!only_writes_misbehave(f))
			*error = BLK_STS_IOERR;
	}
	return DM_ENDIO_DONE;
}

static void flakey_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	struct flakey *f = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
	case STATUSTYPE_IMA:
		result[0] = '\0';
		break;
	case STATUSTYPE_TABLE:
		/* Stock leaves a space after each item; tools compare lines. */
		DMEMIT("%s %llu %u %u ", f->dev->name,
		       (unsigned long long)f->start, f->up_interval,
		       f->down_interval);
		DMEMIT("%u ", f->drop_writes + f->error_writes +
		       (f->corrupt_byte ? 5 : 0));
		if (f->drop_writes)
			DMEMIT("drop_writes ");
		else if (f->error_writes)
			DMEMIT("error_writes ");
		if (f->corrupt_byte)
			DMEMIT("corrupt_bio_byte %u %c %u %u ", f->corrupt_byte,
			       f->corrupt_dir == WRITE ? 'w' : 'r',
			       f->corrupt_value, f->corrupt_flags);
		break;
	}
}

static int flakey_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct flakey *f = ti->private;

	*bdev = f->dev->bdev;
	/* Pass ioctls through only when we cover the whole device. */
	return f->start || ti->len != bdev_nr_sectors(*bdev);
}

#ifdef CONFIG_BLK_DEV_ZONED
static int flakey_report_zones(struct dm_target *ti,
			       struct dm_report_zones_args *args,
			       unsigned int nr_zones)
{
	struct flakey *f = ti->private;

	return dm_report_zones(f->dev->bdev, f->start,
			       f->start + dm_target_offset(ti, args->next_sector),
			       args, nr_zones);
}
#else
#define flakey_report_zones NULL
#endif

static int flakey_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct flakey *f = ti->private;

	return fn(ti, f->dev, f->start, ti->len, data);
}

static struct target_type flakey_target = {
	.name = "flakey",
	.version = {1, 5, 0},
	.features = DM_TARGET_ZONED_HM | DM_TARGET_PASSES_CRYPTO,
	.report_zones = flakey_report_zones,
	.module = THIS_MODULE,
	.ctr = flakey_ctr,
	.dtr = flakey_dtr,
	.map = flakey_map,
	.end_io = flakey_end_io,
	.status = flakey_status,
	.prepare_ioctl = flakey_prepare_ioctl,
	.iterate_devices = flakey_iterate_devices,
};

static int __init flakey_init(void)
{
	int r = dm_register_target(&flakey_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit flakey_exit(void)
{
	dm_unregister_target(&flakey_target);
}

module_init(flakey_init);
module_exit(flakey_exit);

MODULE_DESCRIPTION(DM_NAME " target that fails or corrupts I/O on a timetable");
MODULE_LICENSE("GPL");
