// SPDX-License-Identifier: GPL-2.0-only
/*
 * Thin-pool metadata over the persistent-data library, in the stock
 * on-disk format: superblock v2 at block 0, a details tree (dev id ->
 * details), a two-level mapping tree ((dev id, vblock) -> packed
 * block/time), a data space map and an optional metadata snapshot.
 *
 * The same file builds in userspace against tools/testing/pdata/shim.
 */
#ifdef __KERNEL__
#include <linux/device-mapper.h>
#include <linux/blkdev.h>
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/string.h>
#else
#include "pd-shim.h"
#endif

#include "dm-pdata.h"
#include "thin-metadata.h"

#define DM_MSG_PREFIX "thin metadata"

#define THIN_SB_LOCATION	0
#define THIN_SB_MAGIC		27022010
#define THIN_SB_CSUM_XOR	160774
#define THIN_VERSION		2
#define THIN_FLAG_NEEDS_CHECK	(1U << 0)
/* No optional features are understood: any set bit is refused. */
#define THIN_INCOMPAT_SUPP	0U
#define THIN_COMPAT_RO_SUPP	0U
#define THIN_MAX_HELD_LOCKS	16
#define THIN_SM_ROOT_AREA	128
/* Free metadata blocks kept back from what callers may use (as stock). */
#define THIN_METADATA_RESERVE_MAX	4096

#define TIME_BITS		24
#define TIME_MASK		((1ULL << TIME_BITS) - 1)
#define MAX_DATA_BLOCK		((1ULL << (64 - TIME_BITS)) - 1)

struct thin_disk_sb {
	__le32 csum;
	__le32 flags;
	__le64 blocknr;
	u8 uuid[16];
	__le64 magic;
	__le32 version;
	__le32 time;
	__le64 trans_id;
	__le64 held_root;
	u8 data_sm_root[THIN_SM_ROOT_AREA];
	u8 metadata_sm_root[THIN_SM_ROOT_AREA];
	__le64 data_mapping_root;
	__le64 device_details_root;
	__le32 data_block_size;
	__le32 metadata_block_size;
	__le64 metadata_nr_blocks;
	__le32 compat_flags;
	__le32 compat_ro_flags;
	__le32 incompat_flags;
} __packed;

struct thin_disk_details {
	__le64 mapped_blocks;
	__le64 transaction_id;
	__le32 creation_time;
	__le32 snapshotted_time;
} __packed;

struct thin_md {
	struct rw_semaphore lock;
	struct block_device *bdev;
	sector_t data_block_size;

	struct dm_pd_bm *bm;
	struct dm_pd_tm *tm;
	struct dm_pd_tm *nb_tm;		/* lookups that must not sleep */
	struct dm_pd_sm *metadata_sm;
	struct dm_pd_sm *data_sm;

	struct dm_pd_btree_info info;		/* (dev, vblock) -> block/time */
	struct dm_pd_btree_info nb_info;	/* the same, non-blocking */
	struct dm_pd_btree_info tl_info;	/* dev -> subtree root */
	struct dm_pd_btree_info bl_info;	/* vblock -> block/time */
	struct dm_pd_btree_info details_info;	/* dev -> details */

	/* In-core copy of the superblock fields of this transaction. */
	u64 mapping_root;
	u64 details_root;
	u64 trans_id;
	u64 held_root;
	u32 time;
	u32 flags;
	u64 metadata_reserve;

	/* First error from a value-type callback (they return void). */
	int vt_error;
	bool read_only;
	bool fail_io;
	bool changed;

	struct thin_md_dev *devs;	/* open thin devices */

	u64 threshold;
	void (*threshold_fn)(void *context);
	void *threshold_context;
	bool threshold_armed;
};

struct thin_md_dev {
	struct thin_md *md;
	struct thin_md_dev *next;
	u32 id;
	unsigned int open_count;
	bool changed;
	bool aborted_with_changes;
	/* The device vanished in an abort (created and opened, not committed). */
	bool gone;
	u64 mapped_blocks;
	u64 transaction_id;
	u32 creation_time;
	u32 snapshotted_time;
};

/* ---- superblock validator ---- */

static void sb_prepare_for_write(const struct dm_pd_validator *v, void *data,
				 u64 location, size_t size)
{
	struct thin_disk_sb *sb = data;

	sb->blocknr = cpu_to_le64(location);
	sb->csum = dm_pd_block_csum(data, size, THIN_SB_CSUM_XOR);
}

static int check_superblock(const struct dm_pd_validator *v,
			    const void *data, u64 location, size_t size)
{
	const struct thin_disk_sb *sb = data;
	__le32 csum;

	if (le64_to_cpu(sb->blocknr) != location) {
		DMERR("sb_check failed: blocknr %llu: wanted %llu",
		      (unsigned long long)le64_to_cpu(sb->blocknr),
		      (unsigned long long)location);
		return -ENOTBLK;
	}
	if (le64_to_cpu(sb->magic) != THIN_SB_MAGIC) {
		DMERR("sb_check failed: magic %llu: wanted %llu",
		      (unsigned long long)le64_to_cpu(sb->magic),
		      (unsigned long long)THIN_SB_MAGIC);
		return -EILSEQ;
	}
	csum = dm_pd_block_csum(data, size, THIN_SB_CSUM_XOR);
	if (csum != sb->csum) {
		DMERR("sb_check failed: csum %u: wanted %u",
		      le32_to_cpu(csum), le32_to_cpu(sb->csum));
		return -EILSEQ;
	}
	return 0;
}

static const struct dm_pd_validator sb_validator = {
	.name = "superblock",
	.prepare_for_write = sb_prepare_for_write,
	.check = check_superblock,
};

/* ---- value types ---- */

static u64 pack_block_time(u64 dblock, u32 time)
{
	return (dblock << TIME_BITS) | (time & TIME_MASK);
}

