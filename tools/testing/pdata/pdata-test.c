// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit and randomized model tests of the persistent-data library and of
 * the thin-pool metadata (targets/thin/thin-metadata.c), built in
 * userspace.  Usage: pdata-test [-s seed] [-o image] [test...]
 * With -o, the thin model test leaves its final metadata image there for
 * thin_check / thin_dump (and the extend test image.resized).  pdata-test -i in -o out instead opens thin
 * metadata written by the stock tools, changes it and writes it back;
 * pdata-test -l image lists its mappings ("dev vblock dblock time", -L
 * opens it read-only) for comparison with thin_dump.
 */
#include <unistd.h>
#include "thin-md-test.h"

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
	CHECK(le32_to_cpu(dm_pd_block_csum(zero, 4096, TMT_SB_XOR)) ==
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

static struct thin_md *reopen(struct thin_md *m, struct block_device *bdev)
{
	thin_md_close(m);
	return thin_md_open(bdev, 128, false);
}

static void t_format(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct thin_md *m;
	struct pd_node *n;
	u64 v;
	u32 c;

	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	/* Canonical head: superblock, index, ref-count root, bitmap. */
	CHECK(raw_salt(bdev, 0) == TMT_SB_XOR);
	CHECK(raw_salt(bdev, 1) == DM_PD_CSUM_XOR_INDEX);
	CHECK(raw_salt(bdev, 2) == DM_PD_CSUM_XOR_NODE);
	CHECK(raw_salt(bdev, 3) == DM_PD_CSUM_XOR_BITMAP);
	n = (struct pd_node *)(bdev->mem + 2 * 4096);
	CHECK(le32_to_cpu(n->header.max_entries) == 336 &&
	      le32_to_cpu(n->header.value_size) == 4 && pd_nr(n) == 0);
	/* Superblock fields of a fresh format (§5.6). */
	CHECK(le32_to_cpu(*(__le32 *)(bdev->mem + 40)) == 2);
	CHECK(le32_to_cpu(*(__le32 *)(bdev->mem + 336)) == 128);
	CHECK(le32_to_cpu(*(__le32 *)(bdev->mem + 340)) == 8);
	CHECK(le64_to_cpu(*(__le64 *)(bdev->mem + 344)) == 2048);
	CHECK_R(dm_pd_sm_get_count(tmt_metadata_sm(m), 0, &c));
	CHECK(c == 1);
	CHECK_R(thin_md_get_data_dev_size(m, &v));
	CHECK(v == 0);
	CHECK_R(thin_md_get_metadata_dev_size(m, &v));
	CHECK(v == 2048);
	CHECK(thin_md_verify(m, true) == 0);
	m = reopen(m, bdev);
	CHECK(!IS_ERR(m));
	CHECK(thin_md_verify(m, true) == 0);
	CHECK_R(thin_md_create_thin(m, 1));
	CHECK(thin_md_changed(m));
	CHECK_R(thin_md_commit(m));
	CHECK(!thin_md_changed(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);

	/* A different block size is refused, and so is a read-only format. */
	pd_shim_quiet = 1;
	CHECK(PTR_ERR(thin_md_open(bdev, 256, false)) == -EINVAL);
	memset(bdev->mem, 0, 4096);
	CHECK(IS_ERR(thin_md_open(bdev, 128, true)));
	pd_shim_quiet = 0;
	pd_shim_bdev_destroy(bdev);
}

/* Rewrite a superblock field and re-seal the checksum. */
static void poke_sb32(struct block_device *bdev, unsigned int offset, u32 v)
{
	__le32 csum;

	*(__le32 *)(bdev->mem + offset) = cpu_to_le32(v);
	csum = dm_pd_block_csum(bdev->mem, 4096, TMT_SB_XOR);
	memcpy(bdev->mem, &csum, 4);
}

static void t_features(void)
{
	struct block_device *bdev = pd_shim_bdev_create(1024);
	struct thin_md *m = tmt_format(bdev, 100);

	CHECK(!IS_ERR(m));
	thin_md_close(m);
	pd_shim_quiet = 1;
	poke_sb32(bdev, 360, 1);	/* incompat */
	CHECK(PTR_ERR(thin_md_open(bdev, 128, true)) == -EINVAL);
	CHECK(PTR_ERR(thin_md_open(bdev, 128, false)) == -EINVAL);
	poke_sb32(bdev, 360, 0);
	poke_sb32(bdev, 356, 4);	/* compat_ro: read-only is fine */
	CHECK(PTR_ERR(thin_md_open(bdev, 128, false)) == -EINVAL);
	m = thin_md_open(bdev, 128, true);
	CHECK(!IS_ERR(m));
	CHECK(thin_md_create_thin(m, 1) == -EPERM);
	thin_md_close(m);
	poke_sb32(bdev, 356, 0);
	poke_sb32(bdev, 352, 8);	/* compat: ignored */
	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_create_thin(m, 1));
	thin_md_close(m);
	/* The commit kept the field it does not own. */
	CHECK(le32_to_cpu(*(__le32 *)(bdev->mem + 352)) == 8);
	/* A non-zero block 0 that does not validate is never formatted. */
	bdev->mem[1000] ^= 1;
	CHECK(IS_ERR(thin_md_open(bdev, 128, false)));
	CHECK(bdev->mem[1000]);
	pd_shim_quiet = 0;
	pd_shim_bdev_destroy(bdev);
}

/* ---- the thin-metadata interface, function by function ---- */

static int threshold_calls;

static void threshold_cb(void *context)
{
	threshold_calls += *(int *)context;
}

static void t_api(void)
{
	struct block_device *bdev = pd_shim_bdev_create(1024);
	struct thin_md *m = tmt_format(bdev, 100);
	struct thin_md_dev *td, *td2, *snap;
	struct thin_md_lookup lk;
	u64 v, b, vb, ve, db, held;
	bool shared, found;
	int one = 1;

	CHECK(!IS_ERR(m));
	pd_shim_quiet = 1;
	/* devices */
	CHECK(thin_md_open_dev(m, 5, &td) == -ENODATA);
	CHECK_R(thin_md_create_thin(m, 5));
	CHECK(thin_md_create_thin(m, 5) == -EEXIST);
	CHECK(thin_md_create_thin(m, THIN_MD_MAX_DEV_ID + 1) == -EINVAL);
	CHECK(thin_md_create_snap(m, 6, 9) == -ENODATA);
	CHECK(thin_md_create_snap(m, 5, 5) == -EEXIST);
	CHECK(thin_md_delete_thin(m, 9) == -ENODATA);
	CHECK_R(thin_md_open_dev(m, 5, &td));
	CHECK_R(thin_md_open_dev(m, 5, &td2));
	CHECK(td == td2 && thin_md_dev_id(td) == 5);
	thin_md_close_dev(td2);
	CHECK(thin_md_delete_thin(m, 5) == -EBUSY);
	CHECK(!thin_md_dev_changed(td));
	CHECK_R(thin_md_get_highest_mapped(td, &found, &v));
	CHECK(!found);
	CHECK(thin_md_find_mapped_range(td, 0, 100, &vb, &ve, &db, &shared) ==
	      -ENODATA);

	/* mappings */
	CHECK_R(tmt_map(td, 10, &b));
	CHECK(thin_md_dev_changed(td));
	CHECK_R(thin_md_find_block(td, 10, true, &lk));
	CHECK(lk.dblock == b && !lk.shared);
	CHECK(thin_md_find_block(td, 11, true, &lk) == -ENODATA);
	CHECK_R(thin_md_insert_block(td, 11, b + 1));
	CHECK_R(thin_md_inc_data_range(m, b + 1, b + 2));
	CHECK_R(thin_md_insert_block(td, 12, b + 3));
	CHECK_R(thin_md_inc_data_range(m, b + 3, b + 4));
	CHECK_R(thin_md_find_mapped_range(td, 0, 100, &vb, &ve, &db, &shared));
	CHECK(vb == 10 && ve == 12 && db == b && !shared);
	CHECK_R(thin_md_find_mapped_range(td, 11, 12, &vb, &ve, &db, &shared));
	CHECK(vb == 11 && ve == 12 && db == b + 1);
	CHECK_R(thin_md_get_mapped_count(td, &v));
	CHECK(v == 3);
	CHECK_R(thin_md_get_highest_mapped(td, &found, &v));
	CHECK(found && v == 12);
	CHECK(thin_md_remove_block(td, 13) == -ENODATA);
	CHECK_R(thin_md_remove_block(td, 12));
	CHECK_R(thin_md_get_free_data_blocks(m, &v));
	CHECK(v == 98);
	CHECK_R(thin_md_get_data_dev_size(m, &v));
	CHECK(v == 100);
	CHECK_R(thin_md_commit(m));
	CHECK(!thin_md_dev_changed(td));
	CHECK(thin_md_verify(m, true) == 0);

	/* snapshots share the origin's mappings */
	CHECK_R(thin_md_create_snap(m, 7, 5));
	CHECK_R(thin_md_find_block(td, 10, true, &lk));
	CHECK(lk.shared);
	CHECK_R(thin_md_data_block_is_shared(m, b, &shared));
	CHECK(!shared);		/* counted once: the subtree is shared */
	CHECK_R(thin_md_open_dev(m, 7, &snap));
	CHECK_R(thin_md_get_mapped_count(snap, &v));
	CHECK(v == 2);
	CHECK_R(tmt_map(snap, 10, &db));
	CHECK_R(thin_md_find_block(snap, 10, true, &lk));
	CHECK(lk.dblock == db && !lk.shared);
	CHECK_R(thin_md_find_block(snap, 11, true, &lk));
	CHECK(lk.dblock == b + 1 && lk.shared);
	CHECK_R(thin_md_data_block_is_shared(m, b + 1, &shared));
	CHECK(shared);
	CHECK_R(thin_md_remove_range(snap, 0, 1000));
	CHECK_R(thin_md_get_mapped_count(snap, &v));
	CHECK(v == 0);
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close_dev(snap);
	CHECK_R(thin_md_delete_thin(m, 7));

	/* transaction id */
	CHECK_R(thin_md_get_transaction_id(m, &v));
	CHECK(v == 0);
	CHECK(thin_md_set_transaction_id(m, 1, 2) == -EINVAL);
	CHECK_R(thin_md_set_transaction_id(m, 0, 42));
	CHECK_R(thin_md_get_transaction_id(m, &v));
	CHECK(v == 42);

	/* metadata snapshot */
	CHECK(thin_md_release_metadata_snap(m) == -EINVAL);
	CHECK_R(thin_md_get_metadata_snap(m, &held));
	CHECK(held == 0);
	CHECK_R(thin_md_reserve_metadata_snap(m));
	CHECK(thin_md_reserve_metadata_snap(m) == -EBUSY);
	CHECK_R(thin_md_get_metadata_snap(m, &held));
	CHECK(held != 0);
	CHECK(le64_to_cpu(*(__le64 *)(bdev->mem + 56)) == held);
	CHECK(thin_md_verify(m, true) == 0);
	CHECK_R(thin_md_release_metadata_snap(m));
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);

	/* abort forgets, and tells the devices that lost changes */
	CHECK_R(tmt_map(td, 50, &b));
	CHECK_R(thin_md_set_transaction_id(m, 42, 43));
	CHECK_R(thin_md_abort(m));
	CHECK(thin_md_dev_aborted_with_changes(td));
	CHECK(thin_md_find_block(td, 50, true, &lk) == -ENODATA);
	CHECK_R(thin_md_get_transaction_id(m, &v));
	CHECK(v == 42);
	CHECK_R(thin_md_get_mapped_count(td, &v));
	CHECK(v == 2);
	/* A failed message rolls back alone: what came before it stays. */
	CHECK_R(tmt_map(td, 60, &b));
	CHECK(thin_md_create_snap(m, 9, 77) == -ENODATA);
	CHECK(!thin_md_changed(m));
	CHECK_R(thin_md_find_block(td, 60, true, &lk));
	CHECK(lk.dblock == b);
	CHECK_R(thin_md_get_mapped_count(td, &v));
	CHECK(v == 3);
	/* A device created and opened, then aborted, is gone. */
	CHECK_R(thin_md_create_thin(m, 8));
	CHECK_R(thin_md_open_dev(m, 8, &td2));
	CHECK_R(thin_md_abort(m));
	CHECK(thin_md_insert_block(td2, 0, 0) == -ENODATA);
	CHECK(thin_md_find_block(td2, 0, true, &lk) == -ENODATA);
	/* Created again, it is a new device; the stale handle stays gone. */
	CHECK_R(thin_md_create_thin(m, 8));
	CHECK_R(thin_md_open_dev(m, 8, &snap));
	CHECK(snap != td2);
	CHECK_R(tmt_map(snap, 4, &b));
	CHECK(thin_md_find_block(td2, 4, true, &lk) == -ENODATA);
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_delete_thin(m, 8) == -EBUSY);
	thin_md_close_dev(snap);
	CHECK_R(thin_md_delete_thin(m, 8));
	thin_md_close_dev(td2);
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);

	/* space: data ENOSPC, grow only */
	while (!thin_md_alloc_data_block(m, &b))
		;
	CHECK(thin_md_alloc_data_block(m, &b) == -ENOSPC);
	CHECK_R(thin_md_abort(m));
	CHECK(thin_md_resize_data_dev(m, 50) == -EINVAL);
	CHECK_R(thin_md_resize_data_dev(m, 100));
	CHECK_R(thin_md_resize_data_dev(m, 20000));
	CHECK_R(thin_md_get_data_dev_size(m, &v));
	CHECK(v == 20000);
	CHECK(thin_md_resize_metadata_dev(m, 2048) == -EINVAL);
	CHECK_R(pd_shim_bdev_resize(bdev, 2048));
	CHECK(thin_md_resize_metadata_dev(m, 1000) == -EINVAL);
	CHECK_R(thin_md_resize_metadata_dev(m, 2048));
	CHECK_R(thin_md_get_metadata_dev_size(m, &v));
	CHECK(v == 2048);
	/* A tenth of the device is held back (at most 4096 blocks). */
	CHECK_R(thin_md_get_free_metadata_blocks(m, &v));
	{
		u64 raw;

		CHECK_R(dm_pd_sm_get_nr_free(tmt_metadata_sm(m), &raw));
		CHECK(v == raw - 204);
	}
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);

	/* the low-metadata callback: once per registration, from a commit */
	threshold_calls = 0;
	thin_md_register_metadata_threshold(m, 10, threshold_cb, &one);
	CHECK_R(thin_md_commit(m));
	CHECK(threshold_calls == 0);
	thin_md_register_metadata_threshold(m, 5000, threshold_cb, &one);
	CHECK(threshold_calls == 0);
	CHECK_R(thin_md_create_thin(m, 3));
	CHECK_R(thin_md_commit(m));
	CHECK(threshold_calls == 1);
	CHECK_R(thin_md_create_thin(m, 4));
	CHECK_R(thin_md_commit(m));
	CHECK(threshold_calls == 1);

	/* read-only: changes refused, lookups work */
	thin_md_set_read_only(m);
	CHECK(thin_md_create_thin(m, 9) == -EPERM);
	CHECK(thin_md_insert_block(td, 0, 0) == -EPERM);
	CHECK(thin_md_alloc_data_block(m, &b) == -EPERM);
	CHECK_R(thin_md_find_block(td, 10, true, &lk));
	CHECK(!thin_md_needs_check(m));
	CHECK_R(thin_md_set_needs_check(m));
	CHECK(thin_md_needs_check(m));
	CHECK(le32_to_cpu(*(__le32 *)(bdev->mem + 4)) == 1);
	thin_md_set_read_write(m);
	CHECK_R(thin_md_create_thin(m, 9));
	thin_md_close_dev(td);
	m = reopen(m, bdev);
	CHECK(!IS_ERR(m));
	CHECK(thin_md_needs_check(m));
	CHECK_R(thin_md_open_dev(m, 9, &td));
	thin_md_close_dev(td);
	CHECK(thin_md_verify(m, true) == 0);

	/* fail mode: an abort that cannot reread the superblock */
	bdev->fail_read_block = 0;
	CHECK(thin_md_abort(m) != 0);
	bdev->fail_read_block = ~0ULL;
	CHECK(thin_md_abort(m) == -EINVAL);
	CHECK(thin_md_create_thin(m, 11) == -EINVAL);
	CHECK(thin_md_get_transaction_id(m, &v) == -EINVAL);
	CHECK(thin_md_open_dev(m, 9, &td) == -EINVAL);
	thin_md_close(m);
	pd_shim_quiet = 0;
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

