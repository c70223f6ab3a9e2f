// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-verity: a read-only target that checks every data block it returns
 * against a Merkle tree of digests kept on a hash device, whose root digest
 * is given in the table. Blocks that do not match are reported (log line,
 * uevent, status C) and, by default, fail with EIO; with FEC configured the
 * block is first rebuilt from Reed-Solomon parity.
 *
 * Reads are passed to the data device and verified on completion in a
 * workqueue. Hash blocks come through dm-bufio; each cached hash block
 * remembers whether it was checked already, so the usual read only hashes
 * the data block and compares it with the cached level-0 digest.
 */

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/reboot.h>
#include <linux/highmem.h>
#include <linux/bio.h>
#include "verity.h"

#define VERITY_OPTS_MAX		(4 + 8 + 2)

static unsigned int prefetch_cluster = 256 * 1024;
module_param_named(prefetch_cluster, prefetch_cluster, uint, 0644);
MODULE_PARM_DESC(prefetch_cluster, "Hash blocks prefetched around a read, in bytes");

struct verity_prefetch_work {
	struct work_struct work;
	struct dm_verity *v;
	sector_t block;
	unsigned int n_blocks;
};

/* ---------------------------------------------------------------- hashing */

static int hash_start(struct dm_verity *v, struct shash_desc *desc)
{
	int r;

	desc->tfm = v->tfm;
	r = crypto_shash_init(desc);
	/* Version 1 hashes the salt first, version 0 last. */
	if (!r && v->version && v->salt_size)
		r = crypto_shash_update(desc, v->salt, v->salt_size);
	return r;
}

static int hash_finish(struct dm_verity *v, struct shash_desc *desc, u8 *out)
{
	int r = 0;

	if (!v->version && v->salt_size)
		r = crypto_shash_update(desc, v->salt, v->salt_size);
	if (!r)
		r = crypto_shash_final(desc, out);
	return r;
}

int verity_digest(struct dm_verity *v, const u8 *data, size_t len, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, v->tfm);
	int r;

	r = hash_start(v, desc);
	if (!r)
		r = crypto_shash_update(desc, data, len);
	if (!r)
		r = hash_finish(v, desc, out);
	shash_desc_zero(desc);
	return r;
}

/* Digest of one data block held in the bio's pages at *iter; advances it. */
static int digest_bio_block(struct dm_verity *v, struct bio *bio,
			    struct bvec_iter *iter, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, v->tfm);
	unsigned int todo = 1 << v->data_block_bits;
	int r;

	r = hash_start(v, desc);
	while (!r && todo) {
		struct bio_vec bv = bio_iter_iovec(bio, *iter);
		unsigned int len = min(bv.bv_len, todo);
		u8 *p = kmap_local_page(bv.bv_page);

		r = crypto_shash_update(desc, p + bv.bv_offset, len);
		kunmap_local(p);
		bio_advance_iter(bio, iter, len);
		todo -= len;
	}
	if (!r)
		r = hash_finish(v, desc, out);
	shash_desc_zero(desc);
	return r;
}

/* Copy (to_bio) or zero one block of the bio at *iter; advances it. */
static void fill_bio_block(struct dm_verity *v, struct bio *bio,
			   struct bvec_iter *iter, const u8 *src)
{
	unsigned int todo = 1 << v->data_block_bits;

	while (todo) {
		struct bio_vec bv = bio_iter_iovec(bio, *iter);
		unsigned int len = min(bv.bv_len, todo);
		u8 *p = kmap_local_page(bv.bv_page);

		if (src) {
			memcpy(p + bv.bv_offset, src, len);
			src += len;
		} else {
			memset(p + bv.bv_offset, 0, len);
		}
		kunmap_local(p);
		flush_dcache_page(bv.bv_page);
		bio_advance_iter(bio, iter, len);
		todo -= len;
	}
}

/* ---------------------------------------------------------------- errors */

/*
 * Report a corrupted block. Returns nonzero when the I/O must fail; the
 * restart and panic modes do not return.
 */
