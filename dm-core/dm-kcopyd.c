// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-kcopyd: asynchronous copying of one region to up to
 * DM_KCOPYD_MAX_REGIONS destinations, and zeroing. Part of dm-mod; used by
 * snapshot, mirror, thin, cache, clone, zoned, ...
 *
 * A job walks through: get pages -> read the source -> write every
 * destination -> complete (callback). All steps run from one work item per
 * client, fed by lists that I/O completions append to. Big jobs are cut into
 * chunks of kcopyd_subjob_size_kb, with up to SPLIT_COUNT chunks in flight,
 * each chunk reusing its sub-job slot when it finishes.
 */
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "dm-libs.h"

#define KCOPYD_PREFIX	"device-mapper: kcopyd: "

#define SUBJOB_KB_DEFAULT	512
#define SUBJOB_KB_MAX		1024
#define SPLIT_COUNT		8
#define MIN_JOBS		8

static unsigned int kcopyd_subjob_size_kb = SUBJOB_KB_DEFAULT;
module_param(kcopyd_subjob_size_kb, uint, 0644);
MODULE_PARM_DESC(kcopyd_subjob_size_kb, "Sub-job size for dm-kcopyd clients");

struct dm_kcopyd_client {
	struct page_list *free_pages;	/* reserve, used when allocation fails */
	unsigned int nr_reserved_pages;
	unsigned int nr_free_pages;
	unsigned int sub_job_size;	/* sectors */

	struct dm_io_client *io_client;
	mempool_t job_pool;
	struct dm_kcopyd_throttle *throttle;

	struct workqueue_struct *wq;
	struct work_struct work;

	wait_queue_head_t destroyq;
	atomic_t nr_jobs;		/* caller-visible jobs not yet completed */

	spinlock_t lock;		/* protects the four lists */
	struct list_head callback_jobs;
	struct list_head complete_jobs;
	struct list_head io_jobs;
	struct list_head pages_jobs;
};

struct kcopyd_job {
	struct dm_kcopyd_client *kc;
	struct list_head list;
	unsigned long flags;

	int read_err;
	unsigned long write_err;

	enum req_op write_op;		/* WRITE, or WRITE_ZEROES for zeroing */
	bool writing;			/* the read step is done (or not needed) */
	bool zeroing;			/* no source: write zeroes */

	struct dm_io_region source;
	unsigned int num_dests;
	struct dm_io_region dests[DM_KCOPYD_MAX_REGIONS];

	struct page_list *pages;

	dm_kcopyd_notify_fn fn;
	void *context;

	/* The job that the caller sees; itself unless this is a chunk. */
	struct kcopyd_job *master;

	/* Master only: splitting state, under split_lock. */
	spinlock_t split_lock;
	sector_t progress;		/* sectors handed out to chunks */
	sector_t write_offset;		/* next chunk allowed to write (WRITE_SEQ) */
	unsigned int chunks_active;	/* chunks in flight + 1 while splitting */
	bool aborted;			/* a chunk failed: write no more */
};

static struct kmem_cache *job_cache;

/* For zeroing without write-zeroes: one zero page, endlessly. */
static struct page_list zero_page_list;

/* ------------------------------------------------------------ throttle */

static DEFINE_SPINLOCK(throttle_lock);

/* Old history weighs less: halve the sums once they cover this long. */
#define THROTTLE_WINDOW		HZ
#define THROTTLE_SLEEP_MS	100

/* Fold the time since the last event into the sums. */
static void throttle_account(struct dm_kcopyd_throttle *t)
{
	unsigned int now = jiffies;
	unsigned int delta = now - t->last_jiffies;

	t->last_jiffies = now;
	t->total_period += delta;
	if (t->num_io_jobs)
		t->io_period += delta;
	if (t->total_period > THROTTLE_WINDOW) {
		t->total_period >>= 1;
		t->io_period >>= 1;
	}
}

/*
 * A throttle below 100 caps the share of time that this client keeps I/O in
 * flight; wait while the recent share is above it.
 */