static void unpack_block_time(u64 v, u64 *dblock, u32 *time)
{
	*dblock = v >> TIME_BITS;
	*time = v & TIME_MASK;
}

static void data_block_inc(void *context, const void *value,
			   unsigned int count)
{
	struct thin_md *md = context;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_sm_inc(md->data_sm, le64_to_cpu(v[i]) >> TIME_BITS);
		if (r && !md->vt_error)
			md->vt_error = r;
	}
}

static void data_block_dec(void *context, const void *value,
			   unsigned int count)
{
	struct thin_md *md = context;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_sm_dec(md->data_sm, le64_to_cpu(v[i]) >> TIME_BITS);
		if (r && !md->vt_error)
			md->vt_error = r;
	}
}

static void subtree_inc(void *context, const void *value, unsigned int count)
{
	struct thin_md *md = context;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_tm_inc(md->tm, le64_to_cpu(v[i]));
		if (r && !md->vt_error)
			md->vt_error = r;
	}
}

static void subtree_dec(void *context, const void *value, unsigned int count)
{
	struct thin_md *md = context;
	const __le64 *v = value;
	unsigned int i;
	int r;

	for (i = 0; i < count; i++) {
		r = dm_pd_btree_del(&md->bl_info, le64_to_cpu(v[i]));
		if (r && !md->vt_error)
			md->vt_error = r;
	}
}

static void init_infos(struct thin_md *md)
{
	struct dm_pd_btree_value_type data_vt = {
		.context = md,
		.size = sizeof(__le64),
		.inc = data_block_inc,
		.dec = data_block_dec,
	};
	struct dm_pd_btree_value_type subtree_vt = {
		.context = md,
		.size = sizeof(__le64),
		.inc = subtree_inc,
		.dec = subtree_dec,
	};
	struct dm_pd_btree_value_type details_vt = {
		.size = sizeof(struct thin_disk_details),
	};

	md->info.tm = md->tm;
	md->info.levels = 2;
	md->info.value_type = data_vt;

	md->nb_info = md->info;
	md->nb_info.tm = md->nb_tm;

	md->bl_info = md->info;
	md->bl_info.levels = 1;

	md->tl_info.tm = md->tm;
	md->tl_info.levels = 1;
	md->tl_info.value_type = subtree_vt;

	md->details_info.tm = md->tm;
	md->details_info.levels = 1;
	md->details_info.value_type = details_vt;
}

/* Fold the error a value-type callback recorded into r. */
static int vt_result(struct thin_md *md, int r)
{
	int e = md->vt_error;

	md->vt_error = 0;
	return r ? r : e;
}

/* ---- persistent objects ---- */

static void set_metadata_reserve(struct thin_md *md)
{
	u64 total;

	if (dm_pd_sm_get_nr_blocks(md->metadata_sm, &total)) {
		DMERR("could not get size of metadata device");
		md->metadata_reserve = THIN_METADATA_RESERVE_MAX;
		return;
	}
	md->metadata_reserve = min_t(u64, THIN_METADATA_RESERVE_MAX,
				     div_u64(total, 10));
}

static void destroy_objects(struct thin_md *md)
{
	if (md->nb_tm)
		dm_pd_tm_destroy(md->nb_tm);
	if (md->data_sm)
		dm_pd_sm_destroy(md->data_sm);
	if (md->metadata_sm)
		dm_pd_sm_destroy(md->metadata_sm);
	if (md->tm)
		dm_pd_tm_destroy(md->tm);
	md->nb_tm = NULL;
	md->data_sm = NULL;
	md->metadata_sm = NULL;
	md->tm = NULL;
}

static int create_nb_tm(struct thin_md *md)
{
	md->nb_tm = dm_pd_tm_create_non_blocking_clone(md->tm);
	if (!md->nb_tm) {
		DMERR("could not create non-blocking clone tm");
		return -ENOMEM;
	}
	init_infos(md);
	return 0;
}

static int write_superblock(struct thin_md *md, bool format)
{
	struct thin_disk_sb *sb;
	struct dm_pd_block *blk;
	int r;

	r = dm_pd_sm_commit(md->data_sm);
	if (r)
		return r;
	r = dm_pd_tm_pre_commit(md->tm);
	if (r)
		return r;
	if (format)
		r = dm_pd_bm_write_lock_zero(md->bm, THIN_SB_LOCATION,
					     &sb_validator, &blk);
	else
		r = dm_pd_bm_write_lock(md->bm, THIN_SB_LOCATION,
					&sb_validator, &blk);
	if (r)
		return r;
	sb = dm_pd_block_data(blk);
	if (format) {
		sb->magic = cpu_to_le64(THIN_SB_MAGIC);
		sb->version = cpu_to_le32(THIN_VERSION);
		sb->data_block_size = cpu_to_le32(md->data_block_size);
		sb->metadata_block_size = cpu_to_le32(THIN_MD_BLOCK_SECTORS);
		sb->metadata_nr_blocks =
			cpu_to_le64(min_t(u64, dm_pd_bm_nr_blocks(md->bm),
					  THIN_MD_MAX_BLOCKS));
	}
	sb->flags = cpu_to_le32(md->flags);
	sb->time = cpu_to_le32(md->time);
	sb->trans_id = cpu_to_le64(md->trans_id);
	sb->held_root = cpu_to_le64(md->held_root);
	sb->data_mapping_root = cpu_to_le64(md->mapping_root);
	sb->device_details_root = cpu_to_le64(md->details_root);
	memset(sb->data_sm_root, 0, sizeof(sb->data_sm_root));
	memset(sb->metadata_sm_root, 0, sizeof(sb->metadata_sm_root));
	r = dm_pd_sm_copy_root(md->data_sm, sb->data_sm_root,
			       sizeof(sb->data_sm_root));
	if (!r)
		r = dm_pd_sm_copy_root(md->metadata_sm, sb->metadata_sm_root,
				       sizeof(sb->metadata_sm_root));
	if (r) {
		dm_pd_bm_unlock(blk);
		return r;
	}
	return dm_pd_tm_commit(md->tm, blk);
}

