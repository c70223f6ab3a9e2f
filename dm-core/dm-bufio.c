// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-bufio: a cache of fixed-size blocks of one block device, for targets
 * that keep metadata on disk (verity hash trees, integrity tags, ebs
 * read-modify-write, persistent-data).
 *
 * Every client has its own mutex, an rb-tree of buffers keyed by block
 * number and two LRU lists: clean buffers (evictable when unheld) and
 * buffers that are dirty or being written. I/O goes through dm-io, so
 * completion runs in interrupt context and only touches state bits; list
 * moves happen later under the client mutex.
 *
 * Memory is bounded: the global cache size (module parameter, default a
 * small share of RAM) is split evenly between clients; a shrinker gives
 * clean buffers back under memory pressure and a periodic job drops
 * buffers unused for max_age_seconds beyond retain_bytes.
 */

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched/mm.h>
#include <linux/shrinker.h>
#include <linux/rbtree.h>
#include <linux/wait_bit.h>
#include <linux/jiffies.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-bufio.h>

#define DM_MSG_PREFIX "bufio"

/* Buffers a client may always keep, whatever the cache size. */
#define BUFIO_MIN_BUFFERS	8
/* Share of RAM used by default for all caches, in percent. */
#define BUFIO_MEMORY_PERCENT	2
/* Interval of the job that drops old buffers. */
#define BUFIO_WORK_SECS		30
/* Larger blocks than this come from vmalloc rather than the page allocator. */
#define BUFIO_MAX_PAGE_ORDER	PAGE_ALLOC_COSTLY_ORDER

enum { B_READING, B_WRITING, B_DIRTY };
enum { LIST_CLEAN, LIST_DIRTY, LIST_COUNT };
enum { DATA_SLAB, DATA_PAGES, DATA_VMALLOC };

struct dm_buffer {
	struct rb_node node;
	struct list_head lru;
	sector_t block;
	void *data;
	struct dm_bufio_client *c;
	unsigned long state;
	unsigned long last_used;
	unsigned int hold;
	unsigned char data_kind;
	unsigned char list;
	int read_error;
	int write_error;
	/* Byte range modified since the last write was started. */
	unsigned int dirty_start, dirty_end;
	/* aux_size bytes of the client's private data follow. */
};

struct dm_bufio_client {
	struct mutex lock;
	struct block_device *bdev;
	unsigned int block_size;
	int block_shift;		/* log2(sectors per block), -1 if not 2^n */
	unsigned int aux_size;
	unsigned int flags;
	void (*alloc_callback)(struct dm_buffer *b);
	void (*write_callback)(struct dm_buffer *b);
	struct dm_io_client *dm_io;
	sector_t start;

	struct rb_root tree;
	struct list_head lru[LIST_COUNT];
	unsigned long n_buffers[LIST_COUNT];

	/* Preallocated buffers that guarantee forward progress. */
	struct list_head reserved;
	unsigned int n_reserved, reserved_target;
	unsigned int minimum_buffers;

	wait_queue_head_t free_wait;
	atomic_t n_io;
	int async_write_error;

	struct shrinker shrinker;
	struct list_head client_list;
};

/* ---------------------------------------------------------------- params */

static unsigned long max_cache_size_bytes;
static unsigned int max_age_seconds = 300;
static unsigned long retain_bytes = 256 * 1024;
static unsigned long peak_allocated_bytes;
static unsigned long allocated_kmem_cache_bytes;
static unsigned long allocated_get_free_pages_bytes;
static unsigned long allocated_vmalloc_bytes;
static unsigned long current_allocated_bytes;

module_param_named(max_cache_size_bytes, max_cache_size_bytes, ulong, 0644);
MODULE_PARM_DESC(max_cache_size_bytes, "Size of metadata cache (0: 2% of RAM)");
module_param_named(max_age_seconds, max_age_seconds, uint, 0644);
MODULE_PARM_DESC(max_age_seconds, "Max age of a buffer in seconds");
module_param_named(retain_bytes, retain_bytes, ulong, 0644);
MODULE_PARM_DESC(retain_bytes, "Try to keep at least this many bytes cached in memory");
module_param_named(peak_allocated_bytes, peak_allocated_bytes, ulong, 0644);
MODULE_PARM_DESC(peak_allocated_bytes, "Tracks the maximum allocated memory");
module_param_named(allocated_kmem_cache_bytes, allocated_kmem_cache_bytes, ulong, 0444);
MODULE_PARM_DESC(allocated_kmem_cache_bytes, "Memory allocated with kmem_cache_alloc");
module_param_named(allocated_get_free_pages_bytes, allocated_get_free_pages_bytes,
		   ulong, 0444);
