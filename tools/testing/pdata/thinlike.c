// SPDX-License-Identifier: GPL-2.0-only
/*
 * Thin-pool-like metadata over the persistent-data library (test only).
 */
#include "thinlike.h"

struct tl_sb {
	__le32 csum;
	__le32 flags;
	__le64 blocknr;
	u8 uuid[16];
	__le64 magic;
	__le32 version;
	__le32 time;
	__le64 trans_id;
	__le64 held_root;
	u8 data_sm_root[128];
	u8 metadata_sm_root[128];
	__le64 data_mapping_root;
	__le64 device_details_root;
	__le32 data_block_size;
	__le32 metadata_block_size;
	__le64 metadata_nr_blocks;
	__le32 compat_flags;
	__le32 compat_ro_flags;
	__le32 incompat_flags;
} __packed;

static_assert(sizeof(struct tl_sb) == 364);

static void sb_prepare(const struct dm_pd_validator *v, void *data,
		       u64 location, size_t size)
{
	struct tl_sb *sb = data;

	sb->blocknr = cpu_to_le64(location);
	sb->csum = dm_pd_block_csum(data, size, TL_SB_XOR);
}

static int sb_check(const struct dm_pd_validator *v, const void *data,
		    u64 location, size_t size)
{
	const struct tl_sb *sb = data;

	if (le64_to_cpu(sb->blocknr) != location)
		return -ENOTBLK;
	if (le64_to_cpu(sb->magic) != TL_MAGIC)
		return -EILSEQ;
	if (sb->csum != dm_pd_block_csum(data, size, TL_SB_XOR))
		return -EILSEQ;
	return 0;
}

static const struct dm_pd_validator sb_validator = {
	.name = "superblock",
	.prepare_for_write = sb_prepare,
	.check = sb_check,
};

static void data_inc(void *ctx, const void *value, unsigned int count)
{
	struct tl_meta *m = ctx;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_sm_inc(m->dsm, le64_to_cpu(v[i]) >> 24);
		if (r)
			m->vt_error = r;
	}
}

static void data_dec(void *ctx, const void *value, unsigned int count)
{
	struct tl_meta *m = ctx;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_sm_dec(m->dsm, le64_to_cpu(v[i]) >> 24);
		if (r)
			m->vt_error = r;
	}
}

static void subtree_inc(void *ctx, const void *value, unsigned int count)
{
	struct tl_meta *m = ctx;
	const __le64 *v = value;
	unsigned int i;

	for (i = 0; i < count; i++)
		if (dm_pd_tm_inc(m->tm, le64_to_cpu(v[i])))
			m->vt_error = -EIO;
}

static void subtree_dec(void *ctx, const void *value, unsigned int count)
{
	struct tl_meta *m = ctx;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_btree_del(&m->bl_info, le64_to_cpu(v[i]));
		if (r)
			m->vt_error = r;
	}
}

static void init_infos(struct tl_meta *m)
{
	struct dm_pd_btree_value_type data_vt = {
		.context = m, .size = 8, .inc = data_inc, .dec = data_dec,
	};

	m->info.tm = m->tm;
	m->info.levels = 2;
	m->info.value_type = data_vt;
	m->bl_info = m->info;
	m->bl_info.levels = 1;
	m->tl_info = m->bl_info;
	m->tl_info.value_type.inc = subtree_inc;
	m->tl_info.value_type.dec = subtree_dec;
	m->details_info.tm = m->tm;
	m->details_info.levels = 1;
	memset(&m->details_info.value_type, 0,
	       sizeof(m->details_info.value_type));
	m->details_info.value_type.size = sizeof(struct tl_details);
}

