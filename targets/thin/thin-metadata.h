/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Thin-pool metadata: the superblock, the device details tree, the
 * two-level mapping tree and the data space map of a pool, kept with the
 * persistent-data library (include/dm-pdata.h) in the on-disk format of
 * the stock thin-pool target.
 *
 * The pool target owns one struct thin_md per metadata device; every thin
 * device opens a struct thin_md_dev on it.  All calls are serialised by a
 * reader/writer lock inside thin_md: lookups take it shared, changes take
 * it exclusive.  Nothing here sleeps on the data device.
 *
 * Every function returns 0 or a negative errno.  After a failed change the
 * in-core state may be half updated: the caller must thin_md_abort() (which
 * goes back to the last commit) before anything else.  Once aborting
 * fails too, every call gives -EINVAL (the pool goes to fail mode).
 *
 * Block numbers: "vblock" is a block of a thin device, "dblock" a block of
 * the data device, both in units of the pool's data block size.
 */
#ifndef THIN_METADATA_H
#define THIN_METADATA_H

#include <linux/types.h>

struct block_device;
struct thin_md;
struct thin_md_dev;

/* Thin device ids are 24 bits (the mapping value packs a 24-bit time). */
#define THIN_MD_MAX_DEV_ID		((1U << 24) - 1)
/* Metadata blocks are 4 KiB; at most this many are used on a device. */
#define THIN_MD_BLOCK_SECTORS		8
#define THIN_MD_MAX_BLOCKS		(255ULL * ((1ULL << 14) - 64))

/*
 * Open the metadata on bdev.  An all-zero block 0 is formatted (unless
 * read_only) with data_block_size (sectors); otherwise the superblock must
 * validate and record the same data block size (-EINVAL if not, with a
 * log line), and incompat/compat_ro feature bits are refused as stock
 * does.  Returns an ERR_PTR on failure.
 */
struct thin_md *thin_md_open(struct block_device *bdev,
			     sector_t data_block_size, bool read_only);
/* Commits unless read-only or failed, then frees everything. */
void thin_md_close(struct thin_md *md);

/* Write every change since the last commit; the superblock goes last. */
int thin_md_commit(struct thin_md *md);
/* Forget every change since the last commit (re-reads the superblock). */
int thin_md_abort(struct thin_md *md);
/* Changes made since the last commit? */
bool thin_md_changed(struct thin_md *md);

/* Read-only mode: every change gives -EPERM; lookups still work. */
void thin_md_set_read_only(struct thin_md *md);
void thin_md_set_read_write(struct thin_md *md);
/* Set the NEEDS_CHECK flag and commit it (works in read-only mode). */
int thin_md_set_needs_check(struct thin_md *md);
bool thin_md_needs_check(struct thin_md *md);

/* ---- devices (pool messages) ---- */

/* -EEXIST if dev_id is in use. */
int thin_md_create_thin(struct thin_md *md, u32 dev_id);
/* -ENODATA if the origin does not exist, -EEXIST if dev_id does. */
int thin_md_create_snap(struct thin_md *md, u32 dev_id, u32 origin_id);
/* -ENODATA if absent, -EBUSY if a thin_md_dev of it is open. */
int thin_md_delete_thin(struct thin_md *md, u32 dev_id);
/* -EINVAL unless the current id equals old_id. */
int thin_md_set_transaction_id(struct thin_md *md, u64 old_id, u64 new_id);
int thin_md_get_transaction_id(struct thin_md *md, u64 *id);
/* Metadata snapshot for userspace tools: -EBUSY if one is held. */
int thin_md_reserve_metadata_snap(struct thin_md *md);
/* -EINVAL if none is held. */
int thin_md_release_metadata_snap(struct thin_md *md);
/* Block of the held snapshot, 0 if none. */
int thin_md_get_metadata_snap(struct thin_md *md, u64 *block);

/* ---- space ---- */

/* Take a free data block (its count becomes 1): -ENOSPC if none. */
int thin_md_alloc_data_block(struct thin_md *md, u64 *dblock);
int thin_md_get_free_data_blocks(struct thin_md *md, u64 *count);
int thin_md_get_data_dev_size(struct thin_md *md, u64 *nr_blocks);
int thin_md_get_free_metadata_blocks(struct thin_md *md, u64 *count);
int thin_md_get_metadata_dev_size(struct thin_md *md, u64 *nr_blocks);
/* Grow only: -EINVAL if smaller than now (log line as stock). */
int thin_md_resize_data_dev(struct thin_md *md, u64 new_nr_blocks);
int thin_md_resize_metadata_dev(struct thin_md *md, u64 new_nr_blocks);
/* Reference count of a data block greater than one? */
int thin_md_data_block_is_shared(struct thin_md *md, u64 dblock,
				 bool *shared);
/* Take or drop a reference on data blocks [begin, end) (discard passdown). */
int thin_md_inc_data_range(struct thin_md *md, u64 begin, u64 end);
int thin_md_dec_data_range(struct thin_md *md, u64 begin, u64 end);
/*
 * fn(context) is called once (from a commit) when free metadata blocks
 * drop to or below threshold; re-armed by registering again.
 */
void thin_md_register_metadata_threshold(struct thin_md *md, u64 threshold,
					 void (*fn)(void *context),
					 void *context);

/* ---- one thin device ---- */

/* -ENODATA if dev_id does not exist. */
int thin_md_open_dev(struct thin_md *md, u32 dev_id,
		     struct thin_md_dev **td);
void thin_md_close_dev(struct thin_md_dev *td);
u32 thin_md_dev_id(struct thin_md_dev *td);

struct thin_md_lookup {
	u64 dblock;
	/* The mapping predates a snapshot of this device: maybe shared. */
	bool shared;
};

/*
 * Mapping of one vblock: -ENODATA if unmapped.  With can_block false the
 * lookup never waits for I/O or for the lock and gives -EWOULDBLOCK
 * instead (the map function calls it that way).
 */
int thin_md_find_block(struct thin_md_dev *td, u64 vblock, bool can_block,
		       struct thin_md_lookup *result);
/*
 * The first run of mapped vblocks in [begin, end) whose data blocks are
 * consecutive and whose shared flags agree: [*vbegin, *vend) maps to
 * *dbegin onwards.  -ENODATA if nothing in the range is mapped.
 */
int thin_md_find_mapped_range(struct thin_md_dev *td, u64 begin, u64 end,
			      u64 *vbegin, u64 *vend, u64 *dbegin,
			      bool *shared);
/*
 * Map vblock to dblock (stamped with the current time).  The mapping
 * takes over the caller's reference on dblock (from alloc_data_block);
 * a mapping it replaces drops its own.
 */
int thin_md_insert_block(struct thin_md_dev *td, u64 vblock, u64 dblock);
/* Unmap, dropping the data block's reference: -ENODATA if unmapped. */
int thin_md_remove_block(struct thin_md_dev *td, u64 vblock);
/* Unmap every vblock in [begin, end). */
int thin_md_remove_range(struct thin_md_dev *td, u64 begin, u64 end);
/* Changed since the last commit (a FLUSH must then commit). */
bool thin_md_dev_changed(struct thin_md_dev *td);
/* An abort threw away changes of this device. */
bool thin_md_dev_aborted_with_changes(struct thin_md_dev *td);
int thin_md_get_mapped_count(struct thin_md_dev *td, u64 *count);
/* Highest mapped vblock: *found false if none. */
int thin_md_get_highest_mapped(struct thin_md_dev *td, bool *found,
			       u64 *vblock);

#endif
