/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * I/O statistics regions of a mapped device (@stats_* messages).
 */
#ifndef DM_STATS_H
#define DM_STATS_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

struct mapped_device;
struct bio;

struct dm_stats {
	struct mutex mutex;		/* serialises region changes */
	struct list_head list;		/* regions sorted by id; RCU readers */
	struct dm_stats_last __percpu *last;
	/*
	 * Bumped after each region is published. A bio remembers the value
	 * seen at start and is only ended in regions that existed then, so
	 * creating a region needs no suspend to keep in-flight counts exact.
	 */
	unsigned long epoch;
};

/* Per dm_io bookkeeping between start and end accounting. */
struct dm_stats_aux {
	unsigned long epoch;		/* 0: bio was not accounted */
	sector_t sector;
	unsigned int sectors;
	bool write;
	bool merged;
	u64 start_ns;
};

int dm_stats_init(struct dm_stats *stats);
void dm_stats_cleanup(struct dm_stats *stats);
void dm_stats_io_start(struct dm_stats *stats, struct bio *bio,
		       struct dm_stats_aux *aux);
void dm_stats_io_end(struct dm_stats *stats, unsigned long start_time,
		     struct dm_stats_aux *aux);
int dm_stats_message(struct mapped_device *md, unsigned int argc, char **argv,
		     char *result, unsigned int maxlen);

/* The only cost on the I/O path while a device has no region. */
static inline bool dm_stats_used(struct dm_stats *stats)
{
	return !list_empty(&stats->list);
}

#endif