int verity_handle_err(struct dm_verity *v, enum verity_block_type type,
		      unsigned long long block)
{
	struct mapped_device *md = dm_table_get_md(v->ti->table);
	char env[64];
	char *envp[2];

	v->hash_failed = true;
	if (v->corrupted_errs < VERITY_MAX_CORRUPTED) {
		v->corrupted_errs++;
		DMERR_LIMIT("%s: %s block %llu is corrupted", v->data_dev->name,
			    type == VERITY_BLOCK_DATA ? "data" : "metadata", block);
		if (v->corrupted_errs == VERITY_MAX_CORRUPTED)
			DMERR("%s: reached maximum errors", v->data_dev->name);
		snprintf(env, sizeof(env), "DM_VERITY_ERR_BLOCK_NR=%d,%llu", type, block);
		envp[0] = env;
		envp[1] = NULL;
		kobject_uevent_env(&disk_to_dev(dm_disk(md))->kobj, KOBJ_CHANGE, envp);
	}

	switch (v->mode) {
	case VERITY_MODE_LOGGING:
		return 0;
	case VERITY_MODE_RESTART:
		kernel_restart("dm-verity device corrupted");
		break;
	case VERITY_MODE_PANIC:
		panic("dm-verity device corrupted");
	default:
		break;
	}
	return 1;
}

/* ---------------------------------------------------------------- tree */

/* Where the digest covering data block 'block' sits at 'level'. */
static sector_t hash_location(struct dm_verity *v, sector_t block, int level,
			      unsigned int *offset)
{
	sector_t pos = block >> (level * v->hash_per_block_bits);
	unsigned int idx = pos & ((1 << v->hash_per_block_bits) - 1);

	if (offset) {
		if (v->version)
			*offset = idx << (v->hash_block_bits - v->hash_per_block_bits);
		else
			*offset = idx * v->digest_size;
	}
	return v->level_start[level] + (pos >> v->hash_per_block_bits);
}

/*
 * Read the hash block of 'level' on the path of 'block', check it against
 * 'digest' unless already checked, and replace 'digest' by the entry for the
 * next level down. With cached_only, returns 1 when the block is not cached
 * and verified yet.
 */
static int verify_level(struct dm_verity *v, sector_t block, int level,
			bool cached_only, u8 *digest, int fec_depth)
{
	struct verity_buffer_aux *aux;
	struct dm_buffer *buf;
	unsigned int offset;
	sector_t hb = hash_location(v, block, level, &offset);
	u8 *data, *calc;
	int r = 0;

	if (cached_only) {
		data = dm_bufio_get(v->bufio, hb, &buf);
		if (!data)
			return 1;
	} else {
		data = dm_bufio_read(v->bufio, hb, &buf);
	}
	if (IS_ERR(data)) {
		/* The slow path reads it again and reports the error. */
		if (cached_only)
			return 1;
		return PTR_ERR(data);
	}
	aux = dm_bufio_get_aux_data(buf);
	if (!READ_ONCE(aux->verified)) {
		if (cached_only) {
			r = 1;
			goto out;
		}
		calc = kmalloc(v->digest_size, GFP_NOIO);
		if (!calc) {
			r = -ENOMEM;
			goto out;
		}
		r = verity_digest(v, data, 1 << v->hash_block_bits, calc);
		if (!r && memcmp(calc, digest, v->digest_size)) {
			/* Repaired blocks count as checked; logged ones do not. */
			if (verity_fec_decode(v, VERITY_BLOCK_METADATA, hb, digest, data,
					      fec_depth) == 0)
				WRITE_ONCE(aux->verified, true);
			else if (verity_handle_err(v, VERITY_BLOCK_METADATA, hb))
				r = -EIO;
		} else if (!r) {
			WRITE_ONCE(aux->verified, true);
		}
		kfree(calc);
		if (r)
			goto out;
	}
	memcpy(digest, data + offset, v->digest_size);
out:
	dm_bufio_release(buf);
	return r;
}

