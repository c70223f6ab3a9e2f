// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test support for thin-metadata.c: it is compiled into this file so that
 * the tests can reach its internals (the target sees only the header).
 */
#include "thin-metadata.c"
#include "thin-md-test.h"

unsigned int tmt_nr_extra;
bool tmt_stock_counters;
struct tmt_extra tmt_extra[TMT_MAX_EXTRA];

struct dm_pd_tm *tmt_tm(struct thin_md *md)
{
	return md->tm;
}

struct dm_pd_bm *tmt_bm(struct thin_md *md)
{
	return md->bm;
}

struct dm_pd_sm *tmt_metadata_sm(struct thin_md *md)
{
	return md->metadata_sm;
}

struct dm_pd_sm *tmt_data_sm(struct thin_md *md)
{
	return md->data_sm;
}

struct dm_pd_btree_info *tmt_mapping_info(struct thin_md *md)
{
	return &md->info;
}

u64 tmt_mapping_root(struct thin_md *md)
{
	return md->mapping_root;
}

u32 tmt_time(struct thin_md *md)
{
	return md->time;
}

int tmt_subtree_root(struct thin_md *md, u32 dev, u64 *root)
{
	u64 key = dev;
	__le64 v;
	int r;

	r = dm_pd_btree_lookup(&md->tl_info, md->mapping_root, &key, &v);
	if (!r)
		*root = le64_to_cpu(v);
	return r;
}

struct thin_md *tmt_format(struct block_device *bdev, u64 nr_data)
{
	struct thin_md *md = thin_md_open(bdev, 128, false);

	if (IS_ERR(md))
		return md;
	if (thin_md_resize_data_dev(md, nr_data) || thin_md_commit(md)) {
		thin_md_close(md);
		return ERR_PTR(-EIO);
	}
	return md;
}

int tmt_map(struct thin_md_dev *td, u64 vblock, u64 *dblock)
{
	int r = thin_md_alloc_data_block(td->md, dblock);

	return r ? r : thin_md_insert_block(td, vblock, *dblock);
}

/* ---- verification ---- */

struct vctx {
	struct thin_md *md;
	u32 *exp;		/* expected metadata counts */
	u64 nr_blocks;
	u32 *dexp;		/* expected data counts */
	u64 nr_data;
	u32 sb_time;
	u64 nr_mappings;	/* last-level entries of the tree walked */
	int errors;
	bool verbose;
};

#define VERR(v, ...) do { \
	(v)->errors++; \
	if ((v)->verbose && (v)->errors < 20) \
		pr_err("verify: " __VA_ARGS__); \
} while (0)

static bool ref(struct vctx *v, u64 b)
{
	if (b >= v->nr_blocks) {
		VERR(v, "block %llu out of bounds\n", (unsigned long long)b);
		return false;
	}
	return ++v->exp[b] == 1;
}

enum leaf_kind { LEAF_PLAIN, LEAF_DATA, LEAF_SUBTREE_DATA, LEAF_REF };

/*
 * Count a reference to node b and, on the first visit, to everything it
 * points to.  Keys must lie in [lo, hi).
 */
