// SPDX-License-Identifier: GPL-2.0-only
/*
 * striped: RAID-0 style interleaving of fixed-size chunks over N devices.
 */
#include "dm-core.h"

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/log2.h>

#define DM_MSG_PREFIX "striped"
#define DM_IO_ERROR_THRESHOLD 15

struct stripe {
	struct dm_dev *dev;
	sector_t physical_start;
	atomic_t error_count;
};

struct stripe_c {
	u32 stripes;
	int stripes_shift;	/* -1 unless stripes is a power of two */
	sector_t stripe_width;	/* per-device length */
	u32 chunk_size;
	int chunk_size_shift;	/* -1 unless chunk_size is a power of two */
	struct dm_target *ti;
	struct work_struct trigger_event;
	struct stripe stripe[];
};

static void trigger_event(struct work_struct *work)
{
	struct stripe_c *sc = container_of(work, struct stripe_c, trigger_event);

	dm_table_event(sc->ti->table);
}

static int get_stripe(struct dm_target *ti, struct stripe_c *sc,
		      unsigned int i, char **argv)
{
	unsigned long long start;
	char dummy;
	int r;

	if (sscanf(argv[1], "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start)
		return -EINVAL;
	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table),
			  &sc->stripe[i].dev);
	if (r)
		return r;
	sc->stripe[i].physical_start = start;
	return 0;
}

/* <number of stripes> <chunk size> [<dev_path> <offset>]+ */
static int stripe_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct stripe_c *sc;
	sector_t width, tmp_len;
	u32 stripes, chunk_size;
	unsigned int i;
	int r;

	if (argc < 2) {
		ti->error = "Not enough arguments";
		return -EINVAL;
	}
	if (kstrtouint(argv[0], 10, &stripes) || !stripes) {
		ti->error = "Invalid stripe count";
		return -EINVAL;
	}
	if (kstrtouint(argv[1], 10, &chunk_size) || !chunk_size) {
		ti->error = "Invalid chunk_size";
		return -EINVAL;
	}

	width = ti->len;
	if (sector_div(width, stripes)) {
		ti->error = "Target length not divisible by number of stripes";
		return -EINVAL;
	}
	tmp_len = width;
	if (sector_div(tmp_len, chunk_size)) {
		ti->error = "Target length not divisible by chunk size";
		return -EINVAL;
	}
	if (argc != 2 + 2 * stripes) {
		ti->error = "Not enough destinations specified";
		return -EINVAL;
	}

	sc = kmalloc(struct_size(sc, stripe, stripes), GFP_KERNEL);
	if (!sc) {
		ti->error = "Memory allocation for striped context failed";
		return -ENOMEM;
	}
	INIT_WORK(&sc->trigger_event, trigger_event);
	sc->ti = ti;
	sc->stripes = stripes;
	sc->stripe_width = width;
	sc->stripes_shift = is_power_of_2(stripes) ? __ffs(stripes) : -1;
	sc->chunk_size = chunk_size;
	sc->chunk_size_shift = is_power_of_2(chunk_size) ? __ffs(chunk_size) : -1;

	r = dm_set_target_max_io_len(ti, chunk_size);
	if (r) {
		kfree(sc);
		return r;
	}
	ti->num_flush_bios = stripes;
	ti->num_discard_bios = stripes;
	ti->num_secure_erase_bios = stripes;
	ti->num_write_zeroes_bios = stripes;

	for (i = 0; i < stripes; i++) {
		argv += 2;
		r = get_stripe(ti, sc, i, argv);
		if (r < 0) {
			ti->error = "Couldn't parse stripe destination";
			while (i--)
				dm_put_device(ti, sc->stripe[i].dev);
			kfree(sc);
			return r;
		}
		atomic_set(&sc->stripe[i].error_count, 0);
	}
	ti->private = sc;
	return 0;
}

static void stripe_dtr(struct dm_target *ti)
{
	struct stripe_c *sc = ti->private;
	unsigned int i;

	for (i = 0; i < sc->stripes; i++)
		dm_put_device(ti, sc->stripe[i].dev);
	flush_work(&sc->trigger_event);
	kfree(sc);
}

/* Maps a target sector to (stripe, sector on that stripe's device area). */
static void map_sector(struct stripe_c *sc, sector_t sector, u32 *stripe,
		       sector_t *result)
{
	sector_t chunk = dm_target_offset(sc->ti, sector);
	sector_t chunk_offset;

	if (sc->chunk_size_shift < 0) {
		chunk_offset = sector_div(chunk, sc->chunk_size);
	} else {
		chunk_offset = chunk & (sc->chunk_size - 1);
		chunk >>= sc->chunk_size_shift;
	}

	if (sc->stripes_shift < 0) {
		*stripe = sector_div(chunk, sc->stripes);
	} else {
		*stripe = chunk & (sc->stripes - 1);
		chunk >>= sc->stripes_shift;
	}

	if (sc->chunk_size_shift < 0)
		chunk *= sc->chunk_size;
	else
		chunk <<= sc->chunk_size_shift;
	*result = chunk + chunk_offset;
}

/* Rounds @sector to the start of a chunk on @target_stripe's area. */
static void map_range_sector(struct stripe_c *sc, sector_t sector,
			     u32 target_stripe, sector_t *result)
{
	u32 stripe;

	map_sector(sc, sector, &stripe, result);
	if (stripe == target_stripe)
		return;

	sector = *result;
	if (sc->chunk_size_shift < 0)
		*result -= sector_div(sector, sc->chunk_size);
	else
		*result = sector & ~(sector_t)(sc->chunk_size - 1);

	if (target_stripe < stripe)
		*result += sc->chunk_size;
}