/* The expected digest of data block 'block', walking the tree as needed. */
int verity_hash_for_block(struct dm_verity *v, sector_t block, u8 *digest,
			  bool *is_zero, int fec_depth)
{
	int r = 0, i;

	if (!v->levels) {
		memcpy(digest, v->root_digest, v->digest_size);
	} else {
		/* Fast path: the level-0 block is cached and was checked. */
		r = verify_level(v, block, 0, true, digest, fec_depth);
		if (r > 0) {
			memcpy(digest, v->root_digest, v->digest_size);
			for (i = v->levels - 1; i >= 0; i--) {
				r = verify_level(v, block, i, false, digest, fec_depth);
				if (r)
					break;
			}
		}
	}
	if (is_zero)
		*is_zero = !r && v->zero_digest &&
			!memcmp(v->zero_digest, digest, v->digest_size);
	return r;
}

/* ---------------------------------------------------------------- I/O */

static int verify_io(struct dm_verity_io *io)
{
	struct dm_verity *v = io->v;
	struct bio *bio = dm_bio_from_per_bio_data(io, v->ti->per_io_data_size);
	struct bvec_iter iter = io->iter;
	u8 want[HASH_MAX_DIGESTSIZE], got[HASH_MAX_DIGESTSIZE];
	unsigned int i;
	bool zero;
	int r;

	for (i = 0; i < io->n_blocks; i++) {
		sector_t block = io->block + i;
		struct bvec_iter start = iter;

		if (v->validated && test_bit(block, v->validated)) {
			bio_advance_iter(bio, &iter, 1 << v->data_block_bits);
			continue;
		}
		r = verity_hash_for_block(v, block, want, &zero, 0);
		if (r)
			return r;
		if (zero) {
			/* Zero blocks are not hashed on disk: return zeroes. */
			fill_bio_block(v, bio, &iter, NULL);
			continue;
		}
		r = digest_bio_block(v, bio, &iter, got);
		if (r)
			return r;
		if (!bio->bi_status && !memcmp(want, got, v->digest_size)) {
			if (v->validated)
				set_bit(block, v->validated);
			continue;
		}
		if (verity_fec_enabled(v)) {
			u8 *fixed = kmalloc(1 << v->data_block_bits, GFP_NOIO);

			if (fixed && !verity_fec_decode(v, VERITY_BLOCK_DATA, block, want,
							  fixed, 0)) {
				fill_bio_block(v, bio, &start, fixed);
				kfree(fixed);
				continue;
			}
			kfree(fixed);
		}
		/* A failed read that FEC could not repair is a plain I/O error. */
		if (bio->bi_status)
			return -EIO;
		if (verity_handle_err(v, VERITY_BLOCK_DATA, block))
			return -EIO;
	}
	return 0;
}

static void finish_io(struct dm_verity_io *io, blk_status_t status)
{
	struct bio *bio = dm_bio_from_per_bio_data(io, io->v->ti->per_io_data_size);

	bio->bi_end_io = io->orig_end_io;
	bio->bi_status = status;
	bio_endio(bio);
}

static void verify_work(struct work_struct *w)
{
	struct dm_verity_io *io = container_of(w, struct dm_verity_io, work);

	finish_io(io, errno_to_blk_status(verify_io(io)));
}

static void verity_end_io(struct bio *bio)
{
	struct dm_verity_io *io = bio->bi_private;

	if (bio->bi_status && !verity_fec_enabled(io->v)) {
		finish_io(io, bio->bi_status);
		return;
	}
	INIT_WORK(&io->work, verify_work);
	queue_work(io->v->verify_wq, &io->work);
}

static void prefetch_work(struct work_struct *work)
{
	struct verity_prefetch_work *pw =
		container_of(work, struct verity_prefetch_work, work);
	struct dm_verity *v = pw->v;
	int i;

	for (i = v->levels - 1; i >= 0; i--) {
		sector_t first = hash_location(v, pw->block, i, NULL);
		sector_t last = hash_location(v, pw->block + pw->n_blocks - 1, i, NULL);

		if (!i) {
			unsigned int cluster = READ_ONCE(prefetch_cluster);

			/* Read a whole aligned cluster of level-0 blocks at once. */
			cluster >>= v->data_block_bits;
			if (cluster) {
				cluster = 1U << __fls(cluster);
				first &= ~(sector_t)(cluster - 1);
				last |= cluster - 1;
				if (last >= v->hash_blocks)
					last = v->hash_blocks - 1;
			}
		}
		dm_bufio_prefetch(v->bufio, first, last - first + 1);
	}
	kfree(pw);
}

