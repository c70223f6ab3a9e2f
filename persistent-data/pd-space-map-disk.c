// SPDX-License-Identifier: GPL-2.0-only
/*
 * The disk space map counts the blocks of another device (the thin data
 * device).  Its bitmaps, index btree and ref-count btree live in the
 * metadata device and are allocated from the metadata space map.
 */
#include "pd-internal.h"

struct sm_disk {
	struct dm_pd_sm sm;
	struct pd_ll ll;
	struct pd_ll old_ll;	/* as of the last commit */
	u64 begin;
};

#define to_smd(s) container_of(s, struct sm_disk, sm)

static void smd_destroy(struct dm_pd_sm *sm)
{
	struct sm_disk *smd = to_smd(sm);

	pd_ll_exit(&smd->ll);
	pd_ll_exit(&smd->old_ll);
	kfree(smd);
}

static int smd_extend(struct dm_pd_sm *sm, u64 extra)
{
	return pd_ll_extend(&to_smd(sm)->ll, extra);
}

static int smd_get_nr_blocks(struct dm_pd_sm *sm, u64 *count)
{
	*count = to_smd(sm)->ll.nr_blocks;
	return 0;
}

static int smd_get_nr_free(struct dm_pd_sm *sm, u64 *count)
{
	struct sm_disk *smd = to_smd(sm);

	*count = smd->ll.nr_blocks - smd->ll.nr_allocated;
	return 0;
}

static int smd_get_count(struct dm_pd_sm *sm, u64 b, u32 *count)
{
	return pd_ll_lookup(&to_smd(sm)->ll, b, count);
}

static int smd_count_is_more_than_one(struct dm_pd_sm *sm, u64 b, int *result)
{
	u32 count;
	int r = pd_ll_lookup(&to_smd(sm)->ll, b, &count);

	if (!r)
		*result = count > 1;
	return r;
}

static int smd_set_count(struct dm_pd_sm *sm, u64 b, u32 count)
{
	return pd_ll_set_count(&to_smd(sm)->ll, b, count);
}

static int smd_inc(struct dm_pd_sm *sm, u64 b)
{
	return pd_ll_inc(&to_smd(sm)->ll, b);
}

static int smd_dec(struct dm_pd_sm *sm, u64 b)
{
	return pd_ll_dec(&to_smd(sm)->ll, b);
}

static int smd_new_block(struct dm_pd_sm *sm, u64 *b)
{
	struct sm_disk *smd = to_smd(sm);
	int r;

	r = pd_ll_find_free(&smd->ll, &smd->old_ll, smd->begin,
			    smd->ll.nr_blocks, NULL, NULL, b);
	if (r == -ENOSPC && smd->begin)
		r = pd_ll_find_free(&smd->ll, &smd->old_ll, 0, smd->begin,
				    NULL, NULL, b);
	if (r)
		return r;
	smd->begin = *b + 1;
	return pd_ll_inc(&smd->ll, *b);
}

static int smd_commit(struct dm_pd_sm *sm)
{
	struct sm_disk *smd = to_smd(sm);

	return pd_ll_copy(&smd->old_ll, &smd->ll);
}

static int smd_root_size(struct dm_pd_sm *sm, size_t *size)
{
	*size = sizeof(struct pd_sm_root);
	return 0;
}

static int smd_copy_root(struct dm_pd_sm *sm, void *where, size_t max)
{
	struct pd_sm_root root;

	if (max < sizeof(root))
		return -ENOSPC;
	pd_ll_root(&to_smd(sm)->ll, &root);
	memcpy(where, &root, sizeof(root));
	return 0;
}

static const struct dm_pd_sm_ops smd_ops = {
	.destroy = smd_destroy,
	.extend = smd_extend,
	.get_nr_blocks = smd_get_nr_blocks,
	.get_nr_free = smd_get_nr_free,
	.get_count = smd_get_count,
	.count_is_more_than_one = smd_count_is_more_than_one,
	.set_count = smd_set_count,
	.commit = smd_commit,
	.inc = smd_inc,
	.dec = smd_dec,
	.new_block = smd_new_block,
	.root_size = smd_root_size,
	.copy_root = smd_copy_root,
};

static struct sm_disk *smd_alloc(struct dm_pd_tm *tm)
{
	struct sm_disk *smd = kzalloc(sizeof(*smd), GFP_KERNEL);

	if (!smd)
		return NULL;
	smd->sm.ops = &smd_ops;
	if (pd_ll_init(&smd->ll, tm, false) ||
	    pd_ll_init(&smd->old_ll, tm, false)) {
		kfree(smd);
		return NULL;
	}
	return smd;
}

int dm_pd_sm_disk_create(struct dm_pd_tm *tm, u64 nr_blocks,
			 struct dm_pd_sm **sm)
{
	struct sm_disk *smd = smd_alloc(tm);
	int r;

	if (!smd)
		return -ENOMEM;
	r = dm_pd_btree_empty(&smd->ll.index_info, &smd->ll.bitmap_root);
	if (!r)
		r = dm_pd_btree_empty(&smd->ll.ref_info,
				      &smd->ll.ref_count_root);
	if (!r)
		r = pd_ll_extend(&smd->ll, nr_blocks);
	if (r) {
		smd_destroy(&smd->sm);
		return r;
	}
	*sm = &smd->sm;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_sm_disk_create);

int dm_pd_sm_disk_open(struct dm_pd_tm *tm, const void *root, size_t len,
		       struct dm_pd_sm **sm)
{
	struct sm_disk *smd;
	struct pd_sm_root sm_root;
	int r;

	if (len < sizeof(sm_root))
		return -EINVAL;
	smd = smd_alloc(tm);
	if (!smd)
		return -ENOMEM;
	memcpy(&sm_root, root, sizeof(sm_root));
	r = pd_ll_open(&smd->ll, &sm_root);
	if (!r)
		r = pd_ll_copy(&smd->old_ll, &smd->ll);
	if (r) {
		smd_destroy(&smd->sm);
		return r;
	}
	*sm = &smd->sm;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_sm_disk_open);

int dm_pd_sm_inc_range(struct dm_pd_sm *sm, u64 b, u64 e)
{
	int r = 0;

	for (; b < e && !r; b++)
		r = dm_pd_sm_inc(sm, b);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_sm_inc_range);

int dm_pd_sm_dec_range(struct dm_pd_sm *sm, u64 b, u64 e)
{
	int r = 0;

	for (; b < e && !r; b++)
		r = dm_pd_sm_dec(sm, b);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_sm_dec_range);