MODULE_PARM_DESC(allocated_get_free_pages_bytes, "Memory allocated with get_free_pages");
module_param_named(allocated_vmalloc_bytes, allocated_vmalloc_bytes, ulong, 0444);
MODULE_PARM_DESC(allocated_vmalloc_bytes, "Memory allocated with vmalloc");
module_param_named(current_allocated_bytes, current_allocated_bytes, ulong, 0444);
MODULE_PARM_DESC(current_allocated_bytes, "Memory currently used by the cache");

/* ---------------------------------------------------------------- globals */

static DEFINE_MUTEX(clients_lock);
static LIST_HEAD(clients);
static unsigned int n_clients;
static unsigned long default_cache_size;

static DEFINE_SPINLOCK(stats_lock);

static struct workqueue_struct *bufio_wq;
static struct delayed_work cleanup_work;

static void account(unsigned char kind, long bytes)
{
	unsigned long *counter[] = {
		[DATA_SLAB] = &allocated_kmem_cache_bytes,
		[DATA_PAGES] = &allocated_get_free_pages_bytes,
		[DATA_VMALLOC] = &allocated_vmalloc_bytes,
	};

	spin_lock(&stats_lock);
	*counter[kind] += bytes;
	current_allocated_bytes += bytes;
	if (current_allocated_bytes > peak_allocated_bytes)
		peak_allocated_bytes = current_allocated_bytes;
	spin_unlock(&stats_lock);
}

/* The number of buffers client c may cache before it evicts. */
static unsigned long buffer_limit(struct dm_bufio_client *c)
{
	unsigned long total = READ_ONCE(max_cache_size_bytes);
	unsigned long share;

	/* 0 selects the default, and the parameter then shows what is used. */
	if (!total) {
		cmpxchg(&max_cache_size_bytes, 0, default_cache_size);
		total = default_cache_size;
	}
	share = total / max(READ_ONCE(n_clients), 1U) / c->block_size;
	return max_t(unsigned long, share, c->minimum_buffers);
}

/* ---------------------------------------------------------------- helpers */

static sector_t block_to_sector(struct dm_bufio_client *c, sector_t block)
{
	if (likely(c->block_shift >= 0))
		return c->start + (block << c->block_shift);
	return c->start + block * (c->block_size >> SECTOR_SHIFT);
}

static struct dm_buffer *find_buffer(struct dm_bufio_client *c, sector_t block)
{
	struct rb_node *n = c->tree.rb_node;

	while (n) {
		struct dm_buffer *b = rb_entry(n, struct dm_buffer, node);

		if (b->block == block)
			return b;
		n = block < b->block ? n->rb_left : n->rb_right;
	}
	return NULL;
}

static void insert_buffer(struct dm_bufio_client *c, struct dm_buffer *b)
{
	struct rb_node **p = &c->tree.rb_node, *parent = NULL;

	while (*p) {
		struct dm_buffer *o = rb_entry(*p, struct dm_buffer, node);

		parent = *p;
		p = b->block < o->block ? &(*p)->rb_left : &(*p)->rb_right;
	}
	rb_link_node(&b->node, parent, p);
	rb_insert_color(&b->node, &c->tree);
}

static void set_list(struct dm_bufio_client *c, struct dm_buffer *b, int list)
{
	c->n_buffers[b->list]--;
	b->list = list;
	c->n_buffers[list]++;
	list_move(&b->lru, &c->lru[list]);
}

/* Link a fresh buffer into the tree and the clean list. */
static void link_buffer(struct dm_bufio_client *c, struct dm_buffer *b, sector_t block)
{
	b->block = block;
	b->state = 0;
	b->hold = 0;	/* a fresh buffer comes from kmalloc: nothing is set */
	b->read_error = 0;
	b->write_error = 0;
	b->dirty_start = 0;
	b->dirty_end = 0;
	b->list = LIST_CLEAN;
	b->last_used = jiffies;
	insert_buffer(c, b);
	list_add(&b->lru, &c->lru[LIST_CLEAN]);
	c->n_buffers[LIST_CLEAN]++;
}

static void unlink_buffer(struct dm_bufio_client *c, struct dm_buffer *b)
{
	rb_erase(&b->node, &c->tree);
	list_del(&b->lru);
	c->n_buffers[b->list]--;
}

static bool buffer_idle(struct dm_buffer *b)
{
	return !b->hold && !(READ_ONCE(b->state) &
			     (BIT(B_READING) | BIT(B_WRITING) | BIT(B_DIRTY)));
}

/* ---------------------------------------------------------------- memory */

static struct dm_buffer *alloc_buffer(struct dm_bufio_client *c, gfp_t gfp)
{
	struct dm_buffer *b;
	unsigned int bs = c->block_size;

