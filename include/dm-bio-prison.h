/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bio prison: cells keyed by (device, kind, block range) that hold bios
 * while the blocks they cover are being provisioned, copied or discarded.
 *
 * The first bio to detain a key holds the cell; later bios whose keys
 * overlap it wait inside the cell until the holder releases it.  A caller
 * that needs a cell preallocates it (the detain path never allocates), so
 * a map function can detain with GFP_NOWAIT cells and a worker with
 * GFP_NOIO ones.
 */
#ifndef DM_BIO_PRISON_H
#define DM_BIO_PRISON_H

#include <linux/bio.h>
#include <linux/rbtree.h>
#include <linux/types.h>

struct dm_prison;

struct dm_prison_key {
	u32 dev;
	/* Keys of different kinds (say virtual and data blocks) never meet. */
	u32 kind;
	/* Blocks [begin, end). */
	u64 begin;
	u64 end;
};

struct dm_prison_cell {
	struct rb_node node;
	struct dm_prison_key key;
	/* The bio that detained the cell first; may be NULL. */
	struct bio *holder;
	struct bio_list waiters;
};

struct dm_prison *dm_prison_create(void);
void dm_prison_destroy(struct dm_prison *prison);

struct dm_prison_cell *dm_prison_alloc_cell(struct dm_prison *prison,
					    gfp_t gfp);
void dm_prison_free_cell(struct dm_prison *prison,
			 struct dm_prison_cell *cell);

/*
 * Detain bio under key.  If a cell overlapping key is held, bio (when not
 * NULL) joins its waiters, *cell points at it and 1 is returned; prealloc
 * stays the caller's.  Otherwise prealloc becomes the cell for key with
 * bio as its holder, *cell points at it and 0 is returned.
 */
int dm_prison_detain(struct dm_prison *prison, const struct dm_prison_key *key,
		     struct bio *bio, struct dm_prison_cell *prealloc,
		     struct dm_prison_cell **cell);

/*
 * Take the cell out of the prison and move its waiters (not the holder)
 * onto bios.  The cell memory stays the caller's to free.
 */
void dm_prison_release(struct dm_prison *prison, struct dm_prison_cell *cell,
		       struct bio_list *bios);

#endif