static void submit_prefetch(struct dm_verity *v, struct dm_verity_io *io)
{
	struct verity_prefetch_work *pw;

	if (!v->levels)
		return;
	pw = kmalloc(sizeof(*pw), GFP_NOIO | __GFP_NORETRY | __GFP_NOMEMALLOC | __GFP_NOWARN);
	if (!pw)
		return;
	INIT_WORK(&pw->work, prefetch_work);
	pw->v = v;
	pw->block = io->block;
	pw->n_blocks = io->n_blocks;
	queue_work(v->verify_wq, &pw->work);
}

static int verity_map(struct dm_target *ti, struct bio *bio)
{
	struct dm_verity *v = ti->private;
	unsigned int mask = (1 << (v->data_block_bits - SECTOR_SHIFT)) - 1;
	struct dm_verity_io *io;

	bio_set_dev(bio, v->data_dev->bdev);
	bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);

	if (((unsigned int)bio->bi_iter.bi_sector | bio_sectors(bio)) & mask) {
		DMERR_LIMIT("unaligned io");
		return DM_MAPIO_KILL;
	}
	if (bio_end_sector(bio) >> (v->data_block_bits - SECTOR_SHIFT) > v->data_blocks) {
		DMERR_LIMIT("io out of range");
		return DM_MAPIO_KILL;
	}
	if (bio_data_dir(bio) == WRITE)
		return DM_MAPIO_KILL;

	io = dm_per_bio_data(bio, ti->per_io_data_size);
	io->v = v;
	io->orig_end_io = bio->bi_end_io;
	io->block = bio->bi_iter.bi_sector >> (v->data_block_bits - SECTOR_SHIFT);
	io->n_blocks = bio->bi_iter.bi_size >> v->data_block_bits;
	io->iter = bio->bi_iter;
	bio->bi_end_io = verity_end_io;
	bio->bi_private = io;

	submit_prefetch(v, io);
	submit_bio_noacct(bio);
	return DM_MAPIO_SUBMITTED;
}

/* ---------------------------------------------------------------- status */

static const char *mode_word(enum verity_mode mode)
{
	switch (mode) {
	case VERITY_MODE_LOGGING:
		return "ignore_corruption";
	case VERITY_MODE_RESTART:
		return "restart_on_corruption";
	case VERITY_MODE_PANIC:
		return "panic_on_corruption";
	default:
		return NULL;
	}
}