static int format_metadata(struct thin_md *md)
{
	int r;

	r = dm_pd_tm_create_with_sm(md->bm, THIN_SB_LOCATION, &md->tm,
				    &md->metadata_sm);
	if (r) {
		DMERR("tm_create_with_sm failed");
		return r;
	}
	r = create_nb_tm(md);
	if (r)
		goto bad;
	r = dm_pd_sm_disk_create(md->tm, 0, &md->data_sm);
	if (r) {
		DMERR("sm_disk_create failed");
		goto bad;
	}
	r = dm_pd_btree_empty(&md->tl_info, &md->mapping_root);
	if (!r)
		r = dm_pd_btree_empty(&md->details_info, &md->details_root);
	if (r) {
		DMERR("couldn't create devices root");
		goto bad;
	}
	md->time = 0;
	md->trans_id = 0;
	md->held_root = 0;
	md->flags = 0;
	r = write_superblock(md, true);
	if (r)
		goto bad;
	set_metadata_reserve(md);
	return 0;
bad:
	destroy_objects(md);
	return r;
}

static int check_features(struct thin_disk_sb *sb, bool read_only)
{
	u32 features;

	features = le32_to_cpu(sb->incompat_flags) & ~THIN_INCOMPAT_SUPP;
	if (features) {
		DMERR("could not access metadata due to unsupported optional features (%lx).",
		      (unsigned long)features);
		return -EINVAL;
	}
	if (read_only)
		return 0;
	features = le32_to_cpu(sb->compat_ro_flags) & ~THIN_COMPAT_RO_SUPP;
	if (features) {
		DMERR("could not access metadata RDWR due to unsupported optional features (%lx).",
		      (unsigned long)features);
		return -EINVAL;
	}
	return 0;
}

/* Open the objects of the last commit; checks only on the first open. */
static int open_objects(struct thin_md *md, bool first, bool read_only)
{
	struct thin_disk_sb *sb;
	struct dm_pd_block *blk;
	int r;

	r = dm_pd_bm_read_lock(md->bm, THIN_SB_LOCATION, &sb_validator, &blk);
	if (r) {
		DMERR("couldn't read superblock");
		return r;
	}
	sb = dm_pd_block_data(blk);
	if (first) {
		r = check_features(sb, read_only);
		if (r)
			goto out;
		if (le32_to_cpu(sb->data_block_size) != md->data_block_size) {
			DMERR("changing the data block size (from %u to %llu) is not supported",
			      le32_to_cpu(sb->data_block_size),
			      (unsigned long long)md->data_block_size);
			r = -EINVAL;
			goto out;
		}
	}
	r = dm_pd_tm_open_with_sm(md->bm, THIN_SB_LOCATION,
				  sb->metadata_sm_root,
				  sizeof(sb->metadata_sm_root), &md->tm,
				  &md->metadata_sm);
	if (r) {
		DMERR("tm_open_with_sm failed");
		goto out;
	}
	r = create_nb_tm(md);
	if (r)
		goto bad;
	r = dm_pd_sm_disk_open(md->tm, sb->data_sm_root,
			       sizeof(sb->data_sm_root), &md->data_sm);
	if (r) {
		DMERR("sm_disk_open failed");
		goto bad;
	}
	md->time = le32_to_cpu(sb->time);
	md->trans_id = le64_to_cpu(sb->trans_id);
	md->held_root = le64_to_cpu(sb->held_root);
	md->flags = le32_to_cpu(sb->flags);
	md->mapping_root = le64_to_cpu(sb->data_mapping_root);
	md->details_root = le64_to_cpu(sb->device_details_root);
	set_metadata_reserve(md);
	goto out;
bad:
	destroy_objects(md);
out:
	dm_pd_bm_unlock(blk);
	return r;
}

static int block0_is_zero(struct thin_md *md, bool *zero)
{
	struct dm_pd_block *blk;
	const u64 *p;
	unsigned int i;
	int r;

	r = dm_pd_bm_read_lock(md->bm, THIN_SB_LOCATION, NULL, &blk);
	if (r)
		return r;
	p = dm_pd_block_data(blk);
	*zero = true;
	for (i = 0; i < DM_PD_BLOCK_SIZE / sizeof(*p); i++) {
		if (p[i]) {
			*zero = false;
			break;
		}
	}
	dm_pd_bm_unlock(blk);
	return 0;
}

struct thin_md *thin_md_open(struct block_device *bdev,
			     sector_t data_block_size, bool read_only)
{
	struct thin_md *md;
	bool zero;
	int r;

	md = kzalloc(sizeof(*md), GFP_KERNEL);
	if (!md)
		return ERR_PTR(-ENOMEM);
	init_rwsem(&md->lock);
	md->bdev = bdev;
	md->data_block_size = data_block_size;
	md->read_only = read_only;

	md->bm = dm_pd_bm_create(bdev, THIN_MAX_HELD_LOCKS);
	if (IS_ERR(md->bm)) {
		DMERR("could not create block manager");
		r = PTR_ERR(md->bm);
		goto bad_md;
	}
	/*
	 * A device beyond THIN_MD_MAX_BLOCKS is used only up to it: the
	 * format caps the space map, a resize is capped below, and the pool
	 * target logs stock's warning about it.
	 */
	r = block0_is_zero(md, &zero);
	if (r) {
		DMERR("couldn't read superblock");
		goto bad_bm;
	}
	if (zero && !read_only)
		r = format_metadata(md);
	else
		r = open_objects(md, true, read_only);
	if (r)
		goto bad_bm;
	if (read_only)
		dm_pd_bm_set_read_only(md->bm);
	return md;

bad_bm:
	dm_pd_bm_destroy(md->bm);
bad_md:
	kfree(md);
	return ERR_PTR(r);
}