static void io_job_start(struct dm_kcopyd_throttle *t)
{
	unsigned int pct;

	if (!t)
		return;
	for (;;) {
		pct = READ_ONCE(t->throttle);
		spin_lock_irq(&throttle_lock);
		throttle_account(t);
		if (pct >= 100 || !t->total_period ||
		    (u64)t->io_period * 100 <= (u64)t->total_period * pct)
			break;
		spin_unlock_irq(&throttle_lock);
		msleep(THROTTLE_SLEEP_MS);
	}
	t->num_io_jobs++;
	spin_unlock_irq(&throttle_lock);
}

static void io_job_finish(struct dm_kcopyd_throttle *t)
{
	unsigned long flags;

	if (!t)
		return;
	spin_lock_irqsave(&throttle_lock, flags);
	throttle_account(t);
	if (t->num_io_jobs)
		t->num_io_jobs--;
	spin_unlock_irqrestore(&throttle_lock, flags);
}

/* ------------------------------------------------------------ pages */

static struct page_list *alloc_pl(gfp_t gfp)
{
	struct page_list *pl = kmalloc(sizeof(*pl), gfp);

	if (!pl)
		return NULL;
	pl->page = alloc_page(gfp);
	if (!pl->page) {
		kfree(pl);
		return NULL;
	}
	return pl;
}

static void free_pl(struct page_list *pl)
{
	__free_page(pl->page);
	kfree(pl);
}

static void free_pl_list(struct page_list *pl)
{
	struct page_list *next;

	for (; pl; pl = next) {
		next = pl->next;
		free_pl(pl);
	}
}

/* Give pages back: refill the reserve first, free the rest. */
static void put_pages(struct dm_kcopyd_client *kc, struct page_list *pl)
{
	struct page_list *next;

	for (; pl; pl = next) {
		next = pl->next;
		if (kc->nr_free_pages >= kc->nr_reserved_pages) {
			free_pl(pl);
		} else {
			pl->next = kc->free_pages;
			kc->free_pages = pl;
			kc->nr_free_pages++;
		}
	}
}

/*
 * NR pages for a job: fresh ones while the allocator gives them without
 * waiting, else from the reserve. Only the work item touches the reserve.
 */
static int get_pages(struct dm_kcopyd_client *kc, unsigned int nr,
		     struct page_list **pages)
{
	struct page_list *pl;

	*pages = NULL;
	while (nr--) {
		pl = alloc_pl(__GFP_NOWARN | __GFP_NORETRY | __GFP_KSWAPD_RECLAIM);
		if (!pl) {
			if (!kc->free_pages) {
				put_pages(kc, *pages);
				*pages = NULL;
				return -ENOMEM;
			}
			pl = kc->free_pages;
			kc->free_pages = pl->next;
			kc->nr_free_pages--;
		}
		pl->next = *pages;
		*pages = pl;
	}
	return 0;
}

static int reserve_pages(struct dm_kcopyd_client *kc, unsigned int nr)
{
	struct page_list *pl;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		pl = alloc_pl(GFP_KERNEL);
		if (!pl)
			return -ENOMEM;
		pl->next = kc->free_pages;
		kc->free_pages = pl;
		kc->nr_free_pages++;
		kc->nr_reserved_pages++;
	}
	return 0;
}

/* ------------------------------------------------------------ job lists */

static void wake(struct dm_kcopyd_client *kc)
{
	queue_work(kc->wq, &kc->work);
}

static void push(struct list_head *head, struct kcopyd_job *job)
{
	struct dm_kcopyd_client *kc = job->kc;
	unsigned long flags;

	spin_lock_irqsave(&kc->lock, flags);
	list_add_tail(&job->list, head);
	spin_unlock_irqrestore(&kc->lock, flags);
}

static void push_front(struct list_head *head, struct kcopyd_job *job)
{
	struct dm_kcopyd_client *kc = job->kc;
	unsigned long flags;

	spin_lock_irqsave(&kc->lock, flags);
	list_add(&job->list, head);
	spin_unlock_irqrestore(&kc->lock, flags);
}

static bool write_in_order(struct kcopyd_job *job)
{
	return job->writing && test_bit(DM_KCOPYD_WRITE_SEQ, &job->flags);
}

/*
 * With WRITE_SEQ, chunks must be written in ascending order (host-managed
 * zoned destinations): a chunk may only write once every chunk before it has
 * been submitted.
 */
static struct kcopyd_job *pop_io_job(struct dm_kcopyd_client *kc)
{
	struct kcopyd_job *job;

