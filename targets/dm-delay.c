// SPDX-License-Identifier: GPL-2.0-only
/*
 * delay: a linear mapping that holds bios back for a fixed time.
 *
 * Reads, writes and flushes form three classes, each with its own device,
 * offset and delay. Held bios sit on one list in arrival order; a timer
 * kicks a worker that submits those whose time has come, so bios leave
 * in the order they arrived within each class's delay.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

#define DM_MSG_PREFIX "delay"

struct delay_class {
	struct dm_dev *dev;
	sector_t start;
	unsigned int delay_ms;
	unsigned int ops;	/* bios held right now */
};

struct delay_ctx {
	struct timer_list timer;
	struct workqueue_struct *wq;
	struct work_struct release_work;
	spinlock_t lock;	/* held list, may_delay, ops counters */
	struct list_head held;
	bool may_delay;		/* false while suspending */

	struct delay_class read;
	struct delay_class write;
	struct delay_class flush;
	unsigned int argc;
};

struct delay_bio {
	struct list_head list;
	struct delay_class *class;
	unsigned long expires;
};

static void delay_timer_fn(struct timer_list *t)
{
	struct delay_ctx *dc = from_timer(dc, t, timer);

	queue_work(dc->wq, &dc->release_work);
}

static struct bio *delay_bio_of(struct delay_bio *db)
{
	return dm_bio_from_per_bio_data(db, sizeof(*db));
}

/*
 * Take the bios due now (or all of them) off the held list, in order,
 * and re-arm the timer for the earliest one still waiting.
 */
static void release_bios(struct delay_ctx *dc, bool all)
{
	struct delay_bio *db, *next;
	unsigned long next_due = 0;
	bool pending = false;
	struct bio_list out;
	struct bio *bio;

	bio_list_init(&out);
	spin_lock_irq(&dc->lock);
	list_for_each_entry_safe(db, next, &dc->held, list) {
		if (all || time_after_eq(jiffies, db->expires)) {
			list_del(&db->list);
			db->class->ops--;
			bio_list_add(&out, delay_bio_of(db));
			continue;
		}
		if (!pending || time_before(db->expires, next_due))
			next_due = db->expires;
		pending = true;
	}
	/* Under the lock, so a bio queued meanwhile cannot be overtaken. */
	if (pending)
		mod_timer(&dc->timer, next_due);
	spin_unlock_irq(&dc->lock);

	while ((bio = bio_list_pop(&out)))
		submit_bio_noacct(bio);
}

static void release_work_fn(struct work_struct *w)
{
	struct delay_ctx *dc = container_of(w, struct delay_ctx, release_work);

	release_bios(dc, false);
}

static int class_ctr(struct dm_target *ti, struct delay_class *c, char **argv)
{
	unsigned long long start;
	char dummy;
	int r;

	if (sscanf(argv[1], "%llu%c", &start, &dummy) != 1 ||
	    start != (sector_t)start) {
		ti->error = "Invalid device sector";
		return -EINVAL;
	}
	c->start = start;

	if (sscanf(argv[2], "%u%c", &c->delay_ms, &dummy) != 1) {
		ti->error = "Invalid delay";
		return -EINVAL;
	}

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &c->dev);
	if (r) {
		ti->error = "Device lookup failed";
		return r;
	}
	return 0;
}

static void delay_put_devices(struct dm_target *ti, struct delay_ctx *dc)
{
	if (dc->read.dev)
		dm_put_device(ti, dc->read.dev);
	if (dc->write.dev)
		dm_put_device(ti, dc->write.dev);
	if (dc->flush.dev)
		dm_put_device(ti, dc->flush.dev);
}

/*
 * <dev> <off> <ms> [<wdev> <woff> <wms> [<fdev> <foff> <fms>]]
 * Writes default to the read class, flushes to the write class.
 */
static int delay_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct delay_ctx *dc;
	char **wargs, **fargs;
	int r;

	if (argc != 3 && argc != 6 && argc != 9) {
		ti->error = "Requires exactly 3, 6 or 9 arguments";
		return -EINVAL;
	}

	dc = kzalloc(sizeof(*dc), GFP_KERNEL);
	if (!dc) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	timer_setup(&dc->timer, delay_timer_fn, 0);
	INIT_WORK(&dc->release_work, release_work_fn);
	INIT_LIST_HEAD(&dc->held);
	spin_lock_init(&dc->lock);
	dc->may_delay = true;
	dc->argc = argc;

	wargs = argc >= 6 ? argv + 3 : argv;
	fargs = argc == 9 ? argv + 6 : wargs;

	r = class_ctr(ti, &dc->read, argv);
	if (!r)
		r = class_ctr(ti, &dc->write, wargs);
	if (!r)
		r = class_ctr(ti, &dc->flush, fargs);
	if (r)
		goto bad;

	dc->wq = alloc_workqueue("kdelayd", WQ_MEM_RECLAIM, 0);
	if (!dc->wq) {
		DMERR("Couldn't start kdelayd");
		r = -EINVAL;
		goto bad;
	}

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->per_io_data_size = sizeof(struct delay_bio);
	ti->private = dc;
	return 0;
