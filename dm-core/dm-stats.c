// SPDX-License-Identifier: GPL-2.0-only
/*
 * Device-mapper I/O statistics.
 *
 * A region covers a sector range of a mapped device and is cut into areas of
 * a fixed step. Every area keeps disk-stat-like counters, kept per CPU so
 * that the I/O path never takes a lock; printing sums them up.
 */
#include <linux/device-mapper.h>
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/cpumask.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "dm-core.h"

#define DM_MSG_PREFIX "stats"

/* Memory for all regions together is capped at these fractions. */
#define STATS_RAM_FRACTION	4
#define STATS_VMALLOC_FRACTION	2

#define STAT_PRECISE_TIMESTAMPS	1

static unsigned long stats_current_allocated_bytes;
static DEFINE_SPINLOCK(stats_memory_lock);

module_param(stats_current_allocated_bytes, ulong, 0444);
MODULE_PARM_DESC(stats_current_allocated_bytes, "Memory currently used by statistics");

/* Last I/O position seen on a CPU, for the "merged" counters. */
struct dm_stats_last {
	sector_t sector;
	bool write;
};

struct area_counters {
	u64 sectors[2];
	u64 ios[2];
	u64 merges[2];
	u64 ticks[2];
	u64 io_ticks[2];
	u64 io_ticks_total;
	u64 time_in_queue;
};

struct area_shared {
	atomic_t in_flight[2];
	u64 stamp;			/* jiffies or ns of the last rounding */
	struct area_counters sum;	/* totals taken for print/clear */
	u64 *sum_hist;
};

struct stats_region {
	struct list_head list;
	int id;
	unsigned int flags;
	unsigned long epoch;
	sector_t start, end, step;
	size_t n_areas;
	unsigned int n_bounds;
	u64 *bounds;
	char *program_id;
	char *aux_data;
	size_t mem;			/* bytes charged to the cap */
	struct area_shared *shared;
	u64 *sum_hist;			/* n_areas * (n_bounds + 1) */
	struct area_counters **pcpu;	/* [cpu][area] */
	u64 **pcpu_hist;		/* [cpu][area * (n_bounds + 1)] */
};

static bool stats_charge(size_t bytes)
{
	unsigned long total;
	bool ok = false;

	spin_lock(&stats_memory_lock);
	total = stats_current_allocated_bytes + bytes;
	if (total >= stats_current_allocated_bytes &&
	    (total >> PAGE_SHIFT) <= totalram_pages() / STATS_RAM_FRACTION &&
	    total <= (VMALLOC_END - VMALLOC_START) / STATS_VMALLOC_FRACTION) {
		stats_current_allocated_bytes = total;
		ok = true;
	}
	spin_unlock(&stats_memory_lock);
	return ok;
}

static void stats_uncharge(size_t bytes)
{
	spin_lock(&stats_memory_lock);
	stats_current_allocated_bytes -= bytes;
	spin_unlock(&stats_memory_lock);
}

static void region_free(struct stats_region *s)
{
	unsigned int cpu;

	if (s->pcpu) {
		for_each_possible_cpu(cpu)
			kvfree(s->pcpu[cpu]);
		kfree(s->pcpu);
	}
	if (s->pcpu_hist) {
		for_each_possible_cpu(cpu)
			kvfree(s->pcpu_hist[cpu]);
		kfree(s->pcpu_hist);
	}
	kvfree(s->sum_hist);
	kvfree(s->shared);
	kfree(s->bounds);
	kfree(s->program_id);
	kfree(s->aux_data);
	if (s->mem)
		stats_uncharge(s->mem);
	kfree(s);
}

int dm_stats_init(struct dm_stats *stats)
{
	mutex_init(&stats->mutex);
	INIT_LIST_HEAD(&stats->list);
	stats->epoch = 1;
	stats->last = alloc_percpu(struct dm_stats_last);
	return stats->last ? 0 : -ENOMEM;
}