/* ---- device details ---- */

static struct thin_md_dev *find_open_dev(struct thin_md *md, u32 id)
{
	struct thin_md_dev *td;

	/* A device that vanished in an abort stays apart, even if re-created. */
	for (td = md->devs; td; td = td->next)
		if (td->id == id && !td->gone)
			return td;
	return NULL;
}

static void details_to_dev(struct thin_md_dev *td,
			   const struct thin_disk_details *d)
{
	td->mapped_blocks = le64_to_cpu(d->mapped_blocks);
	td->transaction_id = le64_to_cpu(d->transaction_id);
	td->creation_time = le32_to_cpu(d->creation_time);
	td->snapshotted_time = le32_to_cpu(d->snapshotted_time);
}

static void dev_to_details(const struct thin_md_dev *td,
			   struct thin_disk_details *d)
{
	d->mapped_blocks = cpu_to_le64(td->mapped_blocks);
	d->transaction_id = cpu_to_le64(td->transaction_id);
	d->creation_time = cpu_to_le32(td->creation_time);
	d->snapshotted_time = cpu_to_le32(td->snapshotted_time);
}

static int lookup_details(struct thin_md *md, u32 id,
			  struct thin_disk_details *d)
{
	u64 key = id;

	return dm_pd_btree_lookup(&md->details_info, md->details_root, &key,
				  d);
}

static int insert_details(struct thin_md *md, u32 id,
			  const struct thin_disk_details *d)
{
	u64 key = id;

	return dm_pd_btree_insert(&md->details_info, md->details_root, &key,
				  d, &md->details_root);
}

/* Open devices keep their details in core until the commit. */
static int write_changed_details(struct thin_md *md)
{
	struct thin_disk_details d;
	struct thin_md_dev *td;
	int r;

	for (td = md->devs; td; td = td->next) {
		if (!td->changed || td->gone)
			continue;
		dev_to_details(td, &d);
		r = insert_details(md, td->id, &d);
		if (r)
			return r;
	}
	return 0;
}

/* ---- transactions ---- */

static int commit_locked(struct thin_md *md)
{
	struct thin_md_dev *td;
	int r;

	r = write_changed_details(md);
	if (r)
		return r;
	r = write_superblock(md, false);
	if (r)
		return r;
	for (td = md->devs; td; td = td->next)
		td->changed = false;
	md->changed = false;
	return 0;
}

/* Whether the low-threshold callback is due; disarms it if so. */
static bool threshold_due(struct thin_md *md)
{
	u64 nr_free;

	if (!md->threshold_armed || !md->threshold_fn)
		return false;
	if (dm_pd_sm_get_nr_free(md->metadata_sm, &nr_free))
		return false;
	if (nr_free > md->threshold)
		return false;
	md->threshold_armed = false;
	return true;
}

int thin_md_commit(struct thin_md *md)
{
	void (*fn)(void *context) = NULL;
	void *context = NULL;
	int r = -EINVAL;

	down_write(&md->lock);
	if (md->fail_io)
		goto out;
	r = -EPERM;
	if (md->read_only)
		goto out;
	r = 0;
	if (md->changed)
		r = commit_locked(md);
	if (!r && threshold_due(md)) {
		fn = md->threshold_fn;
		context = md->threshold_context;
	}
out:
	up_write(&md->lock);
	/* Outside the lock: the callback may well look at the metadata. */
	if (fn)
		fn(context);
	return r;
}

static int abort_locked(struct thin_md *md)
{
	struct thin_disk_details d;
	struct thin_md_dev *td;
	int r;

	for (td = md->devs; td; td = td->next)
		td->aborted_with_changes = td->changed;

	destroy_objects(md);
	dm_pd_bm_reset(md->bm);
	r = open_objects(md, false, md->read_only);
	if (r) {
		DMERR("could not reopen metadata after abort: %d", r);
		md->fail_io = true;
		return r;
	}
	md->changed = false;
	md->vt_error = 0;
	for (td = md->devs; td; td = td->next) {
		td->changed = false;
		if (td->gone)
			continue;
		r = lookup_details(md, td->id, &d);
		if (r && r != -ENODATA) {
			md->fail_io = true;
			return r;
		}
		td->gone = r == -ENODATA;
		if (td->gone)
			memset(&d, 0, sizeof(d));
		details_to_dev(td, &d);
	}
	return 0;
}

int thin_md_abort(struct thin_md *md)
{
	int r = -EINVAL;

	down_write(&md->lock);
	if (!md->fail_io)
		r = abort_locked(md);
	up_write(&md->lock);
	return r;
}

bool thin_md_changed(struct thin_md *md)
{
	bool changed;

	down_read(&md->lock);
	changed = md->changed;
	up_read(&md->lock);
	return changed;
}

void thin_md_close(struct thin_md *md)
{
	struct thin_md_dev *td, *next;
	int r;

	down_write(&md->lock);
	if (!md->fail_io && !md->read_only && md->changed) {
		r = commit_locked(md);
		if (r)
			DMWARN("%s: commit failed: error = %d", __func__, r);
	}
	for (td = md->devs; td; td = next) {
		next = td->next;
		DMERR("thin device %u still open when the pool closes", td->id);
		kfree(td);
	}
	md->devs = NULL;
	up_write(&md->lock);

	destroy_objects(md);
	dm_pd_bm_destroy(md->bm);
	kfree(md);
}

void thin_md_set_read_only(struct thin_md *md)
{
	down_write(&md->lock);
	md->read_only = true;
	dm_pd_bm_set_read_only(md->bm);
	up_write(&md->lock);
}

void thin_md_set_read_write(struct thin_md *md)
{
	down_write(&md->lock);
	md->read_only = false;
	dm_pd_bm_set_read_write(md->bm);
	up_write(&md->lock);
}

