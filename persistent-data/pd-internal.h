/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private definitions of the persistent-data library.  The same sources
 * build as the kernel module and, against tools/testing/pdata/shim, as a
 * userspace library for unit, model and fuzz tests.
 */
#ifndef PD_INTERNAL_H
#define PD_INTERNAL_H

#ifdef __KERNEL__
#include <linux/crc32c.h>
#include <linux/dm-bufio.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/wait.h>
#include <asm/unaligned.h>
#else
#include "pd-shim.h"
#endif

#include "dm-pdata.h"

#define PD_PREFIX "device-mapper: persistent data: "
#define PD_ERR(fmt, ...) pr_err(PD_PREFIX fmt "\n", ##__VA_ARGS__)

/* Deeper than any valid tree: a bound that stops loops in corrupt ones. */
#define PD_MAX_DEPTH 16

/* ---- btree node ---- */

#define PD_NODE_INTERNAL	1
#define PD_NODE_LEAF		2

struct pd_node_header {
	__le32 csum;
	__le32 flags;
	__le64 blocknr;
	__le32 nr_entries;
	__le32 max_entries;
	__le32 value_size;
	__le32 padding;
} __packed;

struct pd_node {
	struct pd_node_header header;
	__le64 keys[];
} __packed;

static inline u32 pd_max_entries(u32 value_size)
{
	u32 n = (DM_PD_BLOCK_SIZE - sizeof(struct pd_node_header)) /
		(sizeof(__le64) + value_size);

	return 3 * (n / 3);
}

static inline void *pd_value_ptr(struct pd_node *n, u32 i)
{
	u32 max = le32_to_cpu(n->header.max_entries);
	u32 vs = le32_to_cpu(n->header.value_size);

	return (u8 *)&n->keys[max] + (size_t)vs * i;
}

static inline u64 pd_value64(struct pd_node *n, u32 i)
{
	return get_unaligned_le64(pd_value_ptr(n, i));
}

static inline u32 pd_nr(struct pd_node *n)
{
	return le32_to_cpu(n->header.nr_entries);
}

static inline bool pd_is_leaf(struct pd_node *n)
{
	return le32_to_cpu(n->header.flags) & PD_NODE_LEAF;
}

/* ---- space map on-disk structures ---- */

#define PD_ENTRIES_PER_BITMAP	16320
#define PD_MAX_METADATA_BITMAPS	255

struct pd_index_entry {
	__le64 blocknr;
	__le32 nr_free;
	__le32 none_free_before;
} __packed;

struct pd_sm_root {
	__le64 nr_blocks;
	__le64 nr_allocated;
	__le64 bitmap_root;
	__le64 ref_count_root;
} __packed;

struct pd_bitmap_header {
	__le32 csum;
	__le32 not_used;
	__le64 blocknr;
} __packed;

struct pd_metadata_index {
	__le32 csum;
	__le32 padding;
	__le64 blocknr;
	struct pd_index_entry index[PD_MAX_METADATA_BITMAPS];
} __packed;

/*
 * The count store shared by both space maps: 2-bit bitmap entries, an
 * index of the bitmaps and an overflow btree for counts of 3 and more.
 * The metadata map keeps its index in core (one index block on disk); the
 * disk map keeps it in a btree.
 */
struct pd_ll {
	struct dm_pd_tm *tm;
	struct dm_pd_btree_info ref_info;
	struct dm_pd_btree_info index_info;
	bool is_metadata;
	u64 nr_blocks;
	u64 nr_allocated;
	u64 bitmap_root;	/* index block or index btree root */
	u64 ref_count_root;
	struct pd_index_entry *mi;	/* metadata: PD_MAX_METADATA_BITMAPS */
	bool index_dirty;
};

extern const struct dm_pd_validator pd_bitmap_validator;
extern const struct dm_pd_validator pd_index_validator;

u64 pd_ll_nr_bitmaps(u64 nr_blocks);
int pd_ll_init(struct pd_ll *ll, struct dm_pd_tm *tm, bool is_metadata);
void pd_ll_exit(struct pd_ll *ll);
int pd_ll_copy(struct pd_ll *dst, const struct pd_ll *src);
int pd_ll_load_ie(struct pd_ll *ll, u64 k, struct pd_index_entry *ie);
int pd_ll_save_ie(struct pd_ll *ll, u64 k, const struct pd_index_entry *ie);
/* Add bitmaps for nr_blocks + extra blocks. */
int pd_ll_extend(struct pd_ll *ll, u64 extra);
int pd_ll_lookup(struct pd_ll *ll, u64 b, u32 *count);
/* First block in [begin, end) with count 0 in ll (and in old, if given). */
int pd_ll_find_free(struct pd_ll *ll, struct pd_ll *old, u64 begin, u64 end,
		    bool (*reserved)(void *ctx, u64 b), void *ctx, u64 *b);
/* *delta receives the change in the number of allocated blocks. */
int pd_ll_set_count(struct pd_ll *ll, u64 b, u32 count);
int pd_ll_inc(struct pd_ll *ll, u64 b);
int pd_ll_dec(struct pd_ll *ll, u64 b);
int pd_ll_open(struct pd_ll *ll, const struct pd_sm_root *root);
void pd_ll_root(struct pd_ll *ll, struct pd_sm_root *root);
int pd_ll_write_metadata_index(struct pd_ll *ll);

/* ---- transaction manager internals used by the metadata space map ---- */

struct dm_pd_sm *pd_sm_metadata_alloc(void);
int pd_sm_metadata_bootstrap(struct dm_pd_sm *sm, struct dm_pd_tm *tm,
			     u64 sb_location, u64 nr_blocks);
int pd_sm_metadata_open(struct dm_pd_sm *sm, struct dm_pd_tm *tm,
			const void *root, size_t len);
struct dm_pd_tm *pd_tm_create(struct dm_pd_bm *bm, struct dm_pd_sm *sm);

#endif
