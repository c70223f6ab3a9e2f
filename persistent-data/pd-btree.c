// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copy-on-write B-trees of u64 keys.  Modifications shadow every node on
 * the path from the root; full nodes are split on the way down (insert)
 * and small ones refilled from a sibling (remove), so the change at the
 * leaf never has to travel back up.  Every non-root node keeps at least
 * max_entries / 3 entries, as the stock tools check.
 */
#include "pd-internal.h"

/* ---- validator ---- */

static void node_prepare(const struct dm_pd_validator *v, void *data,
			 u64 location, size_t size)
{
	struct pd_node_header *h = data;

	h->blocknr = cpu_to_le64(location);
	h->csum = dm_pd_block_csum(data, size, DM_PD_CSUM_XOR_NODE);
}

static int node_check(const struct dm_pd_validator *v, const void *data,
		      u64 location, size_t size)
{
	const struct pd_node_header *h = data;
	u32 flags = le32_to_cpu(h->flags);
	u64 max = le32_to_cpu(h->max_entries);

	if (le64_to_cpu(h->blocknr) != location) {
		PD_ERR("btree node check failed: blocknr %llu != wanted %llu",
		       (unsigned long long)le64_to_cpu(h->blocknr),
		       (unsigned long long)location);
		return -ENOTBLK;
	}
	if (h->csum != dm_pd_block_csum(data, size, DM_PD_CSUM_XOR_NODE)) {
		PD_ERR("btree node check failed: bad checksum at %llu",
		       (unsigned long long)location);
		return -EILSEQ;
	}
	if (sizeof(*h) + (8 + (u64)le32_to_cpu(h->value_size)) * max > size ||
	    le32_to_cpu(h->nr_entries) > max) {
		PD_ERR("btree node check failed: bad entry counts at %llu",
		       (unsigned long long)location);
		return -EILSEQ;
	}
	if (flags != PD_NODE_INTERNAL && flags != PD_NODE_LEAF) {
		PD_ERR("btree node check failed: bad flags at %llu",
		       (unsigned long long)location);
		return -EILSEQ;
	}
	return 0;
}

const struct dm_pd_validator dm_pd_btree_node_validator = {
	.name = "btree_node",
	.prepare_for_write = node_prepare,
	.check = node_check,
};
EXPORT_SYMBOL_GPL(dm_pd_btree_node_validator);

#define node_v (&dm_pd_btree_node_validator)

/* ---- node helpers ---- */

static u32 level_vs(struct dm_pd_btree_info *info, unsigned int level)
{
	return level + 1 == info->levels ? info->value_type.size : 8;
}

static bool last_level(struct dm_pd_btree_info *info, unsigned int level)
{
	return level + 1 == info->levels;
}

/* What the validator cannot know: the value size this tree expects. */
static int check_shape(struct pd_node *n, u32 leaf_vs)
{
	u32 vs = le32_to_cpu(n->header.value_size);

	if (pd_is_leaf(n) ? vs != leaf_vs : vs != 8 || !pd_nr(n)) {
		PD_ERR("btree node: unexpected value size %u or empty internal node",
		       vs);
		return -EILSEQ;
	}
	return 0;
}

static int read_node(struct dm_pd_btree_info *info, unsigned int level, u64 b,
		     struct dm_pd_block **blk, struct pd_node **n)
{
	int r = dm_pd_tm_read_lock(info->tm, b, node_v, blk);

	if (r)
		return r;
	*n = dm_pd_block_data(*blk);
	r = check_shape(*n, level_vs(info, level));
	if (r)
		dm_pd_tm_unlock(info->tm, *blk);
	return r;
}

static u64 key_at(struct pd_node *n, u32 i)
{
	return le64_to_cpu(n->keys[i]);
}

static void set_value64(struct pd_node *n, u32 i, u64 v)
{
	put_unaligned_le64(v, pd_value_ptr(n, i));
}

static void set_nr(struct pd_node *n, u32 nr)
{
	n->header.nr_entries = cpu_to_le32(nr);
}

static u32 node_max(struct pd_node *n)
{
	return le32_to_cpu(n->header.max_entries);
}