/*
 * Only the flag word of the committed superblock is rewritten: whatever
 * the current transaction holds is not part of it.
 */
int thin_md_set_needs_check(struct thin_md *md)
{
	struct thin_disk_sb *sb;
	struct dm_pd_block *blk;
	int r;

	down_write(&md->lock);
	md->flags |= THIN_FLAG_NEEDS_CHECK;
	if (md->read_only)
		dm_pd_bm_set_read_write(md->bm);
	r = dm_pd_bm_write_lock(md->bm, THIN_SB_LOCATION, &sb_validator, &blk);
	if (!r) {
		sb = dm_pd_block_data(blk);
		sb->flags = cpu_to_le32(le32_to_cpu(sb->flags) |
					THIN_FLAG_NEEDS_CHECK);
		dm_pd_bm_unlock(blk);
		r = dm_pd_bm_flush(md->bm);
	}
	if (md->read_only)
		dm_pd_bm_set_read_only(md->bm);
	if (r)
		DMERR("%s: failed to write the superblock: %d", __func__, r);
	up_write(&md->lock);
	return r;
}

bool thin_md_needs_check(struct thin_md *md)
{
	bool needs_check;

	down_read(&md->lock);
	needs_check = md->flags & THIN_FLAG_NEEDS_CHECK;
	up_read(&md->lock);
	return needs_check;
}

/* Take the lock for a change: 0, or why no change may be made. */
static int begin_change(struct thin_md *md)
{
	down_write(&md->lock);
	if (md->fail_io) {
		up_write(&md->lock);
		return -EINVAL;
	}
	if (md->read_only) {
		up_write(&md->lock);
		return -EPERM;
	}
	md->changed = true;
	md->vt_error = 0;
	return 0;
}

/*
 * A pool message gets a transaction of its own: what the pool changed
 * before is committed first, so a message that fails halfway (an
 * allocation, say) is rolled back alone and the pool stays writable, as
 * stock's does, with no half-made change left to commit later.
 */
static int begin_message(struct thin_md *md)
{
	int r;

	down_write(&md->lock);
	r = md->fail_io ? -EINVAL : md->read_only ? -EPERM : 0;
	if (!r && md->changed)
		r = commit_locked(md);
	if (r) {
		up_write(&md->lock);
		return r;
	}
	md->changed = true;
	md->vt_error = 0;
	return 0;
}

/* A failed abort leaves fail_io set and the transaction marked changed. */
static int end_message(struct thin_md *md, int r)
{
	if (r)
		abort_locked(md);
	up_write(&md->lock);
	return r;
}

static int begin_read(struct thin_md *md)
{
	down_read(&md->lock);
	if (md->fail_io) {
		up_read(&md->lock);
		return -EINVAL;
	}
	return 0;
}

/* ---- devices ---- */

static int create_thin_locked(struct thin_md *md, u32 dev_id)
{
	struct thin_disk_details d;
	u64 key = dev_id, root;
	__le64 value;
	int r;

	if (dev_id > THIN_MD_MAX_DEV_ID)
		return -EINVAL;
	r = lookup_details(md, dev_id, &d);
	if (!r)
		return -EEXIST;
	if (r != -ENODATA)
		return r;
	r = dm_pd_btree_empty(&md->bl_info, &root);
	if (r)
		return r;
	value = cpu_to_le64(root);
	r = dm_pd_btree_insert(&md->tl_info, md->mapping_root, &key, &value,
			       &md->mapping_root);
	r = vt_result(md, r);
	if (r) {
		dm_pd_btree_del(&md->bl_info, root);
		return r;
	}
	d.mapped_blocks = 0;
	d.transaction_id = cpu_to_le64(md->trans_id);
	d.creation_time = cpu_to_le32(md->time);
	d.snapshotted_time = cpu_to_le32(md->time);
	return insert_details(md, dev_id, &d);
}

int thin_md_create_thin(struct thin_md *md, u32 dev_id)
{
	int r = begin_message(md);

	if (r)
		return r;
	return end_message(md, create_thin_locked(md, dev_id));
}

/* Details of dev_id, from the open device when there is one. */
static int get_details(struct thin_md *md, u32 dev_id,
		       struct thin_disk_details *d)
{
	struct thin_md_dev *td = find_open_dev(md, dev_id);

	if (td) {
		dev_to_details(td, d);
		return 0;
	}
	return lookup_details(md, dev_id, d);
}

static int create_snap_locked(struct thin_md *md, u32 dev_id, u32 origin_id)
{
	struct thin_disk_details d, od;
	struct thin_md_dev *origin;
	u64 key = dev_id, okey = origin_id;
	__le64 value;
	int r;

	if (dev_id > THIN_MD_MAX_DEV_ID)
		return -EINVAL;
	r = lookup_details(md, dev_id, &d);
	if (!r)
		return -EEXIST;
	if (r != -ENODATA)
		return r;
	r = get_details(md, origin_id, &od);
	if (r)
		return r;
	r = dm_pd_btree_lookup(&md->tl_info, md->mapping_root, &okey, &value);
	if (r)
		return r;
	/* The snapshot shares the origin's mapping subtree. */
	r = dm_pd_tm_inc(md->tm, le64_to_cpu(value));
	if (r)
		return r;
	r = dm_pd_btree_insert(&md->tl_info, md->mapping_root, &key, &value,
			       &md->mapping_root);
	r = vt_result(md, r);
	if (r)
		return r;

	md->time++;
	d.mapped_blocks = od.mapped_blocks;
	d.transaction_id = cpu_to_le64(md->trans_id);
	d.creation_time = cpu_to_le32(md->time);
	d.snapshotted_time = cpu_to_le32(md->time);
	r = insert_details(md, dev_id, &d);
	if (r)
		return r;

	origin = find_open_dev(md, origin_id);
	if (origin) {
		origin->snapshotted_time = md->time;
		origin->changed = true;
		return 0;
	}
	od.snapshotted_time = cpu_to_le32(md->time);
	return insert_details(md, origin_id, &od);
}

