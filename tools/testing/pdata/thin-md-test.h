/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test support for targets/thin/thin-metadata.c: access to its internals
 * for library tests that hang their own trees off a pool's metadata, and a
 * full recount of every reference (what thin_check does, plus the data
 * counts, mapped_blocks and device-set checks of the newer tools).
 */
#ifndef THIN_MD_TEST_H
#define THIN_MD_TEST_H

#include "pd-internal.h"
#include "thin-metadata.h"

#define TMT_SB_XOR 160774
#define TMT_MAX_EXTRA 8

/* Trees of library tests, counted by thin_md_verify as extra references. */
struct tmt_extra {
	u64 root;
	u32 vs;
	bool is_array;
};

extern unsigned int tmt_nr_extra;
extern struct tmt_extra tmt_extra[TMT_MAX_EXTRA];
/*
 * Metadata from thin_restore 0.9 carries inexact metadata space map
 * counters (nr_allocated, nr_free, none_free_before) that every later
 * commit keeps: set this to skip those checks for such images.
 */
extern bool tmt_stock_counters;

struct dm_pd_tm *tmt_tm(struct thin_md *md);
struct dm_pd_bm *tmt_bm(struct thin_md *md);
struct dm_pd_sm *tmt_metadata_sm(struct thin_md *md);
struct dm_pd_sm *tmt_data_sm(struct thin_md *md);
/* (dev, vblock) -> block/time, with the data value type. */
struct dm_pd_btree_info *tmt_mapping_info(struct thin_md *md);
u64 tmt_mapping_root(struct thin_md *md);
u32 tmt_time(struct thin_md *md);
/* The root of dev's mapping subtree: -ENODATA if none. */
int tmt_subtree_root(struct thin_md *md, u32 dev, u64 *root);

/* Format on a zeroed device (block size 128) with nr_data data blocks. */
struct thin_md *tmt_format(struct block_device *bdev, u64 nr_data);
/* Allocate a data block and map vblock to it. */
int tmt_map(struct thin_md_dev *td, u64 vblock, u64 *dblock);

/* Commit even if only trees of a library test changed. */
int tmt_commit(struct thin_md *md);

/* Recount from the on-disk superblock: the number of problems found. */
int thin_md_verify(struct thin_md *md, bool verbose);

#endif
