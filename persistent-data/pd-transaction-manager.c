// SPDX-License-Identifier: GPL-2.0-only
/*
 * Transaction manager: blocks reachable from the last commit are never
 * written in place; a change goes to a shadow copy.  Blocks allocated or
 * shadowed in the current transaction are remembered so that further
 * changes to them happen in place.
 */
#include "pd-internal.h"

#define PD_SHADOW_BUCKETS 256

struct pd_shadow {
	struct pd_shadow *next;
	u64 b;
};

struct dm_pd_tm {
	struct dm_pd_bm *bm;
	struct dm_pd_sm *sm;
	struct dm_pd_tm *real;	/* set in a non-blocking clone */
	struct pd_shadow *buckets[PD_SHADOW_BUCKETS];
};

static unsigned int shadow_hash(u64 b)
{
	return (unsigned int)((b * 0x9E3779B97F4A7C15ULL) >> 56);
}

static bool is_shadow(struct dm_pd_tm *tm, u64 b)
{
	struct pd_shadow *s;

	for (s = tm->buckets[shadow_hash(b)]; s; s = s->next)
		if (s->b == b)
			return true;
	return false;
}

/*
 * Remembering a shadow only saves copying the block again later in this
 * transaction, so a failed allocation is not an error (as stock): better a
 * spare copy than a metadata operation failing, and the pool going
 * read-only, over a transient GFP_NOIO failure.
 */
static void add_shadow(struct dm_pd_tm *tm, u64 b)
{
	unsigned int h = shadow_hash(b);
	struct pd_shadow *s = kmalloc(sizeof(*s), GFP_NOIO | __GFP_NOWARN);

	if (!s)
		return;
	s->b = b;
	s->next = tm->buckets[h];
	tm->buckets[h] = s;
}

static void wipe_shadows(struct dm_pd_tm *tm)
{
	struct pd_shadow *s, *next;
	unsigned int i;

	for (i = 0; i < PD_SHADOW_BUCKETS; i++) {
		for (s = tm->buckets[i]; s; s = next) {
			next = s->next;
			kfree(s);
		}
		tm->buckets[i] = NULL;
	}
}

struct dm_pd_tm *pd_tm_create(struct dm_pd_bm *bm, struct dm_pd_sm *sm)
{
	struct dm_pd_tm *tm = kzalloc(sizeof(*tm), GFP_KERNEL);

	if (!tm)
		return NULL;
	tm->bm = bm;
	tm->sm = sm;
	return tm;
}

void dm_pd_tm_destroy(struct dm_pd_tm *tm)
{
	if (!tm)
		return;
	wipe_shadows(tm);
	kfree(tm);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_destroy);

struct dm_pd_tm *dm_pd_tm_create_non_blocking_clone(struct dm_pd_tm *real)
{
	struct dm_pd_tm *tm = kzalloc(sizeof(*tm), GFP_KERNEL);

	if (tm) {
		tm->bm = real->bm;
		tm->sm = real->sm;
		tm->real = real;
	}
	return tm;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_create_non_blocking_clone);

int dm_pd_tm_create_with_sm(struct dm_pd_bm *bm, u64 sb_location,
			    struct dm_pd_tm **tmp, struct dm_pd_sm **smp)
{
	struct dm_pd_sm *sm = pd_sm_metadata_alloc();
	struct dm_pd_tm *tm;
	int r;

	if (!sm)
		return -ENOMEM;
	tm = pd_tm_create(bm, sm);
	if (!tm) {
		dm_pd_sm_destroy(sm);
		return -ENOMEM;
	}
	r = pd_sm_metadata_bootstrap(sm, tm, sb_location,
				     min_t(u64, dm_pd_bm_nr_blocks(bm),
					   DM_PD_METADATA_MAX_BLOCKS));
	if (r) {
		dm_pd_sm_destroy(sm);
		dm_pd_tm_destroy(tm);
		return r;
	}
	*tmp = tm;
	*smp = sm;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_create_with_sm);

int dm_pd_tm_open_with_sm(struct dm_pd_bm *bm, u64 sb_location,
			  const void *sm_root, size_t root_len,
			  struct dm_pd_tm **tmp, struct dm_pd_sm **smp)
{
	struct dm_pd_sm *sm = pd_sm_metadata_alloc();
	struct dm_pd_tm *tm;
	int r;

	if (!sm)
		return -ENOMEM;
	tm = pd_tm_create(bm, sm);
	if (!tm) {
		dm_pd_sm_destroy(sm);
		return -ENOMEM;
	}
	r = pd_sm_metadata_open(sm, tm, sm_root, root_len);
	if (r) {
		dm_pd_sm_destroy(sm);
		dm_pd_tm_destroy(tm);
		return r;
	}
	*tmp = tm;
	*smp = sm;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_open_with_sm);