static int bt_compare(struct dm_pd_btree_info *info,
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
	struct thin_md *m;
	u64 root, k, rk;
	__le64 v;
	int i, r, inserted;

	m = tmt_format(bdev, 1000);
	CHECK(!IS_ERR(m));
	info = (struct dm_pd_btree_info){ .tm = tmt_tm(m), .levels = 1,
					  .value_type = { .size = 8 } };
	CHECK_R(dm_pd_btree_empty(&info, &root));
	tmt_nr_extra = 1;
	tmt_extra[0] = (struct tmt_extra){ .root = root, .vs = 8 };
	CHECK_R(tmt_commit(m));

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
				CHECK_R(thin_md_abort(m));
				info.tm = tmt_tm(m);
				root = tmt_extra[0].root;
				memcpy(model, committed, sizeof(*model));
				if (getenv("PDATA_VERBOSE"))
					fprintf(stderr, "abort\n");
			} else {
				tmt_extra[0].root = root;
				CHECK_R(tmt_commit(m));
				memcpy(committed, model, sizeof(*model));
			}
			if (getenv("PDATA_VERBOSE"))
				fprintf(stderr, "checkpoint %d root %llu\n", i,
					(unsigned long long)root);
			CHECK(thin_md_verify(m, true) == 0);
			CHECK(bt_compare(&info, root, model) == 0);
		}
	}
	/* Deleting the tree returns every block. */
	CHECK_R(dm_pd_btree_del(&info, root));
	tmt_nr_extra = 0;
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);
	free(model);
	free(committed);
	pd_shim_bdev_destroy(bdev);
}