static void walk_tree(struct vctx *v, u64 b, u32 leaf_vs, enum leaf_kind kind,
		      bool is_root, u64 lo, u64 hi, bool bounded)
{
	struct dm_pd_block *blk;
	struct pd_node *n;
	u32 i, nr, max, vs, flags;
	u64 prev = 0;

	if (kind == LEAF_DATA && is_root)
		v->nr_mappings = 0;
	if (!ref(v, b))
		return;
	if (dm_pd_tm_read_lock(v->md->tm, b, &dm_pd_btree_node_validator,
			       &blk)) {
		VERR(v, "node %llu unreadable\n", (unsigned long long)b);
		return;
	}
	n = dm_pd_block_data(blk);
	nr = pd_nr(n);
	max = le32_to_cpu(n->header.max_entries);
	vs = le32_to_cpu(n->header.value_size);
	flags = le32_to_cpu(n->header.flags);
	if (max % 3)
		VERR(v, "node %llu max_entries %u\n", (unsigned long long)b,
		     max);
	if (flags == PD_NODE_INTERNAL ? vs != 8 : vs != leaf_vs)
		VERR(v, "node %llu value size %u\n", (unsigned long long)b, vs);
	if (max != pd_max_entries(vs))
		VERR(v, "node %llu capacity %u\n", (unsigned long long)b, max);
	if (!is_root && nr < max / 3)
		VERR(v, "node %llu underfull: %u of %u\n",
		     (unsigned long long)b, nr, max);
	for (i = 0; i < nr; i++) {
		u64 k = le64_to_cpu(n->keys[i]);

		if ((i && k <= prev) || k < lo || (bounded && k >= hi))
			VERR(v, "node %llu key %u out of order\n",
			     (unsigned long long)b, i);
		prev = k;
	}
	for (i = 0; i < nr; i++) {
		u64 k = le64_to_cpu(n->keys[i]);
		u64 val = pd_value64(n, i);

		if (flags == PD_NODE_INTERNAL) {
			bool last = i + 1 == nr;

			walk_tree(v, val, leaf_vs, kind, false, k,
				  last ? hi : le64_to_cpu(n->keys[i + 1]),
				  last ? bounded : true);
			continue;
		}
		switch (kind) {
		case LEAF_PLAIN:
			break;
		case LEAF_DATA:
			v->nr_mappings++;
			if ((val & TIME_MASK) > v->sb_time)
				VERR(v, "mapping time %llu after %u\n",
				     (unsigned long long)(val & TIME_MASK),
				     v->sb_time);
			val >>= TIME_BITS;
			if (val >= v->nr_data)
				VERR(v, "data block %llu out of range\n",
				     (unsigned long long)val);
			else
				v->dexp[val]++;
			break;
		case LEAF_SUBTREE_DATA:
			walk_tree(v, val, 8, LEAF_DATA, true, 0, 0, false);
			break;
		case LEAF_REF:
			ref(v, val);
			break;
		}
	}
	dm_pd_tm_unlock(v->md->tm, blk);
}

static void check_bitmaps(struct vctx *v, const char *what,
			  struct pd_index_entry *ie, u64 nr_bitmaps,
			  u64 nr_blocks, struct dm_pd_sm *sm)
{
	u64 k, b;

	for (k = 0; k < nr_bitmaps; k++) {
		u64 base = k * PD_ENTRIES_PER_BITMAP, free = 0, first = ~0ULL;
		u64 end = min_t(u64, nr_blocks, base + PD_ENTRIES_PER_BITMAP);

		for (b = base; b < end; b++) {
			u32 c;

			if (dm_pd_sm_get_count(sm, b, &c)) {
				VERR(v, "%s count of %llu unreadable\n", what,
				     (unsigned long long)b);
				return;
			}
			if (!c) {
				free++;
				if (first == ~0ULL)
					first = b - base;
			}
		}
		if (le32_to_cpu(ie[k].nr_free) != free)
			VERR(v, "%s bitmap %llu nr_free %u, counted %llu\n",
			     what, (unsigned long long)k,
			     le32_to_cpu(ie[k].nr_free),
			     (unsigned long long)free);
		if (first != ~0ULL &&
		    le32_to_cpu(ie[k].none_free_before) > first)
			VERR(v, "%s bitmap %llu none_free_before %u > %llu\n",
			     what, (unsigned long long)k,
			     le32_to_cpu(ie[k].none_free_before),
			     (unsigned long long)first);
	}
}

struct ie_collect {
	struct pd_index_entry *ie;
	u64 n;
};

static int collect_ie(void *ctx, const u64 *keys, const void *value)
{
	struct ie_collect *c = ctx;

	if (keys[0] < c->n)
		memcpy(&c->ie[keys[0]], value, sizeof(*c->ie));
	return 0;
}

struct dev_walk {
	struct vctx *v;
	u64 prev_dev;
	bool any;
};

/*
 * Each details entry has a subtree entry (and the other way round), with
 * exactly mapped_blocks mappings: what the newer thin_check insists on.
 */
static int check_dev(void *context, const u64 *keys, const void *value)
{
	struct dev_walk *w = context;
	struct vctx *v = w->v;
	const struct thin_disk_details *d = value;
	struct thin_md *md = v->md;
	u64 root, count;

	if (tmt_subtree_root(md, keys[0], &root)) {
		VERR(v, "device %llu has details but no mappings\n",
		     (unsigned long long)keys[0]);
		return 0;
	}
	count = 0;
	{
		struct vctx sub = *v;

		/* A private recount: only nr_mappings matters here. */
		sub.exp = kvcalloc(v->nr_blocks, sizeof(u32), GFP_KERNEL);
		sub.dexp = kvcalloc(v->nr_data + 1, sizeof(u32), GFP_KERNEL);
		if (sub.exp && sub.dexp) {
			walk_tree(&sub, root, 8, LEAF_DATA, true, 0, 0, false);
			count = sub.nr_mappings;
			v->errors += sub.errors - v->errors;
		}
		kvfree(sub.exp);
		kvfree(sub.dexp);
	}
	if (count != le64_to_cpu(d->mapped_blocks))
		VERR(v, "device %llu: mapped_blocks %llu, counted %llu\n",
		     (unsigned long long)keys[0],
		     (unsigned long long)le64_to_cpu(d->mapped_blocks),
		     (unsigned long long)count);
	if (le32_to_cpu(d->creation_time) > v->sb_time ||
	    le32_to_cpu(d->snapshotted_time) > v->sb_time)
		VERR(v, "device %llu: times after the superblock's\n",
		     (unsigned long long)keys[0]);
	return 0;
}

