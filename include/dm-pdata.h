/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Persistent-data library: copy-on-write metadata structures kept in 4 KiB
 * blocks of a metadata device, in the on-disk format of the stock thin,
 * cache and era targets.
 *
 * Layers, bottom up:
 *   block manager (bm)       locked, validated, checksummed blocks over dm-bufio
 *   transaction manager (tm) shadowing (copy-on-write) and commit ordering
 *   space maps (sm)          reference counts: metadata (self-hosted) and disk
 *   btree                    hierarchical B-trees of u64 keys and fixed values
 *   array, bitset            dense arrays and bitsets stored via a btree
 *
 * Every function returns 0 or a negative errno.  Values passed to and from
 * btrees and arrays are in their on-disk (little-endian) form.
 */
#ifndef DM_PDATA_H
#define DM_PDATA_H

#include <linux/types.h>

struct block_device;

#define DM_PD_BLOCK_SIZE		4096
#define DM_PD_BLOCK_SECTORS		(DM_PD_BLOCK_SIZE >> 9)
/* Largest metadata device the single index block can describe. */
#define DM_PD_METADATA_MAX_BLOCKS	(255ULL * 16320)
#define DM_PD_SM_ROOT_SIZE		32
#define DM_PD_MAX_LEVELS		4

/* Checksum salts of the block types (XORed into the CRC32C). */
#define DM_PD_CSUM_XOR_NODE		121107
#define DM_PD_CSUM_XOR_INDEX		160478
#define DM_PD_CSUM_XOR_BITMAP		240779
#define DM_PD_CSUM_XOR_ARRAY		595846735

/* CRC32C (seed ~0, no final inversion) of data[4..size) XOR salt. */
__le32 dm_pd_block_csum(const void *data, size_t size, u32 salt);

/* ---- block manager ---- */

struct dm_pd_bm;
struct dm_pd_block;

struct dm_pd_validator {
	const char *name;
	/* Stamp location and checksum just before the block goes to disk. */
	void (*prepare_for_write)(const struct dm_pd_validator *v, void *data,
				  u64 location, size_t size);
	/* Check a block read from disk: -ENOTBLK, -EILSEQ or 0. */
	int (*check)(const struct dm_pd_validator *v, const void *data,
		     u64 location, size_t size);
};

struct dm_pd_bm *dm_pd_bm_create(struct block_device *bdev,
				 unsigned int max_held);
void dm_pd_bm_destroy(struct dm_pd_bm *bm);
u64 dm_pd_bm_nr_blocks(struct dm_pd_bm *bm);
int dm_pd_bm_read_lock(struct dm_pd_bm *bm, u64 b,
		       const struct dm_pd_validator *v, struct dm_pd_block **blk);
/* Like read_lock, but -EWOULDBLOCK instead of I/O or waiting. */
int dm_pd_bm_read_try_lock(struct dm_pd_bm *bm, u64 b,
			   const struct dm_pd_validator *v,
			   struct dm_pd_block **blk);
int dm_pd_bm_write_lock(struct dm_pd_bm *bm, u64 b,
			const struct dm_pd_validator *v,
			struct dm_pd_block **blk);
/* Write lock without reading: the block starts as zeroes. */
int dm_pd_bm_write_lock_zero(struct dm_pd_bm *bm, u64 b,
			     const struct dm_pd_validator *v,
			     struct dm_pd_block **blk);
void dm_pd_bm_unlock(struct dm_pd_block *blk);
/* Write every dirty block and flush the device cache. */
int dm_pd_bm_flush(struct dm_pd_bm *bm);
void dm_pd_bm_prefetch(struct dm_pd_bm *bm, u64 b);
/* Drop every cached block (after an abort). No block may be held. */
void dm_pd_bm_reset(struct dm_pd_bm *bm);
/* In read-only mode every write lock fails with -EPERM. */
void dm_pd_bm_set_read_only(struct dm_pd_bm *bm);
void dm_pd_bm_set_read_write(struct dm_pd_bm *bm);
bool dm_pd_bm_is_read_only(struct dm_pd_bm *bm);
void *dm_pd_block_data(struct dm_pd_block *blk);
u64 dm_pd_block_location(struct dm_pd_block *blk);

