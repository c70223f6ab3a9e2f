// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seeded mutation fuzzer: builds a valid thin-pool metadata image, then for
 * each iteration corrupts a few of its blocks (optionally re-sealing the
 * checksum so the structural checks are reached) and runs the readers and
 * some writers over it.  Every failure must be an error return; ASan and
 * UBSan catch the rest.  Usage: pdata-fuzz [-n iterations] [-s seed]
 */
#include <unistd.h>
#include "thin-md-test.h"

#define NR_META 512

static u64 rng_state;

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

static const u32 salts[] = {
	TMT_SB_XOR, DM_PD_CSUM_XOR_NODE, DM_PD_CSUM_XOR_INDEX,
	DM_PD_CSUM_XOR_BITMAP, DM_PD_CSUM_XOR_ARRAY,
};

/* The salt a valid block was sealed with, or 0. */
static u32 block_salt(const u8 *p)
{
	u32 stored, raw = crc32c(~0u, p + 4, 4092);
	unsigned int i;

	memcpy(&stored, p, 4);
	for (i = 0; i < ARRAY_SIZE(salts); i++)
		if ((le32_to_cpu(stored) ^ raw) == salts[i])
			return salts[i];
	return 0;
}

static void reseal(u8 *p, u32 salt)
{
	__le32 c = dm_pd_block_csum(p, 4096, salt);

	memcpy(p, &c, 4);
}

static void mutate(u8 *p)
{
	unsigned int off;
	u64 v;

	switch (rnd_below(6)) {
	case 0:		/* bit flip */
		off = rnd_below(4096);
		p[off] ^= 1u << rnd_below(8);
		break;
	case 1:		/* random byte */
		p[rnd_below(4096)] = rnd();
		break;
	case 2:		/* header fields: flags, counts, value size */
		off = 4 + 4 * rnd_below(7);
		v = rnd_below(4) ? rnd_below(400) : rnd();
		memcpy(p + off, &v, 4);
		break;
	case 3:		/* a small block number in a key or value slot */
		off = 32 + 8 * rnd_below(500);
		v = rnd_below(300);
		memcpy(p + off, &v, 8);
		break;
	case 4:		/* swap two 8-byte words */
		{
			unsigned int a = 8 * rnd_below(512);
			unsigned int b = 8 * rnd_below(512);
			u64 x, y;

			memcpy(&x, p + a, 8);
			memcpy(&y, p + b, 8);
			memcpy(p + a, &y, 8);
			memcpy(p + b, &x, 8);
		}
		break;
	default:	/* zero a range */
		off = rnd_below(4096);
		memset(p + off, 0, min_t(u32, 4096 - off, rnd_below(64)));
		break;
	}
}

static int count_cb(void *ctx, const u64 *keys, const void *value)
{
	return ++*(u64 *)ctx > 100000;
}

static u64 nr_opened, nr_committed, nr_write_errors;

static void exercise(struct block_device *bdev)
{
	struct thin_md_dev *td[4] = { NULL };
	struct thin_md_lookup lk;
	struct dm_pd_btree_info *info;
	struct thin_md *m;
	u64 d, b, n = 0, keys[2], rk, e, db, root;
	bool shared, found;
	__le64 v;
	u32 c;

	m = thin_md_open(bdev, 128, false);
	if (IS_ERR(m))
		return;
	nr_opened++;
	info = tmt_mapping_info(m);
	dm_pd_btree_walk(info, tmt_mapping_root(m), count_cb, &n);
	for (d = 0; d < 4; d++) {
		keys[0] = d;
		keys[1] = rnd_below(3000);
		dm_pd_btree_lookup(info, tmt_mapping_root(m), keys, &v);
		dm_pd_btree_lookup_next(info, tmt_mapping_root(m), keys, &rk,
					&v);
		if (!tmt_subtree_root(m, d, &root))
			dm_pd_btree_walk(info, root, count_cb, &n);
		if (thin_md_open_dev(m, d, &td[d]))
			continue;
		thin_md_find_block(td[d], rnd_below(3000), true, &lk);
		thin_md_find_block(td[d], rnd_below(3000), false, &lk);
		thin_md_find_mapped_range(td[d], rnd_below(3000), 3000, &b, &e,
					  &db, &shared);
		thin_md_get_highest_mapped(td[d], &found, &b);
	}
	for (b = 0; b < 64; b++)
		dm_pd_sm_get_count(tmt_metadata_sm(m), rnd_below(NR_META), &c);
	/* The full recount reads everything: now and then. */
	if (!rnd_below(8))
		thin_md_verify(m, false);
	/* Writers must fail cleanly too. */
	for (d = 0; d < 20; d++) {
		u64 dev = rnd_below(4), vb = rnd_below(3000);
		int r;

		if (!td[dev])
			continue;
		r = rnd_below(3) ? tmt_map(td[dev], vb, &b) :
				   thin_md_remove_block(td[dev], vb);
		nr_write_errors += r && r != -ENODATA;
	}
	if (rnd_below(4) == 0)
		thin_md_create_snap(m, 5, rnd_below(4));
	if (rnd_below(8) == 0 && !thin_md_reserve_metadata_snap(m))
		thin_md_release_metadata_snap(m);
	for (d = 0; d < 4; d++)
		if (td[d])
			thin_md_close_dev(td[d]);
	if (rnd_below(4) == 0)
		thin_md_delete_thin(m, rnd_below(4));
	if (rnd_below(2) == 0)
		nr_committed += !thin_md_commit(m);
	else
		thin_md_abort(m);
	thin_md_close(m);
}