void dm_stats_cleanup(struct dm_stats *stats)
{
	struct stats_region *s, *tmp;

	/* The device is gone: no I/O and no message can reach it any more. */
	list_for_each_entry_safe(s, tmp, &stats->list, list) {
		list_del(&s->list);
		region_free(s);
	}
	free_percpu(stats->last);
	stats->last = NULL;
	mutex_destroy(&stats->mutex);
}

static u64 stats_now(struct stats_region *s)
{
	if (s->flags & STAT_PRECISE_TIMESTAMPS)
		return ktime_get_ns();
	return jiffies;
}

/* Charge the time since the last event to the busy counters. */
static void area_round(struct stats_region *s, struct area_shared *sh,
		       struct area_counters *p)
{
	u64 now = stats_now(s);
	u64 delta = now - sh->stamp;
	unsigned int rd, wr;

	if (!delta)
		return;
	rd = atomic_read(&sh->in_flight[READ]);
	wr = atomic_read(&sh->in_flight[WRITE]);
	if (rd)
		p->io_ticks[READ] += delta;
	if (wr)
		p->io_ticks[WRITE] += delta;
	if (rd + wr) {
		p->io_ticks_total += delta;
		p->time_in_queue += (u64)(rd + wr) * delta;
	}
	sh->stamp = now;
}

static void area_account(struct stats_region *s, size_t area, sector_t len,
			 struct dm_stats_aux *aux, bool end,
			 unsigned long jiffies_taken, u64 ns_taken)
{
	struct area_shared *sh = &s->shared[area];
	int dir = aux->write ? WRITE : READ;
	struct area_counters *p;
	unsigned long flags;
	u64 took;

	local_irq_save(flags);
	p = &s->pcpu[smp_processor_id()][area];
	area_round(s, sh, p);
	if (!end) {
		atomic_inc(&sh->in_flight[dir]);
		local_irq_restore(flags);
		return;
	}
	atomic_dec(&sh->in_flight[dir]);
	p->sectors[dir] += len;
	p->ios[dir]++;
	p->merges[dir] += aux->merged;
	if (s->flags & STAT_PRECISE_TIMESTAMPS) {
		p->ticks[dir] += ns_taken;
		took = ns_taken;
	} else {
		p->ticks[dir] += jiffies_taken;
		took = jiffies_to_msecs(jiffies_taken);
	}
	if (s->n_bounds) {
		/* Bucket i holds durations in [bounds[i-1], bounds[i]). */
		unsigned int lo = 0, hi = s->n_bounds;

		while (lo < hi) {
			unsigned int mid = (lo + hi) / 2;

			if (s->bounds[mid] <= took)
				lo = mid + 1;
			else
				hi = mid;
		}
		s->pcpu_hist[smp_processor_id()][area * (s->n_bounds + 1) + lo]++;
	}
	local_irq_restore(flags);
}

/* Split the bio's sectors over the areas of one region it touches. */
static void region_account(struct stats_region *s, struct dm_stats_aux *aux,
			   bool end, unsigned long jiffies_taken, u64 ns_taken)
{
	sector_t first = aux->sector, last = aux->sector + aux->sectors;
	sector_t rel, left, off, piece;
	size_t area;

	if (last <= s->start || first >= s->end)
		return;
	first = max(first, s->start);
	last = min(last, s->end);
	rel = first - s->start;
	left = last - first;
	area = div64_u64_rem(rel, s->step, &off);
	while (left) {
		if (WARN_ON_ONCE(area >= s->n_areas))
			return;
		piece = min_t(sector_t, left, s->step - off);
		area_account(s, area, piece, aux, end, jiffies_taken, ns_taken);
		left -= piece;
		area++;
		off = 0;
	}
}

void dm_stats_io_start(struct dm_stats *stats, struct bio *bio,
		       struct dm_stats_aux *aux)
{
	struct dm_stats_last *last;
	struct stats_region *s;
	sector_t last_sector;
	bool last_write;