static int count_entries(void *context, const u64 *keys, const void *value)
{
	(*(u64 *)context)++;
	return 0;
}

static void check_devs(struct vctx *v, struct thin_disk_sb *sb)
{
	struct thin_md *md = v->md;
	struct dev_walk w = { .v = v };
	u64 nr_details = 0, nr_subtrees = 0;

	if (dm_pd_btree_walk(&md->details_info,
			     le64_to_cpu(sb->device_details_root), check_dev,
			     &w))
		VERR(v, "details tree unreadable\n");
	dm_pd_btree_walk(&md->details_info,
			 le64_to_cpu(sb->device_details_root), count_entries,
			 &nr_details);
	dm_pd_btree_walk(&md->tl_info, le64_to_cpu(sb->data_mapping_root),
			 count_entries, &nr_subtrees);
	if (nr_details != nr_subtrees)
		VERR(v, "%llu devices with details, %llu with mappings\n",
		     (unsigned long long)nr_details,
		     (unsigned long long)nr_subtrees);
}

static void walk_roots(struct vctx *v, struct thin_disk_sb *sb)
{
	walk_tree(v, le64_to_cpu(sb->device_details_root),
		  sizeof(struct thin_disk_details), LEAF_PLAIN, true, 0, 0,
		  false);
	walk_tree(v, le64_to_cpu(sb->data_mapping_root), 8, LEAF_SUBTREE_DATA,
		  true, 0, 0, false);
}