/* ---- shared (snapshotted) one-level trees ---- */

static void t_btree_shared(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct dm_pd_btree_info info;
	struct thin_md *m;
	u64 a, b, k;
	__le64 v;
	int i;

	m = tmt_format(bdev, 1000);
	CHECK(!IS_ERR(m));
	info = (struct dm_pd_btree_info){ .tm = tmt_tm(m), .levels = 1,
					  .value_type = { .size = 8 } };
	CHECK_R(dm_pd_btree_empty(&info, &a));
	for (k = 0; k < 2000; k++) {
		v = cpu_to_le64(k);
		CHECK_R(dm_pd_btree_insert(&info, a, &k, &v, &a));
	}
	CHECK_R(dm_pd_tm_inc(tmt_tm(m), a));
	b = a;
	tmt_nr_extra = 2;
	tmt_extra[0] = (struct tmt_extra){ .root = a, .vs = 8 };
	tmt_extra[1] = tmt_extra[0];
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
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
	tmt_extra[1].root = b;
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	CHECK_R(dm_pd_btree_del(&info, a));
	tmt_extra[0] = tmt_extra[1];
	tmt_nr_extra = 1;
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);
	pd_shim_bdev_destroy(bdev);
}

/* ---- thin model: devices, snapshots, data references, sharing ---- */

