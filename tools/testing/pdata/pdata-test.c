// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit and randomized model tests of the persistent-data library, built in
 * userspace.  Usage: pdata-test [-s seed] [-o image] [test...]
 * With -o, the thin model test leaves its final metadata image there for
 * thin_check / thin_dump.  pdata-test -i in -o out instead opens thin
 * metadata written by the stock tools, changes it and writes it back.
 */
#include <unistd.h>
#include "thinlike.h"

static int failures;
static u64 rng_state = 1;
static const char *image_path;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			__LINE__, #cond); \
		failures++; \
		return; \
	} \
} while (0)

#define CHECK_R(expr) do { \
	int _r = (expr); \
	if (_r) { \
		fprintf(stderr, "%s:%d: %s returned %d\n", __FILE__, \
			__LINE__, #expr, _r); \
		failures++; \
		return; \
	} \
} while (0)

static u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static u64 rnd_below(u64 n)
{
	return n ? rnd() % n : 0;
}

/* ---- checksums ---- */

static void t_crc(void)
{
	u8 *zero = calloc(1, 4096);

	CHECK(crc32c(~0u, "123456789", 9) == 0x1CF96D7C);
	CHECK(le32_to_cpu(dm_pd_block_csum(zero, 4096, DM_PD_CSUM_XOR_NODE)) ==
	      0x58CC7E82);
	CHECK(le32_to_cpu(dm_pd_block_csum(zero, 4096, TL_SB_XOR)) ==
	      0x58CFD397);
	free(zero);
	CHECK(pd_max_entries(4) == 336 && pd_max_entries(8) == 252 &&
	      pd_max_entries(16) == 168 && pd_max_entries(24) == 126);
}

/* ---- format ---- */

static u32 raw_salt(struct block_device *bdev, u64 b)
{
	u8 *p = bdev->mem + b * 4096;
	u32 stored;

	memcpy(&stored, p, 4);
	return le32_to_cpu(stored) ^ crc32c(~0u, p + 4, 4092);
}

static void t_format(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct tl_meta m;
	struct pd_node *n;
	u32 c;

	CHECK_R(tl_format(&m, bdev, 20000));
	/* Canonical head: superblock, index, ref-count root, bitmap. */
	CHECK(raw_salt(bdev, 0) == TL_SB_XOR);
	CHECK(raw_salt(bdev, 1) == DM_PD_CSUM_XOR_INDEX);
	CHECK(raw_salt(bdev, 2) == DM_PD_CSUM_XOR_NODE);
	CHECK(raw_salt(bdev, 3) == DM_PD_CSUM_XOR_BITMAP);
	n = (struct pd_node *)(bdev->mem + 2 * 4096);
	CHECK(le32_to_cpu(n->header.max_entries) == 336 &&
	      le32_to_cpu(n->header.value_size) == 4 && pd_nr(n) == 0);
	CHECK_R(dm_pd_sm_get_count(m.msm, 0, &c));
	CHECK(c == 1);
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	CHECK_R(tl_open(&m, bdev));
	CHECK(tl_verify(&m, true) == 0);
	/* Writes go to free blocks, never block 0 before the commit. */
	CHECK_R(tl_create_thin(&m, 1));
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	pd_shim_bdev_destroy(bdev);
}

/* ---- one-level btree against an array model ---- */

#define BT_KEYS 30000

struct bt_model {
	bool present[BT_KEYS];
	u64 val[BT_KEYS];
};

struct walk_check {
	struct bt_model *model;
	u64 next;
	int bad;
};

static int walk_cb(void *ctx, const u64 *keys, const void *value)
{
	struct walk_check *w = ctx;

	while (w->next < BT_KEYS && !w->model->present[w->next])
		w->next++;
	if (keys[0] != w->next || get_unaligned_le64(value) !=
	    w->model->val[w->next])
		w->bad++;
	w->next++;
	return 0;
}