static struct block_device *build_image(void)
{
	struct block_device *bdev = pd_shim_bdev_create(NR_META);
	struct thin_md_dev *td[4];
	struct thin_md *m;
	u64 i, b;

	m = tmt_format(bdev, 20000);
	if (IS_ERR(m))
		abort();
	for (i = 0; i < 3; i++)
		if (thin_md_create_thin(m, i) ||
		    thin_md_open_dev(m, i, &td[i]))
			abort();
	for (i = 0; i < 3000; i++)
		if (tmt_map(td[rnd_below(3)], rnd_below(3000), &b))
			abort();
	if (thin_md_create_snap(m, 3, 0) || thin_md_commit(m) ||
	    thin_md_open_dev(m, 3, &td[3]))
		abort();
	for (i = 0; i < 200; i++)
		if (tmt_map(td[3], rnd_below(3000), &b))
			abort();
	for (i = 0; i < 4; i++)
		thin_md_close_dev(td[i]);
	if (thin_md_commit(m) || thin_md_verify(m, true))
		abort();
	thin_md_close(m);
	return bdev;
}

int main(int argc, char **argv)
{
	u64 seed = 1, iters = 1000, it;
	struct block_device *base, *work;
	u64 used[NR_META], nr_used = 0, b;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			iters = strtoull(optarg, NULL, 0);
		else if (opt == 's')
			seed = strtoull(optarg, NULL, 0);
		else
			return 2;
	}
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	base = build_image();
	for (b = 0; b < base->nr_blocks; b++)
		if (block_salt(base->mem + b * 4096))
			used[nr_used++] = b;
	work = pd_shim_bdev_create(base->nr_blocks);
	work->written = calloc(base->nr_blocks, 1);
	memcpy(work->mem, base->mem, base->nr_blocks * 4096);
	pd_shim_quiet = 1;
	for (it = 0; it < iters; it++) {
		unsigned int k, nmut = 1 + rnd_below(3);

		rng_state = (seed + it) * 0x9E3779B97F4A7C15ULL + 1;
		/* Restore what the last iteration changed. */
		for (b = 0; b < base->nr_blocks; b++) {
			if (work->written[b]) {
				memcpy(work->mem + b * 4096,
				       base->mem + b * 4096, 4096);
				work->written[b] = 0;
			}
		}
		for (k = 0; k < nmut; k++) {
			u64 blk = rnd_below(8) ? used[rnd_below(nr_used)] :
						 rnd_below(base->nr_blocks);
			u8 *p = work->mem + blk * 4096;
			u32 salt = block_salt(p);

			mutate(p);
			if (salt && rnd_below(4))
				reseal(p, salt);
			work->written[blk] = 1;
		}
		exercise(work);
	}
	printf("pdata-fuzz: %llu cases from seed %llu (%llu blocks in use): %llu opened, %llu committed, %llu failed writes\n",
	       (unsigned long long)iters, (unsigned long long)seed,
	       (unsigned long long)nr_used, (unsigned long long)nr_opened,
	       (unsigned long long)nr_committed,
	       (unsigned long long)nr_write_errors);
	free(work->written);
	work->written = NULL;
	pd_shim_bdev_destroy(work);
	pd_shim_bdev_destroy(base);
	return 0;
}