static int stripe_map_range(struct stripe_c *sc, struct bio *bio,
			    u32 target_stripe)
{
	sector_t begin, end;

	map_range_sector(sc, bio->bi_iter.bi_sector, target_stripe, &begin);
	map_range_sector(sc, bio_end_sector(bio), target_stripe, &end);
	if (begin < end) {
		bio_set_dev(bio, sc->stripe[target_stripe].dev->bdev);
		bio->bi_iter.bi_sector = begin +
			sc->stripe[target_stripe].physical_start;
		bio->bi_iter.bi_size = to_bytes(end - begin);
		return DM_MAPIO_REMAPPED;
	}
	/* This stripe holds nothing of the range. */
	bio_endio(bio);
	return DM_MAPIO_SUBMITTED;
}

static int stripe_map(struct dm_target *ti, struct bio *bio)
{
	struct stripe_c *sc = ti->private;
	u32 stripe;
	unsigned int nr;

	if (bio->bi_opf & REQ_PREFLUSH) {
		nr = dm_bio_get_target_bio_nr(bio);
		bio_set_dev(bio, sc->stripe[nr].dev->bdev);
		return DM_MAPIO_REMAPPED;
	}
	switch (bio_op(bio)) {
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		nr = dm_bio_get_target_bio_nr(bio);
		return stripe_map_range(sc, bio, nr);
	default:
		break;
	}

	map_sector(sc, bio->bi_iter.bi_sector, &stripe, &bio->bi_iter.bi_sector);
	bio->bi_iter.bi_sector += sc->stripe[stripe].physical_start;
	bio_set_dev(bio, sc->stripe[stripe].dev->bdev);
	return DM_MAPIO_REMAPPED;
}

static void stripe_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	struct stripe_c *sc = ti->private;
	unsigned int sz = 0;
	unsigned int i;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%d ", sc->stripes);
		for (i = 0; i < sc->stripes; i++)
			DMEMIT("%s ", sc->stripe[i].dev->name);
		DMEMIT("1 ");
		for (i = 0; i < sc->stripes; i++)
			DMEMIT("%c", atomic_read(&sc->stripe[i].error_count) ?
			       'D' : 'A');
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%d %llu", sc->stripes, (unsigned long long)sc->chunk_size);
		for (i = 0; i < sc->stripes; i++)
			DMEMIT(" %s %llu", sc->stripe[i].dev->name,
			       (unsigned long long)sc->stripe[i].physical_start);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",stripes=%d,chunk_size=%llu", sc->stripes,
		       (unsigned long long)sc->chunk_size);
		for (i = 0; i < sc->stripes; i++) {
			DMEMIT(",stripe_%d_device_name=%s", i,
			       sc->stripe[i].dev->name);
			DMEMIT(",stripe_%d_physical_start=%llu", i,
			       (unsigned long long)sc->stripe[i].physical_start);
			DMEMIT(",stripe_%d_status=%c", i,
			       atomic_read(&sc->stripe[i].error_count) ?
			       'D' : 'A');
		}
		DMEMIT(";");
		break;
	}
}

static int stripe_end_io(struct dm_target *ti, struct bio *bio,
			 blk_status_t *error)
{
	struct stripe_c *sc = ti->private;
	dev_t dev = bio->bi_bdev->bd_dev;
	unsigned int i;

	if (!*error)
		return DM_ENDIO_DONE;
	if (bio->bi_opf & REQ_RAHEAD)
		return DM_ENDIO_DONE;
	if (*error == BLK_STS_NOTSUPP)
		return DM_ENDIO_DONE;

	/* Charge the error to every stripe living on the failing device. */
	for (i = 0; i < sc->stripes; i++) {
		if (sc->stripe[i].dev->bdev->bd_dev == dev) {
			atomic_inc(&sc->stripe[i].error_count);
			if (atomic_read(&sc->stripe[i].error_count) <
			    DM_IO_ERROR_THRESHOLD)
				schedule_work(&sc->trigger_event);
		}
	}
	return DM_ENDIO_DONE;
}

static int stripe_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct stripe_c *sc = ti->private;
	unsigned int i;
	int r = 0;

	for (i = 0; !r && i < sc->stripes; i++)
		r = fn(ti, sc->stripe[i].dev, sc->stripe[i].physical_start,
		       sc->stripe_width, data);
	return r;
}

static void stripe_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct stripe_c *sc = ti->private;
	unsigned int chunk = sc->chunk_size << SECTOR_SHIFT;

	blk_limits_io_min(limits, chunk);
	blk_limits_io_opt(limits, chunk * sc->stripes);
}

static struct target_type stripe_target = {
	.name = "striped",
	.version = {1, 6, 0},
	.features = DM_TARGET_PASSES_INTEGRITY | DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = stripe_ctr,
	.dtr = stripe_dtr,
	.map = stripe_map,
	.end_io = stripe_end_io,
	.status = stripe_status,
	.iterate_devices = stripe_iterate_devices,
	.io_hints = stripe_io_hints,
};

int dm_stripe_init(void)
{
	return dm_register_target(&stripe_target);
}

void dm_stripe_exit(void)
{
	dm_unregister_target(&stripe_target);
}