static int bt_compare(struct tl_meta *m, struct dm_pd_btree_info *info,
		      u64 root, struct bt_model *model)
{
	struct walk_check w = { .model = model };
	u64 k, hi[1], lo[1];
	int r, bad = 0, any = 0;

	r = dm_pd_btree_walk(info, root, walk_cb, &w);
	while (w.next < BT_KEYS && !model->present[w.next])
		w.next++;
	if (r || w.bad || w.next < BT_KEYS)
		return 1;
	for (k = 0; k < BT_KEYS; k++)
		any |= model->present[k];
	r = dm_pd_btree_find_highest_key(info, root, hi);
	if (!any)
		return r != -ENODATA;
	r |= dm_pd_btree_find_lowest_key(info, root, lo);
	if (r || !model->present[hi[0]] || !model->present[lo[0]])
		return 1;
	for (k = hi[0] + 1; k < BT_KEYS; k++)
		bad |= model->present[k];
	for (k = 0; k < lo[0]; k++)
		bad |= model->present[k];
	return bad;
}

static void t_btree_model(void)
{
	struct block_device *bdev = pd_shim_bdev_create(4096);
	struct bt_model *model = calloc(1, sizeof(*model));
	struct bt_model *committed = calloc(1, sizeof(*model));
	struct dm_pd_btree_info info;
	struct tl_meta m;
	u64 root, k, rk;
	__le64 v;
	int i, r, inserted;

	CHECK_R(tl_format(&m, bdev, 1000));
	info = (struct dm_pd_btree_info){ .tm = m.tm, .levels = 1,
					  .value_type = { .size = 8 } };
	CHECK_R(dm_pd_btree_empty(&info, &root));
	m.nr_extra = 1;
	m.extra[0] = (struct tl_extra){ .root = root, .levels = 1, .vs = 8 };
	CHECK_R(tl_commit(&m));

	for (i = 0; i < 30000; i++) {
		u64 op = rnd_below(100);

		/* Runs of neighbouring keys make the tree deep and dense. */
		k = (i / 3000) % 2 ? rnd_below(BT_KEYS) :
				     (i * 7 + rnd_below(50)) % BT_KEYS;
		if (op < 65) {
			u64 val = rnd();

			v = cpu_to_le64(val);
			CHECK_R(dm_pd_btree_insert_notify(&info, root, &k, &v,
							  &root, &inserted));
			CHECK(inserted == !model->present[k]);
			model->present[k] = true;
			model->val[k] = val;
		} else if (op < 95) {
			r = dm_pd_btree_remove(&info, root, &k, &root);
			CHECK(r == (model->present[k] ? 0 : -ENODATA));
			model->present[k] = false;
		} else if (op < 97) {
			u64 end = k + rnd_below(400);
			unsigned int n, expect = 0;

			for (rk = k; rk < end && rk < BT_KEYS; rk++) {
				expect += model->present[rk];
				model->present[rk] = false;
			}
			CHECK_R(dm_pd_btree_remove_leaves(&info, root, &k, end,
							  &root, &n));
			CHECK(n == expect);
		} else {
			r = dm_pd_btree_lookup_next(&info, root, &k, &rk, &v);
			while (k < BT_KEYS && !model->present[k])
				k++;
			if (k == BT_KEYS) {
				CHECK(r == -ENODATA);
			} else {
				CHECK(!r && rk == k &&
				      le64_to_cpu(v) == model->val[k]);
			}
		}
		k = rnd_below(BT_KEYS);
		r = dm_pd_btree_lookup(&info, root, &k, &v);
		CHECK(model->present[k] ? !r && le64_to_cpu(v) == model->val[k]
					: r == -ENODATA);

		if (i % 1000 == 999) {
			if (rnd_below(4) == 0) {
				CHECK_R(tl_abort(&m));
				info.tm = m.tm;
				root = m.extra[0].root;
				memcpy(model, committed, sizeof(*model));
				if (getenv("PDATA_VERBOSE"))
					fprintf(stderr, "abort\n");
			} else {
				m.extra[0].root = root;
				CHECK_R(tl_commit(&m));
				memcpy(committed, model, sizeof(*model));
			}
			if (getenv("PDATA_VERBOSE"))
				fprintf(stderr, "checkpoint %d root %llu\n", i,
					(unsigned long long)root);
			CHECK(tl_verify(&m, true) == 0);
			CHECK(bt_compare(&m, &info, root, model) == 0);
		}
	}
	/* Deleting the tree returns every block. */
	CHECK_R(dm_pd_btree_del(&info, root));
	m.nr_extra = 0;
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	free(model);
	free(committed);
	pd_shim_bdev_destroy(bdev);
}

/* ---- shared (snapshotted) one-level trees ---- */