	b = kmalloc(sizeof(*b) + c->aux_size, gfp);
	if (!b)
		return NULL;
	b->c = c;
	if (bs < PAGE_SIZE) {
		b->data_kind = DATA_SLAB;
		b->data = kmalloc(bs, gfp);
	} else if (get_order(bs) <= BUFIO_MAX_PAGE_ORDER || !gfpflags_allow_blocking(gfp)) {
		b->data_kind = DATA_PAGES;
		b->data = (void *)__get_free_pages(gfp, get_order(bs));
	} else {
		unsigned int noio = memalloc_noio_save();

		b->data_kind = DATA_VMALLOC;
		b->data = __vmalloc(bs, gfp | GFP_KERNEL);
		memalloc_noio_restore(noio);
	}
	if (!b->data) {
		kfree(b);
		return NULL;
	}
	account(b->data_kind, bs);
	return b;
}

static void free_buffer(struct dm_buffer *b)
{
	unsigned int bs = b->c->block_size;

	switch (b->data_kind) {
	case DATA_SLAB:
		kfree(b->data);
		break;
	case DATA_PAGES:
		free_pages((unsigned long)b->data, get_order(bs));
		break;
	default:
		vfree(b->data);
	}
	account(b->data_kind, -(long)bs);
	kfree(b);
}

/* Give an unlinked buffer back: refill the reserve first. */
static void release_memory(struct dm_bufio_client *c, struct dm_buffer *b)
{
	if (c->n_reserved < c->reserved_target) {
		list_add(&b->lru, &c->reserved);
		c->n_reserved++;
	} else {
		free_buffer(b);
	}
	wake_up(&c->free_wait);
}

/* ---------------------------------------------------------------- I/O */

static void io_done(struct dm_buffer *b, int bit)
{
	struct dm_bufio_client *c = b->c;

	clear_bit_unlock(bit, &b->state);
	/* Order the clear before wake_up_bit's waitqueue check. */
	smp_mb__after_atomic();
	wake_up_bit(&b->state, bit);
	wake_up(&c->free_wait);
	/* c may go away once n_io drops to zero; only its address is used. */
	if (atomic_dec_and_test(&c->n_io))
		wake_up_var(&c->n_io);
}

static void read_endio(unsigned long error, void *context)
{
	struct dm_buffer *b = context;

	if (error)
		b->read_error = -EIO;
	io_done(b, B_READING);
}

static void write_endio(unsigned long error, void *context)
{
	struct dm_buffer *b = context;

	if (error) {
		b->write_error = -EIO;
		cmpxchg(&b->c->async_write_error, 0, -EIO);
	}
	io_done(b, B_WRITING);
}

static void submit_io(struct dm_buffer *b, blk_opf_t opf, unsigned int start,
		      unsigned int end, io_notify_fn fn)
{
	struct dm_bufio_client *c = b->c;
	struct dm_io_region region = {
		.bdev = c->bdev,
		.sector = block_to_sector(c, b->block) + (start >> SECTOR_SHIFT),
		.count = (end - start) >> SECTOR_SHIFT,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.notify.fn = fn,
		.notify.context = b,
		.client = c->dm_io,
	};
	int r;

	if (b->data_kind == DATA_VMALLOC) {
		req.mem.type = DM_IO_VMA;
		req.mem.ptr.vma = b->data + start;
	} else {
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = b->data + start;
	}
	atomic_inc(&c->n_io);
	r = dm_io(&req, 1, &region, NULL, IOPRIO_DEFAULT);
	if (r)
		fn(1, b);
}

/*
 * Start writing a dirty buffer that is not being written. Only the dirty
 * range goes out, widened to the device's physical block size.
 */
static void start_write(struct dm_bufio_client *c, struct dm_buffer *b)
{
	unsigned int align = max_t(unsigned int, bdev_physical_block_size(c->bdev),
				   SECTOR_SIZE);
	unsigned int start, end;

	if (c->write_callback)
		c->write_callback(b);
	start = round_down(b->dirty_start, align);
	end = min(round_up(b->dirty_end, align), c->block_size);
	if (end <= start) {
		start = 0;
		end = c->block_size;
	}
	b->dirty_start = 0;
	b->dirty_end = 0;
	set_bit(B_WRITING, &b->state);
	clear_bit(B_DIRTY, &b->state);
	submit_io(b, REQ_OP_WRITE, start, end, write_endio);
}

/* Move buffers whose writes have finished back to the clean list. */
static void collect_written(struct dm_bufio_client *c)
{
	struct dm_buffer *b, *tmp;

	list_for_each_entry_safe_reverse(b, tmp, &c->lru[LIST_DIRTY], lru)
		if (!(READ_ONCE(b->state) & (BIT(B_WRITING) | BIT(B_DIRTY))))
			set_list(c, b, LIST_CLEAN);
}

static void write_all_async(struct dm_bufio_client *c)
{
	struct dm_buffer *b;
	struct blk_plug plug;

	blk_start_plug(&plug);
	list_for_each_entry_reverse(b, &c->lru[LIST_DIRTY], lru)
		if (test_bit(B_DIRTY, &b->state) && !test_bit(B_WRITING, &b->state))
			start_write(c, b);
	blk_finish_plug(&plug);
}

