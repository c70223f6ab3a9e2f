/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared definitions of dm-snapshot: the snapshot core (dm-snap.c) and the
 * exception stores that remember where each copied chunk lives.
 */
#ifndef DM_SNAP_H
#define DM_SNAP_H

#include <linux/device-mapper.h>
#include <linux/list.h>
#include <linux/types.h>

struct dm_snapshot;

/* One copied chunk: origin chunk @old_chunk lives at COW chunk @new_chunk. */
struct dm_exception {
	struct hlist_node hash;
	sector_t old_chunk;
	sector_t new_chunk;
};

struct dm_exception_store;

typedef void (*store_commit_fn)(void *context, int success);
typedef int (*store_add_fn)(void *context, sector_t old, sector_t new);

/* A store type: persistent (P) and transient (N) are built in. */
struct dm_exception_store_type {
	const char *name;
	struct module *module;

	int (*ctr)(struct dm_exception_store *store, char *options);
	void (*dtr)(struct dm_exception_store *store);
	/* < 0 error, 0 usable, > 0 marked invalid on disk */
	int (*read_metadata)(struct dm_exception_store *store,
			     store_add_fn add, void *context);
	/* Picks e->new_chunk; fails with -ENOSPC when the COW is full. */
	int (*prepare_exception)(struct dm_exception_store *store,
				 struct dm_exception *e);
	/* Called in allocation order; @fn may run later, for a batch. */
	void (*commit_exception)(struct dm_exception_store *store,
				 struct dm_exception *e, int valid,
				 store_commit_fn fn, void *context);
	/* Number of consecutive chunks ending at the last old/new pair, 0 when done. */
	int (*prepare_merge)(struct dm_exception_store *store,
			     sector_t *last_old, sector_t *last_new);
	int (*commit_merge)(struct dm_exception_store *store, int nr);
	void (*drop_snapshot)(struct dm_exception_store *store);
	void (*usage)(struct dm_exception_store *store, sector_t *total,
		      sector_t *allocated, sector_t *metadata);
	unsigned int (*status)(struct dm_exception_store *store,
			       status_type_t type, char *result,
			       unsigned int maxlen);

	struct list_head list;
};

struct dm_exception_store {
	struct dm_exception_store_type *type;
	struct dm_snapshot *snap;
	unsigned int chunk_size;
	unsigned int chunk_mask;
	unsigned int chunk_shift;
	bool userspace_supports_overflow;	/* "PO" */
	void *context;
};

/* Used by the stores. */
struct dm_dev *dm_snap_origin(struct dm_snapshot *s);
struct dm_dev *dm_snap_cow(struct dm_snapshot *s);

int dm_exception_store_type_register(struct dm_exception_store_type *type);
int dm_exception_store_type_unregister(struct dm_exception_store_type *type);
int dm_exception_store_create(struct dm_target *ti, int argc, char **argv,
			      struct dm_snapshot *snap, unsigned int *args_used,
			      struct dm_exception_store **store);
void dm_exception_store_destroy(struct dm_exception_store *store);
int dm_exception_store_set_chunk_size(struct dm_exception_store *store,
				      unsigned int chunk_size, char **error);

int dm_persistent_snapshot_init(void);
void dm_persistent_snapshot_exit(void);
int dm_transient_snapshot_init(void);
void dm_transient_snapshot_exit(void);

static inline sector_t snap_cow_size(struct dm_exception_store *store)
{
	return bdev_nr_sectors(dm_snap_cow(store->snap)->bdev);
}

static inline sector_t chunk_to_sector(struct dm_exception_store *store,
				       sector_t chunk)
{
	return chunk << store->chunk_shift;
}

#endif