static void t_btree_shared(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct dm_pd_btree_info info;
	struct tl_meta m;
	u64 a, b, k;
	__le64 v;
	int i;

	CHECK_R(tl_format(&m, bdev, 1000));
	info = (struct dm_pd_btree_info){ .tm = m.tm, .levels = 1,
					  .value_type = { .size = 8 } };
	CHECK_R(dm_pd_btree_empty(&info, &a));
	for (k = 0; k < 2000; k++) {
		v = cpu_to_le64(k);
		CHECK_R(dm_pd_btree_insert(&info, a, &k, &v, &a));
	}
	CHECK_R(dm_pd_tm_inc(m.tm, a));
	b = a;
	m.nr_extra = 2;
	m.extra[0] = (struct tl_extra){ .root = a, .levels = 1, .vs = 8 };
	m.extra[1] = m.extra[0];
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	for (i = 0; i < 500; i++) {
		k = rnd_below(2000);
		v = cpu_to_le64(k + 1000000);
		CHECK_R(dm_pd_btree_insert(&info, b, &k, &v, &b));
		k = rnd_below(2000);
		if (dm_pd_btree_remove(&info, b, &k, &b) == 0)
			k = 0;
	}
	for (k = 0; k < 2000; k++) {
		CHECK_R(dm_pd_btree_lookup(&info, a, &k, &v));
		CHECK(le64_to_cpu(v) == k);
	}
	m.extra[1].root = b;
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	CHECK_R(dm_pd_btree_del(&info, a));
	m.extra[0] = m.extra[1];
	m.nr_extra = 1;
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	pd_shim_bdev_destroy(bdev);
}

/* ---- thin-like model: devices, snapshots, data references ---- */

#define NDEV 6
#define NV 2500

struct thin_model {
	bool exists[NDEV];
	u64 map[NDEV][NV];	/* data block + 1, 0 when unmapped */
	bool held;
};

static int thin_compare(struct tl_meta *m, struct thin_model *tm)
{
	u64 d, vb, b;
	int r, bad = 0;
	__le64 v;

	for (d = 0; d < NDEV; d++) {
		r = dm_pd_btree_lookup(&m->tl_info, m->mapping_root, &d, &v);
		if (r != (tm->exists[d] ? 0 : -ENODATA))
			return 1;
		if (!tm->exists[d])
			continue;
		for (vb = 0; vb < NV; vb++) {
			r = tl_lookup(m, d, vb, &b);
			if (tm->map[d][vb] ? r || b + 1 != tm->map[d][vb]
					   : r != -ENODATA)
				bad++;
		}
	}
	return bad;
}

static void thin_model_run(u64 nr_meta, u64 nr_data, int ops, bool keep)
{
	struct block_device *bdev = pd_shim_bdev_create(nr_meta);
	struct thin_model *model = calloc(1, sizeof(*model));
	struct thin_model *committed = calloc(1, sizeof(*model));
	struct tl_meta m;
	u64 d, d2, vb, b;
	int i, r, commits = 0;

	CHECK_R(tl_format(&m, bdev, nr_data));
	for (i = 0; i < ops; i++) {
		u64 op = rnd_below(1000);

		d = rnd_below(NDEV);
		vb = rnd_below(20) ? (i / 10 * 37 + rnd_below(30)) % NV :
				     rnd_below(NV);
		if (!model->exists[d] || op < 10) {
			if (model->exists[d]) {
				CHECK_R(tl_delete(&m, d));
				model->exists[d] = false;
			} else {
				CHECK_R(tl_create_thin(&m, d));
				model->exists[d] = true;
				memset(model->map[d], 0, sizeof(model->map[d]));
			}
		} else if (op < 30) {
			d2 = rnd_below(NDEV);
			if (model->exists[d2])
				continue;
			CHECK_R(tl_snapshot(&m, d, d2));
			model->exists[d2] = true;
			memcpy(model->map[d2], model->map[d],
			       sizeof(model->map[d]));
		} else if (op < 40) {
			u64 end = vb + rnd_below(200);

			CHECK_R(tl_unmap_range(&m, d, vb, end));
			for (; vb < end && vb < NV; vb++)
				model->map[d][vb] = 0;
		} else if (op < 200) {
			r = tl_unmap(&m, d, vb);
			CHECK(r == (model->map[d][vb] ? 0 : -ENODATA));
			model->map[d][vb] = 0;
		} else if (op < 203) {
			if (model->held) {
				CHECK_R(tl_release_metadata_snap(&m));
				model->held = false;
			} else {
				/* Reserving commits the transaction. */
				CHECK_R(tl_reserve_metadata_snap(&m));
				model->held = true;
				memcpy(committed, model, sizeof(*model));
			}
		} else {
			r = tl_map(&m, d, vb, &b);
			if (r == -ENOSPC) {
				CHECK_R(tl_abort(&m));
				memcpy(model, committed, sizeof(*model));
				continue;
			}
			CHECK_R(r);
			model->map[d][vb] = b + 1;
		}
		if (i % 400 == 399 || i == ops - 1) {
			if (i != ops - 1 && rnd_below(5) == 0) {
				CHECK_R(tl_abort(&m));
				memcpy(model, committed, sizeof(*model));
			} else {
				CHECK_R(tl_commit(&m));
				memcpy(committed, model, sizeof(*model));
				commits++;
			}
			CHECK(tl_verify(&m, true) == 0);
			CHECK(thin_compare(&m, model) == 0);
		}
	}
	CHECK(commits > 0);
	tl_close(&m);
	if (keep && image_path) {
		FILE *f = fopen(image_path, "wb");

		CHECK(f);
		CHECK(fwrite(bdev->mem, 4096, bdev->nr_blocks, f) ==
		      bdev->nr_blocks);
		fclose(f);
	}
	free(model);
	free(committed);
	pd_shim_bdev_destroy(bdev);
}