/* ---------------------------------------------------------------- eviction */

/* Unlink the least recently used idle clean buffer, or return NULL. */
static struct dm_buffer *evict_one(struct dm_bufio_client *c)
{
	struct dm_buffer *b;

	list_for_each_entry_reverse(b, &c->lru[LIST_CLEAN], lru) {
		if (buffer_idle(b)) {
			unlink_buffer(c, b);
			return b;
		}
	}
	/* Buffers whose writes completed become clean only when collected. */
	collect_written(c);
	list_for_each_entry_reverse(b, &c->lru[LIST_CLEAN], lru) {
		if (buffer_idle(b)) {
			unlink_buffer(c, b);
			return b;
		}
	}
	return NULL;
}

static unsigned long n_total(struct dm_bufio_client *c)
{
	return c->n_buffers[LIST_CLEAN] + c->n_buffers[LIST_DIRTY];
}

/* Keep the client within its share: drop clean buffers, start writeback. */
static void enforce_limit(struct dm_bufio_client *c)
{
	unsigned long limit = buffer_limit(c);
	struct dm_buffer *b;

	while (n_total(c) > limit) {
		b = evict_one(c);
		if (!b)
			break;
		free_buffer(b);
	}
	/* Too many dirty buffers: write them so that they become evictable. */
	if (c->n_buffers[LIST_DIRTY] > limit - limit / 4)
		write_all_async(c);
}

/*
 * Get memory for a new buffer. May drop and retake the lock, so the caller
 * must look the block up again afterwards.
 */
static struct dm_buffer *get_free_buffer(struct dm_bufio_client *c)
{
	const gfp_t nowait = GFP_NOWAIT | __GFP_NORETRY | __GFP_NOMEMALLOC | __GFP_NOWARN;
	struct dm_buffer *b;

	for (;;) {
		if (n_total(c) >= buffer_limit(c)) {
			b = evict_one(c);
			if (b)
				return b;
		}
		b = alloc_buffer(c, nowait);
		if (b)
			return b;
		if (!(c->flags & DM_BUFIO_CLIENT_NO_SLEEP)) {
			mutex_unlock(&c->lock);
			b = alloc_buffer(c, GFP_NOIO | __GFP_NORETRY | __GFP_NOMEMALLOC |
					 __GFP_NOWARN);
			mutex_lock(&c->lock);
			if (b)
				return b;
		}
		if (c->n_reserved) {
			b = list_first_entry(&c->reserved, struct dm_buffer, lru);
			list_del(&b->lru);
			c->n_reserved--;
			return b;
		}
		b = evict_one(c);
		if (b)
			return b;
		write_all_async(c);
		{
			DEFINE_WAIT(wait);

			prepare_to_wait(&c->free_wait, &wait, TASK_UNINTERRUPTIBLE);
			mutex_unlock(&c->lock);
			/* A bounded sleep: a wakeup may race with the check above. */
			io_schedule_timeout(HZ / 10);
			finish_wait(&c->free_wait, &wait);
			mutex_lock(&c->lock);
		}
	}
}

/* ---------------------------------------------------------------- lookup */

enum get_mode { GET_READ, GET_CACHED, GET_NEW };

static void *get_block(struct dm_bufio_client *c, sector_t block,
		       enum get_mode mode, struct dm_buffer **bp)
{
	struct dm_buffer *b, *fresh;
	int r;

	mutex_lock(&c->lock);
	b = find_buffer(c, block);
	if (!b) {
		if (mode == GET_CACHED) {
			mutex_unlock(&c->lock);
			return NULL;
		}
		fresh = get_free_buffer(c);
		b = find_buffer(c, block);
		if (b) {
			release_memory(c, fresh);
		} else {
			b = fresh;
			link_buffer(c, b, block);
			b->hold = 1;
			if (c->alloc_callback)
				c->alloc_callback(b);
			if (mode == GET_READ) {
				set_bit(B_READING, &b->state);
				submit_io(b, REQ_OP_READ, 0, c->block_size, read_endio);
			}
			enforce_limit(c);
			goto wait;
		}
	}
	if (mode == GET_CACHED && test_bit(B_READING, &b->state)) {
		mutex_unlock(&c->lock);
		return NULL;
	}
	b->hold++;
	list_move(&b->lru, &c->lru[b->list]);
	b->last_used = jiffies;
wait:
	mutex_unlock(&c->lock);
	wait_on_bit_io(&b->state, B_READING, TASK_UNINTERRUPTIBLE);
	if (unlikely(b->read_error)) {
		r = b->read_error;
		dm_bufio_release(b);
		return ERR_PTR(r);
	}
	*bp = b;
	return b->data;
}

void *dm_bufio_read(struct dm_bufio_client *c, sector_t block, struct dm_buffer **bp)
{
	return get_block(c, block, GET_READ, bp);
}
EXPORT_SYMBOL_GPL(dm_bufio_read);

