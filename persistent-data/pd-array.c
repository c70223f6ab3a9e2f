// SPDX-License-Identifier: GPL-2.0-only
/*
 * Arrays of fixed-size values: array blocks of packed values, found by a
 * one-level btree from block index to block location.  Every array block
 * is full except the last.  An array holds one reference to each value
 * through the value type; a block shared after a snapshot is copied on
 * write like a btree node.
 */
#include "pd-internal.h"

struct pd_array_block {
	__le32 csum;
	__le32 max_entries;
	__le32 nr_entries;
	__le32 value_size;
	__le64 blocknr;
} __packed;

static void ablock_prepare(const struct dm_pd_validator *v, void *data,
			   u64 location, size_t size)
{
	struct pd_array_block *ab = data;

	ab->blocknr = cpu_to_le64(location);
	ab->csum = dm_pd_block_csum(data, size, DM_PD_CSUM_XOR_ARRAY);
}

static int ablock_check(const struct dm_pd_validator *v, const void *data,
			u64 location, size_t size)
{
	const struct pd_array_block *ab = data;

	if (le64_to_cpu(ab->blocknr) != location) {
		PD_ERR("array block check failed: blocknr %llu != wanted %llu",
		       (unsigned long long)le64_to_cpu(ab->blocknr),
		       (unsigned long long)location);
		return -ENOTBLK;
	}
	if (ab->csum != dm_pd_block_csum(data, size, DM_PD_CSUM_XOR_ARRAY)) {
		PD_ERR("array block check failed: bad checksum at %llu",
		       (unsigned long long)location);
		return -EILSEQ;
	}
	return 0;
}

static const struct dm_pd_validator array_validator = {
	.name = "array",
	.prepare_for_write = ablock_prepare,
	.check = ablock_check,
};

static u32 per_block(struct dm_pd_array_info *info)
{
	return (DM_PD_BLOCK_SIZE - sizeof(struct pd_array_block)) /
		info->value_type.size;
}

static void *element(struct pd_array_block *ab, u32 i)
{
	return (u8 *)(ab + 1) + (size_t)le32_to_cpu(ab->value_size) * i;
}

/* The header must match this array's value type to be used. */
static int check_ablock(struct dm_pd_array_info *info,
			struct pd_array_block *ab)
{
	if (le32_to_cpu(ab->value_size) != info->value_type.size ||
	    le32_to_cpu(ab->max_entries) != per_block(info) ||
	    le32_to_cpu(ab->nr_entries) > per_block(info)) {
		PD_ERR("array block: bad header");
		return -EILSEQ;
	}
	return 0;
}

static void values_inc(struct dm_pd_array_info *info, void *v, u32 count)
{
	if (info->value_type.inc && count)
		info->value_type.inc(info->value_type.context, v, count);
}

static void values_dec(struct dm_pd_array_info *info, void *v, u32 count)
{
	if (info->value_type.dec && count)
		info->value_type.dec(info->value_type.context, v, count);
}

/* Btree value type: references on array blocks. */
static void ablock_inc(void *context, const void *value, unsigned int count)
{
	struct dm_pd_array_info *info = context;
	const __le64 *b = value;
	unsigned int i;

	for (i = 0; i < count; i++)
		dm_pd_tm_inc(info->info.tm, le64_to_cpu(b[i]));
}

static void ablock_dec(void *context, const void *value, unsigned int count)
{
	struct dm_pd_array_info *info = context;
	struct dm_pd_tm *tm = info->info.tm;
	const __le64 *bp = value;
	struct dm_pd_block *blk;
	unsigned int i;
	u32 ref;

	for (i = 0; i < count; i++) {
		u64 b = le64_to_cpu(bp[i]);

		if (dm_pd_tm_ref(tm, b, &ref))
			continue;
		/* The last reference takes the values with it. */
		if (ref == 1 && !dm_pd_tm_read_lock(tm, b, &array_validator,
						    &blk)) {
			struct pd_array_block *ab = dm_pd_block_data(blk);

			if (!check_ablock(info, ab))
				values_dec(info, element(ab, 0),
					   le32_to_cpu(ab->nr_entries));
			dm_pd_tm_unlock(tm, blk);
		}
		dm_pd_tm_dec(tm, b);
	}
}

void dm_pd_array_info_init(struct dm_pd_array_info *info, struct dm_pd_tm *tm,
			   const struct dm_pd_btree_value_type *vt)
{
	memset(info, 0, sizeof(*info));
	info->value_type = *vt;
	info->info.tm = tm;
	info->info.levels = 1;
	info->info.value_type.context = info;
	info->info.value_type.size = sizeof(__le64);
	info->info.value_type.inc = ablock_inc;
	info->info.value_type.dec = ablock_dec;
}
EXPORT_SYMBOL_GPL(dm_pd_array_info_init);