static void verity_status(struct dm_target *ti, status_type_t type,
			  unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct dm_verity *v = ti->private;
	unsigned int sz = 0, args = 0, i;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%c", v->hash_failed ? 'C' : 'V');
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%u %s %s %u %u %llu %llu %s ", v->version, v->data_dev->name,
		       v->hash_dev->name, 1 << v->data_block_bits, 1 << v->hash_block_bits,
		       (unsigned long long)v->data_blocks,
		       (unsigned long long)v->hash_start, v->alg_name);
		for (i = 0; i < v->digest_size; i++)
			DMEMIT("%02x", v->root_digest[i]);
		DMEMIT(" ");
		if (!v->salt_size)
			DMEMIT("-");
		for (i = 0; i < v->salt_size; i++)
			DMEMIT("%02x", v->salt[i]);

		args = (v->mode != VERITY_MODE_EIO) + !!v->zero_digest + !!v->validated +
			v->use_tasklet + (verity_fec_enabled(v) ? 8 : 0) +
			(v->sig_key_desc ? 2 : 0);
		if (!args)
			break;
		DMEMIT(" %u", args);
		if (v->mode != VERITY_MODE_EIO)
			DMEMIT(" %s", mode_word(v->mode));
		if (v->zero_digest)
			DMEMIT(" ignore_zero_blocks");
		if (v->validated)
			DMEMIT(" check_at_most_once");
		if (v->use_tasklet)
			DMEMIT(" try_verify_in_tasklet");
		sz = verity_fec_status(v, result, sz, maxlen);
		if (v->sig_key_desc)
			DMEMIT(" root_hash_sig_key_desc %s", v->sig_key_desc);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",hash_failed=%c", v->hash_failed ? 'C' : 'V');
		DMEMIT(",verity_version=%u", v->version);
		DMEMIT(",data_device_name=%s", v->data_dev->name);
		DMEMIT(",hash_device_name=%s", v->hash_dev->name);
		DMEMIT(",verity_algorithm=%s", v->alg_name);
		DMEMIT(",root_digest=");
		for (i = 0; i < v->digest_size; i++)
			DMEMIT("%02x", v->root_digest[i]);
		DMEMIT(",salt=");
		if (!v->salt_size)
			DMEMIT("-");
		for (i = 0; i < v->salt_size; i++)
			DMEMIT("%02x", v->salt[i]);
		DMEMIT(",ignore_zero_blocks=%c", v->zero_digest ? 'y' : 'n');
		DMEMIT(",check_at_most_once=%c", v->validated ? 'y' : 'n');
		if (v->sig_key_desc)
			DMEMIT(",root_hash_sig_key_desc=%s", v->sig_key_desc);
		if (v->mode != VERITY_MODE_EIO)
			DMEMIT(",verity_mode=%s", mode_word(v->mode));
		DMEMIT(";");
		break;
	}
}

static int verity_prepare_ioctl(struct dm_target *ti, struct block_device **bdev)
{
	struct dm_verity *v = ti->private;

	*bdev = v->data_dev->bdev;
	/* Pass ioctls through only when we map the whole data device. */
	return ti->len != bdev_nr_sectors(v->data_dev->bdev);
}

static int verity_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				  void *data)
{
	struct dm_verity *v = ti->private;

	return fn(ti, v->data_dev, 0, ti->len, data);
}

static void verity_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct dm_verity *v = ti->private;
	unsigned int bs = 1 << v->data_block_bits;

	limits->logical_block_size = max_t(unsigned int, limits->logical_block_size, bs);
	limits->physical_block_size = max_t(unsigned int, limits->physical_block_size, bs);
	blk_limits_io_min(limits, limits->logical_block_size);
}

static void verity_postsuspend(struct dm_target *ti)
{
	struct dm_verity *v = ti->private;

	/* The hash device may change while suspended: forget what we cached. */
	flush_workqueue(v->verify_wq);
	dm_bufio_client_reset(v->bufio);
}

/* ---------------------------------------------------------------- ctr/dtr */

static void verity_dtr(struct dm_target *ti)
{
	struct dm_verity *v = ti->private;

	if (v->verify_wq)
		destroy_workqueue(v->verify_wq);
	verity_fec_dtr(v);
	if (v->bufio)
		dm_bufio_client_destroy(v->bufio);
	kvfree(v->validated);
	kfree(v->zero_digest);
	kfree(v->salt);
	kfree(v->root_digest);
	if (v->tfm)
		crypto_free_shash(v->tfm);
	kfree(v->alg_name);
	kfree(v->sig_key_desc);
	if (v->hash_dev)
		dm_put_device(ti, v->hash_dev);
	if (v->data_dev)
		dm_put_device(ti, v->data_dev);
	kfree(v);
}

static int alloc_zero_digest(struct dm_verity *v)
{
	u8 *zero;
	int r;

	if (v->zero_digest)
		return 0;
	v->zero_digest = kmalloc(v->digest_size, GFP_KERNEL);
	zero = kzalloc(1 << v->data_block_bits, GFP_KERNEL);
	if (!v->zero_digest || !zero) {
		kfree(zero);
		return -ENOMEM;
	}
	r = verity_digest(v, zero, 1 << v->data_block_bits, v->zero_digest);
	kfree(zero);
	return r;
}