int thin_md_create_snap(struct thin_md *md, u32 dev_id, u32 origin_id)
{
	int r = begin_message(md);

	if (r)
		return r;
	return end_message(md, create_snap_locked(md, dev_id, origin_id));
}

static int delete_thin_locked(struct thin_md *md, u32 dev_id)
{
	u64 key = dev_id;
	int r;

	if (find_open_dev(md, dev_id))
		return -EBUSY;
	r = dm_pd_btree_remove(&md->details_info, md->details_root, &key,
			       &md->details_root);
	if (r)
		return r;
	r = dm_pd_btree_remove(&md->tl_info, md->mapping_root, &key,
			       &md->mapping_root);
	return vt_result(md, r);
}

int thin_md_delete_thin(struct thin_md *md, u32 dev_id)
{
	int r = begin_message(md);

	if (r)
		return r;
	return end_message(md, delete_thin_locked(md, dev_id));
}

int thin_md_set_transaction_id(struct thin_md *md, u64 old_id, u64 new_id)
{
	int r = begin_change(md);

	if (r)
		return r;
	if (md->trans_id != old_id) {
		DMERR("mismatched transaction id");
		r = -EINVAL;
	} else {
		md->trans_id = new_id;
	}
	up_write(&md->lock);
	return r;
}

int thin_md_get_transaction_id(struct thin_md *md, u64 *id)
{
	int r = begin_read(md);

	if (r)
		return r;
	*id = md->trans_id;
	up_read(&md->lock);
	return 0;
}

static int reserve_snap_locked(struct thin_md *md)
{
	struct thin_disk_sb *copy;
	struct dm_pd_block *blk;
	int r, inc_children;
	u64 held;

	if (md->held_root) {
		DMWARN("Pool metadata snapshot already exists: release this before taking another.");
		return -EBUSY;
	}
	/* The copy must carry the roots of the current state. */
	r = commit_locked(md);
	if (r)
		return r;

	/* Shadowing a block with two references yields a private copy. */
	r = dm_pd_tm_inc(md->tm, THIN_SB_LOCATION);
	if (r)
		return r;
	r = dm_pd_tm_shadow_block(md->tm, THIN_SB_LOCATION, &sb_validator,
				  &blk, &inc_children);
	if (r) {
		dm_pd_tm_dec(md->tm, THIN_SB_LOCATION);
		return r;
	}
	held = dm_pd_block_location(blk);
	copy = dm_pd_block_data(blk);
	if (le64_to_cpu(copy->held_root)) {
		DMWARN("Pool metadata snapshot already exists: release this before taking another.");
		dm_pd_tm_unlock(md->tm, blk);
		dm_pd_tm_dec(md->tm, held);
		return -EBUSY;
	}
	/* The tools know the copy has no space maps of its own. */
	memset(copy->data_sm_root, 0, sizeof(copy->data_sm_root));
	memset(copy->metadata_sm_root, 0, sizeof(copy->metadata_sm_root));
	r = dm_pd_tm_inc(md->tm, le64_to_cpu(copy->data_mapping_root));
	if (!r)
		r = dm_pd_tm_inc(md->tm, le64_to_cpu(copy->device_details_root));
	dm_pd_tm_unlock(md->tm, blk);
	if (r)
		return r;
	md->held_root = held;
	md->changed = true;
	return commit_locked(md);
}

int thin_md_reserve_metadata_snap(struct thin_md *md)
{
	int r = begin_message(md);

	if (r)
		return r;
	return end_message(md, reserve_snap_locked(md));
}

static int release_snap_locked(struct thin_md *md)
{
	struct thin_disk_sb *copy;
	struct dm_pd_block *blk;
	u64 held = md->held_root, mroot, droot;
	int r;

	if (!held) {
		DMWARN("No pool metadata snapshot found: nothing to release.");
		return -EINVAL;
	}
	r = dm_pd_tm_read_lock(md->tm, held, &sb_validator, &blk);
	if (r)
		return r;
	copy = dm_pd_block_data(blk);
	mroot = le64_to_cpu(copy->data_mapping_root);
	droot = le64_to_cpu(copy->device_details_root);
	dm_pd_tm_unlock(md->tm, blk);

	md->held_root = 0;
	r = dm_pd_btree_del(&md->info, mroot);
	r = vt_result(md, r);
	if (!r)
		r = dm_pd_btree_del(&md->details_info, droot);
	if (!r)
		r = dm_pd_tm_dec(md->tm, held);
	return r;
}

int thin_md_release_metadata_snap(struct thin_md *md)
{
	int r = begin_message(md);

	if (r)
		return r;
	return end_message(md, release_snap_locked(md));
}

int thin_md_get_metadata_snap(struct thin_md *md, u64 *block)
{
	int r = begin_read(md);

	if (r)
		return r;
	*block = md->held_root;
	up_read(&md->lock);
	return 0;
}

/* ---- space ---- */

int thin_md_alloc_data_block(struct thin_md *md, u64 *dblock)
{
	int r = begin_change(md);

	if (r)
		return r;
	r = dm_pd_sm_new_block(md->data_sm, dblock);
	up_write(&md->lock);
	return r;
}

int thin_md_get_free_data_blocks(struct thin_md *md, u64 *count)
{
	int r = begin_read(md);

	if (r)
		return r;
	r = dm_pd_sm_get_nr_free(md->data_sm, count);
	up_read(&md->lock);
	return r;
}

int thin_md_get_data_dev_size(struct thin_md *md, u64 *nr_blocks)
{
	int r = begin_read(md);

	if (r)
		return r;
	r = dm_pd_sm_get_nr_blocks(md->data_sm, nr_blocks);
	up_read(&md->lock);
	return r;
}