/* ---- space maps ---- */

struct dm_pd_sm;

struct dm_pd_sm_ops {
	void (*destroy)(struct dm_pd_sm *sm);
	int (*extend)(struct dm_pd_sm *sm, u64 extra_blocks);
	int (*get_nr_blocks)(struct dm_pd_sm *sm, u64 *count);
	int (*get_nr_free)(struct dm_pd_sm *sm, u64 *count);
	int (*get_count)(struct dm_pd_sm *sm, u64 b, u32 *count);
	int (*count_is_more_than_one)(struct dm_pd_sm *sm, u64 b, int *result);
	int (*set_count)(struct dm_pd_sm *sm, u64 b, u32 count);
	int (*commit)(struct dm_pd_sm *sm);
	int (*inc)(struct dm_pd_sm *sm, u64 b);
	int (*dec)(struct dm_pd_sm *sm, u64 b);
	/* Allocate a block free in both the committed and the current state. */
	int (*new_block)(struct dm_pd_sm *sm, u64 *b);
	int (*root_size)(struct dm_pd_sm *sm, size_t *size);
	/* Valid after commit: the 32-byte root for the superblock. */
	int (*copy_root)(struct dm_pd_sm *sm, void *where, size_t max);
};

struct dm_pd_sm {
	const struct dm_pd_sm_ops *ops;
};

static inline void dm_pd_sm_destroy(struct dm_pd_sm *sm)
{
	sm->ops->destroy(sm);
}

static inline int dm_pd_sm_extend(struct dm_pd_sm *sm, u64 extra)
{
	return sm->ops->extend(sm, extra);
}

static inline int dm_pd_sm_get_nr_blocks(struct dm_pd_sm *sm, u64 *n)
{
	return sm->ops->get_nr_blocks(sm, n);
}

static inline int dm_pd_sm_get_nr_free(struct dm_pd_sm *sm, u64 *n)
{
	return sm->ops->get_nr_free(sm, n);
}

static inline int dm_pd_sm_get_count(struct dm_pd_sm *sm, u64 b, u32 *c)
{
	return sm->ops->get_count(sm, b, c);
}

static inline int dm_pd_sm_count_is_more_than_one(struct dm_pd_sm *sm, u64 b,
						  int *result)
{
	return sm->ops->count_is_more_than_one(sm, b, result);
}

static inline int dm_pd_sm_set_count(struct dm_pd_sm *sm, u64 b, u32 c)
{
	return sm->ops->set_count(sm, b, c);
}

static inline int dm_pd_sm_commit(struct dm_pd_sm *sm)
{
	return sm->ops->commit(sm);
}

static inline int dm_pd_sm_inc(struct dm_pd_sm *sm, u64 b)
{
	return sm->ops->inc(sm, b);
}

static inline int dm_pd_sm_dec(struct dm_pd_sm *sm, u64 b)
{
	return sm->ops->dec(sm, b);
}

static inline int dm_pd_sm_new_block(struct dm_pd_sm *sm, u64 *b)
{
	return sm->ops->new_block(sm, b);
}

static inline int dm_pd_sm_root_size(struct dm_pd_sm *sm, size_t *size)
{
	return sm->ops->root_size(sm, size);
}

static inline int dm_pd_sm_copy_root(struct dm_pd_sm *sm, void *where,
				     size_t max)
{
	return sm->ops->copy_root(sm, where, max);
}

/* Increment or decrement every block of [b, e). */
int dm_pd_sm_inc_range(struct dm_pd_sm *sm, u64 b, u64 e);
int dm_pd_sm_dec_range(struct dm_pd_sm *sm, u64 b, u64 e);

struct dm_pd_tm;