static int alloc_validated(struct dm_verity *v)
{
	struct dm_target *ti = v->ti;

	if (v->validated)
		return 0;
	/* The bit helpers take int indices. */
	if (v->data_blocks > INT_MAX) {
		ti->error = "device too large to use check_at_most_once";
		return -E2BIG;
	}
	v->validated = kvcalloc(BITS_TO_LONGS(v->data_blocks), sizeof(unsigned long),
				GFP_KERNEL);
	if (!v->validated) {
		ti->error = "failed to allocate bitset for check_at_most_once";
		return -ENOMEM;
	}
	return 0;
}

static int set_mode(struct dm_verity *v, const char *word)
{
	enum verity_mode mode;

	if (!strcasecmp(word, "ignore_corruption"))
		mode = VERITY_MODE_LOGGING;
	else if (!strcasecmp(word, "restart_on_corruption"))
		mode = VERITY_MODE_RESTART;
	else if (!strcasecmp(word, "panic_on_corruption"))
		mode = VERITY_MODE_PANIC;
	else
		return 1;
	/* Only one mode word may be given, even the same one twice is refused. */
	if (v->mode)
		return -EINVAL;
	v->mode = mode;
	return 0;
}

static bool is_mode_word(const char *word)
{
	return !strcasecmp(word, "ignore_corruption") ||
		!strcasecmp(word, "restart_on_corruption") ||
		!strcasecmp(word, "panic_on_corruption");
}

/*
 * Parse the optional arguments. The first pass (early) runs before the
 * positional arguments and only picks up flags that change how those are
 * used; the second pass does the rest and rejects unknown words.
 */
static int parse_opt_args(struct dm_verity *v, struct dm_arg_set *as,
			  struct verity_sig *sig, bool early)
{
	static const struct dm_arg count_arg = {
		0, VERITY_OPTS_MAX, "Invalid number of feature args"
	};
	struct dm_target *ti = v->ti;
	unsigned int argc;
	const char *word;
	int r;

	if (dm_read_arg_group(&count_arg, as, &argc, &ti->error))
		return -EINVAL;

	while (argc) {
		word = dm_shift_arg(as);
		argc--;

		if (!strcasecmp(word, "try_verify_in_tasklet")) {
			/* Debian runs verification in the workqueue regardless. */
			v->use_tasklet = true;
			continue;
		}
		if (early)
			continue;

		if (is_mode_word(word)) {
			r = set_mode(v, word);
			if (r) {
				ti->error = "Conflicting error handling parameters";
				return r;
			}
		} else if (!strcasecmp(word, "ignore_zero_blocks")) {
			r = alloc_zero_digest(v);
			if (r) {
				ti->error = "Cannot allocate zero digest";
				return r;
			}
		} else if (!strcasecmp(word, "check_at_most_once")) {
			r = alloc_validated(v);
			if (r)
				return r;
		} else if (verity_is_fec_opt(word)) {
			r = verity_fec_parse_opt(v, as, &argc, word);
			if (r)
				return r;
		} else if (verity_is_sig_opt(word)) {
			r = verity_sig_parse_opt(v, as, &argc, sig);
			if (r)
				return r;
		} else {
			ti->error = "Unrecognized verity feature request";
			return -EINVAL;
		}
	}
	return 0;
}

static void bufio_alloc_callback(struct dm_buffer *buf)
{
	struct verity_buffer_aux *aux = dm_bufio_get_aux_data(buf);

	aux->verified = false;
}

/* Parse a block count that must still fit in sectors when scaled. */
static bool parse_blocks(const char *arg, unsigned int block_bits, sector_t *out)
{
	unsigned long long n;
	char dummy;
	unsigned int shift = block_bits - SECTOR_SHIFT;

	if (sscanf(arg, "%llu%c", &n, &dummy) != 1)
		return false;
	if ((sector_t)(n << shift) >> shift != n)
		return false;
	*out = n;
	return true;
}

static bool parse_block_size(const char *arg, struct dm_dev *dev, unsigned int max,
			     unsigned char *bits)
{
	unsigned int n;
	char dummy;

	if (sscanf(arg, "%u%c", &n, &dummy) != 1 || !n || !is_power_of_2(n) ||
	    n < bdev_logical_block_size(dev->bdev) || n > max)
		return false;
	*bits = __ffs(n);
	return true;
}