int dm_pd_array_empty(struct dm_pd_array_info *info, u64 *root)
{
	if (!info->value_type.size ||
	    info->value_type.size > DM_PD_BLOCK_SIZE -
				    sizeof(struct pd_array_block))
		return -EINVAL;
	return dm_pd_btree_empty(&info->info, root);
}
EXPORT_SYMBOL_GPL(dm_pd_array_empty);

int dm_pd_array_del(struct dm_pd_array_info *info, u64 root)
{
	return dm_pd_btree_del(&info->info, root);
}
EXPORT_SYMBOL_GPL(dm_pd_array_del);

/* Point block bi at loc without dropping a reference on the old block. */
static int set_ablock(struct dm_pd_array_info *info, u64 root, u64 bi,
		      u64 loc, u64 *new_root)
{
	struct dm_pd_btree_info plain = info->info;
	__le64 v = cpu_to_le64(loc);

	plain.value_type.dec = NULL;
	return dm_pd_btree_insert(&plain, root, &bi, &v, new_root);
}

static int lookup_ablock(struct dm_pd_array_info *info, u64 root, u64 bi,
			 u64 *b)
{
	__le64 v;
	int r = dm_pd_btree_lookup(&info->info, root, &bi, &v);

	if (!r)
		*b = le64_to_cpu(v);
	return r;
}

/* A writable array block bi, its new location recorded in the btree. */
static int shadow_ablock(struct dm_pd_array_info *info, u64 root, u64 bi,
			 struct dm_pd_block **blk, u64 *new_root)
{
	struct pd_array_block *ab;
	int r, inc;
	u64 b;

	r = lookup_ablock(info, root, bi, &b);
	if (r)
		return r;
	/*
	 * Shadow the btree path first: a shared leaf passes its reference
	 * on to the array block, which then shows up as shared itself.
	 */
	r = set_ablock(info, root, bi, b, new_root);
	if (r)
		return r;
	r = dm_pd_tm_shadow_block(info->info.tm, b, &array_validator, blk,
				  &inc);
	if (r)
		return r;
	ab = dm_pd_block_data(*blk);
	r = check_ablock(info, ab);
	if (!r && inc)
		values_inc(info, element(ab, 0), le32_to_cpu(ab->nr_entries));
	if (!r && dm_pd_block_location(*blk) != b)
		r = set_ablock(info, *new_root, bi, dm_pd_block_location(*blk),
			       new_root);
	if (r)
		dm_pd_tm_unlock(info->info.tm, *blk);
	return r;
}

/* Entries [from, to) of a block get copies of value. */
static void fill(struct dm_pd_array_info *info, struct pd_array_block *ab,
		 u32 from, u32 to, const void *value)
{
	u32 i;

	for (i = from; i < to; i++) {
		memcpy(element(ab, i), value, info->value_type.size);
		values_inc(info, element(ab, i), 1);
	}
	ab->nr_entries = cpu_to_le32(to);
}

static int grow(struct dm_pd_array_info *info, u64 root, u32 old_size,
		u32 new_size, const void *value, u64 *new_root)
{
	u32 epb = per_block(info), tail = old_size % epb;
	u64 bi = old_size / epb, nr_blocks = DIV_ROUND_UP(new_size, epb);
	struct pd_array_block *ab;
	struct dm_pd_block *blk;
	int r;

	*new_root = root;
	if (tail) {
		r = shadow_ablock(info, *new_root, bi, &blk, new_root);
		if (r)
			return r;
		ab = dm_pd_block_data(blk);
		fill(info, ab, tail, min_t(u64, epb, new_size - bi * epb),
		     value);
		dm_pd_tm_unlock(info->info.tm, blk);
		bi++;
	}
	for (; bi < nr_blocks; bi++) {
		r = dm_pd_tm_new_block(info->info.tm, &array_validator, &blk);
		if (r)
			return r;
		ab = dm_pd_block_data(blk);
		ab->max_entries = cpu_to_le32(epb);
		ab->value_size = cpu_to_le32(info->value_type.size);
		fill(info, ab, 0, min_t(u64, epb, new_size - bi * epb), value);
		r = set_ablock(info, *new_root, bi, dm_pd_block_location(blk),
			       new_root);
		dm_pd_tm_unlock(info->info.tm, blk);
		if (r)
			return r;
	}
	return 0;
}

