// SPDX-License-Identifier: GPL-2.0-only
/*
 * switch: route each fixed-size region of the device to one of N paths.
 *
 * The device is cut into regions of region_size sectors. A table in memory
 * names the path for every region; it starts round-robin and is rewritten
 * at runtime with the set_region_mappings message. The offset within the
 * device is kept: sector s goes to sector path_start + s of its path.
 *
 * The table packs several path numbers into each unsigned long. Readers
 * take no lock: each slot is read and written whole.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/math64.h>
#include <linux/vmalloc.h>

#define DM_MSG_PREFIX "switch"

struct switch_path {
	struct dm_dev *dev;
	sector_t start;
};

struct switch_ctx {
	unsigned int region_size;	/* sectors */
	unsigned long nr_regions;
	unsigned int entry_bits;	/* bits per path number */
	unsigned int per_slot;		/* path numbers per unsigned long */
	unsigned long *table;
	unsigned int nr_paths;
	struct switch_path paths[];
};

static unsigned long region_of(struct switch_ctx *sc, sector_t offset)
{
	return div_u64(offset, sc->region_size);
}

static unsigned int table_read(struct switch_ctx *sc, unsigned long region)
{
	unsigned long slot = READ_ONCE(sc->table[region / sc->per_slot]);
	unsigned int shift = (region % sc->per_slot) * sc->entry_bits;

	return (slot >> shift) & ((1UL << sc->entry_bits) - 1);
}

/* Writers are serialised by the message mutex. */
static void table_write(struct switch_ctx *sc, unsigned long region,
			unsigned int path)
{
	unsigned long *p = &sc->table[region / sc->per_slot];
	unsigned int shift = (region % sc->per_slot) * sc->entry_bits;
	unsigned long mask = ((1UL << sc->entry_bits) - 1) << shift;

	WRITE_ONCE(*p, (*p & ~mask) | ((unsigned long)path << shift));
}

static unsigned int path_of(struct switch_ctx *sc, sector_t offset)
{
	unsigned int p = table_read(sc, region_of(sc, offset));

	/* Cannot happen with a valid table; never index out of range. */
	return p < sc->nr_paths ? p : 0;
}

static int alloc_table(struct dm_target *ti, struct switch_ctx *sc)
{
	unsigned long nr_slots, r;
	u64 regions;

	sc->entry_bits = 1;
	while (sc->entry_bits < BITS_PER_LONG &&
	       (1ULL << sc->entry_bits) < sc->nr_paths)
		sc->entry_bits++;
	sc->per_slot = BITS_PER_LONG / sc->entry_bits;

	regions = div_u64(ti->len + sc->region_size - 1, sc->region_size);
	if (regions >= ULONG_MAX) {
		ti->error = "Region table too large";
		return -EINVAL;
	}
	sc->nr_regions = regions;
	nr_slots = DIV_ROUND_UP(sc->nr_regions, sc->per_slot);
	if (nr_slots > ULONG_MAX / sizeof(unsigned long)) {
		ti->error = "Region table too large";
		return -EINVAL;
	}

	sc->table = vmalloc(array_size(nr_slots, sizeof(unsigned long)));
	if (!sc->table) {
		ti->error = "Cannot allocate region table";
		return -ENOMEM;
	}
	memset(sc->table, 0, nr_slots * sizeof(unsigned long));

	/* Start round-robin over the paths. */
	for (r = 0; r < sc->nr_regions; r++)
		table_write(sc, r, r % sc->nr_paths);
	return 0;
}

static void put_paths(struct dm_target *ti, struct switch_ctx *sc)
{
	unsigned int i;

	for (i = 0; i < sc->nr_paths; i++)
		dm_put_device(ti, sc->paths[i].dev);
}

