/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small thin-pool metadata layer over the library, for tests: the real
 * superblock layout, the two-level mapping tree, device details, data and
 * metadata space maps.  Its images are what thin_check and thin_dump read.
 */
#ifndef THINLIKE_H
#define THINLIKE_H

#include "pd-internal.h"

#define TL_MAGIC 27022010
#define TL_SB_XOR 160774
#define TL_MAX_EXTRA 8

struct tl_extra {
	u64 root;
	unsigned int levels;
	u32 vs;
	bool is_array;
};

struct tl_meta {
	struct block_device *bdev;
	struct dm_pd_bm *bm;
	struct dm_pd_tm *tm;
	struct dm_pd_sm *msm, *dsm;
	struct dm_pd_btree_info info;		/* (dev, block) -> block/time */
	struct dm_pd_btree_info tl_info;	/* dev -> mapping root */
	struct dm_pd_btree_info bl_info;	/* block -> block/time */
	struct dm_pd_btree_info details_info;	/* dev -> details */
	u64 mapping_root, details_root;
	u32 time;
	u64 trans_id;
	u64 held_root;
	int vt_error;
	/* Trees of unit tests, counted by tl_verify as extra references. */
	unsigned int nr_extra;
	struct tl_extra extra[TL_MAX_EXTRA];
};

struct tl_details {
	__le64 mapped_blocks;
	__le64 transaction_id;
	__le32 creation_time;
	__le32 snapshotted_time;
} __packed;

int tl_format(struct tl_meta *m, struct block_device *bdev, u64 nr_data);
int tl_open(struct tl_meta *m, struct block_device *bdev);
void tl_close(struct tl_meta *m);
int tl_commit(struct tl_meta *m);
int tl_abort(struct tl_meta *m);

int tl_create_thin(struct tl_meta *m, u64 dev);
int tl_snapshot(struct tl_meta *m, u64 origin, u64 dev);
int tl_delete(struct tl_meta *m, u64 dev);
/* Map a new data block at vblock; *data_block receives it. */
int tl_map(struct tl_meta *m, u64 dev, u64 vblock, u64 *data_block);
int tl_unmap(struct tl_meta *m, u64 dev, u64 vblock);
int tl_unmap_range(struct tl_meta *m, u64 dev, u64 begin, u64 end);
int tl_lookup(struct tl_meta *m, u64 dev, u64 vblock, u64 *data_block);
int tl_reserve_metadata_snap(struct tl_meta *m);
int tl_release_metadata_snap(struct tl_meta *m);

/*
 * Recompute every metadata and data reference count from the superblock
 * and compare with the space maps; check every node's shape and key
 * order as thin_check does.  Returns the number of problems found.
 */
int tl_verify(struct tl_meta *m, bool verbose);

#endif