#define NDEV 6
#define NV 2500

struct thin_model {
	bool exists[NDEV];
	u64 map[NDEV][NV];	/* data block + 1, 0 when unmapped */
	u32 mtime[NDEV][NV];	/* time of the mapping */
	u32 snap_time[NDEV];
	u32 time;
	bool held;
};

struct thin_run {
	struct thin_md *m;
	struct thin_md_dev *td[NDEV];
};

static int thin_compare(struct thin_run *run, struct thin_model *tm)
{
	struct thin_md_lookup lk;
	u64 d, vb, n, hi, vbegin, vend, db;
	int r, bad = 0;
	bool found, shared;

	for (d = 0; d < NDEV; d++) {
		struct thin_md_dev *td = run->td[d];

		if (!tm->exists[d]) {
			bad += tmt_subtree_root(run->m, d, &n) != -ENODATA;
			continue;
		}
		n = 0;
		hi = 0;
		for (vb = 0; vb < NV; vb++) {
			r = thin_md_find_block(td, vb, true, &lk);
			if (!tm->map[d][vb]) {
				bad += r != -ENODATA;
				continue;
			}
			n++;
			hi = vb;
			if (r || lk.dblock + 1 != tm->map[d][vb] ||
			    lk.shared != (tm->snap_time[d] > tm->mtime[d][vb]))
				bad++;
		}
		bad += thin_md_get_mapped_count(td, &vb) || vb != n;
		r = thin_md_get_highest_mapped(td, &found, &vb);
		bad += r || found != !!n || (n && vb != hi);
		/* One range query against the model. */
		vb = rnd_below(NV);
		r = thin_md_find_mapped_range(td, vb, NV, &vbegin, &vend, &db,
					      &shared);
		while (vb < NV && !tm->map[d][vb])
			vb++;
		if (vb == NV) {
			bad += r != -ENODATA;
			continue;
		}
		if (r || vbegin != vb || db + 1 != tm->map[d][vb]) {
			bad++;
			continue;
		}
		for (n = vb + 1; n < NV && tm->map[d][n] &&
		     tm->map[d][n] == tm->map[d][vb] + (n - vb) &&
		     (tm->snap_time[d] > tm->mtime[d][n]) == shared; n++)
			;
		bad += vend != n;
	}
	return bad;
}