int dm_pd_tm_pre_commit(struct dm_pd_tm *tm)
{
	int r = dm_pd_sm_commit(tm->sm);

	if (r)
		return r;
	return dm_pd_bm_flush(tm->bm);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_pre_commit);

int dm_pd_tm_commit(struct dm_pd_tm *tm, struct dm_pd_block *superblock)
{
	wipe_shadows(tm);
	dm_pd_bm_unlock(superblock);
	return dm_pd_bm_flush(tm->bm);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_commit);

int dm_pd_tm_new_block(struct dm_pd_tm *tm, const struct dm_pd_validator *v,
		       struct dm_pd_block **blk)
{
	u64 b;
	int r;

	if (tm->real)
		return -EWOULDBLOCK;
	if (dm_pd_bm_is_read_only(tm->bm))
		return -EPERM;
	r = dm_pd_sm_new_block(tm->sm, &b);
	if (r)
		return r;
	r = dm_pd_bm_write_lock_zero(tm->bm, b, v, blk);
	if (r) {
		dm_pd_sm_dec(tm->sm, b);
		return r;
	}
	add_shadow(tm, b);
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_new_block);

int dm_pd_tm_shadow_block(struct dm_pd_tm *tm, u64 orig,
			  const struct dm_pd_validator *v,
			  struct dm_pd_block **blk, int *inc_children)
{
	struct dm_pd_block *orig_blk;
	u64 b;
	int r;

	if (tm->real)
		return -EWOULDBLOCK;
	if (dm_pd_bm_is_read_only(tm->bm))
		return -EPERM;
	r = dm_pd_sm_count_is_more_than_one(tm->sm, orig, inc_children);
	if (r)
		return r;
	if (is_shadow(tm, orig) && !*inc_children)
		return dm_pd_bm_write_lock(tm->bm, orig, v, blk);

	/* Read (and validate) the original before touching any count. */
	r = dm_pd_bm_read_lock(tm->bm, orig, v, &orig_blk);
	if (r)
		return r;
	r = dm_pd_sm_new_block(tm->sm, &b);
	if (r)
		goto out;
	r = dm_pd_sm_dec(tm->sm, orig);
	if (r)
		goto out;
	r = dm_pd_bm_write_lock_zero(tm->bm, b, v, blk);
	if (r)
		goto out;
	memcpy(dm_pd_block_data(*blk), dm_pd_block_data(orig_blk),
	       DM_PD_BLOCK_SIZE);
	add_shadow(tm, b);
out:
	dm_pd_bm_unlock(orig_blk);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_shadow_block);

int dm_pd_tm_read_lock(struct dm_pd_tm *tm, u64 b,
		       const struct dm_pd_validator *v,
		       struct dm_pd_block **blk)
{
	if (tm->real)
		return dm_pd_bm_read_try_lock(tm->bm, b, v, blk);
	return dm_pd_bm_read_lock(tm->bm, b, v, blk);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_read_lock);

void dm_pd_tm_unlock(struct dm_pd_tm *tm, struct dm_pd_block *blk)
{
	dm_pd_bm_unlock(blk);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_unlock);

int dm_pd_tm_inc(struct dm_pd_tm *tm, u64 b)
{
	if (tm->real)
		return -EWOULDBLOCK;
	return dm_pd_sm_inc(tm->sm, b);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_inc);

int dm_pd_tm_dec(struct dm_pd_tm *tm, u64 b)
{
	if (tm->real)
		return -EWOULDBLOCK;
	return dm_pd_sm_dec(tm->sm, b);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_dec);

int dm_pd_tm_ref(struct dm_pd_tm *tm, u64 b, u32 *count)
{
	return dm_pd_sm_get_count(tm->sm, b, count);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_ref);

int dm_pd_tm_block_is_shared(struct dm_pd_tm *tm, u64 b, int *result)
{
	return dm_pd_sm_count_is_more_than_one(tm->sm, b, result);
}
EXPORT_SYMBOL_GPL(dm_pd_tm_block_is_shared);

struct dm_pd_bm *dm_pd_tm_get_bm(struct dm_pd_tm *tm)
{
	return tm->bm;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_get_bm);

struct dm_pd_sm *dm_pd_tm_get_sm(struct dm_pd_tm *tm)
{
	return tm->sm;
}
EXPORT_SYMBOL_GPL(dm_pd_tm_get_sm);