static u32 node_vs(struct pd_node *n)
{
	return le32_to_cpu(n->header.value_size);
}

/* Largest i with keys[i] <= key, or -1. */
static int lower_bound(struct pd_node *n, u64 key)
{
	int lo = -1, hi = pd_nr(n);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (key_at(n, mid) <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void copy_entries(struct pd_node *dst, u32 di, struct pd_node *src,
			 u32 si, u32 count)
{
	memmove(&dst->keys[di], &src->keys[si], count * sizeof(__le64));
	memmove(pd_value_ptr(dst, di), pd_value_ptr(src, si),
		(size_t)count * node_vs(src));
}

static void insert_at(struct pd_node *n, u32 i, u64 key, const void *value)
{
	u32 nr = pd_nr(n);

	copy_entries(n, i + 1, n, i, nr - i);
	n->keys[i] = cpu_to_le64(key);
	if (value)
		memcpy(pd_value_ptr(n, i), value, node_vs(n));
	set_nr(n, nr + 1);
}

static void delete_at(struct pd_node *n, u32 i)
{
	u32 nr = pd_nr(n);

	copy_entries(n, i, n, i + 1, nr - i - 1);
	set_nr(n, nr - 1);
}

static void init_node(struct pd_node *n, u32 flags, u32 vs, u32 max)
{
	n->header.flags = cpu_to_le32(flags);
	n->header.nr_entries = 0;
	n->header.max_entries = cpu_to_le32(max);
	n->header.value_size = cpu_to_le32(vs);
}

static int new_leaf(struct dm_pd_tm *tm, u32 vs, u64 *root)
{
	struct dm_pd_block *blk;
	int r = dm_pd_tm_new_block(tm, node_v, &blk);

	if (r)
		return r;
	init_node(dm_pd_block_data(blk), PD_NODE_LEAF, vs, pd_max_entries(vs));
	*root = dm_pd_block_location(blk);
	dm_pd_tm_unlock(tm, blk);
	return 0;
}

int dm_pd_btree_empty(struct dm_pd_btree_info *info, u64 *root)
{
	if (!info->levels || info->levels > DM_PD_MAX_LEVELS ||
	    !info->value_type.size || pd_max_entries(level_vs(info, 0)) < 3)
		return -EINVAL;
	return new_leaf(info->tm, level_vs(info, 0), root);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_empty);

/* ---- lookups ---- */

/* Ancestors of the node being visited: a corrupt tree must not loop. */
struct pd_path {
	int depth;
	u64 b[PD_MAX_DEPTH * DM_PD_MAX_LEVELS];
};

static int path_push(struct pd_path *path, u64 b)
{
	int i;

	if (path->depth >= (int)ARRAY_SIZE(path->b))
		return -EILSEQ;
	for (i = 0; i < path->depth; i++) {
		if (path->b[i] == b) {
			PD_ERR("btree: cycle through block %llu",
			       (unsigned long long)b);
			return -EILSEQ;
		}
	}
	path->b[path->depth++] = b;
	return 0;
}

static int lookup_level(struct dm_pd_btree_info *info, unsigned int level,
			u64 b, u64 key, void *value)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	int depth, i, r;

	for (depth = 0; depth < PD_MAX_DEPTH; depth++) {
		r = read_node(info, level, b, &blk, &n);
		if (r)
			return r;
		i = lower_bound(n, key);
		if (i < 0 || (pd_is_leaf(n) && key_at(n, i) != key)) {
			dm_pd_tm_unlock(info->tm, blk);
			return -ENODATA;
		}
		if (pd_is_leaf(n)) {
			if (value)
				memcpy(value, pd_value_ptr(n, i), node_vs(n));
			dm_pd_tm_unlock(info->tm, blk);
			return 0;
		}
		b = pd_value64(n, i);
		dm_pd_tm_unlock(info->tm, blk);
	}
	return -EILSEQ;
}

/* The root of the last level's tree for keys[0..levels-1). */
static int lookup_upper(struct dm_pd_btree_info *info, u64 root,
			const u64 *keys, u64 *b)
{
	unsigned int level;
	__le64 v;
	int r;

	*b = root;
	for (level = 0; level + 1 < info->levels; level++) {
		r = lookup_level(info, level, *b, keys[level], &v);
		if (r)
			return r;
		*b = le64_to_cpu(v);
	}
	return 0;
}

int dm_pd_btree_lookup(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, void *value)
{
	int r = lookup_upper(info, root, keys, &root);

	if (r)
		return r;
	return lookup_level(info, info->levels - 1, root,
			    keys[info->levels - 1], value);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_lookup);

static int next_rec(struct dm_pd_btree_info *info, unsigned int level, u64 b,
		    u64 key, u64 *rkey, void *value, struct pd_path *path)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	int i, r;

	r = path_push(path, b);
	if (r)
		return r;
	r = read_node(info, level, b, &blk, &n);
	if (r)
		return r;
	i = lower_bound(n, key);
	if (pd_is_leaf(n)) {
		if (i < 0 || key_at(n, i) != key)
			i++;
		if (i >= pd_nr(n)) {
			r = -ENODATA;
		} else {
			*rkey = key_at(n, i);
			if (value)
				memcpy(value, pd_value_ptr(n, i), node_vs(n));
		}
	} else {
		r = -ENODATA;
		for (i = max(i, 0); i < pd_nr(n) && r == -ENODATA; i++)
			r = next_rec(info, level, pd_value64(n, i), key, rkey,
				     value, path);
	}
	dm_pd_tm_unlock(info->tm, blk);
	path->depth--;
	return r;
}

