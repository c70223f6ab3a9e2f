/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * IMA measurement of mapped devices: what dm-mod remembers between the
 * critical-data records it hands to IMA (see Documentation/dm-ima.md).
 */
#ifndef DM_IMA_INTERNAL_H
#define DM_IMA_INTERNAL_H

#include <linux/mutex.h>
#include <linux/types.h>

struct mapped_device;
struct dm_table;

/* What the records say about one table (live or staged). */
struct dm_ima_table_state {
	char *device_metadata;	/* "name=..,uuid=..,...,num_targets=N;" */
	char *hash;		/* "sha256:<hex>" of that table's load records */
	unsigned int num_targets;
};

struct dm_ima_state {
	struct mutex lock;
	struct dm_ima_table_state active;
	struct dm_ima_table_state inactive;
};

#if IS_ENABLED(CONFIG_IMA)
void dm_ima_init(struct mapped_device *md);
void dm_ima_exit(struct mapped_device *md);
void dm_ima_measure_table_load(struct dm_table *t);
void dm_ima_measure_resume(struct mapped_device *md, bool swapped);
void dm_ima_measure_remove(struct mapped_device *md, bool remove_all);
void dm_ima_measure_table_clear(struct mapped_device *md, bool had_inactive);
void dm_ima_measure_rename(struct mapped_device *md);
#else
static inline void dm_ima_init(struct mapped_device *md) {}
static inline void dm_ima_exit(struct mapped_device *md) {}
static inline void dm_ima_measure_table_load(struct dm_table *t) {}
static inline void dm_ima_measure_resume(struct mapped_device *md,
					 bool swapped) {}
static inline void dm_ima_measure_remove(struct mapped_device *md,
					 bool remove_all) {}
static inline void dm_ima_measure_table_clear(struct mapped_device *md,
					      bool had_inactive) {}
static inline void dm_ima_measure_rename(struct mapped_device *md) {}
#endif

#endif
