// SPDX-License-Identifier: GPL-2.0-only
/*
 * Reference counts shared by the metadata and the disk space map: 2 bits a
 * block in bitmap blocks (3 meaning "look in the overflow btree"), an index
 * entry per bitmap, and a btree of full counts for blocks counted 3 or more.
 */
#include "pd-internal.h"

static void sm_block_prepare(const struct dm_pd_validator *v, void *data,
			     u64 location, size_t size, u32 salt)
{
	struct pd_bitmap_header *h = data;

	h->blocknr = cpu_to_le64(location);
	h->csum = dm_pd_block_csum(data, size, salt);
}

static int sm_block_check(const struct dm_pd_validator *v, const void *data,
			  u64 location, size_t size, u32 salt)
{
	const struct pd_bitmap_header *h = data;

	if (le64_to_cpu(h->blocknr) != location) {
		PD_ERR("%s check failed: blocknr %llu != wanted %llu", v->name,
		       (unsigned long long)le64_to_cpu(h->blocknr),
		       (unsigned long long)location);
		return -ENOTBLK;
	}
	if (h->csum != dm_pd_block_csum(data, size, salt)) {
		PD_ERR("%s check failed: csum %u != wanted %u", v->name,
		       le32_to_cpu(h->csum),
		       le32_to_cpu(dm_pd_block_csum(data, size, salt)));
		return -EILSEQ;
	}
	return 0;
}

static void bitmap_prepare(const struct dm_pd_validator *v, void *data,
			   u64 location, size_t size)
{
	sm_block_prepare(v, data, location, size, DM_PD_CSUM_XOR_BITMAP);
}

static int bitmap_check(const struct dm_pd_validator *v, const void *data,
			u64 location, size_t size)
{
	return sm_block_check(v, data, location, size, DM_PD_CSUM_XOR_BITMAP);
}

const struct dm_pd_validator pd_bitmap_validator = {
	.name = "sm_bitmap",
	.prepare_for_write = bitmap_prepare,
	.check = bitmap_check,
};

static void index_prepare(const struct dm_pd_validator *v, void *data,
			  u64 location, size_t size)
{
	sm_block_prepare(v, data, location, size, DM_PD_CSUM_XOR_INDEX);
}

static int index_check(const struct dm_pd_validator *v, const void *data,
		       u64 location, size_t size)
{
	return sm_block_check(v, data, location, size, DM_PD_CSUM_XOR_INDEX);
}

const struct dm_pd_validator pd_index_validator = {
	.name = "sm_index",
	.prepare_for_write = index_prepare,
	.check = index_check,
};

/* Entry i: bit 2*(i%4) of byte i/4 is the high bit, the next the low. */
static u32 entry_get(const void *data, u32 i)
{
	const u8 *bytes = (const u8 *)data + sizeof(struct pd_bitmap_header);
	u8 byte = bytes[i / 4];
	unsigned int s = 2 * (i % 4);

	return (((byte >> s) & 1) << 1) | ((byte >> (s + 1)) & 1);
}

static void entry_set(void *data, u32 i, u32 val)
{
	u8 *bytes = (u8 *)data + sizeof(struct pd_bitmap_header);
	unsigned int s = 2 * (i % 4);
	u8 byte = bytes[i / 4] & ~(3u << s);

	if (val & 2)
		byte |= 1u << s;
	if (val & 1)
		byte |= 1u << (s + 1);
	bytes[i / 4] = byte;
}

u64 pd_ll_nr_bitmaps(u64 nr_blocks)
{
	return div_u64(nr_blocks + PD_ENTRIES_PER_BITMAP - 1,
		       PD_ENTRIES_PER_BITMAP);
}

int pd_ll_init(struct pd_ll *ll, struct dm_pd_tm *tm, bool is_metadata)
{
	memset(ll, 0, sizeof(*ll));
	ll->tm = tm;
	ll->is_metadata = is_metadata;
	ll->ref_info.tm = tm;
	ll->ref_info.levels = 1;
	ll->ref_info.value_type.size = sizeof(__le32);
	ll->index_info.tm = tm;
	ll->index_info.levels = 1;
	ll->index_info.value_type.size = sizeof(struct pd_index_entry);
	if (is_metadata) {
		ll->mi = kcalloc(PD_MAX_METADATA_BITMAPS, sizeof(*ll->mi),
				 GFP_KERNEL);
		if (!ll->mi)
			return -ENOMEM;
	}
	return 0;
}