/* A share of the free metadata is held back for commits and aborts. */
int thin_md_get_free_metadata_blocks(struct thin_md *md, u64 *count)
{
	int r = begin_read(md);

	if (r)
		return r;
	r = dm_pd_sm_get_nr_free(md->metadata_sm, count);
	if (!r)
		*count = *count > md->metadata_reserve ?
			 *count - md->metadata_reserve : 0;
	up_read(&md->lock);
	return r;
}

int thin_md_get_metadata_dev_size(struct thin_md *md, u64 *nr_blocks)
{
	int r = begin_read(md);

	if (r)
		return r;
	r = dm_pd_sm_get_nr_blocks(md->metadata_sm, nr_blocks);
	up_read(&md->lock);
	return r;
}

static int resize_sm(struct dm_pd_sm *sm, u64 new_count)
{
	u64 old_count;
	int r;

	r = dm_pd_sm_get_nr_blocks(sm, &old_count);
	if (r)
		return r;
	if (new_count == old_count)
		return 0;
	if (new_count < old_count) {
		DMERR("cannot reduce size of space map");
		return -EINVAL;
	}
	return dm_pd_sm_extend(sm, new_count - old_count);
}

int thin_md_resize_data_dev(struct thin_md *md, u64 new_nr_blocks)
{
	int r = begin_change(md);

	if (r)
		return r;
	if (new_nr_blocks > MAX_DATA_BLOCK + 1)
		r = -EINVAL;
	else
		r = resize_sm(md->data_sm, new_nr_blocks);
	up_write(&md->lock);
	return r;
}

int thin_md_resize_metadata_dev(struct thin_md *md, u64 new_nr_blocks)
{
	int r = begin_change(md);

	if (r)
		return r;
	new_nr_blocks = min_t(u64, new_nr_blocks, THIN_MD_MAX_BLOCKS);
	if (new_nr_blocks > dm_pd_bm_nr_blocks(md->bm)) {
		DMERR("metadata device too small for %llu blocks",
		      (unsigned long long)new_nr_blocks);
		r = -EINVAL;
	} else {
		r = resize_sm(md->metadata_sm, new_nr_blocks);
	}
	if (!r)
		set_metadata_reserve(md);
	up_write(&md->lock);
	return r;
}

int thin_md_data_block_is_shared(struct thin_md *md, u64 dblock,
				 bool *shared)
{
	int r = begin_read(md), more;

	if (r)
		return r;
	r = dm_pd_sm_count_is_more_than_one(md->data_sm, dblock, &more);
	if (!r)
		*shared = more;
	up_read(&md->lock);
	return r;
}

int thin_md_inc_data_range(struct thin_md *md, u64 begin, u64 end)
{
	int r = begin_change(md);

	if (r)
		return r;
	r = dm_pd_sm_inc_range(md->data_sm, begin, end);
	up_write(&md->lock);
	return r;
}

int thin_md_dec_data_range(struct thin_md *md, u64 begin, u64 end)
{
	int r = begin_change(md);

	if (r)
		return r;
	r = dm_pd_sm_dec_range(md->data_sm, begin, end);
	up_write(&md->lock);
	return r;
}

void thin_md_register_metadata_threshold(struct thin_md *md, u64 threshold,
					 void (*fn)(void *context),
					 void *context)
{
	down_write(&md->lock);
	md->threshold = threshold;
	md->threshold_fn = fn;
	md->threshold_context = context;
	md->threshold_armed = true;
	up_write(&md->lock);
}

/* ---- one thin device ---- */

int thin_md_open_dev(struct thin_md *md, u32 dev_id, struct thin_md_dev **tdp)
{
	struct thin_disk_details d;
	struct thin_md_dev *td;
	int r;

	down_write(&md->lock);
	r = -EINVAL;
	if (md->fail_io)
		goto out;
	td = find_open_dev(md, dev_id);
	if (td) {
		td->open_count++;
		*tdp = td;
		r = 0;
		goto out;
	}
	r = lookup_details(md, dev_id, &d);
	if (r)
		goto out;
	/* Reclaim must not recurse into the pool this device belongs to. */
	td = kzalloc(sizeof(*td), GFP_NOIO);
	r = -ENOMEM;
	if (!td)
		goto out;
	td->md = md;
	td->id = dev_id;
	td->open_count = 1;
	details_to_dev(td, &d);
	td->next = md->devs;
	md->devs = td;
	*tdp = td;
	r = 0;
out:
	up_write(&md->lock);
	return r;
}

void thin_md_close_dev(struct thin_md_dev *td)
{
	struct thin_md *md = td->md;
	struct thin_disk_details d;
	struct thin_md_dev **p;

	down_write(&md->lock);
	if (--td->open_count) {
		up_write(&md->lock);
		return;
	}
	/* Its pending details must outlive it until the commit. */
	if (td->changed && !td->gone && !md->fail_io && !md->read_only) {
		dev_to_details(td, &d);
		md->vt_error = 0;
		if (insert_details(md, td->id, &d))
			DMERR("%s: could not save details of device %u",
			      __func__, td->id);
	}
	for (p = &md->devs; *p; p = &(*p)->next) {
		if (*p == td) {
			*p = td->next;
			break;
		}
	}
	up_write(&md->lock);
	kfree(td);
}

u32 thin_md_dev_id(struct thin_md_dev *td)
{
	return td->id;
}

static void fill_lookup(struct thin_md_dev *td, __le64 value,
			struct thin_md_lookup *result)
{
	u64 dblock;
	u32 time;

	unpack_block_time(le64_to_cpu(value), &dblock, &time);
	result->dblock = dblock;
	result->shared = td->snapshotted_time > time;
}