int dm_pd_btree_lookup_next(struct dm_pd_btree_info *info, u64 root,
			    const u64 *keys, u64 *rkey, void *value)
{
	struct pd_path path = { 0 };
	int r = lookup_upper(info, root, keys, &root);

	if (r)
		return r;
	return next_rec(info, info->levels - 1, root, keys[info->levels - 1],
			rkey, value, &path);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_lookup_next);

static int find_edge_key(struct dm_pd_btree_info *info, u64 root, u64 *keys,
			 bool highest)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	unsigned int level;
	int depth, r;
	u32 i;

	for (level = 0; level < info->levels; level++) {
		for (depth = 0;; depth++) {
			if (depth >= PD_MAX_DEPTH)
				return -EILSEQ;
			r = read_node(info, level, root, &blk, &n);
			if (r)
				return r;
			if (!pd_nr(n)) {
				dm_pd_tm_unlock(info->tm, blk);
				return -ENODATA;
			}
			i = highest ? pd_nr(n) - 1 : 0;
			if (pd_is_leaf(n))
				break;
			root = pd_value64(n, i);
			dm_pd_tm_unlock(info->tm, blk);
		}
		keys[level] = key_at(n, i);
		if (!last_level(info, level))
			root = pd_value64(n, i);
		dm_pd_tm_unlock(info->tm, blk);
	}
	return 0;
}

int dm_pd_btree_find_highest_key(struct dm_pd_btree_info *info, u64 root,
				 u64 *result_keys)
{
	return find_edge_key(info, root, result_keys, true);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_find_highest_key);

int dm_pd_btree_find_lowest_key(struct dm_pd_btree_info *info, u64 root,
				u64 *result_keys)
{
	return find_edge_key(info, root, result_keys, false);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_find_lowest_key);

static int walk_rec(struct dm_pd_btree_info *info, unsigned int level, u64 b,
		    u64 *keys, int (*fn)(void *, const u64 *, const void *),
		    void *context, struct pd_path *path)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	int r;
	u32 i;

	r = path_push(path, b);
	if (r)
		return r;
	r = read_node(info, level, b, &blk, &n);
	if (r)
		return r;
	for (i = 0; i < pd_nr(n) && !r; i++) {
		if (!pd_is_leaf(n)) {
			r = walk_rec(info, level, pd_value64(n, i), keys, fn,
				     context, path);
			continue;
		}
		keys[level] = key_at(n, i);
		if (last_level(info, level))
			r = fn(context, keys, pd_value_ptr(n, i));
		else
			r = walk_rec(info, level + 1, pd_value64(n, i), keys,
				     fn, context, path);
	}
	dm_pd_tm_unlock(info->tm, blk);
	path->depth--;
	return r;
}