void pd_ll_exit(struct pd_ll *ll)
{
	kfree(ll->mi);
	ll->mi = NULL;
}

int pd_ll_copy(struct pd_ll *dst, const struct pd_ll *src)
{
	struct pd_index_entry *mi = dst->mi;

	*dst = *src;
	dst->mi = mi;
	if (src->mi) {
		if (!dst->mi) {
			dst->mi = kcalloc(PD_MAX_METADATA_BITMAPS,
					  sizeof(*dst->mi), GFP_KERNEL);
			if (!dst->mi)
				return -ENOMEM;
		}
		memcpy(dst->mi, src->mi,
		       PD_MAX_METADATA_BITMAPS * sizeof(*dst->mi));
	}
	return 0;
}

int pd_ll_load_ie(struct pd_ll *ll, u64 k, struct pd_index_entry *ie)
{
	if (ll->is_metadata) {
		if (k >= PD_MAX_METADATA_BITMAPS)
			return -EINVAL;
		*ie = ll->mi[k];
		return 0;
	}
	return dm_pd_btree_lookup(&ll->index_info, ll->bitmap_root, &k, ie);
}

int pd_ll_save_ie(struct pd_ll *ll, u64 k, const struct pd_index_entry *ie)
{
	if (ll->is_metadata) {
		if (k >= PD_MAX_METADATA_BITMAPS)
			return -EINVAL;
		ll->mi[k] = *ie;
		ll->index_dirty = true;
		return 0;
	}
	return dm_pd_btree_insert(&ll->index_info, ll->bitmap_root, &k, ie,
				  &ll->bitmap_root);
}

int pd_ll_extend(struct pd_ll *ll, u64 extra)
{
	u64 old_nr = ll->nr_blocks, new_nr = old_nr + extra;
	u64 old_bitmaps = pd_ll_nr_bitmaps(old_nr);
	u64 new_bitmaps = pd_ll_nr_bitmaps(new_nr);
	struct pd_index_entry ie;
	struct dm_pd_block *blk;
	u64 k;
	int r;

	if (ll->is_metadata && new_bitmaps > PD_MAX_METADATA_BITMAPS)
		return -ENOSPC;
	/* The old last bitmap may gain entries. */
	if (old_bitmaps && old_nr % PD_ENTRIES_PER_BITMAP) {
		u64 end = min_t(u64, new_nr, old_bitmaps * PD_ENTRIES_PER_BITMAP);

		r = pd_ll_load_ie(ll, old_bitmaps - 1, &ie);
		if (r)
			return r;
		ie.nr_free = cpu_to_le32(min_t(u64, PD_ENTRIES_PER_BITMAP,
					       le32_to_cpu(ie.nr_free) + end - old_nr));
		r = pd_ll_save_ie(ll, old_bitmaps - 1, &ie);
		if (r)
			return r;
	}
	ll->nr_blocks = new_nr;
	for (k = old_bitmaps; k < new_bitmaps; k++) {
		u64 covered = min_t(u64, PD_ENTRIES_PER_BITMAP,
				    new_nr - k * PD_ENTRIES_PER_BITMAP);

		r = dm_pd_tm_new_block(ll->tm, &pd_bitmap_validator, &blk);
		if (r)
			return r;
		ie.blocknr = cpu_to_le64(dm_pd_block_location(blk));
		ie.nr_free = cpu_to_le32(covered);
		ie.none_free_before = 0;
		dm_pd_tm_unlock(ll->tm, blk);
		r = pd_ll_save_ie(ll, k, &ie);
		if (r)
			return r;
	}
	return 0;
}