static void t_thin_model(void)
{
	thin_model_run(2048, 40000, 12000, true);
}

/* Metadata space running out mid-transaction: abort and carry on. */
static void t_thin_enospc(void)
{
	thin_model_run(96, 40000, 3000, false);
}

/* ---- growing both space maps ---- */

static void t_extend(void)
{
	struct block_device *bdev = pd_shim_bdev_create(16000);
	struct tl_meta m;
	u64 b, nb, i;

	CHECK_R(tl_format(&m, bdev, 100));
	CHECK_R(tl_create_thin(&m, 0));
	CHECK_R(tl_commit(&m));
	for (i = 0; i < 100; i++)
		CHECK_R(tl_map(&m, 0, i * 3, &b));
	CHECK(tl_map(&m, 0, 1, &b) == -ENOSPC);
	CHECK_R(tl_abort(&m));
	CHECK_R(dm_pd_sm_extend(m.dsm, 40000));
	CHECK_R(pd_shim_bdev_resize(bdev, 40000));
	CHECK_R(dm_pd_sm_extend(m.msm, 24000));
	CHECK_R(dm_pd_sm_get_nr_blocks(m.msm, &nb));
	CHECK(nb == 40000);
	for (i = 0; i < 5000; i++)
		CHECK_R(tl_map(&m, 0, i, &b));
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	CHECK_R(tl_open(&m, bdev));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	pd_shim_bdev_destroy(bdev);
}

/* ---- arrays and bitsets ---- */

#define AV_MAX 4096
static int value_refs[AV_MAX];

static void av_inc(void *ctx, const void *value, unsigned int count)
{
	const __le64 *v = value;

	while (count--)
		value_refs[le64_to_cpu(*v++) % AV_MAX]++;
}

static void av_dec(void *ctx, const void *value, unsigned int count)
{
	const __le64 *v = value;

	while (count--)
		value_refs[le64_to_cpu(*v++) % AV_MAX]--;
}

struct array_walk {
	u64 *model;
	u64 n;
	int bad;
};

static int array_walk_cb(void *ctx, u64 index, const void *value)
{
	struct array_walk *w = ctx;

	if (index != w->n || get_unaligned_le64(value) != w->model[index])
		w->bad++;
	w->n++;
	return 0;
}

static int refs_match(u64 *model, u32 size, u64 *model2, u32 size2)
{
	static int want[AV_MAX];
	u32 i;

	memset(want, 0, sizeof(want));
	for (i = 0; i < size; i++)
		want[model[i] % AV_MAX]++;
	for (i = 0; model2 && i < size2; i++)
		want[model2[i] % AV_MAX]++;
	return memcmp(want, value_refs, sizeof(want)) == 0;
}

