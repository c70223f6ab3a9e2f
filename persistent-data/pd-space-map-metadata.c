// SPDX-License-Identifier: GPL-2.0-only
/*
 * The metadata space map counts the blocks of the device it lives on.
 * Changing a count may shadow a bitmap or a ref-count btree node, which
 * allocates and frees blocks, which changes counts again: while one of its
 * own operations is under way, further increments and decrements are
 * queued and applied when the outermost operation finishes.
 */
#include "pd-internal.h"

#define PD_MAX_QUEUED 1024

struct pd_queued_op {
	u64 b;
	bool inc;
};

struct sm_metadata {
	struct dm_pd_sm sm;
	struct pd_ll ll;
	struct pd_ll old_ll;		/* as of the last commit */
	u64 begin;			/* allocation cursor */
	u64 limit;			/* end of sequential allocation */
	bool sequential;		/* bootstrap or growth: no bitmaps yet */
	/*
	 * Blocks handed out since the last commit.  Blocks freed meanwhile
	 * cannot be reused before the commit, so only what was free at the
	 * commit, less these, counts as free.
	 */
	u64 allocated_this_transaction;
	unsigned int recursion;
	bool applying;			/* the queue head is being applied */
	unsigned int qhead, qcount;
	struct pd_queued_op queue[PD_MAX_QUEUED];
};

#define to_smm(s) container_of(s, struct sm_metadata, sm)

static int queue_op(struct sm_metadata *smm, u64 b, bool inc)
{
	struct pd_queued_op *op;

	if (smm->qcount == PD_MAX_QUEUED) {
		PD_ERR("metadata space map: too many nested operations");
		return -ENOMEM;
	}
	op = &smm->queue[(smm->qhead + smm->qcount) % PD_MAX_QUEUED];
	op->b = b;
	op->inc = inc;
	smm->qcount++;
	return 0;
}

static void enter(struct sm_metadata *smm)
{
	smm->recursion++;
}

/* Leaving the outermost operation applies what was queued meanwhile. */
static int leave(struct sm_metadata *smm)
{
	int r = 0;

	if (smm->recursion == 1) {
		/*
		 * The op stays queued while it is applied, so that nested
		 * allocations cannot hand out its block.
		 */
		while (smm->qcount) {
			struct pd_queued_op op = smm->queue[smm->qhead];
			int r2;

			smm->applying = true;
			r2 = op.inc ? pd_ll_inc(&smm->ll, op.b) :
				      pd_ll_dec(&smm->ll, op.b);
			smm->applying = false;
			smm->qhead = (smm->qhead + 1) % PD_MAX_QUEUED;
			smm->qcount--;
			if (r2 && !r)
				r = r2;
		}
	}
	smm->recursion--;
	return r;
}

static int queued_delta(struct sm_metadata *smm, u64 b)
{
	unsigned int i;
	int d = 0;

	/* The op being applied is already in the bitmaps. */
	for (i = smm->applying ? 1 : 0; i < smm->qcount; i++) {
		struct pd_queued_op *op =
			&smm->queue[(smm->qhead + i) % PD_MAX_QUEUED];

		if (op->b == b)
			d += op->inc ? 1 : -1;
	}
	return d;
}

static bool is_queued(void *ctx, u64 b)
{
	struct sm_metadata *smm = ctx;
	unsigned int i;

	for (i = 0; i < smm->qcount; i++)
		if (smm->queue[(smm->qhead + i) % PD_MAX_QUEUED].b == b)
			return true;
	return false;
}

static void smm_destroy(struct dm_pd_sm *sm)
{
	struct sm_metadata *smm = to_smm(sm);

	pd_ll_exit(&smm->ll);
	pd_ll_exit(&smm->old_ll);
	kvfree(smm);
}

static int smm_get_nr_blocks(struct dm_pd_sm *sm, u64 *count)
{
	*count = to_smm(sm)->ll.nr_blocks;
	return 0;
}