void *dm_bufio_get(struct dm_bufio_client *c, sector_t block, struct dm_buffer **bp)
{
	return get_block(c, block, GET_CACHED, bp);
}
EXPORT_SYMBOL_GPL(dm_bufio_get);

void *dm_bufio_new(struct dm_bufio_client *c, sector_t block, struct dm_buffer **bp)
{
	return get_block(c, block, GET_NEW, bp);
}
EXPORT_SYMBOL_GPL(dm_bufio_new);

void dm_bufio_prefetch(struct dm_bufio_client *c, sector_t block, unsigned int n_blocks)
{
	const gfp_t nowait = GFP_NOWAIT | __GFP_NORETRY | __GFP_NOMEMALLOC | __GFP_NOWARN;
	struct blk_plug plug;
	struct dm_buffer *b;

	blk_start_plug(&plug);
	mutex_lock(&c->lock);
	for (; n_blocks; block++, n_blocks--) {
		if (find_buffer(c, block))
			continue;
		/* Prefetching is a hint: never wait for memory. */
		b = n_total(c) >= buffer_limit(c) ? evict_one(c) : NULL;
		if (!b)
			b = alloc_buffer(c, nowait);
		if (!b)
			break;
		link_buffer(c, b, block);
		if (c->alloc_callback)
			c->alloc_callback(b);
		set_bit(B_READING, &b->state);
		submit_io(b, REQ_OP_READ, 0, c->block_size, read_endio);
	}
	mutex_unlock(&c->lock);
	blk_finish_plug(&plug);
}
EXPORT_SYMBOL_GPL(dm_bufio_prefetch);

void dm_bufio_release(struct dm_buffer *b)
{
	struct dm_bufio_client *c = b->c;

	mutex_lock(&c->lock);
	if (WARN_ON(!b->hold)) {
		mutex_unlock(&c->lock);
		return;
	}
	b->hold--;
	if (!b->hold) {
		wake_up(&c->free_wait);
		/* A buffer whose I/O failed is not kept: the next read retries. */
		if ((b->read_error || b->write_error) && buffer_idle(b)) {
			unlink_buffer(c, b);
			release_memory(c, b);
		} else if (n_total(c) > buffer_limit(c)) {
			enforce_limit(c);
		}
	}
	mutex_unlock(&c->lock);
}
EXPORT_SYMBOL_GPL(dm_bufio_release);

void dm_bufio_mark_partial_buffer_dirty(struct dm_buffer *b, unsigned int start,
					unsigned int end)
{
	struct dm_bufio_client *c = b->c;

	if (WARN_ON(start >= end || end > c->block_size))
		return;
	mutex_lock(&c->lock);
	if (!test_and_set_bit(B_DIRTY, &b->state)) {
		b->dirty_start = start;
		b->dirty_end = end;
	} else {
		b->dirty_start = min(b->dirty_start, start);
		b->dirty_end = max(b->dirty_end, end);
	}
	b->write_error = 0;
	if (b->list != LIST_DIRTY)
		set_list(c, b, LIST_DIRTY);
	mutex_unlock(&c->lock);
}
EXPORT_SYMBOL_GPL(dm_bufio_mark_partial_buffer_dirty);

void dm_bufio_mark_buffer_dirty(struct dm_buffer *b)
{
	dm_bufio_mark_partial_buffer_dirty(b, 0, b->c->block_size);
}
EXPORT_SYMBOL_GPL(dm_bufio_mark_buffer_dirty);

void dm_bufio_write_dirty_buffers_async(struct dm_bufio_client *c)
{
	mutex_lock(&c->lock);
	write_all_async(c);
	mutex_unlock(&c->lock);
}
EXPORT_SYMBOL_GPL(dm_bufio_write_dirty_buffers_async);

int dm_bufio_write_dirty_buffers(struct dm_bufio_client *c)
{
	struct dm_buffer *b, *busy;
	int r;

	mutex_lock(&c->lock);
	for (;;) {
		write_all_async(c);
		busy = NULL;
		list_for_each_entry_reverse(b, &c->lru[LIST_DIRTY], lru) {
			if (test_bit(B_WRITING, &b->state)) {
				busy = b;
				break;
			}
		}
		if (!busy)
			break;
		/* Pin it so that it survives while we sleep without the lock. */
		busy->hold++;
		mutex_unlock(&c->lock);
		wait_on_bit_io(&busy->state, B_WRITING, TASK_UNINTERRUPTIBLE);
		mutex_lock(&c->lock);
		busy->hold--;
		collect_written(c);
	}
	collect_written(c);
	r = xchg(&c->async_write_error, 0);
	mutex_unlock(&c->lock);
	return r;
}
EXPORT_SYMBOL_GPL(dm_bufio_write_dirty_buffers);