int dm_pd_btree_walk(struct dm_pd_btree_info *info, u64 root,
		     int (*fn)(void *context, const u64 *keys,
			       const void *value),
		     void *context)
{
	u64 keys[DM_PD_MAX_LEVELS];
	struct pd_path path = { 0 };

	return walk_rec(info, 0, root, keys, fn, context, &path);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_walk);

/* ---- reference counting of what nodes point to ---- */

static int inc_children(struct dm_pd_btree_info *info, unsigned int level,
			struct pd_node *n)
{
	u32 i, nr = pd_nr(n);
	int r;

	if (pd_is_leaf(n) && last_level(info, level)) {
		if (info->value_type.inc && nr)
			info->value_type.inc(info->value_type.context,
					     pd_value_ptr(n, 0), nr);
		return 0;
	}
	for (i = 0; i < nr; i++) {
		r = dm_pd_tm_inc(info->tm, pd_value64(n, i));
		if (r)
			return r;
	}
	return 0;
}

static int del_rec(struct dm_pd_btree_info *info, unsigned int level, u64 b,
		   struct pd_path *path)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	int r, shared;
	u32 i;

	r = dm_pd_tm_block_is_shared(info->tm, b, &shared);
	if (r)
		return r;
	if (shared)
		return dm_pd_tm_dec(info->tm, b);
	r = path_push(path, b);
	if (r)
		return r;
	r = read_node(info, level, b, &blk, &n);
	if (r)
		return r;
	if (pd_is_leaf(n) && last_level(info, level)) {
		if (info->value_type.dec && pd_nr(n))
			info->value_type.dec(info->value_type.context,
					     pd_value_ptr(n, 0), pd_nr(n));
	} else {
		for (i = 0; i < pd_nr(n) && !r; i++)
			r = del_rec(info, pd_is_leaf(n) ? level + 1 : level,
				    pd_value64(n, i), path);
	}
	dm_pd_tm_unlock(info->tm, blk);
	path->depth--;
	return r ?: dm_pd_tm_dec(info->tm, b);
}

int dm_pd_btree_del(struct dm_pd_btree_info *info, u64 root)
{
	struct pd_path path = { 0 };

	return del_rec(info, 0, root, &path);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_del);

/* ---- modification ---- */

static int shadow_node(struct dm_pd_btree_info *info, unsigned int level,
		       u64 b, struct dm_pd_block **blk)
{
	struct pd_node *n;
	int r, inc;

	r = dm_pd_tm_shadow_block(info->tm, b, node_v, blk, &inc);
	if (r)
		return r;
	n = dm_pd_block_data(*blk);
	r = check_shape(n, level_vs(info, level));
	if (!r && inc)
		r = inc_children(info, level, n);
	if (r)
		dm_pd_tm_unlock(info->tm, *blk);
	return r;
}

static int new_node_like(struct dm_pd_tm *tm, struct pd_node *model,
			 struct dm_pd_block **blk)
{
	struct pd_node *n;
	int r = dm_pd_tm_new_block(tm, node_v, blk);

	if (r)
		return r;
	n = dm_pd_block_data(*blk);
	init_node(n, le32_to_cpu(model->header.flags), node_vs(model),
		  node_max(model));
	return 0;
}

/*
 * A full root keeps its location: its entries move to two new children
 * and it becomes an internal node over them.
 */
static int split_beneath(struct dm_pd_btree_info *info, struct pd_node *n)
{
	struct dm_pd_block *lblk, *rblk;
	struct pd_node *l, *rn;
	u32 nr = pd_nr(n), nl = nr / 2;
	int r;

	r = new_node_like(info->tm, n, &lblk);
	if (r)
		return r;
	r = new_node_like(info->tm, n, &rblk);
	if (r) {
		dm_pd_tm_unlock(info->tm, lblk);
		return r;
	}
	l = dm_pd_block_data(lblk);
	rn = dm_pd_block_data(rblk);
	copy_entries(l, 0, n, 0, nl);
	set_nr(l, nl);
	copy_entries(rn, 0, n, nl, nr - nl);
	set_nr(rn, nr - nl);

	init_node(n, PD_NODE_INTERNAL, 8, pd_max_entries(8));
	n->keys[0] = l->keys[0];
	n->keys[1] = rn->keys[0];
	set_value64(n, 0, dm_pd_block_location(lblk));
	set_value64(n, 1, dm_pd_block_location(rblk));
	set_nr(n, 2);
	dm_pd_tm_unlock(info->tm, lblk);
	dm_pd_tm_unlock(info->tm, rblk);
	return 0;
}

