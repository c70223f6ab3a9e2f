// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tables: construction from target lines, lower-device references,
 * queue-limit stacking and the per-target suspend hooks.
 */
#include "dm-core.h"

#include <linux/module.h>
#include <linux/ctype.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/namei.h>
#include <linux/mount.h>
#include <linux/blk-integrity.h>

#define DM_MSG_PREFIX "table"

int dm_table_create(struct dm_table **result, fmode_t mode,
		    unsigned int num_targets, struct mapped_device *md)
{
	struct dm_table *t;

	if (num_targets > DM_MAX_TARGETS)
		return -EOVERFLOW;
	if (!num_targets)
		num_targets = 1;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	INIT_LIST_HEAD(&t->devices);
	t->targets = kvcalloc(num_targets, sizeof(*t->targets), GFP_KERNEL);
	if (!t->targets) {
		kfree(t);
		return -ENOMEM;
	}
	t->num_allocated = num_targets;
	t->type = DM_TYPE_NONE;
	t->mode = mode;
	t->md = md;
	*result = t;
	return 0;
}

static void free_devices(struct dm_table *t)
{
	struct dm_dev_internal *dd, *tmp;

	list_for_each_entry_safe(dd, tmp, &t->devices, list) {
		DMWARN("%s: device %s still has %u references",
		       dm_device_name(t->md), dd->td->dm_dev.name,
		       refcount_read(&dd->count));
		dm_put_table_device(t->md, dd->td);
		list_del(&dd->list);
		kfree(dd);
	}
}

void dm_table_destroy(struct dm_table *t)
{
	int i;

	if (!t)
		return;

	/* Destroy in reverse so later targets can depend on earlier ones. */
	for (i = (int)t->num_targets - 1; i >= 0; i--) {
		struct dm_target *ti = &t->targets[i];

		if (ti->type->dtr)
			ti->type->dtr(ti);
		dm_put_target_type(ti->type);
	}
	kvfree(t->targets);
	free_devices(t);
	if (t->bs_ready)
		bioset_exit(&t->bs);
	kfree(t);
}

/* ------------------------------------------------------------------ */
/* Lower devices                                                       */

dev_t dm_get_dev_t(const char *path)
{
	dev_t dev;

	if (lookup_bdev(path, &dev))
		dev = name_to_dev_t(path);
	return dev;
}
EXPORT_SYMBOL_GPL(dm_get_dev_t);

static dev_t parse_dev(const char *path)
{
	unsigned int major, minor;
	char dummy;
	dev_t dev;

	if (sscanf(path, "%u:%u%c", &major, &minor, &dummy) == 2) {
		dev = MKDEV(major, minor);
		if (MAJOR(dev) != major || MINOR(dev) != minor)
			return 0;
		return dev;
	}
	return dm_get_dev_t(path);
}

int dm_get_device(struct dm_target *ti, const char *path, fmode_t mode,
		  struct dm_dev **result)
{
	struct dm_table *t = ti->table;
	struct dm_dev_internal *dd;
	struct table_device *td;
	dev_t dev;
	int r;

	dev = parse_dev(path);
	if (!dev)
		return -ENODEV;
	if (t->md->disk && dev == disk_devt(t->md->disk))
		return -EINVAL;

	list_for_each_entry(dd, &t->devices, list) {
		struct dm_dev *d = &dd->td->dm_dev;

		/* Reuse an open that already grants every requested mode. */
		if (d->bdev->bd_dev == dev && (d->mode & mode) == mode) {
			refcount_inc(&dd->count);
			*result = d;
			return 0;
		}
	}

	dd = kmalloc(sizeof(*dd), GFP_KERNEL);
	if (!dd)
		return -ENOMEM;
	r = dm_get_table_device(t->md, dev, mode, &td);
	if (r) {
		kfree(dd);
		return r;
	}
	refcount_set(&dd->count, 1);
	dd->td = td;
	list_add(&dd->list, &t->devices);
	*result = &td->dm_dev;
	return 0;
}
EXPORT_SYMBOL(dm_get_device);