int thin_md_verify(struct thin_md *md, bool verbose)
{
	struct vctx v = { .md = md, .verbose = verbose };
	struct pd_sm_root mroot, droot;
	struct pd_metadata_index *mi = NULL;
	struct ie_collect dc;
	struct dm_pd_block *blk, *hblk;
	struct thin_disk_sb *sb;
	u64 b, nr_bitmaps, nr_free = 0;
	u32 c;

	if (dm_pd_bm_read_lock(md->bm, 0, &sb_validator, &blk))
		return 1;
	sb = dm_pd_block_data(blk);
	memcpy(&mroot, sb->metadata_sm_root, sizeof(mroot));
	memcpy(&droot, sb->data_sm_root, sizeof(droot));
	v.sb_time = le32_to_cpu(sb->time);
	v.nr_blocks = le64_to_cpu(mroot.nr_blocks);
	v.nr_data = le64_to_cpu(droot.nr_blocks);
	v.exp = kvcalloc(v.nr_blocks, sizeof(u32), GFP_KERNEL);
	v.dexp = kvcalloc(v.nr_data + 1, sizeof(u32), GFP_KERNEL);
	mi = kvzalloc(sizeof(*mi), GFP_KERNEL);
	if (!v.exp || !v.dexp || !mi) {
		VERR(&v, "out of memory\n");
		goto out;
	}
	if (le64_to_cpu(sb->magic) != THIN_SB_MAGIC ||
	    le32_to_cpu(sb->version) != THIN_VERSION ||
	    le32_to_cpu(sb->metadata_block_size) != THIN_MD_BLOCK_SECTORS)
		VERR(&v, "superblock constants\n");

	ref(&v, 0);
	/* metadata space map */
	ref(&v, le64_to_cpu(mroot.bitmap_root));
	nr_bitmaps = DIV_ROUND_UP(v.nr_blocks, PD_ENTRIES_PER_BITMAP);
	/* Read raw: the library has already validated it under its type. */
	if (dm_pd_tm_read_lock(md->tm, le64_to_cpu(mroot.bitmap_root), NULL,
			       &hblk)) {
		VERR(&v, "metadata index unreadable\n");
		goto out;
	}
	memcpy(mi, dm_pd_block_data(hblk), sizeof(*mi));
	dm_pd_tm_unlock(md->tm, hblk);
	if (mi->csum != dm_pd_block_csum(mi, DM_PD_BLOCK_SIZE,
					 DM_PD_CSUM_XOR_INDEX)) {
		VERR(&v, "metadata index checksum\n");
		goto out;
	}
	for (b = 0; b < nr_bitmaps; b++)
		ref(&v, le64_to_cpu(mi->index[b].blocknr));
	walk_tree(&v, le64_to_cpu(mroot.ref_count_root), 4, LEAF_PLAIN, true,
		  0, 0, false);
	/* data space map */
	walk_tree(&v, le64_to_cpu(droot.bitmap_root),
		  sizeof(struct pd_index_entry), LEAF_REF, true, 0, 0, false);
	walk_tree(&v, le64_to_cpu(droot.ref_count_root), 4, LEAF_PLAIN, true,
		  0, 0, false);
	walk_roots(&v, sb);
	check_devs(&v, sb);
	if (le64_to_cpu(sb->held_root)) {
		u64 h = le64_to_cpu(sb->held_root);

		ref(&v, h);
		if (dm_pd_bm_read_lock(md->bm, h, &sb_validator, &hblk)) {
			VERR(&v, "held root unreadable\n");
		} else {
			walk_roots(&v, dm_pd_block_data(hblk));
			dm_pd_bm_unlock(hblk);
		}
	}
	for (b = 0; b < tmt_nr_extra; b++) {
		struct tmt_extra *e = &tmt_extra[b];

		walk_tree(&v, e->root, e->is_array ? 8 : e->vs,
			  e->is_array ? LEAF_REF : LEAF_PLAIN, true, 0, 0,
			  false);
	}

	for (b = 0; b < v.nr_blocks; b++) {
		if (dm_pd_sm_get_count(md->metadata_sm, b, &c)) {
			VERR(&v, "metadata count %llu unreadable\n",
			     (unsigned long long)b);
			break;
		}
		if (c != v.exp[b])
			VERR(&v, "metadata block %llu: count %u, expected %u\n",
			     (unsigned long long)b, c, v.exp[b]);
		nr_free += !c;
	}
	if (tmt_stock_counters)
		goto data;
	if (nr_free != v.nr_blocks - le64_to_cpu(mroot.nr_allocated))
		VERR(&v, "metadata nr_allocated %llu, counted %llu\n",
		     (unsigned long long)le64_to_cpu(mroot.nr_allocated),
		     (unsigned long long)(v.nr_blocks - nr_free));
	check_bitmaps(&v, "metadata", mi->index, nr_bitmaps, v.nr_blocks,
		      md->metadata_sm);
data:

	nr_free = 0;
	for (b = 0; b < v.nr_data; b++) {
		if (dm_pd_sm_get_count(md->data_sm, b, &c)) {
			VERR(&v, "data count %llu unreadable\n",
			     (unsigned long long)b);
			break;
		}
		if (c != v.dexp[b])
			VERR(&v, "data block %llu: count %u, expected %u\n",
			     (unsigned long long)b, c, v.dexp[b]);
		nr_free += !c;
	}
	if (nr_free != v.nr_data - le64_to_cpu(droot.nr_allocated))
		VERR(&v, "data nr_allocated wrong\n");
	nr_bitmaps = DIV_ROUND_UP(v.nr_data, PD_ENTRIES_PER_BITMAP);
	dc.n = nr_bitmaps;
	dc.ie = kvcalloc(nr_bitmaps + 1, sizeof(*dc.ie), GFP_KERNEL);
	if (!dc.ie) {
		VERR(&v, "out of memory\n");
		goto out;
	}
	{
		struct dm_pd_btree_info ii = {
			.tm = md->tm, .levels = 1,
			.value_type = { .size = sizeof(struct pd_index_entry) },
		};

		if (dm_pd_btree_walk(&ii, le64_to_cpu(droot.bitmap_root),
				     collect_ie, &dc))
			VERR(&v, "data index unreadable\n");
		else
			check_bitmaps(&v, "data", dc.ie, nr_bitmaps, v.nr_data,
				      md->data_sm);
	}
	kvfree(dc.ie);
out:
	dm_pd_bm_unlock(blk);
	kvfree(mi);
	kvfree(v.exp);
	kvfree(v.dexp);
	return v.errors;
}

int tmt_commit(struct thin_md *md)
{
	/* Trees changed behind the pool's back still need the commit. */
	md->changed = true;
	return thin_md_commit(md);
}