int tl_commit(struct tl_meta *m)
{
	struct dm_pd_block *blk;
	struct tl_sb *sb;
	int r;

	if (m->vt_error)
		return m->vt_error;
	r = dm_pd_sm_commit(m->dsm);
	if (!r)
		r = dm_pd_tm_pre_commit(m->tm);
	if (!r)
		r = dm_pd_bm_write_lock_zero(m->bm, 0, &sb_validator, &blk);
	if (r)
		return r;
	sb = dm_pd_block_data(blk);
	sb->magic = cpu_to_le64(TL_MAGIC);
	sb->version = cpu_to_le32(2);
	sb->time = cpu_to_le32(m->time);
	sb->trans_id = cpu_to_le64(m->trans_id);
	sb->held_root = cpu_to_le64(m->held_root);
	r = dm_pd_sm_copy_root(m->dsm, sb->data_sm_root,
			       sizeof(sb->data_sm_root));
	if (!r)
		r = dm_pd_sm_copy_root(m->msm, sb->metadata_sm_root,
				       sizeof(sb->metadata_sm_root));
	sb->data_mapping_root = cpu_to_le64(m->mapping_root);
	sb->device_details_root = cpu_to_le64(m->details_root);
	sb->data_block_size = cpu_to_le32(128);
	sb->metadata_block_size = cpu_to_le32(8);
	sb->metadata_nr_blocks =
		cpu_to_le64(min_t(u64, dm_pd_bm_nr_blocks(m->bm),
				  DM_PD_METADATA_MAX_BLOCKS));
	if (r) {
		dm_pd_bm_unlock(blk);
		return r;
	}
	return dm_pd_tm_commit(m->tm, blk);
}

int tl_format(struct tl_meta *m, struct block_device *bdev, u64 nr_data)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->bdev = bdev;
	m->bm = dm_pd_bm_create(bdev, 16);
	if (IS_ERR(m->bm))
		return PTR_ERR(m->bm);
	r = dm_pd_tm_create_with_sm(m->bm, 0, &m->tm, &m->msm);
	if (r)
		goto bad_bm;
	init_infos(m);
	r = dm_pd_sm_disk_create(m->tm, nr_data, &m->dsm);
	if (!r)
		r = dm_pd_btree_empty(&m->tl_info, &m->mapping_root);
	if (!r)
		r = dm_pd_btree_empty(&m->details_info, &m->details_root);
	if (!r)
		r = tl_commit(m);
	if (!r)
		return 0;
	if (m->dsm)
		dm_pd_sm_destroy(m->dsm);
	dm_pd_sm_destroy(m->msm);
	dm_pd_tm_destroy(m->tm);
bad_bm:
	dm_pd_bm_destroy(m->bm);
	m->bm = NULL;
	return r;
}

int tl_open(struct tl_meta *m, struct block_device *bdev)
{
	struct dm_pd_block *blk;
	struct tl_sb *sb;
	int r;

	memset(m, 0, sizeof(*m));
	m->bdev = bdev;
	m->bm = dm_pd_bm_create(bdev, 16);
	if (IS_ERR(m->bm))
		return PTR_ERR(m->bm);
	r = dm_pd_bm_read_lock(m->bm, 0, &sb_validator, &blk);
	if (r)
		goto bad_bm;
	sb = dm_pd_block_data(blk);
	m->time = le32_to_cpu(sb->time);
	m->trans_id = le64_to_cpu(sb->trans_id);
	m->held_root = le64_to_cpu(sb->held_root);
	m->mapping_root = le64_to_cpu(sb->data_mapping_root);
	m->details_root = le64_to_cpu(sb->device_details_root);
	r = dm_pd_tm_open_with_sm(m->bm, 0, sb->metadata_sm_root,
				  sizeof(sb->metadata_sm_root), &m->tm,
				  &m->msm);
	if (!r) {
		init_infos(m);
		r = dm_pd_sm_disk_open(m->tm, sb->data_sm_root,
				       sizeof(sb->data_sm_root), &m->dsm);
		if (r) {
			dm_pd_sm_destroy(m->msm);
			dm_pd_tm_destroy(m->tm);
		}
	}
	dm_pd_bm_unlock(blk);
	if (!r)
		return 0;
bad_bm:
	dm_pd_bm_destroy(m->bm);
	m->bm = NULL;
	return r;
}

void tl_close(struct tl_meta *m)
{
	if (!m->bm)
		return;
	dm_pd_sm_destroy(m->dsm);
	dm_pd_sm_destroy(m->msm);
	dm_pd_tm_destroy(m->tm);
	dm_pd_bm_reset(m->bm);
	dm_pd_bm_destroy(m->bm);
	m->bm = NULL;
}

int tl_abort(struct tl_meta *m)
{
	struct block_device *bdev = m->bdev;
	unsigned int nr_extra = m->nr_extra;
	struct tl_extra extra[TL_MAX_EXTRA];
	int r;

	memcpy(extra, m->extra, sizeof(extra));
	tl_close(m);
	r = tl_open(m, bdev);

	m->nr_extra = nr_extra;
	memcpy(m->extra, extra, sizeof(extra));
	return r;
}