void dm_put_device(struct dm_target *ti, struct dm_dev *d)
{
	struct dm_table *t = ti->table;
	struct dm_dev_internal *dd;

	list_for_each_entry(dd, &t->devices, list) {
		if (&dd->td->dm_dev == d) {
			if (refcount_dec_and_test(&dd->count)) {
				dm_put_table_device(t->md, dd->td);
				list_del(&dd->list);
				kfree(dd);
			}
			return;
		}
	}
	DMERR("%s: device %s not in table devices list",
	      dm_device_name(t->md), d->name);
}
EXPORT_SYMBOL(dm_put_device);

/* ------------------------------------------------------------------ */
/* Argument parsing                                                    */

/*
 * Splits in place on whitespace; a backslash makes the next character
 * literal and is dropped, except as the last character.
 */
int dm_split_args(int *argc, char ***argvp, char *input)
{
	char *start, *end = input, *out, **argv = NULL;
	unsigned int array_size = 0;

	*argc = 0;
	if (!input) {
		*argvp = NULL;
		return 0;
	}

	while (1) {
		start = skip_spaces(end);
		if (!*start)
			break;

		out = start;
		end = start;
		while (*end) {
			if (*end == '\\' && end[1]) {
				*out++ = *++end;
				end++;
				continue;
			}
			if (isspace(*end))
				break;
			*out++ = *end++;
		}

		if ((unsigned int)*argc + 1 >= array_size) {
			unsigned int new_size = array_size ? array_size * 2 : 8;
			char **n = kmalloc_array(new_size, sizeof(*argv),
						 GFP_KERNEL);

			if (!n) {
				kfree(argv);
				return -ENOMEM;
			}
			if (*argc)
				memcpy(n, argv, *argc * sizeof(*argv));
			kfree(argv);
			argv = n;
			array_size = new_size;
		}

		if (*end)
			end++;
		*out = '\0';
		argv[(*argc)++] = start;
	}

	if (!argv) {
		argv = kmalloc(sizeof(*argv), GFP_KERNEL);
		if (!argv)
			return -ENOMEM;
	}
	argv[*argc] = NULL;
	*argvp = argv;
	return 0;
}

static int validate_next_arg(const struct dm_arg *arg, struct dm_arg_set *as,
			     unsigned int *value, char **error,
			     unsigned int grouped)
{
	const char *s = dm_shift_arg(as);
	char dummy;

	if (!s || sscanf(s, "%u%c", value, &dummy) != 1 ||
	    *value < arg->min || *value > arg->max ||
	    (grouped && as->argc < *value)) {
		*error = arg->error;
		return -EINVAL;
	}
	return 0;
}

int dm_read_arg(const struct dm_arg *arg, struct dm_arg_set *as,
		unsigned int *value, char **error)
{
	return validate_next_arg(arg, as, value, error, 0);
}
EXPORT_SYMBOL(dm_read_arg);

int dm_read_arg_group(const struct dm_arg *arg, struct dm_arg_set *as,
		      unsigned int *value, char **error)
{
	return validate_next_arg(arg, as, value, error, 1);
}
EXPORT_SYMBOL(dm_read_arg_group);

const char *dm_shift_arg(struct dm_arg_set *as)
{
	char *r;

	if (as->argc) {
		as->argc--;
		r = *as->argv;
		as->argv++;
		return r;
	}
	return NULL;
}
EXPORT_SYMBOL(dm_shift_arg);

void dm_consume_args(struct dm_arg_set *as, unsigned int num_args)
{
	if (WARN_ON_ONCE(as->argc < num_args))
		num_args = as->argc;
	as->argc -= num_args;
	as->argv += num_args;
}
EXPORT_SYMBOL(dm_consume_args);

/* ------------------------------------------------------------------ */
/* Adding targets                                                      */

static int validate_target_position(struct dm_table *t, struct dm_target *ti)
{
	sector_t expected = 0;

	if (t->num_targets) {
		struct dm_target *prev = &t->targets[t->num_targets - 1];

		expected = prev->begin + prev->len;
	}
	return ti->begin == expected;
}