static void t_array(void)
{
	struct dm_pd_btree_value_type vt = {
		.size = 8, .inc = av_inc, .dec = av_dec,
	};
	struct block_device *bdev = pd_shim_bdev_create(4096);
	u64 *model = calloc(100000, 8), *copy = calloc(100000, 8);
	struct dm_pd_array_info ai;
	struct array_walk w;
	u32 size = 0, csize, i, j;
	struct tl_meta m;
	u64 root, croot;
	__le64 v;

	memset(value_refs, 0, sizeof(value_refs));
	CHECK_R(tl_format(&m, bdev, 100));
	dm_pd_array_info_init(&ai, m.tm, &vt);
	CHECK_R(dm_pd_array_empty(&ai, &root));
	for (i = 0; i < 40; i++) {
		u32 ns = rnd_below(i % 2 ? 3000 : 60000);
		u64 fill = rnd_below(AV_MAX);

		v = cpu_to_le64(fill);
		av_inc(NULL, &v, 1);	/* the caller's reference */
		CHECK_R(dm_pd_array_resize(&ai, root, size, ns, &v, &root));
		av_dec(NULL, &v, 1);
		for (j = size; j < ns; j++)
			model[j] = fill;
		size = ns;
		for (j = 0; j < 200 && size; j++) {
			u32 idx = rnd_below(size);
			u64 val = rnd_below(AV_MAX);

			v = cpu_to_le64(val);
			av_inc(NULL, &v, 1);
			CHECK_R(dm_pd_array_set_value(&ai, root, idx, &v,
						      &root));
			model[idx] = val;
			idx = rnd_below(size);
			CHECK_R(dm_pd_array_get_value(&ai, root, idx, &v));
			CHECK(le64_to_cpu(v) == model[idx]);
		}
		CHECK(refs_match(model, size, NULL, 0));
		if (size)
			CHECK(dm_pd_array_get_value(&ai, root, size, &v) ==
			      -ENODATA);
	}
	w = (struct array_walk){ .model = model };
	CHECK_R(dm_pd_array_walk(&ai, root, array_walk_cb, &w));
	CHECK(w.bad == 0 && w.n == size);

	/* A shared copy diverges without touching the original. */
	CHECK_R(dm_pd_tm_inc(m.tm, root));
	croot = root;
	csize = size;
	memcpy(copy, model, size * 8);
	for (j = 0; j < 300 && csize; j++) {
		u32 idx = rnd_below(csize);

		v = cpu_to_le64(rnd_below(AV_MAX));
		av_inc(NULL, &v, 1);
		CHECK_R(dm_pd_array_set_value(&ai, croot, idx, &v, &croot));
		copy[idx] = le64_to_cpu(v);
	}
	CHECK_R(dm_pd_array_resize(&ai, croot, csize, csize / 2, NULL,
				   &croot));
	csize /= 2;
	w = (struct array_walk){ .model = copy };
	CHECK_R(dm_pd_array_walk(&ai, croot, array_walk_cb, &w));
	CHECK(w.bad == 0 && w.n == csize);
	w = (struct array_walk){ .model = model };
	CHECK_R(dm_pd_array_walk(&ai, root, array_walk_cb, &w));
	CHECK(w.bad == 0 && w.n == size);
	m.nr_extra = 2;
	m.extra[0] = (struct tl_extra){ .root = root, .levels = 1,
					.is_array = true };
	m.extra[1] = (struct tl_extra){ .root = croot, .levels = 1,
					.is_array = true };
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	/* Blocks still shared hold their values once, for both arrays. */
	CHECK_R(dm_pd_array_del(&ai, root));
	CHECK(refs_match(copy, csize, NULL, 0));
	CHECK_R(dm_pd_array_del(&ai, croot));
	CHECK(refs_match(model, 0, NULL, 0));
	m.nr_extra = 0;
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	free(model);
	free(copy);
	pd_shim_bdev_destroy(bdev);
}