int pd_ll_lookup(struct pd_ll *ll, u64 b, u32 *count)
{
	struct pd_index_entry ie;
	struct dm_pd_block *blk;
	__le32 le;
	u64 k = div_u64(b, PD_ENTRIES_PER_BITMAP);
	int r;

	if (b >= ll->nr_blocks)
		return -EINVAL;
	r = pd_ll_load_ie(ll, k, &ie);
	if (r)
		return r;
	r = dm_pd_tm_read_lock(ll->tm, le64_to_cpu(ie.blocknr),
			       &pd_bitmap_validator, &blk);
	if (r)
		return r;
	*count = entry_get(dm_pd_block_data(blk),
			    b - k * PD_ENTRIES_PER_BITMAP);
	dm_pd_tm_unlock(ll->tm, blk);
	if (*count < 3)
		return 0;
	r = dm_pd_btree_lookup(&ll->ref_info, ll->ref_count_root, &b, &le);
	if (r)
		return r == -ENODATA ? -EILSEQ : r;
	*count = le32_to_cpu(le);
	return 0;
}

int pd_ll_find_free(struct pd_ll *ll, struct pd_ll *old, u64 begin, u64 end,
		    bool (*reserved)(void *ctx, u64 b), void *ctx, u64 *result)
{
	u64 k, nr_old = old ? pd_ll_nr_bitmaps(old->nr_blocks) : 0;
	struct pd_index_entry ie, oie;
	int r;

	end = min(end, ll->nr_blocks);
	for (k = div_u64(begin, PD_ENTRIES_PER_BITMAP);
	     k * PD_ENTRIES_PER_BITMAP < end; k++) {
		u64 base = k * PD_ENTRIES_PER_BITMAP, i, start, stop;
		struct dm_pd_block *blk, *oblk = NULL;

		r = pd_ll_load_ie(ll, k, &ie);
		if (r)
			return r;
		if (!ie.nr_free)
			continue;
		start = max_t(u64, begin, base + le32_to_cpu(ie.none_free_before));
		stop = min_t(u64, end, base + PD_ENTRIES_PER_BITMAP);
		if (start >= stop)
			continue;
		r = dm_pd_tm_read_lock(ll->tm, le64_to_cpu(ie.blocknr),
				       &pd_bitmap_validator, &blk);
		if (r)
			return r;
		if (k < nr_old) {
			r = pd_ll_load_ie(old, k, &oie);
			if (!r && oie.blocknr != ie.blocknr)
				r = dm_pd_tm_read_lock(ll->tm,
						       le64_to_cpu(oie.blocknr),
						       &pd_bitmap_validator,
						       &oblk);
			if (r) {
				dm_pd_tm_unlock(ll->tm, blk);
				return r;
			}
		}
		for (i = start; i < stop; i++) {
			if (entry_get(dm_pd_block_data(blk), i - base))
				continue;
			if (oblk && entry_get(dm_pd_block_data(oblk), i - base))
				continue;
			if (reserved && reserved(ctx, i))
				continue;
			break;
		}
		if (oblk)
			dm_pd_tm_unlock(ll->tm, oblk);
		dm_pd_tm_unlock(ll->tm, blk);
		if (i < stop) {
			*result = i;
			return 0;
		}
	}
	return -ENOSPC;
}

enum ll_op { LL_SET, LL_INC, LL_DEC };