	/* A preflush carries its data later, as a bio of its own. */
	if (!bio_sectors(bio) || (bio->bi_opf & REQ_PREFLUSH)) {
		aux->epoch = 0;
		return;
	}
	/* Pairs with the release in region_create(): see struct dm_stats. */
	aux->epoch = smp_load_acquire(&stats->epoch);
	aux->sector = bio->bi_iter.bi_sector;
	aux->sectors = bio_sectors(bio);
	aux->write = op_is_write(bio_op(bio));
	aux->start_ns = ktime_get_ns();

	/* Merged: starts where this CPU's previous I/O, same direction, ended. */
	last = raw_cpu_ptr(stats->last);
	last_sector = READ_ONCE(last->sector);
	last_write = READ_ONCE(last->write);
	aux->merged = aux->sector == last_sector && last_write == aux->write;
	WRITE_ONCE(last->sector, aux->sector + aux->sectors);
	WRITE_ONCE(last->write, aux->write);

	rcu_read_lock();
	list_for_each_entry_rcu(s, &stats->list, list)
		if (s->epoch <= aux->epoch)
			region_account(s, aux, false, 0, 0);
	rcu_read_unlock();
}

void dm_stats_io_end(struct dm_stats *stats, unsigned long start_time,
		     struct dm_stats_aux *aux)
{
	unsigned long jiffies_taken = jiffies - start_time;
	u64 ns_taken = ktime_get_ns() - aux->start_ns;
	struct stats_region *s;

	rcu_read_lock();
	list_for_each_entry_rcu(s, &stats->list, list)
		if (s->epoch <= aux->epoch)
			region_account(s, aux, true, jiffies_taken, ns_taken);
	rcu_read_unlock();
}

static void *stats_array(size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n)
		return NULL;
	return kvzalloc(n * size, GFP_KERNEL | __GFP_NOWARN);
}

static int region_create(struct dm_stats *stats, sector_t start, sector_t end,
			 sector_t step, unsigned int flags, unsigned int n_bounds,
			 u64 *bounds, const char *program_id,
			 const char *aux_data)
{
	struct stats_region *s, *pos;
	struct list_head *before;
	size_t per_area, hist_len, mem;
	unsigned int cpu, ncpus = num_possible_cpus();
	u64 n_areas, rem;
	u64 now_j = jiffies, now_ns = ktime_get_ns();
	size_t i;
	int id;

	n_areas = div64_u64_rem(end - start, step, &rem);
	if (rem)
		n_areas++;
	if (n_areas != (size_t)n_areas || !(size_t)(n_areas + 1))
		return -EOVERFLOW;

	/* Account everything up front so that a huge request fails cleanly. */
	hist_len = n_bounds ? n_bounds + 1 : 0;
	per_area = sizeof(struct area_shared) + hist_len * sizeof(u64) +
		   ncpus * (sizeof(struct area_counters) + hist_len * sizeof(u64));
	if (n_areas > SIZE_MAX / per_area)
		return -ENOMEM;
	mem = n_areas * per_area;
	if (!stats_charge(mem))
		return -ENOMEM;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		stats_uncharge(mem);
		return -ENOMEM;
	}
	s->mem = mem;
	s->flags = flags;
	s->start = start;
	s->end = end;
	s->step = step;
	s->n_areas = n_areas;
	s->n_bounds = n_bounds;
	s->bounds = bounds;
	s->program_id = kstrdup(program_id, GFP_KERNEL);
	s->aux_data = kstrdup(aux_data, GFP_KERNEL);
	s->shared = stats_array(n_areas, sizeof(*s->shared));
	s->pcpu = kcalloc(nr_cpu_ids, sizeof(*s->pcpu), GFP_KERNEL);
	if (!s->program_id || !s->aux_data || !s->shared || !s->pcpu)
		goto nomem;
	if (n_bounds) {
		s->sum_hist = stats_array(n_areas, hist_len * sizeof(u64));
		s->pcpu_hist = kcalloc(nr_cpu_ids, sizeof(*s->pcpu_hist),
				       GFP_KERNEL);
		if (!s->sum_hist || !s->pcpu_hist)
			goto nomem;
	}
	for_each_possible_cpu(cpu) {
		s->pcpu[cpu] = stats_array(n_areas, sizeof(struct area_counters));
		if (!s->pcpu[cpu])
			goto nomem;
		if (n_bounds) {
			s->pcpu_hist[cpu] = stats_array(n_areas,
							hist_len * sizeof(u64));
			if (!s->pcpu_hist[cpu])
				goto nomem;
		}
		cond_resched();
	}
	for (i = 0; i < n_areas; i++) {
		s->shared[i].stamp = (flags & STAT_PRECISE_TIMESTAMPS) ?
				     now_ns : now_j;
		if (n_bounds)
			s->shared[i].sum_hist = &s->sum_hist[i * hist_len];
		if (!(i & 1023))
			cond_resched();
	}

	mutex_lock(&stats->mutex);
	/* The smallest free id; the list is kept sorted by id. */
	id = 0;
	before = &stats->list;
	list_for_each_entry(pos, &stats->list, list) {
		if (pos->id > id) {
			before = &pos->list;
			break;
		}
		if (id == INT_MAX) {
			mutex_unlock(&stats->mutex);
			s->bounds = NULL;
			region_free(s);
			return -ENFILE;
		}
		id++;
	}
	s->id = id;
	s->epoch = stats->epoch + 1;
	list_add_tail_rcu(&s->list, before);
	/* Bios that see the new epoch are sure to find the region too. */
	smp_store_release(&stats->epoch, s->epoch);
	mutex_unlock(&stats->mutex);
	return id;