static void t_bitset(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	bool *model = calloc(200000, 1);
	struct dm_pd_bitset_info bi;
	u32 nbits = 0, ns, i, j;
	struct tl_meta m;
	bool def, bit;
	u64 root;

	CHECK_R(tl_format(&m, bdev, 100));
	dm_pd_bitset_info_init(&bi, m.tm);
	CHECK_R(dm_pd_bitset_empty(&bi, &root));
	for (i = 0; i < 30; i++) {
		ns = rnd_below(200000);
		def = rnd() & 1;
		CHECK_R(dm_pd_bitset_resize(&bi, root, nbits, ns, def, &root));
		for (j = nbits; j < ns; j++)
			model[j] = def;
		nbits = ns;
		for (j = 0; j < 300 && nbits; j++) {
			u32 b = rnd_below(nbits);

			if (rnd() & 1) {
				CHECK_R(dm_pd_bitset_set_bit(&bi, root, b,
							     &root));
				model[b] = true;
			} else {
				CHECK_R(dm_pd_bitset_clear_bit(&bi, root, b,
							       &root));
				model[b] = false;
			}
		}
		for (j = 0; j < nbits; j += 1 + rnd_below(50)) {
			CHECK_R(dm_pd_bitset_test_bit(&bi, root, j, &bit));
			CHECK(bit == model[j]);
		}
	}
	m.nr_extra = 1;
	m.extra[0] = (struct tl_extra){ .root = root, .levels = 1,
					.is_array = true };
	CHECK_R(tl_commit(&m));
	CHECK(tl_verify(&m, true) == 0);
	tl_close(&m);
	free(model);
	pd_shim_bdev_destroy(bdev);
}

/* ---- corrupt and unreadable blocks give errors, not crashes ---- */

static void t_corrupt(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct tl_meta m;
	u64 b, i, leaf;
	__le64 v;
	int r;

	CHECK_R(tl_format(&m, bdev, 1000));
	CHECK_R(tl_create_thin(&m, 3));
	for (i = 0; i < 10; i++)
		CHECK_R(tl_map(&m, 3, i, &b));
	CHECK_R(tl_commit(&m));
	i = 3;
	CHECK_R(dm_pd_btree_lookup(&m.tl_info, m.mapping_root, &i, &v));
	leaf = le64_to_cpu(v);
	tl_close(&m);

	pd_shim_quiet = 1;
	bdev->mem[leaf * 4096 + 100] ^= 1;
	CHECK_R(tl_open(&m, bdev));
	r = tl_lookup(&m, 3, 1, &b);
	CHECK(r == -EILSEQ);
	tl_close(&m);
	bdev->mem[leaf * 4096 + 100] ^= 1;

	bdev->fail_read_block = leaf;
	CHECK_R(tl_open(&m, bdev));
	CHECK(tl_lookup(&m, 3, 1, &b) == -EIO);
	CHECK(tl_map(&m, 3, 20, &b) == -EIO);
	tl_close(&m);
	bdev->fail_read_block = ~0ULL;

	/* A node copied to another location fails its location check. */
	memcpy(bdev->mem + 2000 * 4096, bdev->mem + leaf * 4096, 4096);
	CHECK_R(tl_open(&m, bdev));
	CHECK_R(tl_lookup(&m, 3, 1, &b));
	{
		struct dm_pd_block *blk;

		CHECK(dm_pd_bm_read_lock(m.bm, 2000,
					 &dm_pd_btree_node_validator, &blk) ==
		      -ENOTBLK);
	}
	tl_close(&m);
	pd_shim_quiet = 0;
	pd_shim_bdev_destroy(bdev);
}

/* ---- metadata written by the stock tools: read, change, write back ---- */

static int count_mapping(void *ctx, const u64 *keys, const void *value)
{
	(*(u64 *)ctx)++;
	return 0;
}