static int get_details(struct tl_meta *m, u64 dev, struct tl_details *d)
{
	return dm_pd_btree_lookup(&m->details_info, m->details_root, &dev, d);
}

static int put_details(struct tl_meta *m, u64 dev, struct tl_details *d)
{
	return dm_pd_btree_insert(&m->details_info, m->details_root, &dev, d,
				  &m->details_root);
}

static int new_details(struct tl_meta *m, u64 dev, u64 mapped)
{
	struct tl_details d = {
		.mapped_blocks = cpu_to_le64(mapped),
		.transaction_id = cpu_to_le64(m->trans_id),
		.creation_time = cpu_to_le32(m->time),
		.snapshotted_time = cpu_to_le32(m->time),
	};

	return put_details(m, dev, &d);
}

int tl_create_thin(struct tl_meta *m, u64 dev)
{
	struct tl_details d;
	__le64 v;
	u64 root;
	int r;

	if (!get_details(m, dev, &d))
		return -EEXIST;
	r = dm_pd_btree_empty(&m->bl_info, &root);
	if (r)
		return r;
	v = cpu_to_le64(root);
	r = dm_pd_btree_insert(&m->tl_info, m->mapping_root, &dev, &v,
			       &m->mapping_root);
	if (r)
		return r;
	return new_details(m, dev, 0);
}

int tl_snapshot(struct tl_meta *m, u64 origin, u64 dev)
{
	struct tl_details od, d;
	__le64 v;
	int r;

	if (!get_details(m, dev, &d))
		return -EEXIST;
	r = get_details(m, origin, &od);
	if (r)
		return r;
	r = dm_pd_btree_lookup(&m->tl_info, m->mapping_root, &origin, &v);
	if (r)
		return r;
	r = dm_pd_tm_inc(m->tm, le64_to_cpu(v));
	if (r)
		return r;
	r = dm_pd_btree_insert(&m->tl_info, m->mapping_root, &dev, &v,
			       &m->mapping_root);
	if (r)
		return r;
	m->time++;
	r = new_details(m, dev, le64_to_cpu(od.mapped_blocks));
	if (r)
		return r;
	od.snapshotted_time = cpu_to_le32(m->time);
	return put_details(m, origin, &od);
}

int tl_delete(struct tl_meta *m, u64 dev)
{
	int r = dm_pd_btree_remove(&m->tl_info, m->mapping_root, &dev,
				   &m->mapping_root);

	if (r)
		return r;
	return dm_pd_btree_remove(&m->details_info, m->details_root, &dev,
				  &m->details_root);
}

static int add_mapped(struct tl_meta *m, u64 dev, s64 delta)
{
	struct tl_details d;
	int r = get_details(m, dev, &d);

	if (r)
		return r;
	d.mapped_blocks = cpu_to_le64(le64_to_cpu(d.mapped_blocks) + delta);
	return put_details(m, dev, &d);
}

int tl_map(struct tl_meta *m, u64 dev, u64 vblock, u64 *data_block)
{
	u64 keys[2] = { dev, vblock };
	struct tl_details d;
	int r, inserted;
	__le64 v;

	r = get_details(m, dev, &d);
	if (r)
		return r;
	r = dm_pd_sm_new_block(m->dsm, data_block);
	if (r)
		return r;
	v = cpu_to_le64((*data_block << 24) | (m->time & 0xffffff));
	r = dm_pd_btree_insert_notify(&m->info, m->mapping_root, keys, &v,
				      &m->mapping_root, &inserted);
	if (r)
		return r;
	if (m->vt_error)
		return m->vt_error;
	return inserted ? add_mapped(m, dev, 1) : 0;
}

int tl_unmap(struct tl_meta *m, u64 dev, u64 vblock)
{
	u64 keys[2] = { dev, vblock };
	int r = dm_pd_btree_remove(&m->info, m->mapping_root, keys,
				   &m->mapping_root);

	if (r)
		return r;
	if (m->vt_error)
		return m->vt_error;
	return add_mapped(m, dev, -1);
}

int tl_unmap_range(struct tl_meta *m, u64 dev, u64 begin, u64 end)
{
	u64 keys[2] = { dev, begin };
	unsigned int n;
	int r = dm_pd_btree_remove_leaves(&m->info, m->mapping_root, keys, end,
					  &m->mapping_root, &n);

	if (r)
		return r;
	if (m->vt_error)
		return m->vt_error;
	return n ? add_mapped(m, dev, -(s64)n) : 0;
}