/* After an abort: open exactly the devices that exist. */
static int reopen_devs(struct thin_run *run, struct thin_model *tm)
{
	int d, r;

	for (d = 0; d < NDEV; d++) {
		if (run->td[d])
			thin_md_close_dev(run->td[d]);
		run->td[d] = NULL;
		if (!tm->exists[d])
			continue;
		r = thin_md_open_dev(run->m, d, &run->td[d]);
		if (r)
			return r;
	}
	return 0;
}

static void thin_model_run(u64 nr_meta, u64 nr_data, int ops, bool keep)
{
	struct block_device *bdev = pd_shim_bdev_create(nr_meta);
	struct thin_model *model = calloc(1, sizeof(*model));
	struct thin_model *committed = calloc(1, sizeof(*model));
	struct thin_run run = { 0 };
	u64 d, d2, vb, b;
	int i, r, commits = 0;

	run.m = tmt_format(bdev, nr_data);
	CHECK(!IS_ERR(run.m));
	for (i = 0; i < ops; i++) {
		u64 op = rnd_below(1000);

		d = rnd_below(NDEV);
		vb = rnd_below(20) ? (i / 10 * 37 + rnd_below(30)) % NV :
				     rnd_below(NV);
		if (!model->exists[d] && op >= 600) {
			continue;
		} else if (!model->exists[d] && op >= 300) {
			/* A message commits what came before it. */
			memcpy(committed, model, sizeof(*model));
			CHECK_R(thin_md_create_thin(run.m, d));
			CHECK_R(thin_md_open_dev(run.m, d, &run.td[d]));
			model->exists[d] = true;
			model->snap_time[d] = model->time;
			memset(model->map[d], 0, sizeof(model->map[d]));
		} else if (op < 20 && model->exists[d]) {
			thin_md_close_dev(run.td[d]);
			run.td[d] = NULL;
			memcpy(committed, model, sizeof(*model));
			CHECK_R(thin_md_delete_thin(run.m, d));
			model->exists[d] = false;
		} else if (!model->exists[d]) {
			/* A snapshot of some existing device becomes d. */
			d2 = d;
			d = rnd_below(NDEV);
			if (!model->exists[d])
				continue;
			memcpy(committed, model, sizeof(*model));
			CHECK_R(thin_md_create_snap(run.m, d2, d));
			model->exists[d2] = true;
			model->time++;
			model->snap_time[d] = model->time;
			model->snap_time[d2] = model->time;
			memcpy(model->map[d2], model->map[d],
			       sizeof(model->map[d]));
			memcpy(model->mtime[d2], model->mtime[d],
			       sizeof(model->mtime[d]));
			CHECK_R(thin_md_open_dev(run.m, d2, &run.td[d2]));
		} else if (op < 40) {
			u64 end = vb + rnd_below(200);

			CHECK_R(thin_md_remove_range(run.td[d], vb, end));
			for (; vb < end && vb < NV; vb++)
				model->map[d][vb] = 0;
		} else if (op < 45) {
			/* Closing writes the pending details of a device. */
			thin_md_close_dev(run.td[d]);
			CHECK_R(thin_md_open_dev(run.m, d, &run.td[d]));
		} else if (op < 200) {
			r = thin_md_remove_block(run.td[d], vb);
			CHECK(r == (model->map[d][vb] ? 0 : -ENODATA));
			model->map[d][vb] = 0;
		} else if (op < 203) {
			if (model->held) {
				memcpy(committed, model, sizeof(*model));
				CHECK_R(thin_md_release_metadata_snap(run.m));
				model->held = false;
			} else {
				/* Reserving commits the transaction. */
				CHECK_R(thin_md_reserve_metadata_snap(run.m));
				model->held = true;
				memcpy(committed, model, sizeof(*model));
			}
		} else {
			r = tmt_map(run.td[d], vb, &b);
			if (r == -ENOSPC) {
				CHECK_R(thin_md_abort(run.m));
				memcpy(model, committed, sizeof(*model));
				CHECK_R(reopen_devs(&run, model));
				continue;
			}
			CHECK_R(r);
			model->map[d][vb] = b + 1;
			model->mtime[d][vb] = model->time;
		}
		if (i % 400 == 399 || i == ops - 1) {
			if (i != ops - 1 && rnd_below(5) == 0) {
				CHECK_R(thin_md_abort(run.m));
				memcpy(model, committed, sizeof(*model));
				CHECK_R(reopen_devs(&run, model));
			} else {
				CHECK_R(thin_md_commit(run.m));
				memcpy(committed, model, sizeof(*model));
				commits++;
			}
			CHECK(tmt_time(run.m) == model->time);
			CHECK(thin_md_verify(run.m, true) == 0);
			CHECK(thin_compare(&run, model) == 0);
		}
	}
	CHECK(commits > 0);
	for (d = 0; d < NDEV; d++)
		if (run.td[d])
			thin_md_close_dev(run.td[d]);
	thin_md_close(run.m);
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
	struct thin_md *m = tmt_format(bdev, 100);
	struct thin_md_dev *td;
	u64 b, nb, i;

	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_create_thin(m, 0));
	CHECK_R(thin_md_commit(m));
	CHECK_R(thin_md_open_dev(m, 0, &td));
	for (i = 0; i < 100; i++)
		CHECK_R(tmt_map(td, i * 3, &b));
	CHECK(tmt_map(td, 1, &b) == -ENOSPC);
	CHECK_R(thin_md_abort(m));
	CHECK_R(thin_md_resize_data_dev(m, 40100));
	CHECK_R(pd_shim_bdev_resize(bdev, 40000));
	CHECK_R(thin_md_resize_metadata_dev(m, 40000));
	CHECK_R(thin_md_get_metadata_dev_size(m, &nb));
	CHECK(nb == 40000);
	for (i = 0; i < 5000; i++)
		CHECK_R(tmt_map(td, i, &b));
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close_dev(td);
	m = reopen(m, bdev);
	CHECK(!IS_ERR(m));
	CHECK(thin_md_verify(m, true) == 0);
	CHECK_R(thin_md_get_data_dev_size(m, &nb));
	CHECK(nb == 40100);
	thin_md_close(m);
	if (image_path) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s.resized", image_path);
		f = fopen(path, "wb");
		CHECK(f);
		CHECK(fwrite(bdev->mem, 4096, bdev->nr_blocks, f) ==
		      bdev->nr_blocks);
		fclose(f);
	}
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
	struct thin_md *m;
	u64 root, croot;
	__le64 v;

	memset(value_refs, 0, sizeof(value_refs));
	m = tmt_format(bdev, 100);
	CHECK(!IS_ERR(m));
	dm_pd_array_info_init(&ai, tmt_tm(m), &vt);
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
	CHECK_R(dm_pd_tm_inc(tmt_tm(m), root));
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
	tmt_nr_extra = 2;
	tmt_extra[0] = (struct tmt_extra){ .root = root, .is_array = true };
	tmt_extra[1] = (struct tmt_extra){ .root = croot, .is_array = true };
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	/* Blocks still shared hold their values once, for both arrays. */
	CHECK_R(dm_pd_array_del(&ai, root));
	CHECK(refs_match(copy, csize, NULL, 0));
	CHECK_R(dm_pd_array_del(&ai, croot));
	CHECK(refs_match(model, 0, NULL, 0));
	tmt_nr_extra = 0;
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);
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
	struct thin_md *m;
	bool def, bit;
	u64 root;

	m = tmt_format(bdev, 100);
	CHECK(!IS_ERR(m));
	dm_pd_bitset_info_init(&bi, tmt_tm(m));
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
	tmt_nr_extra = 1;
	tmt_extra[0] = (struct tmt_extra){ .root = root, .is_array = true };
	CHECK_R(tmt_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);
	free(model);
	pd_shim_bdev_destroy(bdev);
}