/* A space map over another device (the thin data device), kept in tm. */
int dm_pd_sm_disk_create(struct dm_pd_tm *tm, u64 nr_blocks,
			 struct dm_pd_sm **sm);
int dm_pd_sm_disk_open(struct dm_pd_tm *tm, const void *root, size_t len,
		       struct dm_pd_sm **sm);

/* ---- transaction manager ---- */

/*
 * Format: a new metadata space map over the whole device (capped), the
 * block at sb_location reserved for the caller's superblock.  The caller
 * creates its structures, then commits.
 */
int dm_pd_tm_create_with_sm(struct dm_pd_bm *bm, u64 sb_location,
			    struct dm_pd_tm **tm, struct dm_pd_sm **sm);
/* Open: sm_root is the metadata space map root from the superblock. */
int dm_pd_tm_open_with_sm(struct dm_pd_bm *bm, u64 sb_location,
			  const void *sm_root, size_t root_len,
			  struct dm_pd_tm **tm, struct dm_pd_sm **sm);
/*
 * A read-only view of tm whose reads never wait for I/O: a block that is
 * not cached (or is write-locked) gives -EWOULDBLOCK.  Free it with
 * dm_pd_tm_destroy() before the tm it came from.
 */
struct dm_pd_tm *dm_pd_tm_create_non_blocking_clone(struct dm_pd_tm *real);
/* Frees the tm (not its space map or block manager). */
void dm_pd_tm_destroy(struct dm_pd_tm *tm);
/* Commit the metadata space map and write and flush every dirty block. */
int dm_pd_tm_pre_commit(struct dm_pd_tm *tm);
/* Unlock the (write-locked) superblock, then write and flush it. */
int dm_pd_tm_commit(struct dm_pd_tm *tm, struct dm_pd_block *superblock);
int dm_pd_tm_new_block(struct dm_pd_tm *tm, const struct dm_pd_validator *v,
		       struct dm_pd_block **blk);
/*
 * Copy-on-write: a writable copy of orig (or orig itself if it was created
 * in this transaction and is not shared).  *inc_children is set when orig
 * was shared: the caller must then take a reference on everything the
 * copy points to.
 */
int dm_pd_tm_shadow_block(struct dm_pd_tm *tm, u64 orig,
			  const struct dm_pd_validator *v,
			  struct dm_pd_block **blk, int *inc_children);
int dm_pd_tm_read_lock(struct dm_pd_tm *tm, u64 b,
		       const struct dm_pd_validator *v,
		       struct dm_pd_block **blk);
void dm_pd_tm_unlock(struct dm_pd_tm *tm, struct dm_pd_block *blk);
int dm_pd_tm_inc(struct dm_pd_tm *tm, u64 b);
int dm_pd_tm_dec(struct dm_pd_tm *tm, u64 b);
int dm_pd_tm_ref(struct dm_pd_tm *tm, u64 b, u32 *count);
int dm_pd_tm_block_is_shared(struct dm_pd_tm *tm, u64 b, int *result);
struct dm_pd_bm *dm_pd_tm_get_bm(struct dm_pd_tm *tm);
struct dm_pd_sm *dm_pd_tm_get_sm(struct dm_pd_tm *tm);

/* ---- btree ---- */

/*
 * A value type describes the values of the last level.  inc/dec take a
 * reference on whatever count values (on-disk form) point to; both may be
 * NULL.  equal (optional) avoids a dec when an insert stores the same value.
 */
struct dm_pd_btree_value_type {
	void *context;
	u32 size;
	void (*inc)(void *context, const void *value, unsigned int count);
	void (*dec)(void *context, const void *value, unsigned int count);
	int (*equal)(void *context, const void *value1, const void *value2);
};

/*
 * A btree of 'levels' levels maps keys[0..levels) to a value: every level
 * but the last holds roots of the next level's trees.
 */
struct dm_pd_btree_info {
	struct dm_pd_tm *tm;
	unsigned int levels;
	struct dm_pd_btree_value_type value_type;
};