static int smm_get_nr_free(struct dm_pd_sm *sm, u64 *count)
{
	struct sm_metadata *smm = to_smm(sm);
	u64 used = smm->old_ll.nr_allocated + smm->allocated_this_transaction;

	/* Not committed yet (just formatted): the current counts. */
	if (!smm->old_ll.nr_blocks) {
		*count = smm->ll.nr_blocks - smm->ll.nr_allocated;
		return 0;
	}
	*count = smm->old_ll.nr_blocks > used ? smm->old_ll.nr_blocks - used : 0;
	return 0;
}

static int smm_get_count(struct dm_pd_sm *sm, u64 b, u32 *count)
{
	struct sm_metadata *smm = to_smm(sm);
	int r;

	if (smm->sequential) {
		*count = b < smm->begin;
		return 0;
	}
	r = pd_ll_lookup(&smm->ll, b, count);
	if (r)
		return r;
	*count += queued_delta(smm, b);
	return 0;
}

static int smm_count_is_more_than_one(struct dm_pd_sm *sm, u64 b, int *result)
{
	u32 count;
	int r = smm_get_count(sm, b, &count);

	if (!r)
		*result = count > 1;
	return r;
}

static int smm_set_count(struct dm_pd_sm *sm, u64 b, u32 count)
{
	struct sm_metadata *smm = to_smm(sm);
	int r, r2;

	if (smm->recursion) {
		PD_ERR("metadata space map: set_count while nested");
		return -EINVAL;
	}
	enter(smm);
	r = pd_ll_set_count(&smm->ll, b, count);
	r2 = leave(smm);
	return r ?: r2;
}

static int smm_change(struct dm_pd_sm *sm, u64 b, bool inc)
{
	struct sm_metadata *smm = to_smm(sm);
	int r, r2;

	if (smm->sequential)
		return 0;	/* every sequential block is counted afterwards */
	/* Always through the queue: the block stays reserved meanwhile. */
	r = queue_op(smm, b, inc);
	if (r || smm->recursion)
		return r;
	enter(smm);
	r2 = leave(smm);
	return r2;
}

static int smm_inc(struct dm_pd_sm *sm, u64 b)
{
	return smm_change(sm, b, true);
}

static int smm_dec(struct dm_pd_sm *sm, u64 b)
{
	return smm_change(sm, b, false);
}

static int smm_new_block(struct dm_pd_sm *sm, u64 *b)
{
	struct sm_metadata *smm = to_smm(sm);
	int r;

	if (smm->sequential) {
		if (smm->begin >= smm->limit)
			return -ENOSPC;
		*b = smm->begin++;
		return 0;
	}
	r = pd_ll_find_free(&smm->ll, &smm->old_ll, smm->begin,
			    smm->ll.nr_blocks, is_queued, smm, b);
	if (r == -ENOSPC && smm->begin)
		r = pd_ll_find_free(&smm->ll, &smm->old_ll, 0, smm->begin,
				    is_queued, smm, b);
	if (r) {
		if (r == -ENOSPC)
			PD_ERR("metadata space map: out of metadata space");
		return r;
	}
	smm->begin = *b + 1;
	smm->allocated_this_transaction++;
	return smm_change(sm, *b, true);
}

static int smm_commit(struct dm_pd_sm *sm)
{
	struct sm_metadata *smm = to_smm(sm);
	int r = 0, r2;

	if (smm->recursion)
		return -EINVAL;
	/* Writing the index may shadow it, which changes counts again. */
	while (smm->ll.index_dirty) {
		enter(smm);
		r = pd_ll_write_metadata_index(&smm->ll);
		r2 = leave(smm);
		r = r ?: r2;
		if (r)
			return r;
	}
	r = pd_ll_copy(&smm->old_ll, &smm->ll);
	if (r)
		return r;
	smm->begin = 0;
	smm->allocated_this_transaction = 0;
	return 0;
}