nomem:
	s->bounds = NULL;	/* the caller still owns them */
	region_free(s);
	return -ENOMEM;
}

static struct stats_region *region_find(struct dm_stats *stats, int id)
{
	struct stats_region *s;

	list_for_each_entry(s, &stats->list, list) {
		if (s->id > id)
			break;
		if (s->id == id)
			return s;
	}
	return NULL;
}

static int region_delete(struct dm_stats *stats, int id)
{
	struct stats_region *s;

	mutex_lock(&stats->mutex);
	s = region_find(stats, id);
	if (!s) {
		mutex_unlock(&stats->mutex);
		return -ENOENT;
	}
	list_del_rcu(&s->list);
	mutex_unlock(&stats->mutex);
	synchronize_rcu();
	region_free(s);
	return 0;
}

/* Snapshot the per-CPU counters of one area into its shared sums. */
static void area_sum(struct stats_region *s, size_t area)
{
	struct area_shared *sh = &s->shared[area];
	struct area_counters *c = &sh->sum;
	unsigned int hist_len = s->n_bounds ? s->n_bounds + 1 : 0;
	unsigned long flags;
	unsigned int cpu, j;

	/* Bring the busy time up to now before reading it. */
	local_irq_save(flags);
	area_round(s, sh, &s->pcpu[smp_processor_id()][area]);
	local_irq_restore(flags);

	memset(c, 0, sizeof(*c));
	for (j = 0; j < hist_len; j++)
		sh->sum_hist[j] = 0;
	for_each_possible_cpu(cpu) {
		struct area_counters *p = &s->pcpu[cpu][area];

		for (j = 0; j < 2; j++) {
			c->sectors[j] += READ_ONCE(p->sectors[j]);
			c->ios[j] += READ_ONCE(p->ios[j]);
			c->merges[j] += READ_ONCE(p->merges[j]);
			c->ticks[j] += READ_ONCE(p->ticks[j]);
			c->io_ticks[j] += READ_ONCE(p->io_ticks[j]);
		}
		c->io_ticks_total += READ_ONCE(p->io_ticks_total);
		c->time_in_queue += READ_ONCE(p->time_in_queue);
		for (j = 0; j < hist_len; j++)
			sh->sum_hist[j] +=
				READ_ONCE(s->pcpu_hist[cpu][area * hist_len + j]);
	}
}