	list_for_each_entry(job, &kc->io_jobs, list) {
		struct kcopyd_job *m = job->master;
		sector_t off;

		if (!write_in_order(job) || m == job)
			goto found;
		off = job->dests[0].sector - m->dests[0].sector;
		spin_lock(&m->split_lock);
		/* After a failure the chunks still queued are dropped. */
		if (m->aborted || off == m->write_offset) {
			m->write_offset += job->dests[0].count;
			spin_unlock(&m->split_lock);
			goto found;
		}
		spin_unlock(&m->split_lock);
	}
	return NULL;
found:
	list_del(&job->list);
	return job;
}

static struct kcopyd_job *pop(struct list_head *head,
			      struct dm_kcopyd_client *kc)
{
	struct kcopyd_job *job = NULL;

	spin_lock_irq(&kc->lock);
	if (head == &kc->io_jobs) {
		job = pop_io_job(kc);
	} else if (!list_empty(head)) {
		job = list_first_entry(head, struct kcopyd_job, list);
		list_del(&job->list);
	}
	spin_unlock_irq(&kc->lock);
	return job;
}

/* ------------------------------------------------------------ job steps */

static void chunk_done(struct kcopyd_job *chunk);

/* The caller's job is finished: free it and tell the caller. */
static void run_complete_job(struct kcopyd_job *job)
{
	struct dm_kcopyd_client *kc = job->kc;
	dm_kcopyd_notify_fn fn = job->fn;
	void *context = job->context;
	int read_err = job->read_err;
	unsigned long write_err = job->write_err;

	if (job->pages && job->pages != &zero_page_list)
		put_pages(kc, job->pages);
	job->pages = NULL;

	if (job->master != job) {
		chunk_done(job);
		return;
	}

	mempool_free(job, &kc->job_pool);
	if (fn)
		fn(read_err, write_err, context);

	/* The caller may destroy the client once this drops to zero. */
	if (atomic_dec_and_test(&kc->nr_jobs))
		wake_up(&kc->destroyq);
}

static void io_done(unsigned long error, void *context)
{
	struct kcopyd_job *job = context;
	struct dm_kcopyd_client *kc = job->kc;

	io_job_finish(kc->throttle);

	if (error) {
		if (job->writing)
			job->write_err |= error;
		else
			job->read_err = 1;

		if (!test_bit(DM_KCOPYD_IGNORE_ERROR, &job->flags)) {
			push(&kc->complete_jobs, job);
			wake(kc);
			return;
		}
	}

	if (job->writing) {
		push(&kc->complete_jobs, job);
	} else {
		job->writing = true;
		push(&kc->io_jobs, job);
	}
	wake(kc);
}

static int run_io_job(struct kcopyd_job *job)
{
	struct dm_io_request req = {
		.mem.type = DM_IO_PAGE_LIST,
		.mem.ptr.pl = job->pages,
		.mem.offset = 0,
		.notify.fn = io_done,
		.notify.context = job,
		.client = job->kc->io_client,
	};
	int r;

	if (write_in_order(job) && job->master != job &&
	    READ_ONCE(job->master->aborted)) {
		push(&job->kc->complete_jobs, job);
		return 0;
	}

	io_job_start(job->kc->throttle);
	if (job->writing) {
		req.bi_opf = job->write_op;
		r = dm_io(&req, job->num_dests, job->dests, NULL, IOPRIO_DEFAULT);
	} else {
		req.bi_opf = REQ_OP_READ;
		r = dm_io(&req, 1, &job->source, NULL, IOPRIO_DEFAULT);
	}
	if (r)
		io_job_finish(job->kc->throttle);
	return r;
}

static int run_pages_job(struct kcopyd_job *job)
{
	unsigned int nr = DIV_ROUND_UP(job->source.count << SECTOR_SHIFT,
				       PAGE_SIZE);
	int r;

	r = get_pages(job->kc, nr, &job->pages);
	if (!r)
		push(&job->kc->io_jobs, job);
	return r;
}

/*
 * Run the jobs of one list through FN. Returns false if a job has to wait
 * for resources (pages): it goes back to the front and the list stalls.
 */