int tl_lookup(struct tl_meta *m, u64 dev, u64 vblock, u64 *data_block)
{
	u64 keys[2] = { dev, vblock };
	__le64 v;
	int r = dm_pd_btree_lookup(&m->info, m->mapping_root, keys, &v);

	if (!r)
		*data_block = le64_to_cpu(v) >> 24;
	return r;
}

int tl_reserve_metadata_snap(struct tl_meta *m)
{
	struct dm_pd_block *blk;
	struct tl_sb *copy;
	int r, inc;

	if (m->held_root)
		return -EBUSY;
	r = tl_commit(m);
	if (r)
		return r;
	r = dm_pd_tm_inc(m->tm, 0);
	if (r)
		return r;
	r = dm_pd_tm_shadow_block(m->tm, 0, &sb_validator, &blk, &inc);
	if (r)
		return r;
	copy = dm_pd_block_data(blk);
	memset(copy->data_sm_root, 0, sizeof(copy->data_sm_root));
	memset(copy->metadata_sm_root, 0, sizeof(copy->metadata_sm_root));
	copy->held_root = 0;
	r = dm_pd_tm_inc(m->tm, le64_to_cpu(copy->data_mapping_root));
	if (!r)
		r = dm_pd_tm_inc(m->tm, le64_to_cpu(copy->device_details_root));
	m->held_root = dm_pd_block_location(blk);
	dm_pd_tm_unlock(m->tm, blk);
	return r ?: tl_commit(m);
}

int tl_release_metadata_snap(struct tl_meta *m)
{
	struct dm_pd_block *blk;
	struct tl_sb *copy;
	u64 mroot, droot, held = m->held_root;
	int r;

	if (!held)
		return -EINVAL;
	r = dm_pd_tm_read_lock(m->tm, held, &sb_validator, &blk);
	if (r)
		return r;
	copy = dm_pd_block_data(blk);
	mroot = le64_to_cpu(copy->data_mapping_root);
	droot = le64_to_cpu(copy->device_details_root);
	dm_pd_tm_unlock(m->tm, blk);
	m->held_root = 0;
	r = dm_pd_btree_del(&m->info, mroot);
	if (!r)
		r = dm_pd_btree_del(&m->details_info, droot);
	if (!r)
		r = dm_pd_tm_dec(m->tm, held);
	return r ?: m->vt_error;
}

/* ---- verification ---- */

struct vctx {
	struct tl_meta *m;
	u32 *exp;		/* expected metadata counts */
	u64 nr_blocks;
	u32 *dexp;		/* expected data counts */
	u64 nr_data;
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

enum leaf_kind { LEAF_PLAIN, LEAF_DATA, LEAF_SUBTREE_DATA, LEAF_ARRAY,
		 LEAF_BITMAPS };

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