static int shrink(struct dm_pd_array_info *info, u64 root, u32 old_size,
		  u32 new_size, u64 *new_root)
{
	u32 epb = per_block(info), tail = new_size % epb;
	u64 first_gone = DIV_ROUND_UP(new_size, epb), key = first_gone;
	struct pd_array_block *ab;
	struct dm_pd_block *blk;
	unsigned int nr_removed;
	u32 nr;
	int r;

	r = dm_pd_btree_remove_leaves(&info->info, root, &key,
				      DIV_ROUND_UP(old_size, epb), new_root,
				      &nr_removed);
	if (r || !tail)
		return r;
	r = shadow_ablock(info, *new_root, new_size / epb, &blk, new_root);
	if (r)
		return r;
	ab = dm_pd_block_data(blk);
	nr = le32_to_cpu(ab->nr_entries);
	if (nr > tail) {
		values_dec(info, element(ab, tail), nr - tail);
		ab->nr_entries = cpu_to_le32(tail);
	}
	dm_pd_tm_unlock(info->info.tm, blk);
	return 0;
}

int dm_pd_array_resize(struct dm_pd_array_info *info, u64 root, u32 old_size,
		       u32 new_size, const void *value, u64 *new_root)
{
	if (new_size > old_size) {
		if (!value)
			return -EINVAL;
		return grow(info, root, old_size, new_size, value, new_root);
	}
	if (new_size < old_size)
		return shrink(info, root, old_size, new_size, new_root);
	*new_root = root;
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_array_resize);

int dm_pd_array_get_value(struct dm_pd_array_info *info, u64 root, u32 index,
			  void *value)
{
	u32 epb = per_block(info), i = index % epb;
	struct pd_array_block *ab;
	struct dm_pd_block *blk;
	u64 b;
	int r;

	r = lookup_ablock(info, root, index / epb, &b);
	if (r)
		return r;
	r = dm_pd_tm_read_lock(info->info.tm, b, &array_validator, &blk);
	if (r)
		return r;
	ab = dm_pd_block_data(blk);
	r = check_ablock(info, ab);
	if (!r && i >= le32_to_cpu(ab->nr_entries))
		r = -ENODATA;
	if (!r)
		memcpy(value, element(ab, i), info->value_type.size);
	dm_pd_tm_unlock(info->info.tm, blk);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_array_get_value);

int dm_pd_array_set_value(struct dm_pd_array_info *info, u64 root, u32 index,
			  const void *value, u64 *new_root)
{
	struct dm_pd_btree_value_type *vt = &info->value_type;
	u32 epb = per_block(info), i = index % epb;
	struct pd_array_block *ab;
	struct dm_pd_block *blk;
	void *old;
	int r;

	r = shadow_ablock(info, root, index / epb, &blk, new_root);
	if (r)
		return r;
	ab = dm_pd_block_data(blk);
	if (i >= le32_to_cpu(ab->nr_entries)) {
		dm_pd_tm_unlock(info->info.tm, blk);
		return -ENODATA;
	}
	/* Like a btree insert: the array takes over the caller's reference. */
	old = element(ab, i);
	if (vt->dec && !(vt->equal && vt->equal(vt->context, old, value)))
		vt->dec(vt->context, old, 1);
	memcpy(old, value, vt->size);
	dm_pd_tm_unlock(info->info.tm, blk);
	return 0;
}
EXPORT_SYMBOL_GPL(dm_pd_array_set_value);

struct walk_ctx {
	struct dm_pd_array_info *info;
	int (*fn)(void *context, u64 index, const void *value);
	void *context;
};

static int walk_ablock(void *context, const u64 *keys, const void *value)
{
	struct walk_ctx *wc = context;
	struct dm_pd_array_info *info = wc->info;
	struct pd_array_block *ab;
	struct dm_pd_block *blk;
	u64 base = keys[0] * per_block(info);
	u32 i;
	int r;

	r = dm_pd_tm_read_lock(info->info.tm, get_unaligned_le64(value),
			       &array_validator, &blk);
	if (r)
		return r;
	ab = dm_pd_block_data(blk);
	r = check_ablock(info, ab);
	for (i = 0; !r && i < le32_to_cpu(ab->nr_entries); i++)
		r = wc->fn(wc->context, base + i, element(ab, i));
	dm_pd_tm_unlock(info->info.tm, blk);
	return r;
}

int dm_pd_array_walk(struct dm_pd_array_info *info, u64 root,
		     int (*fn)(void *context, u64 index, const void *value),
		     void *context)
{
	struct walk_ctx wc = { .info = info, .fn = fn, .context = context };

	return dm_pd_btree_walk(&info->info, root, walk_ablock, &wc);
}
EXPORT_SYMBOL_GPL(dm_pd_array_walk);