/*
 * Clear by subtracting the snapshot from this CPU's counters: I/O that
 * completed after the snapshot stays counted.
 */
static void areas_clear(struct stats_region *s, size_t from, size_t to,
			bool take_sum)
{
	unsigned int hist_len = s->n_bounds ? s->n_bounds + 1 : 0;
	unsigned long flags;
	size_t i;
	unsigned int j;

	for (i = from; i < to; i++) {
		struct area_shared *sh = &s->shared[i];
		struct area_counters *c = &sh->sum, *p;

		if (take_sum)
			area_sum(s, i);
		local_irq_save(flags);
		p = &s->pcpu[smp_processor_id()][i];
		for (j = 0; j < 2; j++) {
			p->sectors[j] -= c->sectors[j];
			p->ios[j] -= c->ios[j];
			p->merges[j] -= c->merges[j];
			p->ticks[j] -= c->ticks[j];
			p->io_ticks[j] -= c->io_ticks[j];
		}
		p->io_ticks_total -= c->io_ticks_total;
		p->time_in_queue -= c->time_in_queue;
		for (j = 0; j < hist_len; j++)
			s->pcpu_hist[smp_processor_id()][i * hist_len + j] -=
				sh->sum_hist[j];
		local_irq_restore(flags);
		cond_resched();
	}
}

static int region_clear(struct dm_stats *stats, int id)
{
	struct stats_region *s;

	mutex_lock(&stats->mutex);
	s = region_find(stats, id);
	if (!s) {
		mutex_unlock(&stats->mutex);
		return -ENOENT;
	}
	areas_clear(s, 0, s->n_areas, true);
	mutex_unlock(&stats->mutex);
	return 1;
}

static int regions_list(struct dm_stats *stats, const char *program_id,
			char *result, unsigned int maxlen)
{
	struct stats_region *s;
	unsigned int sz = 0, i;

	mutex_lock(&stats->mutex);
	list_for_each_entry(s, &stats->list, list) {
		if (program_id && strcmp(program_id, s->program_id))
			continue;
		DMEMIT("%d: %llu+%llu %llu %s %s", s->id,
		       (unsigned long long)s->start,
		       (unsigned long long)(s->end - s->start),
		       (unsigned long long)s->step, s->program_id, s->aux_data);
		if (s->flags & STAT_PRECISE_TIMESTAMPS)
			DMEMIT(" precise_timestamps");
		if (s->n_bounds) {
			DMEMIT(" histogram:");
			for (i = 0; i < s->n_bounds; i++)
				DMEMIT("%s%llu", i ? "," : "", s->bounds[i]);
		}
		DMEMIT("\n");
	}
	mutex_unlock(&stats->mutex);
	return 1;
}

static u64 stats_time(struct stats_region *s, u64 t)
{
	if (s->flags & STAT_PRECISE_TIMESTAMPS)
		return t;
	return jiffies64_to_msecs(t);
}