static bool process_jobs(struct list_head *head, struct dm_kcopyd_client *kc,
			 int (*fn)(struct kcopyd_job *))
{
	struct kcopyd_job *job;
	int r;

	while ((job = pop(head, kc))) {
		r = fn(job);
		if (r == -ENOMEM) {
			push_front(head, job);
			return false;
		}
		if (r < 0) {
			/* dm_io refused the request outright. */
			if (job->writing)
				job->write_err = (unsigned long)-1L;
			else
				job->read_err = 1;
			push(&kc->complete_jobs, job);
			wake(kc);
			continue;
		}
	}
	return true;
}

static int complete_job_fn(struct kcopyd_job *job)
{
	run_complete_job(job);
	cond_resched();
	return 0;
}

static void do_work(struct work_struct *work)
{
	struct dm_kcopyd_client *kc = container_of(work, struct dm_kcopyd_client,
						   work);
	struct blk_plug plug;

	spin_lock_irq(&kc->lock);
	list_splice_tail_init(&kc->callback_jobs, &kc->complete_jobs);
	spin_unlock_irq(&kc->lock);

	blk_start_plug(&plug);
	process_jobs(&kc->complete_jobs, kc, complete_job_fn);
	process_jobs(&kc->pages_jobs, kc, run_pages_job);
	process_jobs(&kc->io_jobs, kc, run_io_job);
	blk_finish_plug(&plug);
}

/* A job (or chunk) is ready to start: fetch pages unless it needs none. */
static void dispatch_job(struct kcopyd_job *job)
{
	struct dm_kcopyd_client *kc = job->kc;

	if (job->zeroing)
		push(&kc->io_jobs, job);
	else
		push(&kc->pages_jobs, job);
	wake(kc);
}

/* ------------------------------------------------------------ splitting */

static void master_put(struct kcopyd_job *m)
{
	bool done;

	spin_lock_irq(&m->split_lock);
	done = !--m->chunks_active;
	spin_unlock_irq(&m->split_lock);

	if (done) {
		push(&m->kc->complete_jobs, m);
		wake(m->kc);
	}
}

/*
 * Hand the next chunk of master M to slot CHUNK. Returns false when the
 * whole range has been handed out (or an error stopped the job).
 */
static bool start_chunk(struct kcopyd_job *m, struct kcopyd_job *chunk)
{
	sector_t off, n;
	unsigned int i;

	spin_lock_irq(&m->split_lock);
	off = m->progress;
	if (off >= m->source.count) {
		spin_unlock_irq(&m->split_lock);
		return false;
	}
	n = min_t(sector_t, m->source.count - off, m->kc->sub_job_size);
	m->progress += n;
	m->chunks_active++;
	spin_unlock_irq(&m->split_lock);

	chunk->kc = m->kc;
	chunk->master = m;
	chunk->flags = m->flags;
	chunk->read_err = 0;
	chunk->write_err = 0;
	chunk->write_op = m->write_op;
	chunk->writing = m->writing;
	chunk->zeroing = m->zeroing;
	chunk->pages = m->zeroing ? m->pages : NULL;
	chunk->fn = NULL;
	chunk->context = NULL;

	chunk->source.bdev = m->source.bdev;
	chunk->source.sector = m->source.sector + off;
	chunk->source.count = n;
	chunk->num_dests = m->num_dests;
	for (i = 0; i < m->num_dests; i++) {
		chunk->dests[i].bdev = m->dests[i].bdev;
		chunk->dests[i].sector = m->dests[i].sector + off;
		chunk->dests[i].count = n;
	}

	dispatch_job(chunk);
	return true;
}

static void chunk_done(struct kcopyd_job *chunk)
{
	struct kcopyd_job *m = chunk->master;
	bool failed = chunk->read_err || chunk->write_err;

	spin_lock_irq(&m->split_lock);
	if (chunk->read_err)
		m->read_err = 1;
	m->write_err |= chunk->write_err;
	/* Stop on error unless told to go on; with WRITE_SEQ always stop. */
	if (failed && (!test_bit(DM_KCOPYD_IGNORE_ERROR, &m->flags) ||
		       test_bit(DM_KCOPYD_WRITE_SEQ, &m->flags))) {
		m->progress = m->source.count;
		m->aborted = true;
	}
	spin_unlock_irq(&m->split_lock);

	/* Reuse the slot for the next chunk, if any; then drop this one. */
	start_chunk(m, chunk);
	master_put(m);
}