	if (!ref(v, b))
		return;
	if (dm_pd_tm_read_lock(v->m->tm, b, &dm_pd_btree_node_validator,
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
			val >>= 24;
			if (val >= v->nr_data)
				VERR(v, "data block %llu out of range\n",
				     (unsigned long long)val);
			else
				v->dexp[val]++;
			break;
		case LEAF_SUBTREE_DATA:
			walk_tree(v, val, 8, LEAF_DATA, true, 0, 0, false);
			break;
		case LEAF_ARRAY:
			ref(v, val);
			break;
		case LEAF_BITMAPS:
			ref(v, val);	/* index entry: blocknr first */
			break;
		}
	}
	dm_pd_tm_unlock(v->m->tm, blk);
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
		if (first != ~0ULL && le32_to_cpu(ie[k].none_free_before) > first)
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

static void walk_roots(struct vctx *v, struct tl_sb *sb, bool held)
{
	walk_tree(v, le64_to_cpu(sb->device_details_root),
		  sizeof(struct tl_details), LEAF_PLAIN, true, 0, 0, false);
	walk_tree(v, le64_to_cpu(sb->data_mapping_root), 8, LEAF_SUBTREE_DATA,
		  true, 0, 0, false);
	if (held)
		return;
}

int tl_verify(struct tl_meta *m, bool verbose)
{
	struct vctx v = { .m = m, .verbose = verbose };
	struct pd_sm_root mroot, droot;
	struct pd_metadata_index *mi = NULL;
	struct ie_collect dc;
	struct dm_pd_block *blk, *hblk;
	struct tl_sb *sb;
	u64 b, nr_bitmaps, nr_free = 0;
	u32 c;

	if (dm_pd_bm_read_lock(m->bm, 0, &sb_validator, &blk))
		return 1;
	sb = dm_pd_block_data(blk);
	memcpy(&mroot, sb->metadata_sm_root, sizeof(mroot));
	memcpy(&droot, sb->data_sm_root, sizeof(droot));
	v.nr_blocks = le64_to_cpu(mroot.nr_blocks);
	v.nr_data = le64_to_cpu(droot.nr_blocks);
	v.exp = kvcalloc(v.nr_blocks, sizeof(u32), GFP_KERNEL);
	v.dexp = kvcalloc(v.nr_data + 1, sizeof(u32), GFP_KERNEL);
	mi = kvzalloc(sizeof(*mi), GFP_KERNEL);
	if (!v.exp || !v.dexp || !mi) {
		VERR(&v, "out of memory\n");
		goto out;
	}

	ref(&v, 0);
	/* metadata space map */
	ref(&v, le64_to_cpu(mroot.bitmap_root));
	nr_bitmaps = DIV_ROUND_UP(v.nr_blocks, PD_ENTRIES_PER_BITMAP);
	/* Read raw: the library has already validated it under its type. */
	if (dm_pd_tm_read_lock(m->tm, le64_to_cpu(mroot.bitmap_root), NULL,
			       &hblk)) {
		VERR(&v, "metadata index unreadable\n");
		goto out;
	}
	memcpy(mi, dm_pd_block_data(hblk), sizeof(*mi));
	dm_pd_tm_unlock(m->tm, hblk);
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
		  sizeof(struct pd_index_entry), LEAF_BITMAPS, true, 0, 0,
		  false);
	walk_tree(&v, le64_to_cpu(droot.ref_count_root), 4, LEAF_PLAIN, true,
		  0, 0, false);
	walk_roots(&v, sb, false);
	if (le64_to_cpu(sb->held_root)) {
		u64 h = le64_to_cpu(sb->held_root);

		ref(&v, h);
		if (dm_pd_bm_read_lock(m->bm, h, &sb_validator, &hblk)) {
			VERR(&v, "held root unreadable\n");
		} else {
			walk_roots(&v, dm_pd_block_data(hblk), true);
			dm_pd_bm_unlock(hblk);
		}
	}
	for (b = 0; b < m->nr_extra; b++) {
		struct tl_extra *e = &m->extra[b];

		if (e->levels != 1)
			continue;
		walk_tree(&v, e->root, e->is_array ? 8 : e->vs,
			  e->is_array ? LEAF_ARRAY : LEAF_PLAIN, true, 0, 0,
			  false);
	}

	for (b = 0; b < v.nr_blocks; b++) {
		if (dm_pd_sm_get_count(m->msm, b, &c)) {
			VERR(&v, "metadata count %llu unreadable\n",
			     (unsigned long long)b);
			break;
		}
		if (c != v.exp[b])
			VERR(&v, "metadata block %llu: count %u, expected %u\n",
			     (unsigned long long)b, c, v.exp[b]);
		nr_free += !c;
	}
	if (nr_free != v.nr_blocks - le64_to_cpu(mroot.nr_allocated))
		VERR(&v, "metadata nr_allocated %llu, counted %llu\n",
		     (unsigned long long)le64_to_cpu(mroot.nr_allocated),
		     (unsigned long long)(v.nr_blocks - nr_free));
	check_bitmaps(&v, "metadata", mi->index, nr_bitmaps, v.nr_blocks,
		      m->msm);

	nr_free = 0;
	for (b = 0; b < v.nr_data; b++) {
		if (dm_pd_sm_get_count(m->dsm, b, &c)) {
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
			.tm = m->tm, .levels = 1,
			.value_type = { .size = sizeof(struct pd_index_entry) },
		};

		if (dm_pd_btree_walk(&ii, le64_to_cpu(droot.bitmap_root),
				     collect_ie, &dc))
			VERR(&v, "data index unreadable\n");
		else
			check_bitmaps(&v, "data", dc.ie, nr_bitmaps, v.nr_data,
				      m->dsm);
	}
	kvfree(dc.ie);
out:
	dm_pd_bm_unlock(blk);
	kvfree(mi);
	kvfree(v.exp);
	kvfree(v.dexp);
	return v.errors;
}