static int region_print(struct dm_stats *stats, int id, size_t first,
			size_t count, bool clear, char *result,
			unsigned int maxlen)
{
	struct stats_region *s;
	unsigned int sz = 0, j;
	sector_t from, to;
	size_t last, i;

	mutex_lock(&stats->mutex);
	s = region_find(stats, id);
	if (!s) {
		mutex_unlock(&stats->mutex);
		return -ENOENT;
	}
	last = first + count;
	if (last < first || last > s->n_areas)
		last = s->n_areas;
	if (first > last)
		first = last;

	from = s->start + s->step * first;
	for (i = first; i < last; i++, from = to) {
		struct area_shared *sh = &s->shared[i];
		struct area_counters *c = &sh->sum;

		/* Stock prints the full step, even for a short last area. */
		to = from + s->step;
		area_sum(s, i);
		DMEMIT("%llu+%llu %llu %llu %llu %llu %llu %llu %llu %llu %d %llu %llu %llu %llu",
		       (unsigned long long)from, (unsigned long long)s->step,
		       c->ios[READ], c->merges[READ], c->sectors[READ],
		       stats_time(s, c->ticks[READ]),
		       c->ios[WRITE], c->merges[WRITE], c->sectors[WRITE],
		       stats_time(s, c->ticks[WRITE]),
		       atomic_read(&sh->in_flight[READ]) +
		       atomic_read(&sh->in_flight[WRITE]),
		       stats_time(s, c->io_ticks_total),
		       stats_time(s, c->time_in_queue),
		       stats_time(s, c->io_ticks[READ]),
		       stats_time(s, c->io_ticks[WRITE]));
		for (j = 0; s->n_bounds && j <= s->n_bounds; j++)
			DMEMIT("%s%llu", j ? ":" : " ", sh->sum_hist[j]);
		DMEMIT("\n");
		/* Out of room: the caller retries with more; clear nothing. */
		if (sz + 1 >= maxlen)
			goto out;
	}
	if (clear)
		areas_clear(s, first, last, false);
out:
	mutex_unlock(&stats->mutex);
	return 1;
}