static int compute_levels(struct dm_verity *v)
{
	struct dm_target *ti = v->ti;
	unsigned int bits;
	sector_t pos, count;
	int i;

	v->hash_per_block_bits = __fls((1 << v->hash_block_bits) / v->digest_size);
	v->levels = 0;
	if (v->data_blocks) {
		while (v->hash_per_block_bits * v->levels < 64 &&
		       (unsigned long long)(v->data_blocks - 1) >>
		       (v->hash_per_block_bits * v->levels)) {
			v->levels++;
			if (v->levels > VERITY_MAX_LEVELS)
				break;
		}
	}
	if (v->levels > VERITY_MAX_LEVELS) {
		ti->error = "Too many tree levels";
		return -EINVAL;
	}

	/* The tree is stored top level first. */
	pos = v->hash_start;
	for (i = v->levels - 1; i >= 0; i--) {
		v->level_start[i] = pos;
		bits = (i + 1) * v->hash_per_block_bits;
		if (bits >= 64)
			count = 1;
		else
			count = (v->data_blocks >> bits) +
				!!(v->data_blocks & (((sector_t)1 << bits) - 1));
		if (pos + count < pos) {
			ti->error = "Hash device offset overflow";
			return -EINVAL;
		}
		pos += count;
	}
	v->hash_blocks = pos;
	return 0;
}