extern const struct dm_pd_validator dm_pd_btree_node_validator;

int dm_pd_btree_empty(struct dm_pd_btree_info *info, u64 *root);
/* Drop the tree's reference on root (and everything only it holds). */
int dm_pd_btree_del(struct dm_pd_btree_info *info, u64 root);
/* -ENODATA when absent. */
int dm_pd_btree_lookup(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, void *value);
/* Smallest last-level key >= keys[levels - 1]; -ENODATA if none. */
int dm_pd_btree_lookup_next(struct dm_pd_btree_info *info, u64 root,
			    const u64 *keys, u64 *rkey, void *value);
int dm_pd_btree_insert(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, const void *value, u64 *new_root);
/* *inserted: 1 if the key was new, 0 if an existing value was replaced. */
int dm_pd_btree_insert_notify(struct dm_pd_btree_info *info, u64 root,
			      const u64 *keys, const void *value,
			      u64 *new_root, int *inserted);
/* -ENODATA (tree unchanged) when absent. */
int dm_pd_btree_remove(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, u64 *new_root);
/* Remove last-level keys in [keys[levels - 1], end_key). */
int dm_pd_btree_remove_leaves(struct dm_pd_btree_info *info, u64 root,
			      const u64 *keys, u64 end_key, u64 *new_root,
			      unsigned int *nr_removed);
/* Highest (lowest) key at every level, following the last (first) entry. */
int dm_pd_btree_find_highest_key(struct dm_pd_btree_info *info, u64 root,
				 u64 *result_keys);
int dm_pd_btree_find_lowest_key(struct dm_pd_btree_info *info, u64 root,
				u64 *result_keys);
/* Every entry in key order; a non-zero return from fn stops the walk. */
int dm_pd_btree_walk(struct dm_pd_btree_info *info, u64 root,
		     int (*fn)(void *context, const u64 *keys,
			       const void *value),
		     void *context);

/* ---- array ---- */

struct dm_pd_array_info {
	struct dm_pd_btree_info info;		/* index -> array block */
	struct dm_pd_btree_value_type value_type;
};

void dm_pd_array_info_init(struct dm_pd_array_info *info, struct dm_pd_tm *tm,
			   const struct dm_pd_btree_value_type *vt);
int dm_pd_array_empty(struct dm_pd_array_info *info, u64 *root);
/* Grow (filling with value) or shrink. value may be NULL when shrinking. */
int dm_pd_array_resize(struct dm_pd_array_info *info, u64 root, u32 old_size,
		       u32 new_size, const void *value, u64 *new_root);
int dm_pd_array_del(struct dm_pd_array_info *info, u64 root);
int dm_pd_array_get_value(struct dm_pd_array_info *info, u64 root, u32 index,
			  void *value);
int dm_pd_array_set_value(struct dm_pd_array_info *info, u64 root, u32 index,
			  const void *value, u64 *new_root);
int dm_pd_array_walk(struct dm_pd_array_info *info, u64 root,
		     int (*fn)(void *context, u64 index, const void *value),
		     void *context);

/* ---- bitset (an array of LE64 words) ---- */

struct dm_pd_bitset_info {
	struct dm_pd_array_info array_info;
};

void dm_pd_bitset_info_init(struct dm_pd_bitset_info *info,
			    struct dm_pd_tm *tm);
int dm_pd_bitset_empty(struct dm_pd_bitset_info *info, u64 *root);
int dm_pd_bitset_resize(struct dm_pd_bitset_info *info, u64 root,
			u32 old_nr_bits, u32 new_nr_bits, bool default_value,
			u64 *new_root);
int dm_pd_bitset_del(struct dm_pd_bitset_info *info, u64 root);
int dm_pd_bitset_set_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			 u64 *new_root);
int dm_pd_bitset_clear_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			   u64 *new_root);
int dm_pd_bitset_test_bit(struct dm_pd_bitset_info *info, u64 root, u32 bit,
			  bool *result);

#endif