static int region_set_aux(struct dm_stats *stats, int id, const char *aux)
{
	struct stats_region *s;
	char *copy, *old;

	copy = kstrdup(aux, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	mutex_lock(&stats->mutex);
	s = region_find(stats, id);
	if (!s) {
		mutex_unlock(&stats->mutex);
		kfree(copy);
		return -ENOENT;
	}
	old = s->aux_data;
	s->aux_data = copy;
	mutex_unlock(&stats->mutex);
	kfree(old);
	return 0;
}

/* "b1,b2,...": strictly increasing latency bucket boundaries. */
static int parse_histogram(const char *str, unsigned int *n_out, u64 **out)
{
	unsigned int n = 1, i;
	const char *p;
	u64 *b;

	for (p = str; *p; p++)
		if (*p == ',')
			n++;
	b = kmalloc_array(n, sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	p = str;
	for (i = 0; i < n; i++) {
		unsigned long long v;
		char sep;
		int got = sscanf(p, "%llu%c", &v, &sep);

		if (got < 1 || (got == 2 && sep != ',') ||
		    (i && v <= b[i - 1] && b[i - 1])) {
			kfree(b);
			return -EINVAL;
		}
		b[i] = v;
		if (got == 1)
			break;
		p = strchr(p, ',') + 1;
	}
	if (i + 1 < n) {
		kfree(b);
		return -EINVAL;
	}
	*n_out = n;
	*out = b;
	return 0;
}

static int parse_id(const char *arg, int *id)
{
	char dummy;

	if (sscanf(arg, "%d%c", id, &dummy) != 1 || *id < 0)
		return -EINVAL;
	return 0;
}

static int message_create(struct mapped_device *md, unsigned int argc,
			  char **argv, char *result, unsigned int maxlen)
{
	unsigned long long start, len, step;
	const char *program_id = "-", *aux_data = "-";
	unsigned int divisor, n_feat, n_bounds = 0, flags = 0;
	unsigned int i = 3;
	u64 *bounds = NULL;
	char dummy;
	int r;

	if (argc < 3)
		return -EINVAL;

	if (!strcmp(argv[1], "-")) {
		start = 0;
		len = md->disk ? get_capacity(md->disk) : 0;
		if (!len)
			len = 1;
	} else if (sscanf(argv[1], "%llu+%llu%c", &start, &len, &dummy) != 2 ||
		   start + len <= start) {
		return -EINVAL;
	}

	if (sscanf(argv[2], "/%u%c", &divisor, &dummy) == 1) {
		if (!divisor)
			return -EINVAL;
		step = DIV_ROUND_UP_ULL(len, divisor);
		if (!step)
			step = 1;
	} else if (sscanf(argv[2], "%llu%c", &step, &dummy) != 1 || !step) {
		return -EINVAL;
	}

	/* A number here counts feature arguments; anything else is the id. */
	if (i < argc && sscanf(argv[i], "%u%c", &n_feat, &dummy) == 1) {
		i++;
		while (n_feat--) {
			const char *f;

			if (i >= argc) {
				r = -EINVAL;
				goto out;
			}
			f = argv[i++];
			if (!strcasecmp(f, "precise_timestamps")) {
				flags |= STAT_PRECISE_TIMESTAMPS;
			} else if (!strncasecmp(f, "histogram:", 10) &&
				   !n_bounds) {
				r = parse_histogram(f + 10, &n_bounds, &bounds);
				if (r)
					goto out;
			} else {
				r = -EINVAL;
				goto out;
			}
		}
	}
	if (i < argc)
		program_id = argv[i++];
	if (i < argc)
		aux_data = argv[i++];
	if (i < argc) {
		r = -EINVAL;
		goto out;
	}

	/* Too late to report the id once the region exists: check first. */
	if (maxlen <= snprintf(result, maxlen, "%d", INT_MAX) + 1) {
		r = 1;
		goto out;
	}

	r = region_create(&md->stats, start, start + len, step, flags,
			  n_bounds, bounds, program_id, aux_data);
	if (r < 0)
		goto out;
	bounds = NULL;
	snprintf(result, maxlen, "%d", r);
	r = 1;
out:
	kfree(bounds);
	return r;
}

static int message_print(struct mapped_device *md, unsigned int argc,
			 char **argv, bool clear, char *result,
			 unsigned int maxlen)
{
	unsigned long first = 0, count = ULONG_MAX;
	char dummy;
	int id;

	if (argc != 2 && argc != 4)
		return -EINVAL;
	if (parse_id(argv[1], &id))
		return -EINVAL;
	if (argc == 4) {
		if (strcmp(argv[2], "-") &&
		    sscanf(argv[2], "%lu%c", &first, &dummy) != 1)
			return -EINVAL;
		if (strcmp(argv[3], "-") &&
		    sscanf(argv[3], "%lu%c", &count, &dummy) != 1)
			return -EINVAL;
	}
	return region_print(&md->stats, id, first, count, clear, result,
			    maxlen);
}

/*
 * Returns 1 when @result holds output, 0 or -errno otherwise, and 2 when
 * the message is not a statistics message.
 */
int dm_stats_message(struct mapped_device *md, unsigned int argc, char **argv,
		     char *result, unsigned int maxlen)
{
	const char *cmd = argv[0];
	int id, r;

	if (!strcasecmp(cmd, "@stats_create")) {
		r = message_create(md, argc, argv, result, maxlen);
	} else if (!strcasecmp(cmd, "@stats_delete")) {
		r = argc != 2 || parse_id(argv[1], &id) ? -EINVAL :
			region_delete(&md->stats, id);
	} else if (!strcasecmp(cmd, "@stats_clear")) {
		r = argc != 2 || parse_id(argv[1], &id) ? -EINVAL :
			region_clear(&md->stats, id);
	} else if (!strcasecmp(cmd, "@stats_list")) {
		r = argc > 2 ? -EINVAL :
			regions_list(&md->stats, argc > 1 ? argv[1] : NULL,
				     result, maxlen);
	} else if (!strcasecmp(cmd, "@stats_print")) {
		r = message_print(md, argc, argv, false, result, maxlen);
	} else if (!strcasecmp(cmd, "@stats_print_clear")) {
		r = message_print(md, argc, argv, true, result, maxlen);
	} else if (!strcasecmp(cmd, "@stats_set_aux")) {
		r = argc != 3 || parse_id(argv[1], &id) ? -EINVAL :
			region_set_aux(&md->stats, id, argv[2]);
	} else {
		return 2;
	}
	if (r == -EINVAL)
		DMCRIT("Invalid parameters for message %s", cmd);
	return r;
}