bad:
	delay_put_devices(ti, dc);
	kfree(dc);
	return r;
}

static void delay_dtr(struct dm_target *ti)
{
	struct delay_ctx *dc = ti->private;

	/* Suspend released everything; nothing may still be held. */
	del_timer_sync(&dc->timer);
	destroy_workqueue(dc->wq);
	delay_put_devices(ti, dc);
	kfree(dc);
}

static int delay_map(struct dm_target *ti, struct bio *bio)
{
	struct delay_ctx *dc = ti->private;
	struct delay_bio *db = dm_per_bio_data(bio, sizeof(*db));
	struct delay_class *c;
	unsigned long flags;

	if (bio_data_dir(bio) == READ)
		c = &dc->read;
	else if (bio->bi_opf & REQ_PREFLUSH)
		c = &dc->flush;
	else
		c = &dc->write;

	bio_set_dev(bio, c->dev->bdev);
	if (bio_sectors(bio))
		bio->bi_iter.bi_sector =
			c->start + dm_target_offset(ti, bio->bi_iter.bi_sector);

	if (!c->delay_ms)
		return DM_MAPIO_REMAPPED;

	db->class = c;
	db->expires = jiffies + msecs_to_jiffies(c->delay_ms);
	spin_lock_irqsave(&dc->lock, flags);
	if (!dc->may_delay) {
		spin_unlock_irqrestore(&dc->lock, flags);
		return DM_MAPIO_REMAPPED;
	}
	c->ops++;
	list_add_tail(&db->list, &dc->held);
	/* Only pull the timer earlier; later expiries are re-armed by the worker. */
	if (!timer_pending(&dc->timer) ||
	    time_before(db->expires, dc->timer.expires))
		mod_timer(&dc->timer, db->expires);
	spin_unlock_irqrestore(&dc->lock, flags);
	return DM_MAPIO_SUBMITTED;
}

static void delay_presuspend(struct dm_target *ti)
{
	struct delay_ctx *dc = ti->private;

	spin_lock_irq(&dc->lock);
	dc->may_delay = false;
	spin_unlock_irq(&dc->lock);

	del_timer_sync(&dc->timer);
	flush_workqueue(dc->wq);
	release_bios(dc, true);
	/* The worker may have re-armed the timer before we emptied the list. */
	del_timer_sync(&dc->timer);
}

static void delay_resume(struct dm_target *ti)
{
	struct delay_ctx *dc = ti->private;

	spin_lock_irq(&dc->lock);
	dc->may_delay = true;
	spin_unlock_irq(&dc->lock);
}

static void emit_class(struct delay_class *c, char *result, unsigned int maxlen,
		       unsigned int *szp)
{
	unsigned int sz = *szp;

	DMEMIT("%s %llu %u", c->dev->name, (unsigned long long)c->start,
	       c->delay_ms);
	*szp = sz;
}

static void delay_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct delay_ctx *dc = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%u %u %u", dc->read.ops, dc->write.ops, dc->flush.ops);
		break;
	case STATUSTYPE_TABLE:
		emit_class(&dc->read, result, maxlen, &sz);
		if (dc->argc >= 6) {
			DMEMIT(" ");
			emit_class(&dc->write, result, maxlen, &sz);
		}
		if (dc->argc >= 9) {
			DMEMIT(" ");
			emit_class(&dc->flush, result, maxlen, &sz);
		}
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int delay_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	struct delay_ctx *dc = ti->private;
	int r;

	r = fn(ti, dc->read.dev, dc->read.start, ti->len, data);
	if (r || dc->argc < 6)
		return r;
	r = fn(ti, dc->write.dev, dc->write.start, ti->len, data);
	if (r || dc->argc < 9)
		return r;
	return fn(ti, dc->flush.dev, dc->flush.start, ti->len, data);
}

static struct target_type delay_target = {
	.name = "delay",
	.version = {1, 3, 0},
	.features = DM_TARGET_PASSES_INTEGRITY,
	.module = THIS_MODULE,
	.ctr = delay_ctr,
	.dtr = delay_dtr,
	.map = delay_map,
	.presuspend = delay_presuspend,
	.resume = delay_resume,
	.status = delay_status,
	.iterate_devices = delay_iterate_devices,
};

static int __init delay_init(void)
{
	int r = dm_register_target(&delay_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit delay_exit(void)
{
	dm_unregister_target(&delay_target);
}

module_init(delay_init);
module_exit(delay_exit);

MODULE_DESCRIPTION(DM_NAME " target that delays I/O");
MODULE_LICENSE("GPL");