static int interop(const char *in, const char *out)
{
	struct block_device *bdev;
	struct tl_meta m;
	u64 n = 0, hi, b, i, expect[][3] = {
		{ 1, 0, 0 }, { 1, 599, 599 }, { 1, 1000, 700 },
		{ 1, 1001, 17000 }, { 2, 9, 9 }, { 7, 2, 2 },
	};
	long size;
	FILE *f;
	int r;

	f = fopen(in, "rb");
	if (!f || fseek(f, 0, SEEK_END))
		return 1;
	size = ftell(f);
	if (size < 4096)
		return 1;
	rewind(f);
	bdev = pd_shim_bdev_create(size / 4096);
	if (fread(bdev->mem, 4096, size / 4096, f) != (size_t)size / 4096)
		return 1;
	fclose(f);
	r = tl_open(&m, bdev);
	if (r)
		return r;
	r = dm_pd_btree_walk(&m.info, m.mapping_root, count_mapping, &n);
	printf("stock image: %llu mappings, time %u, transaction %llu\n",
	       (unsigned long long)n, m.time, (unsigned long long)m.trans_id);
	for (i = 0; !r && i < ARRAY_SIZE(expect); i++) {
		r = tl_lookup(&m, expect[i][0], expect[i][1], &b);
		if (!r && b != expect[i][2])
			r = -EILSEQ;
	}
	/* New device, new mappings, a snapshot, removals: then commit. */
	if (!r)
		r = dm_pd_btree_find_highest_key(&m.tl_info, m.mapping_root, &hi);
	if (!r)
		r = tl_create_thin(&m, hi + 1);
	for (i = 0; !r && i < 300; i++)
		r = tl_map(&m, hi + 1, i * 5, &b);
	if (!r)
		r = tl_snapshot(&m, 1, hi + 2);
	for (i = 0; !r && i < 50; i++)
		r = tl_map(&m, 1, i, &b);
	if (!r)
		r = tl_unmap_range(&m, 2, 0, 5);
	if (!r)
		r = tl_commit(&m);
	tl_close(&m);
	if (r)
		return r;
	f = fopen(out, "wb");
	if (!f || fwrite(bdev->mem, 4096, bdev->nr_blocks, f) != bdev->nr_blocks)
		return 1;
	fclose(f);
	pd_shim_bdev_destroy(bdev);
	printf("stock image: changed and written\n");
	return 0;
}

/* Lookups through a non-blocking clone use only what is cached. */
static void t_nonblocking(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct dm_pd_btree_info nb;
	struct dm_pd_tm *clone;
	u64 keys[2] = { 1, 7 }, b;
	struct tl_meta m;
	__le64 v;

	CHECK_R(tl_format(&m, bdev, 1000));
	CHECK_R(tl_create_thin(&m, 1));
	CHECK_R(tl_map(&m, 1, 7, &b));
	CHECK_R(tl_commit(&m));
	tl_close(&m);
	pd_shim_evict = false;
	CHECK_R(tl_open(&m, bdev));
	clone = dm_pd_tm_create_non_blocking_clone(m.tm);
	CHECK(clone);
	nb = m.info;
	nb.tm = clone;
	/* Nothing cached after the open: the clone must not read. */
	CHECK(dm_pd_btree_lookup(&nb, m.mapping_root, keys, &v) ==
	      -EWOULDBLOCK);
	CHECK_R(dm_pd_btree_lookup(&m.info, m.mapping_root, keys, &v));
	CHECK_R(dm_pd_btree_lookup(&nb, m.mapping_root, keys, &v));
	CHECK(le64_to_cpu(v) >> 24 == b);
	CHECK(dm_pd_btree_insert(&nb, m.mapping_root, keys, &v, &b) ==
	      -EWOULDBLOCK);
	dm_pd_tm_destroy(clone);
	tl_close(&m);
	pd_shim_evict = true;
	pd_shim_bdev_destroy(bdev);
}

struct test {
	const char *name;
	void (*fn)(void);
};

static const struct test tests[] = {
	{ "crc", t_crc },
	{ "format", t_format },
	{ "btree_model", t_btree_model },
	{ "btree_shared", t_btree_shared },
	{ "thin_model", t_thin_model },
	{ "thin_enospc", t_thin_enospc },
	{ "extend", t_extend },
	{ "array", t_array },
	{ "bitset", t_bitset },
	{ "corrupt", t_corrupt },
	{ "nonblocking", t_nonblocking },
};

int main(int argc, char **argv)
{
	u64 seed = 0x5eed;
	unsigned int i;
	int opt, ran = 0;

	const char *in = NULL;

	while ((opt = getopt(argc, argv, "s:o:i:")) != -1) {
		if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else if (opt == 'o')
			image_path = optarg;
		else if (opt == 'i')
			in = optarg;
		else
			return 2;
	}
	if (in)
		return image_path ? !!interop(in, image_path) : 2;
	printf("pdata-test: seed %llu\n", (unsigned long long)seed);
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		int before = failures, j;
		bool want = optind == argc;

		for (j = optind; j < argc; j++)
			want |= !strcmp(argv[j], tests[i].name);
		if (!want)
			continue;
		rng_state = seed * 2654435761u + i + 1;
		tests[i].fn();
		ran++;
		printf("%s %s\n", failures == before ? "PASS" : "FAIL",
		       tests[i].name);
	}
	printf("%d tests, %d failed\n", ran, failures);
	return failures ? 1 : 0;
}