int dm_table_add_target(struct dm_table *t, const char *type,
			sector_t start, sector_t len, char *params)
{
	struct dm_target *ti;
	char **argv;
	int argc, r;

	if (t->num_targets >= t->num_allocated)
		return -ENOMEM;

	if (t->num_targets && t->targets[0].type &&
	    dm_target_needs_singleton(t->targets[0].type)) {
		DMERR("%s: target type %s must appear alone in table",
		      dm_device_name(t->md), t->targets[0].type->name);
		return -EINVAL;
	}

	ti = &t->targets[t->num_targets];
	memset(ti, 0, sizeof(*ti));

	if (!len) {
		DMERR("%s: zero-length target", dm_device_name(t->md));
		return -EINVAL;
	}
	if (start + len < start || start + len > (U64_MAX >> SECTOR_SHIFT) / 2) {
		DMERR("%s: too large device", dm_device_name(t->md));
		return -EINVAL;
	}

	ti->type = dm_get_target_type(type);
	if (!ti->type) {
		DMERR("%s: %s: unknown target type", dm_device_name(t->md),
		      type);
		return -EINVAL;
	}

	if (dm_target_needs_singleton(ti->type) && t->num_targets) {
		ti->error = "singleton target type must appear alone in table";
		r = -EINVAL;
		goto bad;
	}
	if (dm_target_always_writeable(ti->type) && !(t->mode & FMODE_WRITE)) {
		ti->error = "target type may not be included in a read-only table";
		r = -EINVAL;
		goto bad;
	}
	if (t->immutable_target_type) {
		if (t->immutable_target_type != ti->type) {
			ti->error = "immutable target type cannot be mixed with other target types";
			r = -EINVAL;
			goto bad;
		}
	} else if (dm_target_is_immutable(ti->type)) {
		if (t->num_targets) {
			ti->error = "immutable target type cannot be mixed with other target types";
			r = -EINVAL;
			goto bad;
		}
		t->immutable_target_type = ti->type;
	}

	ti->table = t;
	ti->begin = start;
	ti->len = len;
	ti->error = "Unknown error";

	if (!validate_target_position(t, ti)) {
		ti->error = "Gap in table";
		r = -EINVAL;
		goto bad;
	}

	r = dm_split_args(&argc, &argv, params);
	if (r) {
		ti->error = "couldn't split parameters";
		goto bad;
	}
	r = ti->type->ctr(ti, argc, argv);
	kfree(argv);
	if (r)
		goto bad;

	t->num_targets++;
	return 0;

bad:
	DMERR("%s: %s: %s (%pe)", dm_device_name(t->md), type, ti->error,
	      ERR_PTR(r));
	dm_put_target_type(ti->type);
	ti->type = NULL;
	return r;
}
EXPORT_SYMBOL_GPL(dm_table_add_target);

int dm_set_target_max_io_len(struct dm_target *ti, sector_t len)
{
	if (len > UINT_MAX) {
		DMERR("Specified maximum size of target IO (%llu) exceeds limit (%u)",
		      (unsigned long long)len, UINT_MAX);
		ti->error = "Maximum size of target IO is too large";
		return -EINVAL;
	}
	ti->max_io_len = (u32)len;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_set_target_max_io_len);

void dm_table_set_type(struct dm_table *t, enum dm_queue_mode type)
{
	t->type = type;
}
EXPORT_SYMBOL_GPL(dm_table_set_type);

/* ------------------------------------------------------------------ */
/* Completion of a table                                               */

static int device_is_rq_stackable(struct dm_target *ti, struct dm_dev *dev,
				  sector_t start, sector_t len, void *data)
{
	struct block_device *bdev = dev->bdev;
	struct request_queue *q = bdev_get_queue(bdev);

	if (bdev_is_partition(bdev))
		return false;
	return queue_is_mq(q);
}