static int verity_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct verity_sig sig = {};
	struct dm_arg_set as;
	struct dm_verity *v;
	unsigned int num;
	char dummy;
	const char *root_hex;
	int r;

	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		ti->error = "Cannot allocate verity structure";
		return -ENOMEM;
	}
	ti->private = v;
	v->ti = ti;

	r = verity_fec_alloc(v);
	if (r)
		goto bad;

	if (dm_table_get_mode(ti->table) & ~FMODE_READ) {
		ti->error = "Device must be readonly";
		r = -EINVAL;
		goto bad;
	}
	if (argc < 10) {
		ti->error = "Not enough arguments";
		r = -EINVAL;
		goto bad;
	}
	if (argc > 10) {
		as.argc = argc - 10;
		as.argv = argv + 10;
		r = parse_opt_args(v, &as, &sig, true);
		if (r < 0)
			goto bad;
	}

	if (sscanf(argv[0], "%u%c", &num, &dummy) != 1 || num > 1) {
		ti->error = "Invalid version";
		r = -EINVAL;
		goto bad;
	}
	v->version = num;

	r = dm_get_device(ti, argv[1], FMODE_READ, &v->data_dev);
	if (r) {
		ti->error = "Data device lookup failed";
		goto bad;
	}
	r = dm_get_device(ti, argv[2], FMODE_READ, &v->hash_dev);
	if (r) {
		ti->error = "Hash device lookup failed";
		goto bad;
	}

	r = -EINVAL;
	if (!parse_block_size(argv[3], v->data_dev, PAGE_SIZE, &v->data_block_bits)) {
		ti->error = "Invalid data device block size";
		goto bad;
	}
	if (!parse_block_size(argv[4], v->hash_dev, INT_MAX, &v->hash_block_bits)) {
		ti->error = "Invalid hash device block size";
		goto bad;
	}
	if (!parse_blocks(argv[5], v->data_block_bits, &v->data_blocks)) {
		ti->error = "Invalid data blocks";
		goto bad;
	}
	if (ti->len > (v->data_blocks << (v->data_block_bits - SECTOR_SHIFT))) {
		ti->error = "Data device is too small";
		goto bad;
	}
	if (!parse_blocks(argv[6], v->hash_block_bits, &v->hash_start)) {
		ti->error = "Invalid hash start";
		goto bad;
	}

	v->alg_name = kstrdup(argv[7], GFP_KERNEL);
	if (!v->alg_name) {
		ti->error = "Cannot allocate algorithm name";
		r = -ENOMEM;
		goto bad;
	}
	v->tfm = crypto_alloc_shash(v->alg_name, 0, 0);
	if (IS_ERR(v->tfm)) {
		ti->error = "Cannot initialize hash function";
		r = PTR_ERR(v->tfm);
		v->tfm = NULL;
		goto bad;
	}
	v->digest_size = crypto_shash_digestsize(v->tfm);
	if ((1U << v->hash_block_bits) < v->digest_size * 2) {
		ti->error = "Digest size too big";
		r = -EINVAL;
		goto bad;
	}

	v->root_digest = kmalloc(v->digest_size, GFP_KERNEL);
	if (!v->root_digest) {
		ti->error = "Cannot allocate root digest";
		r = -ENOMEM;
		goto bad;
	}
	root_hex = argv[8];
	if (strlen(root_hex) != v->digest_size * 2 ||
	    hex2bin(v->root_digest, root_hex, v->digest_size)) {
		ti->error = "Invalid root digest";
		r = -EINVAL;
		goto bad;
	}

	if (strcmp(argv[9], "-")) {
		v->salt_size = strlen(argv[9]) / 2;
		v->salt = kmalloc(v->salt_size ? v->salt_size : 1, GFP_KERNEL);
		if (!v->salt) {
			ti->error = "Cannot allocate salt";
			r = -ENOMEM;
			goto bad;
		}
		if (strlen(argv[9]) != v->salt_size * 2 ||
		    hex2bin(v->salt, argv[9], v->salt_size)) {
			ti->error = "Invalid salt";
			r = -EINVAL;
			goto bad;
		}
	}

	if (argc > 10) {
		as.argc = argc - 10;
		as.argv = argv + 10;
		r = parse_opt_args(v, &as, &sig, false);
		if (r < 0)
			goto bad;
	}

	r = verity_sig_check(root_hex, &sig);
	if (r < 0) {
		ti->error = "Root hash verification failed";
		goto bad;
	}

	r = compute_levels(v);
	if (r)
		goto bad;

	v->bufio = dm_bufio_client_create(v->hash_dev->bdev, 1 << v->hash_block_bits, 1,
					  sizeof(struct verity_buffer_aux),
					  bufio_alloc_callback, NULL, 0);
	if (IS_ERR(v->bufio)) {
		ti->error = "Cannot initialize dm-bufio";
		r = PTR_ERR(v->bufio);
		v->bufio = NULL;
		goto bad;
	}
	if (dm_bufio_get_device_size(v->bufio) < v->hash_blocks) {
		ti->error = "Hash device is too small";
		r = -E2BIG;
		goto bad;
	}

	v->verify_wq = alloc_workqueue("kverityd", WQ_MEM_RECLAIM | WQ_UNBOUND,
				       num_online_cpus());
	if (!v->verify_wq) {
		ti->error = "Cannot allocate workqueue";
		r = -ENOMEM;
		goto bad;
	}

	ti->per_io_data_size = sizeof(struct dm_verity_io);

	r = verity_fec_ctr(v);
	if (r)
		goto bad;

	verity_sig_free(&sig);
	return 0;

bad:
	verity_sig_free(&sig);
	verity_dtr(ti);
	return r;
}

static struct target_type verity_target = {
	.name = "verity",
	.features = DM_TARGET_IMMUTABLE,
	.version = {1, 9, 0},
	.module = THIS_MODULE,
	.ctr = verity_ctr,
	.dtr = verity_dtr,
	.map = verity_map,
	.status = verity_status,
	.prepare_ioctl = verity_prepare_ioctl,
	.iterate_devices = verity_iterate_devices,
	.io_hints = verity_io_hints,
	.postsuspend = verity_postsuspend,
};

static int __init dm_verity_init(void)
{
	int r = dm_register_target(&verity_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit dm_verity_exit(void)
{
	dm_unregister_target(&verity_target);
}

module_init(dm_verity_init);
module_exit(dm_verity_exit);

MODULE_DESCRIPTION("device-mapper target that verifies data blocks against a hash tree");
MODULE_LICENSE("GPL");