/* Move the upper half of child i of p into a new right sibling. */
static int split_child(struct dm_pd_btree_info *info, struct pd_node *p, u32 i,
		       struct pd_node *c, struct dm_pd_block **rblk)
{
	struct pd_node *rn;
	u32 nr = pd_nr(c), nl = nr / 2;
	__le64 loc;
	int r;

	r = new_node_like(info->tm, c, rblk);
	if (r)
		return r;
	rn = dm_pd_block_data(*rblk);
	copy_entries(rn, 0, c, nl, nr - nl);
	set_nr(rn, nr - nl);
	set_nr(c, nl);
	loc = cpu_to_le64(dm_pd_block_location(*rblk));
	insert_at(p, i + 1, key_at(rn, 0), &loc);
	return 0;
}

/*
 * Child i of p (shadowed, at *cblk) is about to lose an entry and is at
 * its minimum: merge it with a sibling, or even out their entries.
 * *cblk becomes whichever node now holds key.
 */
static int refill_child(struct dm_pd_btree_info *info, unsigned int level,
			struct pd_node *p, u32 i, u64 key,
			struct dm_pd_block **cblk)
{
	struct dm_pd_block *sblk, *lblk, *rblk;
	u32 li, ri, nl, nr, max, total, m;
	struct pd_node *l, *rn;
	int r;

	if (pd_nr(p) < 2)
		return 0;
	li = i + 1 < pd_nr(p) ? i : i - 1;
	ri = li + 1;
	r = shadow_node(info, level, pd_value64(p, li == i ? ri : li), &sblk);
	if (r)
		return r;
	set_value64(p, li == i ? ri : li, dm_pd_block_location(sblk));
	lblk = li == i ? *cblk : sblk;
	rblk = li == i ? sblk : *cblk;
	l = dm_pd_block_data(lblk);
	rn = dm_pd_block_data(rblk);
	nl = pd_nr(l);
	nr = pd_nr(rn);
	max = node_max(l);
	if (node_max(rn) != max || node_vs(rn) != node_vs(l) ||
	    pd_is_leaf(l) != pd_is_leaf(rn)) {
		PD_ERR("btree: siblings of different shapes");
		dm_pd_tm_unlock(info->tm, sblk);
		return -EILSEQ;
	}

	if (nl + nr <= max) {
		copy_entries(l, nl, rn, 0, nr);
		set_nr(l, nl + nr);
		delete_at(p, ri);
		r = dm_pd_tm_dec(info->tm, dm_pd_block_location(rblk));
		dm_pd_tm_unlock(info->tm, rblk);
		*cblk = lblk;
		return r;
	}

	total = nl + nr;
	if (nl > total / 2) {
		m = nl - total / 2;
		copy_entries(rn, m, rn, 0, nr);
		copy_entries(rn, 0, l, nl - m, m);
	} else {
		m = total / 2 - nl;
		copy_entries(l, nl, rn, 0, m);
		copy_entries(rn, 0, rn, m, nr - m);
	}
	set_nr(l, total / 2);
	set_nr(rn, total - total / 2);
	p->keys[ri] = rn->keys[0];
	if (key >= key_at(rn, 0)) {
		dm_pd_tm_unlock(info->tm, lblk);
		*cblk = rblk;
	} else {
		dm_pd_tm_unlock(info->tm, rblk);
		*cblk = lblk;
	}
	return 0;
}

enum path_mode { PATH_INSERT, PATH_REMOVE, PATH_FIND };