static int determine_type(struct dm_table *t)
{
	enum dm_queue_mode live_type = dm_get_md_type(t->md);
	bool bio_based = false, rq_based = false;
	unsigned int i;

	if (t->type != DM_TYPE_NONE) {
		if (t->type == DM_TYPE_BIO_BASED || t->type == DM_TYPE_DAX_BIO_BASED)
			return 0;
		goto verify_rq;
	}

	for (i = 0; i < t->num_targets; i++) {
		struct target_type *tt = t->targets[i].type;

		if (tt->map && tt->clone_and_map_rq)
			continue;	/* hybrid */
		if (tt->map)
			bio_based = true;
		else
			rq_based = true;
		if (bio_based && rq_based) {
			DMERR("Inconsistent table: different target types can't be mixed up");
			return -EINVAL;
		}
	}

	if (!bio_based && !rq_based) {
		/* Only hybrid targets: follow the live device. */
		if (live_type == DM_TYPE_REQUEST_BASED) {
			t->type = DM_TYPE_REQUEST_BASED;
			goto verify_rq;
		}
		t->type = live_type == DM_TYPE_DAX_BIO_BASED ?
			DM_TYPE_DAX_BIO_BASED : DM_TYPE_BIO_BASED;
		return 0;
	}
	if (bio_based) {
		t->type = DM_TYPE_BIO_BASED;
		return 0;
	}
	t->type = DM_TYPE_REQUEST_BASED;

verify_rq:
	if (t->num_targets > 1) {
		DMERR("request-based DM doesn't support multiple targets");
		return -EINVAL;
	}
	if (list_empty(&t->devices)) {
		if (live_type != DM_TYPE_NONE)
			t->type = live_type;
		return 0;
	}
	{
		struct dm_target *ti = &t->targets[0];

		if (!dm_target_is_immutable(ti->type) || ti->max_io_len) {
			DMERR("table load rejected: request-based target must be immutable");
			return -EINVAL;
		}
		if (!ti->type->iterate_devices ||
		    !ti->type->iterate_devices(ti, device_is_rq_stackable, NULL)) {
			DMERR("table load rejected: including non-request-stackable devices");
			return -EINVAL;
		}
	}
	/* Request-based operation is not implemented by this core. */
	DMERR("request-based tables are not supported");
	return -EINVAL;
}

int dm_table_alloc_md_pools(struct dm_table *t, struct mapped_device *md)
{
	unsigned int i, per_io = 0;
	int r;

	for (i = 0; i < t->num_targets; i++)
		per_io = max(per_io, t->targets[i].per_io_data_size);
	t->per_io_data_size = per_io;

	r = bioset_init(&t->bs, 16, ALIGN(per_io, __alignof__(struct dm_target_io)) +
			offsetof(struct dm_target_io, clone), 0);
	if (r)
		return r;
	t->bs_ready = true;
	return 0;
}

int dm_table_complete(struct dm_table *t)
{
	int r;

	r = determine_type(t);
	if (r) {
		DMERR("unable to determine table type");
		return r;
	}
	r = dm_table_alloc_md_pools(t, t->md);
	if (r)
		DMERR("unable to allocate mempools");
	return r;
}
EXPORT_SYMBOL_GPL(dm_table_complete);

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

struct dm_target *dm_table_get_target(struct dm_table *t, unsigned int i)
{
	return i < t->num_targets ? &t->targets[i] : NULL;
}

unsigned int dm_table_get_num_targets(struct dm_table *t)
{
	return t->num_targets;
}

struct list_head *dm_table_get_devices(struct dm_table *t)
{
	return &t->devices;
}

enum dm_queue_mode dm_table_get_type(struct dm_table *t)
{
	return t->type;
}

struct target_type *dm_table_get_immutable_target_type(struct dm_table *t)
{
	return t->immutable_target_type;
}

/* Binary search over the contiguous, sorted targets. */
struct dm_target *dm_table_find_target(struct dm_table *t, sector_t sector)
{
	unsigned int lo = 0, hi = t->num_targets;

	if (!hi || sector >= dm_table_get_size(t))
		return NULL;
	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t->targets[mid].begin <= sector)
			lo = mid;
		else
			hi = mid;
	}
	return &t->targets[lo];
}

sector_t dm_table_get_size(struct dm_table *t)
{
	struct dm_target *last;

	if (!t->num_targets)
		return 0;
	last = &t->targets[t->num_targets - 1];
	return last->begin + last->len;
}
EXPORT_SYMBOL(dm_table_get_size);

fmode_t dm_table_get_mode(struct dm_table *t)
{
	return t->mode;
}
EXPORT_SYMBOL(dm_table_get_mode);