/* ---- corrupt and unreadable blocks give errors, not crashes ---- */

static void t_corrupt(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct thin_md *m = tmt_format(bdev, 1000);
	struct thin_md_lookup lk;
	struct thin_md_dev *td;
	u64 b, i, leaf;

	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_create_thin(m, 3));
	CHECK_R(thin_md_open_dev(m, 3, &td));
	for (i = 0; i < 10; i++)
		CHECK_R(tmt_map(td, i, &b));
	thin_md_close_dev(td);
	CHECK_R(thin_md_commit(m));
	CHECK_R(tmt_subtree_root(m, 3, &leaf));
	thin_md_close(m);

	pd_shim_quiet = 1;
	bdev->mem[leaf * 4096 + 100] ^= 1;
	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_open_dev(m, 3, &td));
	CHECK(thin_md_find_block(td, 1, true, &lk) == -EILSEQ);
	thin_md_close_dev(td);
	thin_md_close(m);
	bdev->mem[leaf * 4096 + 100] ^= 1;

	bdev->fail_read_block = leaf;
	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_open_dev(m, 3, &td));
	CHECK(thin_md_find_block(td, 1, true, &lk) == -EIO);
	CHECK(tmt_map(td, 20, &b) == -EIO);
	CHECK_R(thin_md_abort(m));
	thin_md_close_dev(td);
	thin_md_close(m);
	bdev->fail_read_block = ~0ULL;

	/* A node copied to another location fails its location check. */
	memcpy(bdev->mem + 2000 * 4096, bdev->mem + leaf * 4096, 4096);
	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_open_dev(m, 3, &td));
	CHECK_R(thin_md_find_block(td, 1, true, &lk));
	{
		struct dm_pd_block *blk;

		CHECK(dm_pd_bm_read_lock(tmt_bm(m), 2000,
					 &dm_pd_btree_node_validator, &blk) ==
		      -ENOTBLK);
	}
	thin_md_close_dev(td);
	thin_md_close(m);
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
	struct thin_md_dev *td, *td1, *td2;
	struct thin_md_lookup lk;
	struct thin_md *m;
	u64 n = 0, hi = 7, b, i, tid, expect[][4] = {
		{ 1, 0, 0, 1 }, { 1, 599, 599, 1 }, { 1, 1000, 700, 1 },
		{ 1, 1001, 17000, 0 }, { 2, 9, 9, 1 }, { 7, 2, 2, 0 },
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
	tmt_stock_counters = true;
	m = thin_md_open(bdev, 128, false);
	if (IS_ERR(m)) {
		pd_shim_bdev_destroy(bdev);
		return PTR_ERR(m);
	}
	r = dm_pd_btree_walk(tmt_mapping_info(m), tmt_mapping_root(m),
			     count_mapping, &n);
	if (!r)
		r = thin_md_get_transaction_id(m, &tid);
	printf("stock image: %llu mappings, time %u, transaction %llu\n",
	       (unsigned long long)n, tmt_time(m), (unsigned long long)tid);
	/* Sharing: dev 1 was snapshotted at time 2 in the sample. */
	for (i = 0; !r && i < ARRAY_SIZE(expect); i++) {
		r = thin_md_open_dev(m, expect[i][0], &td);
		if (r)
			break;
		r = thin_md_find_block(td, expect[i][1], true, &lk);
		if (!r && (lk.dblock != expect[i][2] ||
			   lk.shared != !!expect[i][3]))
			r = -EILSEQ;
		thin_md_close_dev(td);
	}
	/* New device, new mappings, a snapshot, removals: then commit. */
	if (!r)
		r = thin_md_create_thin(m, hi + 1);
	if (!r)
		r = thin_md_open_dev(m, hi + 1, &td);
	for (i = 0; !r && i < 300; i++)
		r = tmt_map(td, i * 5, &b);
	if (!r)
		thin_md_close_dev(td);
	if (!r)
		r = thin_md_create_snap(m, hi + 2, 1);
	if (!r)
		r = thin_md_open_dev(m, 1, &td1);
	for (i = 0; !r && i < 50; i++)
		r = tmt_map(td1, i, &b);
	if (!r)
		r = thin_md_open_dev(m, 2, &td2);
	if (!r)
		r = thin_md_remove_range(td2, 0, 5);
	if (!r)
		r = thin_md_set_transaction_id(m, tid, tid + 1);
	if (!r) {
		thin_md_close_dev(td1);
		thin_md_close_dev(td2);
		r = thin_md_commit(m);
	}
	if (!r)
		r = thin_md_verify(m, true) ? -EILSEQ : 0;
	thin_md_close(m);
	f = r ? NULL : fopen(out, "wb");
	if (f && fwrite(bdev->mem, 4096, bdev->nr_blocks, f) != bdev->nr_blocks)
		r = 1;
	if (f)
		fclose(f);
	pd_shim_bdev_destroy(bdev);
	if (r || !f)
		return r ? r : 1;
	printf("stock image: changed and written\n");
	return 0;
}