/*
 * Shadow the path from root to the leaf for key in one level's tree.
 * Returns the leaf write-locked and the key's index in it; for
 * PATH_INSERT a missing key gets a new slot (*exists tells which).
 */
static int shadow_path(struct dm_pd_btree_info *info, unsigned int level,
		       u64 root, u64 key, enum path_mode mode, u64 *new_root,
		       struct dm_pd_block **leaf, u32 *index, bool *exists)
{
	struct dm_pd_block *blk, *cblk, *rblk;
	struct pd_node *n, *c;
	int r, i, depth;

	r = shadow_node(info, level, root, &blk);
	if (r)
		return r;
	*new_root = dm_pd_block_location(blk);
	n = dm_pd_block_data(blk);
	if (mode == PATH_INSERT && pd_nr(n) == node_max(n)) {
		r = split_beneath(info, n);
		if (r)
			goto bad;
	}

	for (depth = 0; !pd_is_leaf(n); depth++) {
		r = -EILSEQ;
		if (depth >= PD_MAX_DEPTH)
			goto bad;
		i = lower_bound(n, key);
		if (i < 0) {
			r = -ENODATA;
			if (mode != PATH_INSERT)
				goto bad;
			/* A new minimum lowers the bound on the way down. */
			i = 0;
			n->keys[0] = cpu_to_le64(key);
		}
		r = shadow_node(info, level, pd_value64(n, i), &cblk);
		if (r)
			goto bad;
		set_value64(n, i, dm_pd_block_location(cblk));
		c = dm_pd_block_data(cblk);
		if (mode == PATH_INSERT && pd_nr(c) == node_max(c)) {
			r = split_child(info, n, i, c, &rblk);
			if (r) {
				dm_pd_tm_unlock(info->tm, cblk);
				goto bad;
			}
			if (key >= key_at(n, i + 1)) {
				dm_pd_tm_unlock(info->tm, cblk);
				cblk = rblk;
			} else {
				dm_pd_tm_unlock(info->tm, rblk);
			}
		} else if (mode == PATH_REMOVE &&
			   pd_nr(c) <= node_max(c) / 3) {
			r = refill_child(info, level, n, i, key, &cblk);
			if (r) {
				dm_pd_tm_unlock(info->tm, cblk);
				goto bad;
			}
		}
		dm_pd_tm_unlock(info->tm, blk);
		blk = cblk;
		n = dm_pd_block_data(blk);
	}

	i = lower_bound(n, key);
	*exists = i >= 0 && key_at(n, i) == key;
	if (!*exists) {
		r = -ENODATA;
		if (mode != PATH_INSERT)
			goto bad;
		i++;
		insert_at(n, i, key, NULL);
		memset(pd_value_ptr(n, i), 0, node_vs(n));
	}
	*leaf = blk;
	*index = i;
	return 0;
bad:
	dm_pd_tm_unlock(info->tm, blk);
	return r;
}

int dm_pd_btree_insert_notify(struct dm_pd_btree_info *info, u64 root,
			      const u64 *keys, const void *value,
			      u64 *new_root, int *inserted)
{
	struct dm_pd_block *leaf, *parent = NULL;
	struct dm_pd_btree_value_type *vt = &info->value_type;
	unsigned int level;
	u32 index, pindex = 0;
	struct pd_node *n;
	bool exists;
	u64 nb, sub;
	int r = 0;

	for (level = 0; level < info->levels; level++) {
		r = shadow_path(info, level, root, keys[level], PATH_INSERT,
				&nb, &leaf, &index, &exists);
		if (r)
			break;
		if (parent) {
			set_value64(dm_pd_block_data(parent), pindex, nb);
			dm_pd_tm_unlock(info->tm, parent);
			parent = NULL;
		} else {
			*new_root = nb;
		}
		n = dm_pd_block_data(leaf);
		if (last_level(info, level)) {
			void *old = pd_value_ptr(n, index);

			if (exists && vt->dec &&
			    !(vt->equal && vt->equal(vt->context, old, value)))
				vt->dec(vt->context, old, 1);
			memcpy(old, value, vt->size);
			dm_pd_tm_unlock(info->tm, leaf);
			if (inserted)
				*inserted = !exists;
			break;
		}
		if (!exists) {
			r = new_leaf(info->tm, level_vs(info, level + 1), &sub);
			if (r) {
				delete_at(n, index);
				dm_pd_tm_unlock(info->tm, leaf);
				break;
			}
			set_value64(n, index, sub);
		}
		root = pd_value64(n, index);
		parent = leaf;
		pindex = index;
	}
	if (parent)
		dm_pd_tm_unlock(info->tm, parent);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_btree_insert_notify);