static void split_job(struct kcopyd_job *m)
{
	struct kcopyd_job *chunks = m + 1;
	unsigned int i;

	spin_lock_init(&m->split_lock);
	m->progress = 0;
	m->write_offset = 0;
	m->chunks_active = 1;
	m->aborted = false;

	for (i = 0; i < SPLIT_COUNT; i++)
		if (!start_chunk(m, &chunks[i]))
			break;
	master_put(m);
}

/* ------------------------------------------------------------ API */

static struct kcopyd_job *alloc_job(struct dm_kcopyd_client *kc,
				    dm_kcopyd_notify_fn fn, void *context)
{
	struct kcopyd_job *job = mempool_alloc(&kc->job_pool, GFP_NOIO);

	memset(job, 0, sizeof(*job));
	job->kc = kc;
	job->master = job;
	job->fn = fn;
	job->context = context;
	atomic_inc(&kc->nr_jobs);
	return job;
}

static bool all_write_zeroes(struct dm_io_region *dests, unsigned int num)
{
	unsigned int i;

	for (i = 0; i < num; i++)
		if (!bdev_write_zeroes_sectors(dests[i].bdev))
			return false;
	return true;
}

static bool any_host_managed(struct dm_io_region *dests, unsigned int num)
{
	unsigned int i;

	for (i = 0; i < num; i++)
		if (bdev_is_zoned(dests[i].bdev))
			return true;
	return false;
}

void dm_kcopyd_copy(struct dm_kcopyd_client *kc, struct dm_io_region *from,
		    unsigned int num_dests, struct dm_io_region *dests,
		    unsigned int flags, dm_kcopyd_notify_fn fn, void *context)
{
	struct kcopyd_job *job;

	if (WARN_ON_ONCE(num_dests > DM_KCOPYD_MAX_REGIONS))
		num_dests = DM_KCOPYD_MAX_REGIONS;

	job = alloc_job(kc, fn, context);
	job->flags = flags;
	job->num_dests = num_dests;
	memcpy(job->dests, dests, sizeof(*dests) * num_dests);

	/* In-order writes only matter to zoned destinations. */
	if (test_bit(DM_KCOPYD_WRITE_SEQ, &job->flags) &&
	    !any_host_managed(job->dests, num_dests))
		clear_bit(DM_KCOPYD_WRITE_SEQ, &job->flags);

	if (from) {
		job->source = *from;
		job->write_op = REQ_OP_WRITE;
	} else {
		/* Zeroing: no read; the destinations set the length. */
		job->zeroing = true;
		job->writing = true;
		job->source.bdev = NULL;
		job->source.sector = 0;
		job->source.count = job->dests[0].count;
		if (all_write_zeroes(job->dests, num_dests)) {
			job->write_op = REQ_OP_WRITE_ZEROES;
			job->pages = NULL;
		} else {
			job->write_op = REQ_OP_WRITE;
			job->pages = &zero_page_list;
		}
	}

	if (job->source.count <= kc->sub_job_size)
		dispatch_job(job);
	else
		split_job(job);
}
EXPORT_SYMBOL(dm_kcopyd_copy);

void dm_kcopyd_zero(struct dm_kcopyd_client *kc, unsigned int num_dests,
		    struct dm_io_region *dests, unsigned int flags,
		    dm_kcopyd_notify_fn fn, void *context)
{
	dm_kcopyd_copy(kc, NULL, num_dests, dests, flags, fn, context);
}
EXPORT_SYMBOL(dm_kcopyd_zero);

void *dm_kcopyd_prepare_callback(struct dm_kcopyd_client *kc,
				 dm_kcopyd_notify_fn fn, void *context)
{
	return alloc_job(kc, fn, context);
}
EXPORT_SYMBOL(dm_kcopyd_prepare_callback);

void dm_kcopyd_do_callback(void *j, int read_err, unsigned long write_err)
{
	struct kcopyd_job *job = j;
	struct dm_kcopyd_client *kc = job->kc;

	job->read_err = read_err;
	job->write_err = write_err;
	push(&kc->callback_jobs, job);
	wake(kc);
}
EXPORT_SYMBOL(dm_kcopyd_do_callback);