int dm_bufio_issue_flush(struct dm_bufio_client *c)
{
	struct dm_io_region region = { .bdev = c->bdev };
	struct dm_io_request req = {
		.bi_opf = REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC,
		.mem.type = DM_IO_KMEM,
		.client = c->dm_io,
	};

	return dm_io(&req, 1, &region, NULL, IOPRIO_DEFAULT);
}
EXPORT_SYMBOL_GPL(dm_bufio_issue_flush);

int dm_bufio_issue_discard(struct dm_bufio_client *c, sector_t block, sector_t count)
{
	struct dm_io_region region = {
		.bdev = c->bdev,
		.sector = block_to_sector(c, block),
		.count = block_to_sector(c, count) - c->start,
	};
	struct dm_io_request req = {
		.bi_opf = REQ_OP_DISCARD | REQ_SYNC,
		.mem.type = DM_IO_KMEM,
		.client = c->dm_io,
	};

	return dm_io(&req, 1, &region, NULL, IOPRIO_DEFAULT);
}
EXPORT_SYMBOL_GPL(dm_bufio_issue_discard);

void dm_bufio_release_move(struct dm_buffer *b, sector_t new_block)
{
	struct dm_bufio_client *c = b->c;
	struct dm_buffer *old;

	mutex_lock(&c->lock);
	while ((old = find_buffer(c, new_block)) && old != b) {
		if (old->hold) {
			/* The caller holds both blocks: moving would alias them. */
			WARN_ONCE(1, "dm-bufio: moving onto a held block");
			mutex_unlock(&c->lock);
			dm_bufio_release(b);
			return;
		}
		if (!test_bit(B_READING, &old->state) && !test_bit(B_WRITING, &old->state)) {
			/* The old contents are superseded by b. */
			clear_bit(B_DIRTY, &old->state);
			if (old->list == LIST_DIRTY)
				set_list(c, old, LIST_CLEAN);
			unlink_buffer(c, old);
			release_memory(c, old);
			continue;
		}
		old->hold++;
		mutex_unlock(&c->lock);
		wait_on_bit_io(&old->state, B_READING, TASK_UNINTERRUPTIBLE);
		wait_on_bit_io(&old->state, B_WRITING, TASK_UNINTERRUPTIBLE);
		mutex_lock(&c->lock);
		old->hold--;
	}
	if (!old) {
		/* A write in flight to the old location finishes first. */
		while (test_bit(B_WRITING, &b->state)) {
			mutex_unlock(&c->lock);
			wait_on_bit_io(&b->state, B_WRITING, TASK_UNINTERRUPTIBLE);
			mutex_lock(&c->lock);
		}
		rb_erase(&b->node, &c->tree);
		b->block = new_block;
		insert_buffer(c, b);
	}
	mutex_unlock(&c->lock);
	dm_bufio_mark_buffer_dirty(b);
	dm_bufio_release(b);
}
EXPORT_SYMBOL_GPL(dm_bufio_release_move);

static void forget_locked(struct dm_bufio_client *c, struct dm_buffer *b)
{
	if (!buffer_idle(b))
		return;
	unlink_buffer(c, b);
	release_memory(c, b);
}

void dm_bufio_forget(struct dm_bufio_client *c, sector_t block)
{
	struct dm_buffer *b;

	mutex_lock(&c->lock);
	b = find_buffer(c, block);
	if (b) {
		if (b->list == LIST_DIRTY)
			collect_written(c);
		forget_locked(c, b);
	}
	mutex_unlock(&c->lock);
}
EXPORT_SYMBOL_GPL(dm_bufio_forget);