struct mapped_device *dm_table_get_md(struct dm_table *t)
{
	return t->md;
}
EXPORT_SYMBOL(dm_table_get_md);

const char *dm_table_device_name(struct dm_table *t)
{
	return dm_device_name(t->md);
}
EXPORT_SYMBOL_GPL(dm_table_device_name);

void dm_table_event_callback(struct dm_table *t, void (*fn)(void *), void *ctx)
{
	t->event_fn = fn;
	t->event_context = ctx;
}

void dm_table_event(struct dm_table *t)
{
	if (t->event_fn)
		t->event_fn(t->event_context);
}
EXPORT_SYMBOL(dm_table_event);

void dm_table_run_md_queue_async(struct dm_table *t)
{
	/* Only request-based devices have a queue worth kicking. */
}
EXPORT_SYMBOL(dm_table_run_md_queue_async);

static int count_device(struct dm_target *ti, struct dm_dev *dev,
			sector_t start, sector_t len, void *data)
{
	(*(unsigned int *)data)++;
	return 0;
}

bool dm_table_has_no_data_devices(struct dm_table *t)
{
	unsigned int i, n = 0;

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (!ti->type->iterate_devices)
			continue;
		ti->type->iterate_devices(ti, count_device, &n);
		if (n)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Queue limits                                                        */

static int stack_device_limits(struct dm_target *ti, struct dm_dev *dev,
			       sector_t start, sector_t len, void *data)
{
	struct queue_limits *limits = data;
	struct block_device *bdev = dev->bdev;
	struct request_queue *q = bdev_get_queue(bdev);

	if (blk_stack_limits(limits, &q->limits,
			     get_start_sect(bdev) + start) < 0)
		DMWARN("%s: adding target device %pg caused an alignment inconsistency",
		       dm_device_name(ti->table->md), bdev);
	return 0;
}

static int device_area_is_invalid(struct dm_target *ti, struct dm_dev *dev,
				  sector_t start, sector_t len, void *data)
{
	struct queue_limits *limits = data;
	struct block_device *bdev = dev->bdev;
	sector_t dev_size = bdev_nr_sectors(bdev);
	unsigned short lbs = limits->logical_block_size >> SECTOR_SHIFT;

	if (!dev_size)
		return 0;
	if (start >= dev_size || len > dev_size - start) {
		DMERR("%s: %pg too small for target: start=%llu, len=%llu, dev_size=%llu",
		      dm_device_name(ti->table->md), bdev,
		      (unsigned long long)start, (unsigned long long)len,
		      (unsigned long long)dev_size);
		return 1;
	}
	/* A target may not map part of a zone: its ends must be zone aligned. */
	if (bdev_is_zoned(bdev)) {
		unsigned int zone = bdev_zone_sectors(bdev);

		if (start & (zone - 1)) {
			DMERR("%s: start=%llu not aligned to h/w zone size %u of %pg",
			      dm_device_name(ti->table->md),
			      (unsigned long long)start, zone, bdev);
			return 1;
		}
		if (len & (zone - 1)) {
			DMERR("%s: len=%llu not aligned to h/w zone size %u of %pg",
			      dm_device_name(ti->table->md),
			      (unsigned long long)len, zone, bdev);
			return 1;
		}
	}
	if (lbs <= 1)
		return 0;
	if (start & (lbs - 1)) {
		DMERR("%s: start=%llu not aligned to h/w logical block size %u of %pg",
		      dm_device_name(ti->table->md), (unsigned long long)start,
		      limits->logical_block_size, bdev);
		return 1;
	}
	if (len & (lbs - 1)) {
		DMERR("%s: len=%llu not aligned to h/w logical block size %u of %pg",
		      dm_device_name(ti->table->md), (unsigned long long)len,
		      limits->logical_block_size, bdev);
		return 1;
	}
	return 0;
}

/*
 * Every piece of an aligned bio that crosses a target boundary must itself
 * be acceptable to the target receiving it: walk the targets keeping the
 * offset into the current device logical block.
 */
static int validate_hardware_logical_block_alignment(struct dm_table *t,
						     struct queue_limits *limits)
{
	unsigned short dev_lbs = limits->logical_block_size >> SECTOR_SHIFT;
	unsigned short next_start = 0;
	unsigned int remaining = 0;
	struct queue_limits ti_limits;
	struct dm_target *ti = NULL;
	unsigned int i;

	for (i = 0; i < t->num_targets; i++) {
		unsigned short ti_lbs;

		ti = &t->targets[i];
		blk_set_stacking_limits(&ti_limits);
		if (ti->type->iterate_devices)
			ti->type->iterate_devices(ti, stack_device_limits,
						  &ti_limits);
		ti_lbs = ti_limits.logical_block_size >> SECTOR_SHIFT;

		if (remaining < ti->len && (remaining & (ti_lbs - 1)))
			break;
		next_start = (unsigned short)((next_start + ti->len) &
					      (dev_lbs - 1));
		remaining = next_start ? dev_lbs - next_start : 0;
	}

	if (remaining) {
		DMERR("%s: table line %u (start sect %llu len %llu) not aligned to h/w logical block size %u",
		      dm_device_name(t->md), i,
		      (unsigned long long)ti->begin,
		      (unsigned long long)ti->len,
		      limits->logical_block_size);
		return -EINVAL;
	}
	return 0;
}

static int dev_zoned_model_differs(struct dm_target *ti, struct dm_dev *dev,
				   sector_t start, sector_t len, void *data)
{
	return bdev_zoned_model(dev->bdev) != *(enum blk_zoned_model *)data;
}

static int dev_zone_size_differs(struct dm_target *ti, struct dm_dev *dev,
				 sector_t start, sector_t len, void *data)
{
	return bdev_is_zoned(dev->bdev) &&
	       bdev_zone_sectors(dev->bdev) != *(unsigned int *)data;
}

/*
 * A zoned table exposes the zone model of its devices: targets that may sit
 * on host-managed devices need every device to have that model, other
 * targets cannot be part of a host-managed table at all.
 */
static int validate_zoned_model(struct dm_table *t,
				enum blk_zoned_model model,
				unsigned int zone_sectors)
{
	unsigned int i;

	if (model == BLK_ZONED_NONE)
		return 0;
	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];
		bool bad;

		if (dm_target_supports_zoned_hm(ti->type))
			bad = !ti->type->iterate_devices ||
			      ti->type->iterate_devices(ti,
							dev_zoned_model_differs,
							&model);
		else if (dm_target_supports_mixed_zoned_model(ti->type))
			bad = false;
		else
			bad = model == BLK_ZONED_HM;
		if (bad) {
			DMERR("%s: zoned model is not consistent across all devices",
			      dm_device_name(t->md));
			return -EINVAL;
		}
	}
	if (!zone_sectors || !is_power_of_2(zone_sectors))
		return -EINVAL;
	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (ti->type->iterate_devices &&
		    ti->type->iterate_devices(ti, dev_zone_size_differs,
					      &zone_sectors)) {
			DMERR("%s: zone sectors is not consistent across all zoned devices",
			      dm_device_name(t->md));
			return -EINVAL;
		}
	}
	/* Zone append is passed through; emulating it is not implemented. */
	for (i = 0; i < t->num_targets; i++) {
		if (t->targets[i].emulate_zone_append) {
			DMERR("%s: %s needs zone append emulation, which is not supported",
			      dm_device_name(t->md), t->targets[i].type->name);
			return -EINVAL;
		}
	}
	return 0;
}