int thin_md_find_block(struct thin_md_dev *td, u64 vblock, bool can_block,
		       struct thin_md_lookup *result)
{
	struct thin_md *md = td->md;
	struct dm_pd_btree_info *info;
	u64 keys[2] = { td->id, vblock };
	__le64 value;
	int r;

	if (can_block) {
		down_read(&md->lock);
		info = &md->info;
	} else {
		if (!down_read_trylock(&md->lock))
			return -EWOULDBLOCK;
		info = &md->nb_info;
	}
	r = -EINVAL;
	if (md->fail_io)
		goto out;
	r = -ENODATA;
	if (td->gone)
		goto out;
	r = dm_pd_btree_lookup(info, md->mapping_root, keys, &value);
	if (!r)
		fill_lookup(td, value, result);
out:
	up_read(&md->lock);
	return r;
}

int thin_md_find_mapped_range(struct thin_md_dev *td, u64 begin, u64 end,
			      u64 *vbegin, u64 *vend, u64 *dbegin,
			      bool *shared)
{
	struct thin_md *md = td->md;
	struct thin_md_lookup first, next;
	u64 keys[2] = { td->id, begin }, key;
	__le64 value;
	int r;

	if (begin >= end)
		return -ENODATA;
	r = begin_read(md);
	if (r)
		return r;
	r = -ENODATA;
	if (td->gone)
		goto out;
	r = dm_pd_btree_lookup_next(&md->info, md->mapping_root, keys, &key,
				    &value);
	if (r)
		goto out;
	if (key >= end) {
		r = -ENODATA;
		goto out;
	}
	fill_lookup(td, value, &first);
	*vbegin = key;
	*dbegin = first.dblock;
	*shared = first.shared;
	*vend = key + 1;
	/* Extend while the next vblock follows on in both spaces. */
	while (*vend < end) {
		keys[1] = *vend;
		r = dm_pd_btree_lookup(&md->info, md->mapping_root, keys,
				       &value);
		if (r == -ENODATA)
			break;
		if (r)
			goto out;
		fill_lookup(td, value, &next);
		if (next.dblock != first.dblock + (*vend - *vbegin) ||
		    next.shared != first.shared)
			break;
		(*vend)++;
	}
	r = 0;
out:
	up_read(&md->lock);
	return r;
}

int thin_md_insert_block(struct thin_md_dev *td, u64 vblock, u64 dblock)
{
	struct thin_md *md = td->md;
	u64 keys[2] = { td->id, vblock };
	__le64 value;
	int r, inserted;

	if (dblock > MAX_DATA_BLOCK)
		return -EINVAL;
	r = begin_change(md);
	if (r)
		return r;
	r = -ENODATA;
	if (td->gone)
		goto out;
	value = cpu_to_le64(pack_block_time(dblock, md->time));
	r = dm_pd_btree_insert_notify(&md->info, md->mapping_root, keys,
				      &value, &md->mapping_root, &inserted);
	r = vt_result(md, r);
	if (r)
		goto out;
	td->changed = true;
	if (inserted)
		td->mapped_blocks++;
out:
	up_write(&md->lock);
	return r;
}

int thin_md_remove_block(struct thin_md_dev *td, u64 vblock)
{
	struct thin_md *md = td->md;
	u64 keys[2] = { td->id, vblock };
	int r;

	r = begin_change(md);
	if (r)
		return r;
	r = -ENODATA;
	if (td->gone)
		goto out;
	r = dm_pd_btree_remove(&md->info, md->mapping_root, keys,
			       &md->mapping_root);
	r = vt_result(md, r);
	if (r)
		goto out;
	td->mapped_blocks--;
	td->changed = true;
out:
	up_write(&md->lock);
	return r;
}

int thin_md_remove_range(struct thin_md_dev *td, u64 begin, u64 end)
{
	struct thin_md *md = td->md;
	u64 keys[2] = { td->id, begin };
	unsigned int removed = 0;
	int r;

	if (begin >= end)
		return 0;
	r = begin_change(md);
	if (r)
		return r;
	r = -ENODATA;
	if (td->gone)
		goto out;
	r = dm_pd_btree_remove_leaves(&md->info, md->mapping_root, keys, end,
				      &md->mapping_root, &removed);
	r = vt_result(md, r);
	/* Whatever went before a failure is gone too. */
	td->mapped_blocks -= min_t(u64, removed, td->mapped_blocks);
	if (removed)
		td->changed = true;
out:
	up_write(&md->lock);
	return r;
}

bool thin_md_dev_changed(struct thin_md_dev *td)
{
	struct thin_md *md = td->md;
	bool changed;

	down_read(&md->lock);
	changed = td->changed;
	up_read(&md->lock);
	return changed;
}

bool thin_md_dev_aborted_with_changes(struct thin_md_dev *td)
{
	struct thin_md *md = td->md;
	bool aborted;

	down_read(&md->lock);
	aborted = td->aborted_with_changes;
	up_read(&md->lock);
	return aborted;
}

int thin_md_get_mapped_count(struct thin_md_dev *td, u64 *count)
{
	struct thin_md *md = td->md;
	int r = begin_read(md);

	if (r)
		return r;
	*count = td->mapped_blocks;
	up_read(&md->lock);
	return 0;
}

int thin_md_get_highest_mapped(struct thin_md_dev *td, bool *found,
			       u64 *vblock)
{
	struct thin_md *md = td->md;
	u64 key = td->id;
	__le64 value;
	int r = begin_read(md);

	if (r)
		return r;
	*found = false;
	if (td->gone)
		goto out;
	r = dm_pd_btree_lookup(&md->tl_info, md->mapping_root, &key, &value);
	if (r)
		goto out;
	r = dm_pd_btree_find_highest_key(&md->bl_info, le64_to_cpu(value),
					 vblock);
	if (r == -ENODATA) {
		r = 0;
		goto out;
	}
	if (!r)
		*found = true;
out:
	up_read(&md->lock);
	return r;
}
