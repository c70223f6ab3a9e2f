// SPDX-License-Identifier: GPL-2.0-only
/*
 * In-kernel self-test of dm-persistent-data and thin-metadata.c over real
 * dm-bufio: formats thin-pool metadata on the block device named by dev=,
 * runs mappings, snapshots, removals, a metadata snapshot, commits and a reopen, and
 * recounts every reference after each commit.  Loading fails unless every
 * check passes; the device is left holding metadata for thin_check.
 */
#include <linux/blkdev.h>
#include <linux/vmalloc.h>
#include "thin-md-test.h"

static char *dev;
module_param(dev, charp, 0444);
MODULE_PARM_DESC(dev, "block device to format (its contents are lost)");

#define ST_DEVS 4
#define ST_BLOCKS 3000

struct st {
	struct thin_md *m;
	struct thin_md_dev *td[ST_DEVS];
	u32 expect[ST_DEVS][ST_BLOCKS];	/* data block + 1, 0: unmapped */
	u32 seed;
};

static u32 st_rand(struct st *s, u32 n)
{
	s->seed = s->seed * 1103515245 + 12345;
	return (s->seed >> 8) % n;
}

static int st_map(struct st *s, u64 d, u64 vb)
{
	u64 b;
	int r = tmt_map(s->td[d], vb, &b);

	if (!r)
		s->expect[d][vb] = b + 1;
	return r;
}

static int st_compare(struct st *s)
{
	struct thin_md_lookup lk;
	struct thin_md_dev *td;
	u64 d, vb;
	int r, bad = 0;

	for (d = 0; d < ST_DEVS; d++) {
		if (thin_md_open_dev(s->m, d, &td)) {
			bad++;
			continue;
		}
		for (vb = 0; vb < ST_BLOCKS; vb++) {
			r = thin_md_find_block(td, vb, true, &lk);
			if (s->expect[d][vb] ?
			    r || lk.dblock + 1 != s->expect[d][vb] :
			    r != -ENODATA)
				bad++;
		}
		thin_md_close_dev(td);
	}
	return bad;
}

static int st_check(struct st *s, const char *when)
{
	int errors = thin_md_verify(s->m, true), bad = st_compare(s);

	pr_info("pd-selftest: %s: %d count errors, %d wrong mappings\n", when,
		errors, bad);
	return errors || bad ? -EIO : 0;
}

static void st_close_devs(struct st *s)
{
	unsigned int i;

	for (i = 0; i < ST_DEVS; i++) {
		if (s->td[i])
			thin_md_close_dev(s->td[i]);
		s->td[i] = NULL;
	}
}

static int st_run(struct st *s, struct block_device *bdev)
{
	unsigned int i, n;
	int r = 0;

	s->m = tmt_format(bdev, 20000);
	if (IS_ERR(s->m))
		return PTR_ERR(s->m);
	for (i = 0; i < 4 && !r; i++)
		r = thin_md_create_thin(s->m, i);
	for (i = 0; i < 3 && !r; i++)
		r = thin_md_open_dev(s->m, i, &s->td[i]);
	for (i = 0; i < 4000 && !r; i++)
		r = st_map(s, st_rand(s, 3), st_rand(s, ST_BLOCKS));
	if (!r)
		r = thin_md_commit(s->m);
	if (!r)
		r = st_check(s, "mapped");
	if (!r)
		r = thin_md_delete_thin(s->m, 3);
	if (!r)
		r = thin_md_create_snap(s->m, 3, 0);
	if (!r)
		r = thin_md_open_dev(s->m, 3, &s->td[3]);
	memcpy(s->expect[3], s->expect[0], sizeof(s->expect[0]));
	for (i = 0; i < 500 && !r; i++)
		r = st_map(s, i % 2 ? 0 : 3, st_rand(s, ST_BLOCKS));
	if (!r)
		r = thin_md_remove_range(s->td[1], 100, 900);
	memset(&s->expect[1][100], 0, 800 * sizeof(u32));
	if (!r) {
		thin_md_close_dev(s->td[2]);
		s->td[2] = NULL;
		r = thin_md_delete_thin(s->m, 2);
	}
	memset(s->expect[2], 0, sizeof(s->expect[2]));
	if (!r)
		r = thin_md_create_thin(s->m, 2);
	if (!r)
		r = thin_md_commit(s->m);
	if (!r)
		r = st_check(s, "snapshot");
	if (!r)
		r = thin_md_reserve_metadata_snap(s->m);
	for (i = 0; i < 300 && !r; i++)
		r = st_map(s, 3, st_rand(s, ST_BLOCKS));
	for (i = 0; i < 200 && !r; i++) {
		n = st_rand(s, ST_BLOCKS);
		r = thin_md_remove_block(s->td[0], n);
		if (r == -ENODATA && !s->expect[0][n])
			r = 0;
		s->expect[0][n] = 0;
	}
	if (!r)
		r = thin_md_commit(s->m);
	if (!r)
		r = st_check(s, "metadata snapshot");
	st_close_devs(s);
	thin_md_close(s->m);
	if (r)
		return r;
	s->m = thin_md_open(bdev, 128, false);
	if (IS_ERR(s->m))
		return PTR_ERR(s->m);
	r = st_check(s, "reopened");
	thin_md_close(s->m);
	return r;
}

static int __init pd_selftest_init(void)
{
	const fmode_t mode = FMODE_READ | FMODE_WRITE | FMODE_EXCL;
	struct block_device *bdev;
	struct st *s;
	int r;

	if (!dev)
		return -EINVAL;
	bdev = blkdev_get_by_path(dev, mode, &dev);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	s = vzalloc(sizeof(*s));
	if (!s) {
		blkdev_put(bdev, mode);
		return -ENOMEM;
	}
	s->seed = 1;
	r = st_run(s, bdev);
	vfree(s);
	blkdev_put(bdev, mode);
	pr_info("pd-selftest: %s (%d)\n", r ? "FAIL" : "PASS", r);
	return r;
}

static void __exit pd_selftest_exit(void)
{
}

module_init(pd_selftest_init);
module_exit(pd_selftest_exit);
MODULE_DESCRIPTION("dm-persistent-data self-test");
MODULE_LICENSE("GPL");