int dm_calculate_queue_limits(struct dm_table *t, struct queue_limits *limits)
{
	enum blk_zoned_model model = BLK_ZONED_NONE;
	unsigned int zone_sectors = 0;
	struct queue_limits ti_limits;
	unsigned int i;

	blk_set_stacking_limits(limits);

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		blk_set_stacking_limits(&ti_limits);
		if (ti->type->iterate_devices) {
			ti->type->iterate_devices(ti, stack_device_limits,
						  &ti_limits);
		}
		/* The devices' own model, before io_hints may hide it. */
		if (model == BLK_ZONED_NONE && ti_limits.zoned != BLK_ZONED_NONE) {
			model = ti_limits.zoned;
			zone_sectors = ti_limits.chunk_sectors;
		}
		if (ti->type->io_hints)
			ti->type->io_hints(ti, &ti_limits);

		if (ti->type->iterate_devices &&
		    ti->type->iterate_devices(ti, device_area_is_invalid,
					      &ti_limits))
			return -EINVAL;

		if (blk_stack_limits(limits, &ti_limits, 0) < 0)
			DMWARN("%s: adding target device (start sect %llu len %llu) caused an alignment inconsistency",
			       dm_device_name(t->md),
			       (unsigned long long)ti->begin,
			       (unsigned long long)ti->len);
	}

	if (limits->zoned != BLK_ZONED_NONE) {
		model = limits->zoned;
		zone_sectors = limits->chunk_sectors;
	}
	if (validate_zoned_model(t, model, zone_sectors))
		return -EINVAL;

	return validate_hardware_logical_block_alignment(t, limits);
}