static int ll_mutate(struct pd_ll *ll, u64 b, enum ll_op op, u32 val)
{
	u64 k = div_u64(b, PD_ENTRIES_PER_BITMAP);
	u32 i = b - k * PD_ENTRIES_PER_BITMAP, old, now, nfb;
	struct pd_index_entry ie;
	struct dm_pd_block *blk;
	int r, inc;
	__le32 le;

	if (b >= ll->nr_blocks) {
		PD_ERR("space map: block %llu out of range",
		       (unsigned long long)b);
		return -EINVAL;
	}
	r = pd_ll_load_ie(ll, k, &ie);
	if (r)
		return r;
	r = dm_pd_tm_shadow_block(ll->tm, le64_to_cpu(ie.blocknr),
				  &pd_bitmap_validator, &blk, &inc);
	if (r)
		return r;
	ie.blocknr = cpu_to_le64(dm_pd_block_location(blk));
	old = entry_get(dm_pd_block_data(blk), i);
	if (old == 3) {
		r = dm_pd_btree_lookup(&ll->ref_info, ll->ref_count_root, &b,
				       &le);
		if (r) {
			dm_pd_tm_unlock(ll->tm, blk);
			return r == -ENODATA ? -EILSEQ : r;
		}
		old = le32_to_cpu(le);
	}
	if (op == LL_SET) {
		now = val;
	} else if (op == LL_INC) {
		now = old + 1;
		if (!now) {
			dm_pd_tm_unlock(ll->tm, blk);
			return -EOVERFLOW;
		}
	} else {
		if (!old) {
			dm_pd_tm_unlock(ll->tm, blk);
			PD_ERR("space map: decrementing free block %llu",
			       (unsigned long long)b);
			return -EINVAL;
		}
		now = old - 1;
	}
	entry_set(dm_pd_block_data(blk), i, min(now, 3u));
	dm_pd_tm_unlock(ll->tm, blk);

	nfb = le32_to_cpu(ie.none_free_before);
	if (!old && now) {
		ll->nr_allocated++;
		if (ie.nr_free)
			ie.nr_free = cpu_to_le32(le32_to_cpu(ie.nr_free) - 1);
		if (nfb == i)
			ie.none_free_before = cpu_to_le32(i + 1);
	} else if (old && !now) {
		ll->nr_allocated--;
		ie.nr_free = cpu_to_le32(le32_to_cpu(ie.nr_free) + 1);
		if (i < nfb)
			ie.none_free_before = cpu_to_le32(i);
	}
	/* Saved before the ref-count btree changes, which may allocate. */
	r = pd_ll_save_ie(ll, k, &ie);
	if (r)
		return r;

	if (now >= 3) {
		le = cpu_to_le32(now);
		return dm_pd_btree_insert(&ll->ref_info, ll->ref_count_root,
					  &b, &le, &ll->ref_count_root);
	}
	if (old >= 3)
		return dm_pd_btree_remove(&ll->ref_info, ll->ref_count_root,
					  &b, &ll->ref_count_root);
	return 0;
}

int pd_ll_set_count(struct pd_ll *ll, u64 b, u32 count)
{
	return ll_mutate(ll, b, LL_SET, count);
}

int pd_ll_inc(struct pd_ll *ll, u64 b)
{
	return ll_mutate(ll, b, LL_INC, 0);
}

int pd_ll_dec(struct pd_ll *ll, u64 b)
{
	return ll_mutate(ll, b, LL_DEC, 0);
}

int pd_ll_open(struct pd_ll *ll, const struct pd_sm_root *root)
{
	struct dm_pd_block *blk;
	struct pd_metadata_index *mi;
	int r;

	ll->nr_blocks = le64_to_cpu(root->nr_blocks);
	ll->nr_allocated = le64_to_cpu(root->nr_allocated);
	ll->bitmap_root = le64_to_cpu(root->bitmap_root);
	ll->ref_count_root = le64_to_cpu(root->ref_count_root);
	if (!ll->is_metadata)
		return 0;
	if (ll->nr_blocks > DM_PD_METADATA_MAX_BLOCKS) {
		PD_ERR("metadata space map too large");
		return -EINVAL;
	}
	r = dm_pd_tm_read_lock(ll->tm, ll->bitmap_root, &pd_index_validator,
			       &blk);
	if (r)
		return r;
	mi = dm_pd_block_data(blk);
	memcpy(ll->mi, mi->index, sizeof(mi->index));
	dm_pd_tm_unlock(ll->tm, blk);
	return 0;
}

void pd_ll_root(struct pd_ll *ll, struct pd_sm_root *root)
{
	root->nr_blocks = cpu_to_le64(ll->nr_blocks);
	root->nr_allocated = cpu_to_le64(ll->nr_allocated);
	root->bitmap_root = cpu_to_le64(ll->bitmap_root);
	root->ref_count_root = cpu_to_le64(ll->ref_count_root);
}

/* The index block must already be shadowed in this transaction. */
int pd_ll_write_metadata_index(struct pd_ll *ll)
{
	struct pd_metadata_index *mi;
	struct dm_pd_block *blk;
	int r, inc;

	r = dm_pd_tm_shadow_block(ll->tm, ll->bitmap_root, &pd_index_validator,
				  &blk, &inc);
	if (r)
		return r;
	ll->bitmap_root = dm_pd_block_location(blk);
	mi = dm_pd_block_data(blk);
	memcpy(mi->index, ll->mi, sizeof(mi->index));
	dm_pd_tm_unlock(ll->tm, blk);
	ll->index_dirty = false;
	return 0;
}