/* <#paths> <region_size> <#optional_args> [<dev> <offset>]... */
static int switch_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	static const struct dm_arg args[] = {
		{1, (KMALLOC_MAX_SIZE - sizeof(struct switch_ctx)) /
			sizeof(struct switch_path), "Invalid number of paths"},
		{1, UINT_MAX, "Invalid region size"},
		{0, 0, "Invalid number of optional args"},
	};
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	unsigned int nr_paths, region_size, nr_opt, i;
	struct switch_ctx *sc;
	int r;

	r = dm_read_arg(&args[0], &as, &nr_paths, &ti->error);
	if (r)
		return -EINVAL;
	r = dm_read_arg(&args[1], &as, &region_size, &ti->error);
	if (r)
		return r;
	r = dm_read_arg_group(&args[2], &as, &nr_opt, &ti->error);
	if (r)
		return r;
	if (as.argc != nr_paths * 2) {
		ti->error = "Incorrect number of path arguments";
		return -EINVAL;
	}

	sc = kzalloc(struct_size(sc, paths, nr_paths), GFP_KERNEL);
	if (!sc) {
		ti->error = "Cannot allocate redirection context";
		return -ENOMEM;
	}
	sc->region_size = region_size;

	r = dm_set_target_max_io_len(ti, region_size);
	if (r)
		goto bad;

	for (i = 0; i < nr_paths; i++) {
		const char *path = dm_shift_arg(&as);
		unsigned long long start;
		struct switch_path *p = &sc->paths[i];

		r = dm_get_device(ti, path, dm_table_get_mode(ti->table), &p->dev);
		if (r) {
			ti->error = "Device lookup failed";
			goto bad;
		}
		if (kstrtoull(dm_shift_arg(&as), 10, &start) ||
		    start != (sector_t)start) {
			ti->error = "Invalid device starting offset";
			dm_put_device(ti, p->dev);
			r = -EINVAL;
			goto bad;
		}
		p->start = start;
		sc->nr_paths++;
	}

	r = alloc_table(ti, sc);
	if (r)
		goto bad;

	/* Any path can take a discard; one is enough. */
	ti->num_discard_bios = 1;
	ti->private = sc;
	return 0;
bad:
	put_paths(ti, sc);
	kfree(sc);
	return r;
}

static void switch_dtr(struct dm_target *ti)
{
	struct switch_ctx *sc = ti->private;

	put_paths(ti, sc);
	vfree(sc->table);
	kfree(sc);
}

static int switch_map(struct dm_target *ti, struct bio *bio)
{
	struct switch_ctx *sc = ti->private;
	sector_t offset = dm_target_offset(ti, bio->bi_iter.bi_sector);
	struct switch_path *p = &sc->paths[path_of(sc, offset)];

	bio_set_dev(bio, p->dev->bdev);
	bio->bi_iter.bi_sector = p->start + offset;
	return DM_MAPIO_REMAPPED;
}

/* Parse hex digits at *s, leaving *s at the first non-hex character. */
static unsigned long take_hex(const char **s)
{
	unsigned long v = 0;
	int d;

	while ((d = hex_to_bin(**s)) >= 0) {
		v = (v << 4) | d;
		(*s)++;
	}
	return v;
}

static int bad_arg(const char *arg)
{
	DMWARN("invalid set_region_mappings argument: '%s'", arg);
	return -EINVAL;
}

/* R<cycle>,<count>: copy the last <cycle> mappings forward <count> times. */
static int repeat_mappings(struct switch_ctx *sc, const char *arg,
			   unsigned long *region)
{
	const char *s = arg + 1;
	unsigned long cycle, count;

	if (*s == ',')
		return bad_arg(arg);
	cycle = take_hex(&s);
	if (*s != ',')
		return bad_arg(arg);
	s++;
	if (!*s)
		return bad_arg(arg);
	count = take_hex(&s);
	if (*s)
		return bad_arg(arg);

	if (!cycle || cycle - 1 > *region) {
		DMWARN("invalid set_region_mappings cycle length: %lu > %lu",
		       cycle - 1, *region);
		return -EINVAL;
	}
	if (*region + count < *region || *region + count >= sc->nr_regions) {
		DMWARN("invalid set_region_mappings region number: %lu + %lu >= %lu",
		       *region, count, sc->nr_regions);
		return -EINVAL;
	}
	while (count--) {
		(*region)++;
		table_write(sc, *region, table_read(sc, *region - cycle));
	}
	return 0;
}