typedef bool (*dev_pred_fn)(struct block_device *bdev);

struct dev_pred {
	dev_pred_fn fn;
	unsigned int total;
	unsigned int matched;
};

static int dev_pred_iter(struct dm_target *ti, struct dm_dev *dev,
			 sector_t start, sector_t len, void *data)
{
	struct dev_pred *p = data;

	p->total++;
	if (p->fn(dev->bdev))
		p->matched++;
	return 0;
}

static void target_count_devices(struct dm_target *ti, struct dev_pred *p)
{
	if (ti->type->iterate_devices)
		ti->type->iterate_devices(ti, dev_pred_iter, p);
}

/* True if the target has devices and every one satisfies fn. */
static bool target_all_devices(struct dm_target *ti, dev_pred_fn fn)
{
	struct dev_pred p = { .fn = fn };

	if (!ti->type->iterate_devices)
		return false;
	target_count_devices(ti, &p);
	return p.matched == p.total;
}

static bool bdev_discards(struct block_device *b)
{
	return bdev_max_discard_sectors(b) != 0;
}

static bool bdev_secure_erases(struct block_device *b)
{
	return bdev_max_secure_erase_sectors(b) != 0;
}

static bool bdev_write_zeroes(struct block_device *b)
{
	return bdev_write_zeroes_sectors(b) != 0;
}

static bool bdev_wc(struct block_device *b)
{
	return test_bit(QUEUE_FLAG_WC, &bdev_get_queue(b)->queue_flags);
}

static bool bdev_not_wc(struct block_device *b)
{
	return !bdev_wc(b);
}

static bool bdev_not_fua(struct block_device *b)
{
	return !bdev_fua(b);
}

static bool bdev_rot(struct block_device *b)
{
	return !bdev_nonrot(b);
}

static bool bdev_nowait_cap(struct block_device *b)
{
	return bdev_nowait(b);
}

static bool bdev_stable(struct block_device *b)
{
	return bdev_stable_writes(b);
}

static bool bdev_add_random(struct block_device *b)
{
	return blk_queue_add_random(bdev_get_queue(b));
}

static bool table_supports(struct dm_table *t, unsigned int (*count)(struct dm_target *),
			   bool (*target_flag)(struct dm_target *), dev_pred_fn fn)
{
	unsigned int i;

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (!count(ti))
			return false;
		if (target_flag && target_flag(ti))
			continue;
		if (!target_all_devices(ti, fn))
			return false;
	}
	return true;
}

static unsigned int n_discard(struct dm_target *ti)
{
	return ti->num_discard_bios;
}

static unsigned int n_secure(struct dm_target *ti)
{
	return ti->num_secure_erase_bios;
}

static unsigned int n_wz(struct dm_target *ti)
{
	return ti->num_write_zeroes_bios;
}

static bool discards_flag(struct dm_target *ti)
{
	return ti->discards_supported;
}

/* Write cache or FUA: some flush-capable target has a capable device. */
static bool table_has_flush_cap(struct dm_table *t, dev_pred_fn not_fn)
{
	unsigned int i;

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (!ti->num_flush_bios)
			continue;
		if (ti->flush_supported)
			return true;
		if (ti->type->iterate_devices) {
			struct dev_pred p = { .fn = not_fn };

			target_count_devices(ti, &p);
			if (p.matched < p.total)
				return true;
		}
	}
	return false;
}