static int smm_extend(struct dm_pd_sm *sm, u64 extra)
{
	struct sm_metadata *smm = to_smm(sm);
	u64 old_end = smm->ll.nr_blocks, b;
	int r;

	if (smm->recursion)
		return -EINVAL;
	if (old_end + extra > DM_PD_METADATA_MAX_BLOCKS)
		return -ENOSPC;
	/* New bitmaps come from the new space, in order, then get counted. */
	smm->sequential = true;
	smm->begin = old_end;
	smm->limit = old_end + extra;
	r = pd_ll_extend(&smm->ll, extra);
	smm->sequential = false;
	for (b = old_end; !r && b < smm->begin; b++)
		r = smm_inc(sm, b);
	smm->begin = 0;
	return r;
}

static int smm_root_size(struct dm_pd_sm *sm, size_t *size)
{
	*size = sizeof(struct pd_sm_root);
	return 0;
}

static int smm_copy_root(struct dm_pd_sm *sm, void *where, size_t max)
{
	struct pd_sm_root root;

	if (max < sizeof(root))
		return -ENOSPC;
	pd_ll_root(&to_smm(sm)->ll, &root);
	memcpy(where, &root, sizeof(root));
	return 0;
}

static const struct dm_pd_sm_ops smm_ops = {
	.destroy = smm_destroy,
	.extend = smm_extend,
	.get_nr_blocks = smm_get_nr_blocks,
	.get_nr_free = smm_get_nr_free,
	.get_count = smm_get_count,
	.count_is_more_than_one = smm_count_is_more_than_one,
	.set_count = smm_set_count,
	.commit = smm_commit,
	.inc = smm_inc,
	.dec = smm_dec,
	.new_block = smm_new_block,
	.root_size = smm_root_size,
	.copy_root = smm_copy_root,
};

struct dm_pd_sm *pd_sm_metadata_alloc(void)
{
	struct sm_metadata *smm = kvzalloc(sizeof(*smm), GFP_KERNEL);

	if (!smm)
		return NULL;
	smm->sm.ops = &smm_ops;
	return &smm->sm;
}

int pd_sm_metadata_bootstrap(struct dm_pd_sm *sm, struct dm_pd_tm *tm,
			     u64 sb_location, u64 nr_blocks)
{
	struct sm_metadata *smm = to_smm(sm);
	struct dm_pd_block *blk;
	u64 b;
	int r;

	r = pd_ll_init(&smm->ll, tm, true);
	if (!r)
		r = pd_ll_init(&smm->old_ll, tm, true);
	if (r)
		return r;
	/* Blocks are handed out in order: index, ref-count root, bitmaps. */
	smm->sequential = true;
	smm->begin = sb_location + 1;
	smm->limit = nr_blocks;
	r = dm_pd_tm_new_block(tm, &pd_index_validator, &blk);
	if (r)
		goto out;
	smm->ll.bitmap_root = dm_pd_block_location(blk);
	dm_pd_tm_unlock(tm, blk);
	smm->ll.index_dirty = true;
	r = dm_pd_btree_empty(&smm->ll.ref_info, &smm->ll.ref_count_root);
	if (r)
		goto out;
	r = pd_ll_extend(&smm->ll, nr_blocks);
	if (r)
		goto out;
	smm->sequential = false;
	for (b = 0; b < smm->begin; b++) {
		r = smm_inc(sm, b);
		if (r)
			break;
	}
out:
	smm->sequential = false;
	return r;
}

int pd_sm_metadata_open(struct dm_pd_sm *sm, struct dm_pd_tm *tm,
			const void *root, size_t len)
{
	struct sm_metadata *smm = to_smm(sm);
	struct pd_sm_root sm_root;
	int r;

	if (len < sizeof(sm_root))
		return -EINVAL;
	memcpy(&sm_root, root, sizeof(sm_root));
	r = pd_ll_init(&smm->ll, tm, true);
	if (!r)
		r = pd_ll_init(&smm->old_ll, tm, true);
	if (!r)
		r = pd_ll_open(&smm->ll, &sm_root);
	if (!r)
		r = pd_ll_copy(&smm->old_ll, &smm->ll);
	return r;
}