/* [<region>]:<path>, all hex; an empty region means the one after the last. */
static int set_mapping(struct switch_ctx *sc, const char *arg,
		       unsigned long *region)
{
	const char *s = arg;
	unsigned long path;

	if (*s == ':') {
		(*region)++;
	} else {
		*region = take_hex(&s);
		if (*s != ':')
			return bad_arg(arg);
	}
	s++;
	if (!*s)
		return bad_arg(arg);
	path = take_hex(&s);
	if (*s)
		return bad_arg(arg);

	if (*region >= sc->nr_regions) {
		DMWARN("invalid set_region_mappings region number: %lu >= %lu",
		       *region, sc->nr_regions);
		return -EINVAL;
	}
	if (path >= sc->nr_paths) {
		DMWARN("invalid set_region_mappings device: %lu >= %u",
		       path, sc->nr_paths);
		return -EINVAL;
	}
	table_write(sc, *region, path);
	return 0;
}

static int switch_message(struct dm_target *ti, unsigned int argc, char **argv,
			  char *result, unsigned int maxlen)
{
	static DEFINE_MUTEX(message_lock);
	struct switch_ctx *sc = ti->private;
	unsigned long region = 0;
	unsigned int i;
	int r = 0;

	if (strcasecmp(argv[0], "set_region_mappings")) {
		DMWARN("Unrecognised message received.");
		return -EINVAL;
	}

	/* Mappings before a bad argument stay applied, as in stock. */
	mutex_lock(&message_lock);
	for (i = 1; i < argc && !r; i++) {
		if ((argv[i][0] & 0xdf) == 'R')
			r = repeat_mappings(sc, argv[i], &region);
		else
			r = set_mapping(sc, argv[i], &region);
	}
	mutex_unlock(&message_lock);
	return r;
}

static void switch_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result,
			  unsigned int maxlen)
{
	struct switch_ctx *sc = ti->private;
	unsigned int sz = 0, i;

	switch (type) {
	case STATUSTYPE_INFO:
	case STATUSTYPE_IMA:
		result[0] = '\0';
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u %u 0", sc->nr_paths, sc->region_size);
		for (i = 0; i < sc->nr_paths; i++)
			DMEMIT(" %s %llu", sc->paths[i].dev->name,
			       (unsigned long long)sc->paths[i].start);
		break;
	}
}

/* ioctls go to the path of the first region, if it covers the device. */
static int switch_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct switch_ctx *sc = ti->private;
	struct switch_path *p = &sc->paths[path_of(sc, 0)];

	*bdev = p->dev->bdev;
	return ti->len + p->start != bdev_nr_sectors(*bdev);
}

static int switch_iterate_devices(struct dm_target *ti,
				  iterate_devices_callout_fn fn, void *data)
{
	struct switch_ctx *sc = ti->private;
	unsigned int i;
	int r;

	for (i = 0; i < sc->nr_paths; i++) {
		r = fn(ti, sc->paths[i].dev, sc->paths[i].start, ti->len, data);
		if (r)
			return r;
	}
	return 0;
}

static struct target_type switch_target = {
	.name = "switch",
	.version = {1, 1, 0},
	.features = DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = switch_ctr,
	.dtr = switch_dtr,
	.map = switch_map,
	.message = switch_message,
	.status = switch_status,
	.prepare_ioctl = switch_prepare_ioctl,
	.iterate_devices = switch_iterate_devices,
};

static int __init switch_init(void)
{
	int r = dm_register_target(&switch_target);

	if (r < 0)
		DMERR("dm_register_target() failed %d", r);
	return r;
}

static void __exit switch_exit(void)
{
	dm_unregister_target(&switch_target);
}

module_init(switch_init);
module_exit(switch_exit);

MODULE_DESCRIPTION(DM_NAME " target that maps regions to paths by a table");
MODULE_LICENSE("GPL");