static bool table_any(struct dm_table *t, dev_pred_fn fn)
{
	unsigned int i;

	for (i = 0; i < t->num_targets; i++) {
		struct dev_pred p = { .fn = fn };

		target_count_devices(&t->targets[i], &p);
		if (p.matched)
			return true;
	}
	return false;
}

static bool table_any_stable_target(struct dm_table *t)
{
	unsigned int i;

	for (i = 0; i < t->num_targets; i++)
		if (t->targets[i].needs_stable_writes)
			return true;
	return false;
}

int dm_table_set_restrictions(struct dm_table *t, struct request_queue *q,
			      struct queue_limits *limits)
{
	bool wc, fua, nowait = true;
	unsigned int i;

	q->limits = *limits;

	if (!table_supports(t, n_discard, discards_flag, bdev_discards)) {
		q->limits.max_discard_sectors = 0;
		q->limits.max_hw_discard_sectors = 0;
		q->limits.discard_granularity = 0;
		q->limits.discard_alignment = 0;
		q->limits.discard_misaligned = 0;
	}
	if (!table_supports(t, n_secure, NULL, bdev_secure_erases))
		blk_queue_max_secure_erase_sectors(q, 0);
	if (!table_supports(t, n_wz, NULL, bdev_write_zeroes))
		q->limits.max_write_zeroes_sectors = 0;

	wc = table_has_flush_cap(t, bdev_not_wc);
	fua = table_has_flush_cap(t, bdev_not_fua);
	blk_queue_write_cache(q, wc, fua);

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (!dm_target_supports_nowait(ti->type) ||
		    (ti->type->iterate_devices &&
		     !target_all_devices(ti, bdev_nowait_cap)))
			nowait = false;
	}
	if (nowait)
		blk_queue_flag_set(QUEUE_FLAG_NOWAIT, q);
	else
		blk_queue_flag_clear(QUEUE_FLAG_NOWAIT, q);

	if (table_any(t, bdev_rot))
		blk_queue_flag_clear(QUEUE_FLAG_NONROT, q);
	else
		blk_queue_flag_set(QUEUE_FLAG_NONROT, q);

	if (table_any(t, bdev_stable) || table_any_stable_target(t))
		blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, q);
	else
		blk_queue_flag_clear(QUEUE_FLAG_STABLE_WRITES, q);

	if (table_any(t, bdev_add_random))
		blk_queue_flag_set(QUEUE_FLAG_ADD_RANDOM, q);
	else
		blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);

	blk_queue_flag_clear(QUEUE_FLAG_DAX, q);
	disk_update_readahead(t->md->disk);
	/* Capacity is already set: the zone count follows from it. */
	t->md->disk->nr_zones = blk_queue_is_zoned(q) ?
		bdev_nr_zones(t->md->disk->part0) : 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Suspend hooks                                                       */

void dm_table_presuspend_targets(struct dm_table *t)
{
	unsigned int i;

	for (i = 0; t && i < t->num_targets; i++)
		if (t->targets[i].type->presuspend)
			t->targets[i].type->presuspend(&t->targets[i]);
}

void dm_table_presuspend_undo_targets(struct dm_table *t)
{
	unsigned int i;

	for (i = 0; t && i < t->num_targets; i++)
		if (t->targets[i].type->presuspend_undo)
			t->targets[i].type->presuspend_undo(&t->targets[i]);
}

void dm_table_postsuspend_targets(struct dm_table *t)
{
	unsigned int i;

	for (i = 0; t && i < t->num_targets; i++)
		if (t->targets[i].type->postsuspend)
			t->targets[i].type->postsuspend(&t->targets[i]);
}

int dm_table_resume_targets(struct dm_table *t)
{
	unsigned int i;
	int r;

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = &t->targets[i];

		if (!ti->type->preresume)
			continue;
		r = ti->type->preresume(ti);
		if (r) {
			DMERR("%s: %s: preresume failed, error = %d",
			      dm_device_name(t->md), ti->type->name, r);
			return r;
		}
	}
	for (i = 0; i < t->num_targets; i++)
		if (t->targets[i].type->resume)
			t->targets[i].type->resume(&t->targets[i]);
	return 0;
}