/* Lookups that may not block use only what is cached, and no lock wait. */
static void t_nonblocking(void)
{
	struct block_device *bdev = pd_shim_bdev_create(2048);
	struct thin_md *m = tmt_format(bdev, 1000);
	struct thin_md_lookup lk;
	struct thin_md_dev *td;
	u64 b;

	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_create_thin(m, 1));
	CHECK_R(thin_md_open_dev(m, 1, &td));
	CHECK_R(tmt_map(td, 7, &b));
	thin_md_close_dev(td);
	thin_md_close(m);
	pd_shim_evict = false;
	m = thin_md_open(bdev, 128, false);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_open_dev(m, 1, &td));
	/* Nothing cached after the open: the lookup must not read. */
	CHECK(thin_md_find_block(td, 7, false, &lk) == -EWOULDBLOCK);
	CHECK_R(thin_md_find_block(td, 7, true, &lk));
	CHECK_R(thin_md_find_block(td, 7, false, &lk));
	CHECK(lk.dblock == b);
	CHECK(thin_md_find_block(td, 8, false, &lk) == -ENODATA);
	/* The lock held elsewhere: no waiting either. */
	pd_shim_rwsem_busy = true;
	CHECK(thin_md_find_block(td, 7, false, &lk) == -EWOULDBLOCK);
	pd_shim_rwsem_busy = false;
	thin_md_close_dev(td);
	thin_md_close(m);
	pd_shim_evict = true;
	pd_shim_bdev_destroy(bdev);
}

/* ---- listing an image's mappings (compared with thin_dump's) ---- */

struct list_ctx {
	struct thin_md *m;
	int bad;
};

static int list_cb(void *context, const u64 *keys, const void *value)
{
	struct list_ctx *c = context;
	u64 v = get_unaligned_le64(value);
	struct thin_md_lookup lk;
	struct thin_md_dev *td;

	printf("%llu %llu %llu %llu\n", (unsigned long long)keys[0],
	       (unsigned long long)keys[1], (unsigned long long)(v >> 24),
	       (unsigned long long)(v & 0xffffff));
	/* The interface must agree with the raw walk. */
	if (thin_md_open_dev(c->m, keys[0], &td)) {
		c->bad++;
		return 0;
	}
	if (thin_md_find_block(td, keys[1], true, &lk) ||
	    lk.dblock != v >> 24)
		c->bad++;
	thin_md_close_dev(td);
	return 0;
}

