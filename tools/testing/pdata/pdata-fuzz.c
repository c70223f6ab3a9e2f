// SPDX-License-Identifier: GPL-2.0-only
/*
 * Seeded mutation fuzzer: builds a valid thin-like metadata image, then for
 * each iteration corrupts a few of its blocks (optionally re-sealing the
 * checksum so the structural checks are reached) and runs the readers and
 * some writers over it.  Every failure must be an error return; ASan and
 * UBSan catch the rest.  Usage: pdata-fuzz [-n iterations] [-s seed]
 */
#include <unistd.h>
#include "thinlike.h"

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
	TL_SB_XOR, DM_PD_CSUM_XOR_NODE, DM_PD_CSUM_XOR_INDEX,
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
	struct tl_meta m;
	u64 d, b, n = 0, keys[2], rk;
	__le64 v;
	u32 c;

	if (tl_open(&m, bdev))
		return;
	nr_opened++;
	dm_pd_btree_walk(&m.info, m.mapping_root, count_cb, &n);
	dm_pd_btree_walk(&m.details_info, m.details_root, count_cb, &n);
	for (d = 0; d < 4; d++) {
		keys[0] = d;
		keys[1] = rnd_below(3000);
		dm_pd_btree_lookup(&m.info, m.mapping_root, keys, &v);
		dm_pd_btree_lookup_next(&m.info, m.mapping_root, keys, &rk, &v);
		dm_pd_btree_find_highest_key(&m.info, m.mapping_root, keys);
	}
	for (b = 0; b < 64; b++)
		dm_pd_sm_get_count(m.msm, rnd_below(NR_META), &c);
	/* The full recount reads everything: now and then. */
	if (!rnd_below(8))
		tl_verify(&m, false);
	/* Writers must fail cleanly too. */
	for (d = 0; d < 20; d++) {
		u64 dev = rnd_below(4), vb = rnd_below(3000);

		int r = rnd_below(3) ? tl_map(&m, dev, vb, &b) :
				       tl_unmap(&m, dev, vb);

		nr_write_errors += r && r != -ENODATA;
	}
	if (rnd_below(4) == 0)
		tl_delete(&m, rnd_below(4));
	if (rnd_below(2) == 0)
		nr_committed += !tl_commit(&m);
	tl_close(&m);
}

static struct block_device *build_image(void)
{
	struct block_device *bdev = pd_shim_bdev_create(NR_META);
	struct tl_meta m;
	u64 i, b;

	if (tl_format(&m, bdev, 20000))
		abort();
	for (i = 0; i < 3; i++)
		if (tl_create_thin(&m, i))
			abort();
	for (i = 0; i < 3000; i++)
		if (tl_map(&m, rnd_below(3), rnd_below(3000), &b))
			abort();
	if (tl_snapshot(&m, 0, 3) || tl_commit(&m))
		abort();
	for (i = 0; i < 200; i++)
		if (tl_map(&m, 3, rnd_below(3000), &b))
			abort();
	if (tl_commit(&m) || tl_verify(&m, true))
		abort();
	tl_close(&m);
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