/* The sub-job size in sectors; out-of-range settings are corrected. */
static unsigned int subjob_sectors(void)
{
	unsigned int kb = READ_ONCE(kcopyd_subjob_size_kb);

	if (!kb) {
		kb = SUBJOB_KB_DEFAULT;
		WRITE_ONCE(kcopyd_subjob_size_kb, kb);
	} else if (kb > SUBJOB_KB_MAX) {
		kb = SUBJOB_KB_MAX;
		WRITE_ONCE(kcopyd_subjob_size_kb, kb);
	}
	/* Chunks are whole pages. */
	kb = max_t(unsigned int, round_down(kb, PAGE_SIZE >> 10), PAGE_SIZE >> 10);
	return kb * 2;
}

struct dm_kcopyd_client *dm_kcopyd_client_create(struct dm_kcopyd_throttle *throttle)
{
	struct dm_kcopyd_client *kc;
	int r;

	kc = kzalloc(sizeof(*kc), GFP_KERNEL);
	if (!kc)
		return ERR_PTR(-ENOMEM);

	spin_lock_init(&kc->lock);
	INIT_LIST_HEAD(&kc->callback_jobs);
	INIT_LIST_HEAD(&kc->complete_jobs);
	INIT_LIST_HEAD(&kc->io_jobs);
	INIT_LIST_HEAD(&kc->pages_jobs);
	init_waitqueue_head(&kc->destroyq);
	atomic_set(&kc->nr_jobs, 0);
	kc->throttle = throttle;
	kc->sub_job_size = subjob_sectors();

	r = mempool_init_slab_pool(&kc->job_pool, MIN_JOBS, job_cache);
	if (r)
		goto bad_kc;

	INIT_WORK(&kc->work, do_work);
	kc->wq = alloc_workqueue("kcopyd", WQ_MEM_RECLAIM, 0);
	if (!kc->wq) {
		r = -ENOMEM;
		goto bad_pool;
	}

	/* One chunk must always be able to get its pages. */
	r = reserve_pages(kc, DIV_ROUND_UP(kc->sub_job_size << SECTOR_SHIFT,
					   PAGE_SIZE));
	if (r)
		goto bad_pages;

	kc->io_client = dm_io_client_create();
	if (IS_ERR(kc->io_client)) {
		r = PTR_ERR(kc->io_client);
		goto bad_pages;
	}
	return kc;

bad_pages:
	free_pl_list(kc->free_pages);
	destroy_workqueue(kc->wq);
bad_pool:
	mempool_exit(&kc->job_pool);
bad_kc:
	kfree(kc);
	return ERR_PTR(r);
}
EXPORT_SYMBOL(dm_kcopyd_client_create);

void dm_kcopyd_client_destroy(struct dm_kcopyd_client *kc)
{
	/* Callers must not start jobs now; wait for the ones in flight. */
	wait_event(kc->destroyq, !atomic_read(&kc->nr_jobs));

	WARN_ON(!list_empty(&kc->callback_jobs));
	WARN_ON(!list_empty(&kc->complete_jobs));
	WARN_ON(!list_empty(&kc->io_jobs));
	WARN_ON(!list_empty(&kc->pages_jobs));

	destroy_workqueue(kc->wq);
	dm_io_client_destroy(kc->io_client);
	free_pl_list(kc->free_pages);
	mempool_exit(&kc->job_pool);
	kfree(kc);
}
EXPORT_SYMBOL(dm_kcopyd_client_destroy);

void dm_kcopyd_client_flush(struct dm_kcopyd_client *kc)
{
	flush_workqueue(kc->wq);
}
EXPORT_SYMBOL(dm_kcopyd_client_flush);

int dm_kcopyd_init(void)
{
	/* A master job carries its chunk slots right behind it. */
	job_cache = kmem_cache_create("kcopyd_job",
				      sizeof(struct kcopyd_job) * (SPLIT_COUNT + 1),
				      __alignof__(struct kcopyd_job), 0, NULL);
	if (!job_cache)
		return -ENOMEM;

	zero_page_list.next = &zero_page_list;
	zero_page_list.page = ZERO_PAGE(0);
	return 0;
}

void dm_kcopyd_exit(void)
{
	kmem_cache_destroy(job_cache);
	job_cache = NULL;
}