void dm_bufio_forget_buffers(struct dm_bufio_client *c, sector_t block, sector_t n_blocks)
{
	sector_t end = block + n_blocks;
	struct rb_node *n;
	struct dm_buffer *b;

	mutex_lock(&c->lock);
	collect_written(c);
	/* Find the first buffer at or after block, then walk in order. */
	n = c->tree.rb_node;
	b = NULL;
	while (n) {
		struct dm_buffer *o = rb_entry(n, struct dm_buffer, node);

		if (o->block >= block) {
			b = o;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	while (b && b->block < end) {
		struct rb_node *next = rb_next(&b->node);

		forget_locked(c, b);
		b = next ? rb_entry(next, struct dm_buffer, node) : NULL;
	}
	mutex_unlock(&c->lock);
}
EXPORT_SYMBOL_GPL(dm_bufio_forget_buffers);

void dm_bufio_set_minimum_buffers(struct dm_bufio_client *c, unsigned int n)
{
	c->minimum_buffers = n;
}
EXPORT_SYMBOL_GPL(dm_bufio_set_minimum_buffers);

unsigned int dm_bufio_get_block_size(struct dm_bufio_client *c)
{
	return c->block_size;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_block_size);

sector_t dm_bufio_get_device_size(struct dm_bufio_client *c)
{
	sector_t s = bdev_nr_sectors(c->bdev);

	s = s >= c->start ? s - c->start : 0;
	if (likely(c->block_shift >= 0))
		return s >> c->block_shift;
	sector_div(s, c->block_size >> SECTOR_SHIFT);
	return s;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_device_size);

struct dm_io_client *dm_bufio_get_dm_io_client(struct dm_bufio_client *c)
{
	return c->dm_io;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_dm_io_client);

sector_t dm_bufio_get_block_number(struct dm_buffer *b)
{
	return b->block;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_block_number);

void *dm_bufio_get_block_data(struct dm_buffer *b)
{
	return b->data;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_block_data);

void *dm_bufio_get_aux_data(struct dm_buffer *b)
{
	return b + 1;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_aux_data);

struct dm_bufio_client *dm_bufio_get_client(struct dm_buffer *b)
{
	return b->c;
}
EXPORT_SYMBOL_GPL(dm_bufio_get_client);

/* ---------------------------------------------------------------- shrinker */

/* What the shrinker leaves: the minimum, and retain_bytes worth of blocks. */
static unsigned long shrink_keep(struct dm_bufio_client *c)
{
	return max_t(unsigned long, c->minimum_buffers,
		     READ_ONCE(retain_bytes) / c->block_size);
}

static unsigned long bufio_shrink_count(struct shrinker *s, struct shrink_control *sc)
{
	struct dm_bufio_client *c = container_of(s, struct dm_bufio_client, shrinker);
	unsigned long n = READ_ONCE(c->n_buffers[LIST_CLEAN]);
	unsigned long keep = shrink_keep(c);

	return n > keep ? n - keep : 0;
}

static unsigned long bufio_shrink_scan(struct shrinker *s, struct shrink_control *sc)
{
	struct dm_bufio_client *c = container_of(s, struct dm_bufio_client, shrinker);
	unsigned long keep = shrink_keep(c);
	unsigned long freed = 0;
	struct dm_buffer *b;

	/* Reclaim may run inside our own allocations: never wait for the lock. */
	if (!mutex_trylock(&c->lock))
		return SHRINK_STOP;
	while (freed < sc->nr_to_scan && n_total(c) > keep) {
		b = evict_one(c);
		if (!b)
			break;
		free_buffer(b);
		freed++;
	}
	mutex_unlock(&c->lock);
	return freed;
}

/* Drop buffers not used for max_age_seconds, keeping retain_bytes. */
static void drop_old_buffers(struct dm_bufio_client *c)
{
	unsigned long age = READ_ONCE(max_age_seconds) * HZ;
	unsigned long retain = READ_ONCE(retain_bytes) / c->block_size;
	struct dm_buffer *b, *tmp;

	mutex_lock(&c->lock);
	collect_written(c);
	list_for_each_entry_safe_reverse(b, tmp, &c->lru[LIST_CLEAN], lru) {
		if (n_total(c) <= retain)
			break;
		if (time_before(jiffies, b->last_used + age))
			break;
		if (!buffer_idle(b))
			continue;
		unlink_buffer(c, b);
		free_buffer(b);
	}
	mutex_unlock(&c->lock);
}

static void cleanup_fn(struct work_struct *w)
{
	struct dm_bufio_client *c;

	mutex_lock(&clients_lock);
	list_for_each_entry(c, &clients, client_list)
		drop_old_buffers(c);
	mutex_unlock(&clients_lock);
	queue_delayed_work(bufio_wq, &cleanup_work, BUFIO_WORK_SECS * HZ);
}

/* ---------------------------------------------------------------- clients */

struct dm_bufio_client *
dm_bufio_client_create(struct block_device *bdev, unsigned int block_size,
		       unsigned int reserved_buffers, unsigned int aux_size,
		       void (*alloc_callback)(struct dm_buffer *),
		       void (*write_callback)(struct dm_buffer *),
		       unsigned int flags)
{
	struct dm_bufio_client *c;
	struct dm_buffer *b;
	int r;

	if (!block_size || block_size & (SECTOR_SIZE - 1)) {
		DMERR("%s: block size not specified or is not multiple of 512b", __func__);
		return ERR_PTR(-EINVAL);
	}
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	mutex_init(&c->lock);
	c->bdev = bdev;
	c->block_size = block_size;
	c->block_shift = is_power_of_2(block_size) ?
		__ffs(block_size) - SECTOR_SHIFT : -1;
	c->aux_size = aux_size;
	c->flags = flags;
	c->alloc_callback = alloc_callback;
	c->write_callback = write_callback;
	c->tree = RB_ROOT;
	INIT_LIST_HEAD(&c->lru[LIST_CLEAN]);
	INIT_LIST_HEAD(&c->lru[LIST_DIRTY]);
	INIT_LIST_HEAD(&c->reserved);
	c->minimum_buffers = BUFIO_MIN_BUFFERS;
	c->reserved_target = reserved_buffers;
	init_waitqueue_head(&c->free_wait);
	atomic_set(&c->n_io, 0);

	c->dm_io = dm_io_client_create();
	if (IS_ERR(c->dm_io)) {
		r = PTR_ERR(c->dm_io);
		goto bad_io;
	}
	while (c->n_reserved < reserved_buffers) {
		b = alloc_buffer(c, GFP_KERNEL);
		if (!b) {
			r = -ENOMEM;
			goto bad_reserve;
		}
		list_add(&b->lru, &c->reserved);
		c->n_reserved++;
	}

	c->shrinker.count_objects = bufio_shrink_count;
	c->shrinker.scan_objects = bufio_shrink_scan;
	c->shrinker.seeks = 1;
	c->shrinker.batch = 0;
	r = register_shrinker(&c->shrinker, "dm-bufio:(%u:%u)",
			      MAJOR(bdev->bd_dev), MINOR(bdev->bd_dev));
	if (r)
		goto bad_reserve;

	mutex_lock(&clients_lock);
	list_add(&c->client_list, &clients);
	n_clients++;
	mutex_unlock(&clients_lock);
	return c;

bad_reserve:
	while (!list_empty(&c->reserved)) {
		b = list_first_entry(&c->reserved, struct dm_buffer, lru);
		list_del(&b->lru);
		free_buffer(b);
	}
	dm_io_client_destroy(c->dm_io);
bad_io:
	kfree(c);
	return ERR_PTR(r);
}
EXPORT_SYMBOL_GPL(dm_bufio_client_create);

/* Write what is dirty, then free every idle buffer. */
static void drop_buffers(struct dm_bufio_client *c)
{
	struct dm_buffer *b;

	dm_bufio_write_dirty_buffers(c);
	wait_var_event(&c->n_io, !atomic_read(&c->n_io));
	mutex_lock(&c->lock);
	while ((b = evict_one(c)))
		free_buffer(b);
	mutex_unlock(&c->lock);
}

void dm_bufio_client_reset(struct dm_bufio_client *c)
{
	drop_buffers(c);
}
EXPORT_SYMBOL_GPL(dm_bufio_client_reset);

void dm_bufio_set_sector_offset(struct dm_bufio_client *c, sector_t start)
{
	c->start = start;
}
EXPORT_SYMBOL_GPL(dm_bufio_set_sector_offset);

void dm_bufio_client_destroy(struct dm_bufio_client *c)
{
	struct dm_buffer *b;
	bool warned = false;
	int i;

	drop_buffers(c);
	unregister_shrinker(&c->shrinker);

	mutex_lock(&clients_lock);
	list_del(&c->client_list);
	n_clients--;
	mutex_unlock(&clients_lock);

	/* Buffers still held here are a bug of the client: report and free them. */
	for (i = 0; i < LIST_COUNT; i++) {
		while (!list_empty(&c->lru[i])) {
			b = list_first_entry(&c->lru[i], struct dm_buffer, lru);
			WARN_ON(!warned);
			warned = true;
			DMERR("leaked buffer %llx, hold count %u, list %d",
			      (unsigned long long)b->block, b->hold, i);
			unlink_buffer(c, b);
			free_buffer(b);
		}
	}
	while (!list_empty(&c->reserved)) {
		b = list_first_entry(&c->reserved, struct dm_buffer, lru);
		list_del(&b->lru);
		free_buffer(b);
	}
	dm_io_client_destroy(c->dm_io);
	mutex_destroy(&c->lock);
	kfree(c);
}
EXPORT_SYMBOL_GPL(dm_bufio_client_destroy);

/* ---------------------------------------------------------------- module */

static int __init dm_bufio_init(void)
{
	u64 mem = (u64)(totalram_pages() - totalhigh_pages()) * BUFIO_MEMORY_PERCENT / 100;

	default_cache_size = min_t(u64, mem << PAGE_SHIFT, ULONG_MAX);
	if (!max_cache_size_bytes)
		max_cache_size_bytes = default_cache_size;

	bufio_wq = alloc_workqueue("dm_bufio_cache", WQ_MEM_RECLAIM, 0);
	if (!bufio_wq)
		return -ENOMEM;
	INIT_DELAYED_WORK(&cleanup_work, cleanup_fn);
	queue_delayed_work(bufio_wq, &cleanup_work, BUFIO_WORK_SECS * HZ);
	return 0;
}

static void __exit dm_bufio_exit(void)
{
	cancel_delayed_work_sync(&cleanup_work);
	destroy_workqueue(bufio_wq);
	WARN_ON(!list_empty(&clients));
	WARN_ON(current_allocated_bytes);
}

module_init(dm_bufio_init);
module_exit(dm_bufio_exit);

MODULE_DESCRIPTION("device-mapper buffered I/O library");
MODULE_LICENSE("GPL");