int dm_pd_btree_insert(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, const void *value, u64 *new_root)
{
	return dm_pd_btree_insert_notify(info, root, keys, value, new_root,
					 NULL);
}
EXPORT_SYMBOL_GPL(dm_pd_btree_insert);

/* An internal root with a single child hands the tree to that child. */
static int collapse_root(struct dm_pd_btree_info *info, unsigned int level,
			 u64 *root)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	int r, depth;
	u64 child;

	for (depth = 0; depth < PD_MAX_DEPTH; depth++) {
		r = read_node(info, level, *root, &blk, &n);
		if (r)
			return r;
		if (pd_is_leaf(n) || pd_nr(n) != 1) {
			dm_pd_tm_unlock(info->tm, blk);
			return 0;
		}
		child = pd_value64(n, 0);
		dm_pd_tm_unlock(info->tm, blk);
		r = dm_pd_tm_dec(info->tm, *root);
		if (r)
			return r;
		*root = child;
	}
	return -EILSEQ;
}

int dm_pd_btree_remove(struct dm_pd_btree_info *info, u64 root,
		       const u64 *keys, u64 *new_root)
{
	struct dm_pd_block *leaf, *parent = NULL;
	struct dm_pd_btree_value_type *vt = &info->value_type;
	unsigned int level;
	u32 index, pindex = 0;
	struct pd_node *n;
	bool exists;
	u64 nb;
	int r;

	/* Nothing is shadowed for a key that is not there. */
	r = dm_pd_btree_lookup(info, root, keys, NULL);
	if (r)
		return r;
	for (level = 0; level < info->levels; level++) {
		bool last = last_level(info, level);

		r = shadow_path(info, level, root, keys[level],
				last ? PATH_REMOVE : PATH_FIND, &nb, &leaf,
				&index, &exists);
		if (r)
			break;
		n = dm_pd_block_data(leaf);
		if (last) {
			if (vt->dec)
				vt->dec(vt->context, pd_value_ptr(n, index), 1);
			delete_at(n, index);
			dm_pd_tm_unlock(info->tm, leaf);
			r = collapse_root(info, level, &nb);
		}
		if (parent) {
			set_value64(dm_pd_block_data(parent), pindex, nb);
			dm_pd_tm_unlock(info->tm, parent);
			parent = NULL;
		} else {
			*new_root = nb;
		}
		if (last || r)
			break;
		root = pd_value64(n, index);
		parent = leaf;
		pindex = index;
	}
	if (parent)
		dm_pd_tm_unlock(info->tm, parent);
	return r;
}
EXPORT_SYMBOL_GPL(dm_pd_btree_remove);

int dm_pd_btree_remove_leaves(struct dm_pd_btree_info *info, u64 root,
			      const u64 *keys, u64 end_key, u64 *new_root,
			      unsigned int *nr_removed)
{
	u64 k[DM_PD_MAX_LEVELS], rkey;
	unsigned int last = info->levels - 1;
	int r;

	memcpy(k, keys, info->levels * sizeof(u64));
	*new_root = root;
	*nr_removed = 0;
	for (;;) {
		r = dm_pd_btree_lookup_next(info, *new_root, k, &rkey, NULL);
		if (r == -ENODATA || (!r && rkey >= end_key))
			return 0;
		if (r)
			return r;
		k[last] = rkey;
		r = dm_pd_btree_remove(info, *new_root, k, new_root);
		if (r)
			return r;
		(*nr_removed)++;
	}
}
EXPORT_SYMBOL_GPL(dm_pd_btree_remove_leaves);