static int list_mappings(const char *in, bool read_only)
{
	struct block_device *bdev;
	struct list_ctx c = { 0 };
	long size;
	FILE *f;
	int r;

	f = fopen(in, "rb");
	if (!f || fseek(f, 0, SEEK_END))
		return 1;
	size = ftell(f);
	rewind(f);
	bdev = pd_shim_bdev_create(size / 4096);
	if (fread(bdev->mem, 4096, size / 4096, f) != (size_t)size / 4096)
		return 1;
	fclose(f);
	/* It may come from thin_restore. */
	tmt_stock_counters = true;
	c.m = thin_md_open(bdev, 128, read_only);
	if (IS_ERR(c.m)) {
		pd_shim_bdev_destroy(bdev);
		return 1;
	}
	r = dm_pd_btree_walk(tmt_mapping_info(c.m), tmt_mapping_root(c.m),
			     list_cb, &c);
	if (!r && thin_md_verify(c.m, true))
		r = -EILSEQ;
	thin_md_close(c.m);
	pd_shim_bdev_destroy(bdev);
	if (c.bad)
		fprintf(stderr, "%d lookups disagree with the walk\n", c.bad);
	return r || c.bad;
}

/*
 * A metadata snapshot: thin_dump -m must show the state at the reserve
 * (dev 1 with 100 mappings, dev 2), the live metadata what came after.
 */
static void t_metasnap(void)
{
	struct block_device *bdev = pd_shim_bdev_create(1024);
	struct thin_md *m = tmt_format(bdev, 1000);
	struct thin_md_dev *td;
	u64 b, i;

	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_create_thin(m, 1));
	CHECK_R(thin_md_create_thin(m, 2));
	CHECK_R(thin_md_open_dev(m, 1, &td));
	for (i = 0; i < 100; i++)
		CHECK_R(tmt_map(td, i, &b));
	CHECK_R(thin_md_reserve_metadata_snap(m));
	for (i = 100; i < 150; i++)
		CHECK_R(tmt_map(td, i, &b));
	CHECK_R(thin_md_remove_range(td, 0, 10));
	thin_md_close_dev(td);
	CHECK_R(thin_md_delete_thin(m, 2));
	CHECK_R(thin_md_create_snap(m, 3, 1));
	CHECK_R(thin_md_commit(m));
	CHECK(thin_md_verify(m, true) == 0);
	thin_md_close(m);
	if (image_path) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s.metasnap", image_path);
		f = fopen(path, "wb");
		CHECK(f);
		CHECK(fwrite(bdev->mem, 4096, bdev->nr_blocks, f) ==
		      bdev->nr_blocks);
		fclose(f);
	}
	pd_shim_bdev_destroy(bdev);
}

/* A metadata device beyond the format's limit is used only up to it. */
static void t_capped(void)
{
	struct block_device *bdev = pd_shim_bdev_create(THIN_MD_MAX_BLOCKS + 64);
	struct thin_md *m;
	u64 v;

	CHECK(bdev);
	m = tmt_format(bdev, 10);
	CHECK(!IS_ERR(m));
	CHECK_R(thin_md_get_metadata_dev_size(m, &v));
	CHECK(v == THIN_MD_MAX_BLOCKS);
	CHECK(le64_to_cpu(*(__le64 *)(bdev->mem + 344)) == THIN_MD_MAX_BLOCKS);
	CHECK_R(thin_md_resize_metadata_dev(m, THIN_MD_MAX_BLOCKS + 64));
	CHECK_R(thin_md_get_metadata_dev_size(m, &v));
	CHECK(v == THIN_MD_MAX_BLOCKS);
	/* The reserve tops out at 4096 blocks. */
	CHECK_R(thin_md_get_free_metadata_blocks(m, &v));
	{
		u64 raw;

		CHECK_R(dm_pd_sm_get_nr_free(tmt_metadata_sm(m), &raw));
		CHECK(v == raw - 4096);
	}
	thin_md_close(m);
	pd_shim_bdev_destroy(bdev);
}

struct test {
	const char *name;
	void (*fn)(void);
};

static const struct test tests[] = {
	{ "crc", t_crc },
	{ "format", t_format },
	{ "features", t_features },
	{ "api", t_api },
	{ "btree_model", t_btree_model },
	{ "btree_shared", t_btree_shared },
	{ "thin_model", t_thin_model },
	{ "thin_enospc", t_thin_enospc },
	{ "extend", t_extend },
	{ "array", t_array },
	{ "bitset", t_bitset },
	{ "corrupt", t_corrupt },
	{ "nonblocking", t_nonblocking },
	{ "metasnap", t_metasnap },
	{ "capped", t_capped },
};

int main(int argc, char **argv)
{
	u64 seed = 0x5eed;
	unsigned int i;
	int opt, ran = 0;

	const char *in = NULL;

	while ((opt = getopt(argc, argv, "s:o:i:l:L:")) != -1) {
		if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else if (opt == 'o')
			image_path = optarg;
		else if (opt == 'i')
			in = optarg;
		else if (opt == 'l' || opt == 'L')
			return list_mappings(optarg, opt == 'L');
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
		tmt_nr_extra = 0;
		tests[i].fn();
		ran++;
		printf("%s %s\n", failures == before ? "PASS" : "FAIL",
		       tests[i].name);
	}
	printf("%d tests, %d failed\n", ran, failures);
	return failures ? 1 : 0;
}
