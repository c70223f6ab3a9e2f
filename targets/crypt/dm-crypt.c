// SPDX-License-Identifier: GPL-2.0-only
/*
 * crypt: transparent encryption of a block device with the kernel crypto API.
 *
 * Every encryption unit (sector_size bytes, 512 by default) is one cipher
 * call whose IV comes from an IV generator fed with the unit's sector
 * number. Writes are encrypted into pages of a private bio; reads go to a
 * clone that shares the caller's pages and are decrypted in place once the
 * clone completes. The crypto work runs on the kcryptd workqueue unless the
 * no_read_workqueue / no_write_workqueue options ask for it to run inline.
 *
 * The tfms may be asynchronous: each unit then owns a request until the
 * crypto driver calls back, and a count of units in flight decides who
 * finishes the bio.
 */
#include <linux/module.h>
#include <linux/device-mapper.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/blk-integrity.h>
#include <linux/mempool.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/crc32.h>
#include <linux/random.h>
#include <linux/key.h>
#include <linux/key-type.h>
#include <linux/scatterlist.h>
#include <linux/highmem.h>
#include <linux/log2.h>
#include <linux/kthread.h>
#include <linux/rbtree.h>
#include <linux/audit.h>
#include <linux/rtnetlink.h>
#include <keys/user-type.h>
#include <keys/encrypted-type.h>
#include <crypto/skcipher.h>
#include <crypto/aead.h>
#include <crypto/authenc.h>
#include <crypto/hash.h>
#include <crypto/md5.h>
#include <crypto/algapi.h>
#include <crypto/scatterwalk.h>
#include <asm/unaligned.h>

#include "dm-exports.h"

#define DM_MSG_PREFIX "crypt"

#define CRYPT_MIN_IOS		64
#define CRYPT_MAX_TAG		480
#define CRYPT_MAX_OPTS		8
#define TCW_WHITEN_BYTES	16
#define LMK_SEED_BYTES		64
#define ELEPHANT_MAX_KEY	32
#define TAG_POOL_BYTES		512

/* cc->flags */
enum {
	CRYPT_KEY_VALID,
	CRYPT_SUSPENDED,
	CRYPT_SAME_CPU,
	CRYPT_NO_OFFLOAD,
	CRYPT_NO_READ_WQ,
	CRYPT_NO_WRITE_WQ,
	CRYPT_IV_LARGE,
	CRYPT_AEAD,		/* integrity:<n>:aead */
	CRYPT_AUTHENC,		/* AEAD is authenc(): key gets a MAC part */
	CRYPT_WRITE_INPLACE,	/* IV generator rewrites plaintext first */
};

struct crypt_config;
struct crypt_unit;

struct crypt_iv_ops {
	int (*ctr)(struct crypt_config *cc, struct dm_target *ti, const char *opts);
	void (*dtr)(struct crypt_config *cc);
	int (*init)(struct crypt_config *cc);
	int (*wipe)(struct crypt_config *cc);
	/* before the cipher call (process context) */
	int (*gen)(struct crypt_config *cc, u8 *iv, struct crypt_unit *u);
	/* after the cipher call (any context) */
	int (*post)(struct crypt_config *cc, u8 *iv, struct crypt_unit *u);
};

struct crypt_config {
	struct dm_dev *dev;
	sector_t start;
	u64 iv_offset;

	struct workqueue_struct *io_queue;
	struct workqueue_struct *crypt_queue;

	/*
	 * Encrypted writes wait here, sorted by sector, for one thread that
	 * submits them under a plug: the crypt workers finish in any order.
	 */
	struct task_struct *write_thread;
	spinlock_t write_lock;
	struct rb_root write_tree;

	const struct crypt_iv_ops *iv_ops;
	union {
		struct {
			int shift;
		} benbi;
		struct {
			struct crypto_shash *md5;
			u8 *seed;
		} lmk;
		struct {
			u8 *seed;
			u8 *whiten;
		} tcw;
		struct {
			struct crypto_sync_skcipher *ecb;
		} elephant;
	} iv;

	union {
		struct crypto_skcipher **sk;
		struct crypto_aead **aead;
	} tfms;
	unsigned int tfms_count;
	unsigned long flags;

	unsigned int iv_size;
	unsigned int sector_size;
	unsigned int sector_shift;

	/* layout of one request: crypto request, crypt_unit, IV, bounce */
	unsigned int unit_off;
	unsigned int iv_off;
	unsigned int iv_align;
	unsigned int bounce_off;
	unsigned int bounce_size;
	unsigned int req_size;
	unsigned int per_bio_size;

	mempool_t req_pool;
	mempool_t page_pool;
	mempool_t tag_pool;
	struct bio_set bs;
	struct mutex alloc_lock;	/* one sleeping page allocator at a time */

	char *cipher_string;
	char *cipher_auth;
	char *key_string;		/* "<type>:<desc>" of a keyring key */

	unsigned int on_disk_tag_size;
	unsigned int tag_size;		/* AEAD authentication tag bytes */
	unsigned int integrity_iv_size;	/* stored IV bytes (random) */
	unsigned int tag_pool_sectors;

	unsigned int key_size;
	unsigned int key_parts;
	unsigned int key_extra_size;
	unsigned int key_mac_size;
	u8 *authenc_key;

	u8 key[];
};

/* Per-bio state, in the per-bio data of the bio dm core hands us. */
struct crypt_io {
	struct crypt_config *cc;
	struct bio *base;
	struct bio *clone;
	struct bio *bio_in;
	struct bio *bio_out;
	struct bvec_iter iter_in;
	struct bvec_iter iter_out;
	sector_t sector;	/* target-relative first sector */
	sector_t next;		/* target-relative sector of the next unit */
	atomic_t pending;
	struct completion restart;
	blk_status_t error;
	struct work_struct work;
	void *spare_req;	/* an idle request the next unit may use */
	u8 *tags;		/* on-disk metadata of every unit */
	bool tags_pooled;
	struct rb_node rb_node;	/* in write_tree */
	/* the first request follows */
};

struct crypt_unit {
	struct crypt_io *io;
	sector_t sector;	/* target-relative 512-byte sector */
	u64 iv_sector;
	bool write;
	bool pooled;
	__le64 aad_sector;
	u8 *tag;
	struct scatterlist sg_in[4];
	struct scatterlist sg_out[4];
};

static void *io_first_req(struct crypt_io *io)
{
	return io + 1;
}

static struct crypt_unit *req_unit(struct crypt_config *cc, void *req)
{
	return req + cc->unit_off;
}

static u8 *req_iv(struct crypt_config *cc, void *req)
{
	return PTR_ALIGN((u8 *)req + cc->iv_off, cc->iv_align);
}

/* the IV as generated, for the AEAD associated data */
static u8 *req_org_iv(struct crypt_config *cc, void *req)
{
	return req_iv(cc, req) + cc->iv_size;
}

static u8 *unit_bounce(struct crypt_config *cc, struct crypt_unit *u)
{
	return (u8 *)u - cc->unit_off + cc->bounce_off;
}

static bool crypt_is_aead(struct crypt_config *cc)
{
	return test_bit(CRYPT_AEAD, &cc->flags);
}

static struct crypto_skcipher *any_sk(struct crypt_config *cc)
{
	return cc->tfms.sk[0];
}

static struct crypto_aead *any_aead(struct crypt_config *cc)
{
	return cc->tfms.aead[0];
}

static unsigned int subkey_size(struct crypt_config *cc)
{
	return (cc->key_size - cc->key_extra_size) >> ilog2(cc->tfms_count);
}

/* Copy one encryption unit between a single-entry sg and a flat buffer. */
static void unit_copy(struct crypt_config *cc, struct scatterlist *sg, u8 *buf,
		      bool to_sg)
{
	scatterwalk_map_and_copy(buf, sg, 0, cc->sector_size, to_sg);
}

/* ------------------------------------------------------------ IV modes */

static int iv_plain_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	memset(iv, 0, cc->iv_size);
	put_unaligned_le32(u->iv_sector & 0xffffffff, iv);
	return 0;
}

static int iv_plain64_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	memset(iv, 0, cc->iv_size);
	put_unaligned_le64(u->iv_sector, iv);
	return 0;
}

static int iv_plain64be_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	memset(iv, 0, cc->iv_size);
	put_unaligned_be64(u->iv_sector, iv + cc->iv_size - sizeof(u64));
	return 0;
}

static int iv_null_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	memset(iv, 0, cc->iv_size);
	return 0;
}

/* The essiv() crypto template salts the IV; we hand it the plain64 value. */
static const struct crypt_iv_ops iv_plain_ops = { .gen = iv_plain_gen };
static const struct crypt_iv_ops iv_plain64_ops = { .gen = iv_plain64_gen };
static const struct crypt_iv_ops iv_plain64be_ops = { .gen = iv_plain64be_gen };
static const struct crypt_iv_ops iv_essiv_ops = { .gen = iv_plain64_gen };
static const struct crypt_iv_ops iv_null_ops = { .gen = iv_null_gen };

static int iv_benbi_ctr(struct crypt_config *cc, struct dm_target *ti,
			const char *opts)
{
	unsigned int bs;
	int lg;

	if (crypt_is_aead(cc))
		bs = crypto_aead_blocksize(any_aead(cc));
	else
		bs = crypto_skcipher_blocksize(any_sk(cc));
	lg = ilog2(bs);
	if (1U << lg != bs) {
		ti->error = "cypher blocksize is not a power of 2";
		return -EINVAL;
	}
	if (lg > 9) {
		ti->error = "cypher blocksize is > 512";
		return -EINVAL;
	}
	cc->iv.benbi.shift = 9 - lg;
	return 0;
}

static int iv_benbi_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	memset(iv, 0, cc->iv_size);
	/* count of narrow blocks, starting at 1 */
	put_unaligned_be64((u->iv_sector << cc->iv.benbi.shift) + 1,
			   iv + cc->iv_size - sizeof(u64));
	return 0;
}

static const struct crypt_iv_ops iv_benbi_ops = {
	.ctr = iv_benbi_ctr,
	.gen = iv_benbi_gen,
};

static int iv_eboiv_ctr(struct crypt_config *cc, struct dm_target *ti,
			const char *opts)
{
	if (crypt_is_aead(cc)) {
		ti->error = "AEAD transforms not supported for EBOIV";
		return -EINVAL;
	}
	if (crypto_skcipher_blocksize(any_sk(cc)) != cc->iv_size) {
		ti->error = "Block size of EBOIV cipher does not match IV size of block cipher";
		return -EINVAL;
	}
	return 0;
}

/*
 * IV = E_K(byte offset): the volume cipher run over one zero block with the
 * offset as its IV gives exactly one block encryption of the offset.
 */
static int iv_eboiv_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 ivin[16] __aligned(8);
	struct skcipher_request *req;
	struct scatterlist src, dst;
	DECLARE_CRYPTO_WAIT(wait);
	int r;

	req = skcipher_request_alloc(any_sk(cc), GFP_NOIO);
	if (!req)
		return -ENOMEM;
	memset(ivin, 0, sizeof(ivin));
	put_unaligned_le64(u->iv_sector * cc->sector_size, ivin);
	sg_init_one(&src, page_address(ZERO_PAGE(0)), cc->iv_size);
	sg_init_one(&dst, iv, cc->iv_size);
	skcipher_request_set_crypt(req, &src, &dst, cc->iv_size, ivin);
	skcipher_request_set_callback(req, 0, crypto_req_done, &wait);
	r = crypto_wait_req(crypto_skcipher_encrypt(req), &wait);
	skcipher_request_free(req);
	return r;
}

static const struct crypt_iv_ops iv_eboiv_ops = {
	.ctr = iv_eboiv_ctr,
	.gen = iv_eboiv_gen,
};

/* --- elephant (BitLocker): eboiv plus a sector key and two diffusers */

static void elephant_dtr(struct crypt_config *cc)
{
	crypto_free_sync_skcipher(cc->iv.elephant.ecb);
	cc->iv.elephant.ecb = NULL;
}

static int elephant_ctr(struct crypt_config *cc, struct dm_target *ti,
			const char *opts)
{
	struct crypto_sync_skcipher *ecb;
	int r;

	ecb = crypto_alloc_sync_skcipher("ecb(aes)", 0, 0);
	if (IS_ERR(ecb)) {
		ti->error = "Error allocating elephant tfm";
		return PTR_ERR(ecb);
	}
	cc->iv.elephant.ecb = ecb;
	r = iv_eboiv_ctr(cc, ti, opts);
	if (r)
		elephant_dtr(cc);
	return r;
}

static int elephant_init(struct crypt_config *cc)
{
	return crypto_sync_skcipher_setkey(cc->iv.elephant.ecb,
					   cc->key + cc->key_size - cc->key_extra_size,
					   cc->key_extra_size);
}

static int elephant_wipe(struct crypt_config *cc)
{
	u8 zero[ELEPHANT_MAX_KEY] = { 0 };

	return crypto_sync_skcipher_setkey(cc->iv.elephant.ecb, zero,
					   cc->key_extra_size);
}

static void diffuser_a(u32 *d, unsigned int w, bool dec)
{
	static const u8 rot[4] = { 9, 0, 13, 0 };
	int pass, i;

	for (pass = 0; pass < 5; pass++) {
		if (!dec) {
			for (i = w - 1; i >= 0; i--)
				d[i] -= d[(i + w - 2) % w] ^
					rol32(d[(i + w - 5) % w], rot[i % 4]);
		} else {
			for (i = 0; i < w; i++)
				d[i] += d[(i + w - 2) % w] ^
					rol32(d[(i + w - 5) % w], rot[i % 4]);
		}
	}
}

static void diffuser_b(u32 *d, unsigned int w, bool dec)
{
	static const u8 rot[4] = { 0, 10, 0, 25 };
	int pass, i;

	for (pass = 0; pass < 3; pass++) {
		if (!dec) {
			for (i = w - 1; i >= 0; i--)
				d[i] -= d[(i + 2) % w] ^
					rol32(d[(i + 5) % w], rot[i % 4]);
		} else {
			for (i = 0; i < w; i++)
				d[i] += d[(i + 2) % w] ^
					rol32(d[(i + 5) % w], rot[i % 4]);
		}
	}
}

/*
 * Bounce layout: [0, sector_size) unit data, then 32 bytes of sector key.
 * The diffusers work on little-endian words; convert around them.
 */
static void elephant_transform(struct crypt_config *cc, u8 *data, const u8 *ks,
			       bool write)
{
	unsigned int w = cc->sector_size / sizeof(u32);
	u32 *d = (u32 *)data;
	unsigned int i;

	if (write)
		for (i = 0; i < cc->sector_size; i += 32)
			crypto_xor(data + i, ks, 32);
	for (i = 0; i < w; i++)
		d[i] = le32_to_cpu((__force __le32)d[i]);
	if (write) {
		diffuser_a(d, w, false);
		diffuser_b(d, w, false);
	} else {
		diffuser_b(d, w, true);
		diffuser_a(d, w, true);
	}
	for (i = 0; i < w; i++)
		d[i] = (__force u32)cpu_to_le32(d[i]);
	if (!write)
		for (i = 0; i < cc->sector_size; i += 32)
			crypto_xor(data + i, ks, 32);
}

static int elephant_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	SYNC_SKCIPHER_REQUEST_ON_STACK(req, cc->iv.elephant.ecb);
	u8 *bounce = unit_bounce(cc, u);
	u8 *ks = bounce + cc->sector_size;
	struct scatterlist sg;
	int r;

	memset(ks, 0, 32);
	put_unaligned_le64(u->iv_sector * cc->sector_size, ks);
	put_unaligned_le64(u->iv_sector * cc->sector_size, ks + 16);
	ks[31] = 0x80;
	sg_init_one(&sg, ks, 32);
	skcipher_request_set_sync_tfm(req, cc->iv.elephant.ecb);
	skcipher_request_set_callback(req, 0, NULL, NULL);
	skcipher_request_set_crypt(req, &sg, &sg, 32, NULL);
	r = crypto_skcipher_encrypt(req);
	skcipher_request_zero(req);
	if (r)
		return r;

	r = iv_eboiv_gen(cc, iv, u);
	if (r)
		return r;

	if (u->write) {
		/* the cipher then runs in place on the output */
		unit_copy(cc, u->sg_in, bounce, false);
		elephant_transform(cc, bounce, ks, true);
		unit_copy(cc, u->sg_out, bounce, true);
	}
	return 0;
}

static int elephant_post(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 *bounce = unit_bounce(cc, u);

	if (u->write)
		return 0;
	unit_copy(cc, u->sg_out, bounce, false);
	elephant_transform(cc, bounce, bounce + cc->sector_size, false);
	unit_copy(cc, u->sg_out, bounce, true);
	memzero_explicit(bounce, cc->sector_size + 32);
	return 0;
}

static const struct crypt_iv_ops iv_elephant_ops = {
	.ctr = elephant_ctr,
	.dtr = elephant_dtr,
	.init = elephant_init,
	.wipe = elephant_wipe,
	.gen = elephant_gen,
	.post = elephant_post,
};

/* --- lmk (loop-AES): IV is an MD5 state over the sector's plaintext */

static void lmk_dtr(struct crypt_config *cc)
{
	if (cc->iv.lmk.md5 && !IS_ERR(cc->iv.lmk.md5))
		crypto_free_shash(cc->iv.lmk.md5);
	cc->iv.lmk.md5 = NULL;
	kfree_sensitive(cc->iv.lmk.seed);
	cc->iv.lmk.seed = NULL;
}

static int lmk_ctr(struct crypt_config *cc, struct dm_target *ti,
		   const char *opts)
{
	if (cc->sector_size != SECTOR_SIZE) {
		ti->error = "Unsupported sector size for LMK";
		return -EINVAL;
	}
	cc->iv.lmk.md5 = crypto_alloc_shash("md5", 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(cc->iv.lmk.md5)) {
		ti->error = "Error initializing LMK hash";
		return PTR_ERR(cc->iv.lmk.md5);
	}
	/* version 3 (one key part more than tfms) carries a seed */
	if (cc->key_parts == cc->tfms_count)
		return 0;
	cc->iv.lmk.seed = kzalloc(LMK_SEED_BYTES, GFP_KERNEL);
	if (!cc->iv.lmk.seed) {
		lmk_dtr(cc);
		ti->error = "Error kmallocing seed storage in LMK";
		return -ENOMEM;
	}
	return 0;
}

static int lmk_init(struct crypt_config *cc)
{
	if (cc->iv.lmk.seed)
		memcpy(cc->iv.lmk.seed, cc->key + cc->tfms_count * subkey_size(cc),
		       MD5_DIGEST_SIZE);
	return 0;
}

static int lmk_wipe(struct crypt_config *cc)
{
	if (cc->iv.lmk.seed)
		memset(cc->iv.lmk.seed, 0, LMK_SEED_BYTES);
	return 0;
}

static int lmk_iv(struct crypt_config *cc, u8 *iv, struct crypt_unit *u,
		  const u8 *data)
{
	SHASH_DESC_ON_STACK(desc, cc->iv.lmk.md5);
	struct md5_state st;
	__le32 tail[4];
	int r, i;

	desc->tfm = cc->iv.lmk.md5;
	r = crypto_shash_init(desc);
	if (!r && cc->iv.lmk.seed)
		r = crypto_shash_update(desc, cc->iv.lmk.seed, LMK_SEED_BYTES);
	if (!r)
		r = crypto_shash_update(desc, data + 16, SECTOR_SIZE - 16);
	if (r)
		goto out;
	tail[0] = cpu_to_le32(u->iv_sector & 0xffffffff);
	tail[1] = cpu_to_le32(((u->iv_sector >> 32) & 0x00ffffff) | 0x80000000);
	tail[2] = cpu_to_le32(4024);
	tail[3] = 0;
	r = crypto_shash_update(desc, (u8 *)tail, sizeof(tail));
	if (r)
		goto out;
	/* the raw chaining state, never finalised */
	r = crypto_shash_export(desc, &st);
	if (r)
		goto out;
	for (i = 0; i < MD5_HASH_WORDS; i++)
		put_unaligned_le32(st.hash[i], iv + 4 * i);
	memzero_explicit(&st, sizeof(st));
out:
	shash_desc_zero(desc);
	return r;
}

static int lmk_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 *bounce = unit_bounce(cc, u);
	int r;

	if (!u->write) {
		memset(iv, 0, cc->iv_size);
		return 0;
	}
	unit_copy(cc, u->sg_in, bounce, false);
	r = lmk_iv(cc, iv, u, bounce);
	memzero_explicit(bounce, SECTOR_SIZE);
	return r;
}

static int lmk_post(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 *bounce = unit_bounce(cc, u);
	int r;

	if (u->write)
		return 0;
	unit_copy(cc, u->sg_out, bounce, false);
	r = lmk_iv(cc, iv, u, bounce);
	if (!r) {
		crypto_xor(bounce, iv, cc->iv_size);
		unit_copy(cc, u->sg_out, bounce, true);
	}
	memzero_explicit(bounce, SECTOR_SIZE);
	return r;
}

static const struct crypt_iv_ops iv_lmk_ops = {
	.ctr = lmk_ctr,
	.dtr = lmk_dtr,
	.init = lmk_init,
	.wipe = lmk_wipe,
	.gen = lmk_gen,
	.post = lmk_post,
};

/* --- tcw (TrueCrypt legacy CBC): seeded IV and CRC32-derived whitening */

static void tcw_dtr(struct crypt_config *cc)
{
	kfree_sensitive(cc->iv.tcw.seed);
	kfree_sensitive(cc->iv.tcw.whiten);
	cc->iv.tcw.seed = NULL;
	cc->iv.tcw.whiten = NULL;
}

static int tcw_ctr(struct crypt_config *cc, struct dm_target *ti,
		   const char *opts)
{
	if (cc->sector_size != SECTOR_SIZE) {
		ti->error = "Unsupported sector size for TCW";
		return -EINVAL;
	}
	if (cc->key_size <= cc->iv_size + TCW_WHITEN_BYTES) {
		ti->error = "Wrong key size for TCW";
		return -EINVAL;
	}
	cc->iv.tcw.seed = kzalloc(cc->iv_size, GFP_KERNEL);
	cc->iv.tcw.whiten = kzalloc(TCW_WHITEN_BYTES, GFP_KERNEL);
	if (!cc->iv.tcw.seed || !cc->iv.tcw.whiten) {
		tcw_dtr(cc);
		ti->error = "Error allocating seed storage in TCW";
		return -ENOMEM;
	}
	return 0;
}

static int tcw_init(struct crypt_config *cc)
{
	unsigned int off = cc->key_size - cc->iv_size - TCW_WHITEN_BYTES;

	memcpy(cc->iv.tcw.seed, cc->key + off, cc->iv_size);
	memcpy(cc->iv.tcw.whiten, cc->key + off + cc->iv_size, TCW_WHITEN_BYTES);
	return 0;
}

static int tcw_wipe(struct crypt_config *cc)
{
	memset(cc->iv.tcw.seed, 0, cc->iv_size);
	memset(cc->iv.tcw.whiten, 0, TCW_WHITEN_BYTES);
	return 0;
}

static void tcw_whiten(struct crypt_config *cc, struct crypt_unit *u, u8 *data)
{
	u8 w[TCW_WHITEN_BYTES];
	unsigned int i;

	for (i = 0; i < TCW_WHITEN_BYTES; i++)
		w[i] = cc->iv.tcw.whiten[i] ^ (u8)(u->iv_sector >> (8 * (i % 8)));
	/* each 4-byte piece becomes its own CRC32 (seed 0, not inverted) */
	for (i = 0; i < 4; i++)
		put_unaligned_le32(crc32_le(0, w + 4 * i, 4), w + 4 * i);
	crypto_xor(w, w + 12, 4);
	crypto_xor(w + 4, w + 8, 4);
	for (i = 0; i < SECTOR_SIZE; i += 8)
		crypto_xor(data + i, w, 8);
	memzero_explicit(w, sizeof(w));
}

static int tcw_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 *bounce = unit_bounce(cc, u);
	unsigned int i;

	if (!u->write) {
		/* strip the whitening from the ciphertext in place */
		unit_copy(cc, u->sg_in, bounce, false);
		tcw_whiten(cc, u, bounce);
		unit_copy(cc, u->sg_in, bounce, true);
	}
	for (i = 0; i < cc->iv_size; i++)
		iv[i] = cc->iv.tcw.seed[i] ^ (u8)(u->iv_sector >> (8 * (i % 8)));
	return 0;
}

static int tcw_post(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	u8 *bounce = unit_bounce(cc, u);

	if (!u->write)
		return 0;
	unit_copy(cc, u->sg_out, bounce, false);
	tcw_whiten(cc, u, bounce);
	unit_copy(cc, u->sg_out, bounce, true);
	return 0;
}

static const struct crypt_iv_ops iv_tcw_ops = {
	.ctr = tcw_ctr,
	.dtr = tcw_dtr,
	.init = tcw_init,
	.wipe = tcw_wipe,
	.gen = tcw_gen,
	.post = tcw_post,
};

/* --- random: fresh IV per write, kept in the integrity metadata */

static int iv_random_gen(struct crypt_config *cc, u8 *iv, struct crypt_unit *u)
{
	if (u->write)
		get_random_bytes(iv, cc->iv_size);
	else
		memcpy(iv, u->tag + cc->tag_size, cc->iv_size);
	return 0;
}

static const struct crypt_iv_ops iv_random_ops = { .gen = iv_random_gen };

/* ------------------------------------------------------------ keys */

static void crypt_free_tfms(struct crypt_config *cc)
{
	unsigned int i;

	if (!cc->tfms.sk)
		return;
	for (i = 0; i < cc->tfms_count; i++) {
		if (crypt_is_aead(cc)) {
			if (!IS_ERR_OR_NULL(cc->tfms.aead[i]))
				crypto_free_aead(cc->tfms.aead[i]);
		} else if (!IS_ERR_OR_NULL(cc->tfms.sk[i])) {
			crypto_free_skcipher(cc->tfms.sk[i]);
		}
	}
	kfree(cc->tfms.sk);
	cc->tfms.sk = NULL;
}

static int crypt_alloc_tfms(struct crypt_config *cc, const char *name)
{
	unsigned int i;

	cc->tfms.sk = kcalloc(cc->tfms_count, sizeof(void *), GFP_KERNEL);
	if (!cc->tfms.sk)
		return -ENOMEM;
	for (i = 0; i < cc->tfms_count; i++) {
		int r;

		if (crypt_is_aead(cc)) {
			cc->tfms.aead[i] = crypto_alloc_aead(name, 0,
							     CRYPTO_ALG_ALLOCATES_MEMORY);
			r = PTR_ERR_OR_ZERO(cc->tfms.aead[i]);
		} else {
			cc->tfms.sk[i] = crypto_alloc_skcipher(name, 0,
							       CRYPTO_ALG_ALLOCATES_MEMORY);
			r = PTR_ERR_OR_ZERO(cc->tfms.sk[i]);
		}
		if (r) {
			crypt_free_tfms(cc);
			return r;
		}
	}
	return 0;
}

/* authenc() wants its key as an rtattr header, the MAC key, then the cipher key. */
static unsigned int authenc_key_size(struct crypt_config *cc)
{
	return subkey_size(cc) + RTA_SPACE(sizeof(struct crypto_authenc_key_param));
}

static void build_authenc_key(struct crypt_config *cc)
{
	unsigned int enc = subkey_size(cc) - cc->key_mac_size;
	struct crypto_authenc_key_param *param;
	struct rtattr *rta = (struct rtattr *)cc->authenc_key;

	rta->rta_type = CRYPTO_AUTHENC_KEYA_PARAM;
	rta->rta_len = RTA_LENGTH(sizeof(*param));
	param = RTA_DATA(rta);
	param->enckeylen = cpu_to_be32(enc);
	/* table key is enc_key || mac_key */
	memcpy(cc->authenc_key + RTA_SPACE(sizeof(*param)), cc->key + enc,
	       cc->key_mac_size);
	memcpy(cc->authenc_key + RTA_SPACE(sizeof(*param)) + cc->key_mac_size,
	       cc->key, enc);
}

/* Key every tfm with its slice of cc->key. */
static int crypt_setkey(struct crypt_config *cc)
{
	unsigned int sub = subkey_size(cc);
	unsigned int i;
	int r, err = 0;

	if (test_bit(CRYPT_AUTHENC, &cc->flags)) {
		if (sub < cc->key_mac_size)
			return -EINVAL;
		build_authenc_key(cc);
	}
	for (i = 0; i < cc->tfms_count; i++) {
		if (test_bit(CRYPT_AUTHENC, &cc->flags))
			r = crypto_aead_setkey(cc->tfms.aead[i], cc->authenc_key,
					       authenc_key_size(cc));
		else if (crypt_is_aead(cc))
			r = crypto_aead_setkey(cc->tfms.aead[i], cc->key + i * sub, sub);
		else
			r = crypto_skcipher_setkey(cc->tfms.sk[i], cc->key + i * sub, sub);
		if (r)
			err = r;
	}
	if (test_bit(CRYPT_AUTHENC, &cc->flags))
		memzero_explicit(cc->authenc_key, authenc_key_size(cc));
	return err;
}

/*
 * The key size of a key argument: hex digits / 2, or the <size> of
 * ":<size>:<type>:<desc>", in which case *key is moved to ":<type>:<desc>".
 */
static int crypt_key_size(char **key)
{
	unsigned int size;
	char *colon;
	char c;

	if ((*key)[0] != ':')
		return strlen(*key) >> 1;
	colon = strchr(*key + 1, ':');
	if (!colon)
		return -EINVAL;
	if (sscanf(*key + 1, "%u%c", &size, &c) != 2 || c != ':')
		return -EINVAL;
	*key = colon;
	return size;
}

static int copy_user_key(struct crypt_config *cc, struct key *key)
{
	const struct user_key_payload *p = user_key_payload_locked(key);

	if (!p)
		return -EKEYREVOKED;
	if (p->datalen != cc->key_size)
		return -EINVAL;
	memcpy(cc->key, p->data, cc->key_size);
	return 0;
}

static int copy_encrypted_key(struct crypt_config *cc, struct key *key)
{
	const struct encrypted_key_payload *p = key->payload.data[0];

	if (!p)
		return -EKEYREVOKED;
	if (p->decrypted_datalen != cc->key_size)
		return -EINVAL;
	memcpy(cc->key, p->decrypted_data, cc->key_size);
	return 0;
}

/* spec is "<type>:<desc>" */
static int crypt_set_keyring_key(struct crypt_config *cc, const char *spec)
{
	int (*copy)(struct crypt_config *cc, struct key *key);
	struct key_type *type;
	const char *desc;
	char *saved;
	struct key *key;
	size_t tlen;
	int r;

	desc = strchr(spec, ':');
	if (!desc || desc == spec || !desc[1])
		return -EINVAL;
	tlen = desc - spec + 1;
	if (!strncmp(spec, "logon:", tlen)) {
		type = &key_type_logon;
		copy = copy_user_key;
	} else if (!strncmp(spec, "user:", tlen)) {
		type = &key_type_user;
		copy = copy_user_key;
	} else if (IS_ENABLED(CONFIG_ENCRYPTED_KEYS) &&
		   !strncmp(spec, "encrypted:", tlen)) {
		type = &key_type_encrypted;
		copy = copy_encrypted_key;
	} else {
		return -EINVAL;
	}

	saved = kstrdup(spec, GFP_KERNEL);
	if (!saved)
		return -ENOMEM;
	key = request_key(type, desc + 1, NULL);
	if (IS_ERR(key)) {
		kfree_sensitive(saved);
		return PTR_ERR(key);
	}
	down_read(&key->sem);
	r = copy(cc, key);
	up_read(&key->sem);
	key_put(key);
	if (r) {
		kfree_sensitive(saved);
		return r;
	}

	clear_bit(CRYPT_KEY_VALID, &cc->flags);
	r = crypt_setkey(cc);
	if (r) {
		kfree_sensitive(saved);
		return r;
	}
	set_bit(CRYPT_KEY_VALID, &cc->flags);
	kfree_sensitive(cc->key_string);
	cc->key_string = saved;
	return 0;
}

/* key is hex, "-" (no key), or ":<type>:<desc>" after crypt_key_size(). */
static int crypt_set_key(struct crypt_config *cc, char *key)
{
	size_t len = strlen(key);
	int r = -EINVAL;

	if (!cc->key_size && strcmp(key, "-"))
		goto out;
	if (key[0] == ':') {
		r = crypt_set_keyring_key(cc, key + 1);
		goto out;
	}
	clear_bit(CRYPT_KEY_VALID, &cc->flags);
	kfree_sensitive(cc->key_string);
	cc->key_string = NULL;
	if (cc->key_size && hex2bin(cc->key, key, cc->key_size) < 0)
		goto out;
	r = crypt_setkey(cc);
	if (!r)
		set_bit(CRYPT_KEY_VALID, &cc->flags);
out:
	/* the argument string is not ours to keep a key in */
	memset(key, '0', len);
	return r;
}

static int crypt_wipe_key(struct crypt_config *cc)
{
	int r;

	clear_bit(CRYPT_KEY_VALID, &cc->flags);
	/* key the tfms with junk, then forget it */
	get_random_bytes(cc->key, cc->key_size);
	if (cc->iv_ops && cc->iv_ops->wipe) {
		r = cc->iv_ops->wipe(cc);
		if (r)
			return r;
	}
	kfree_sensitive(cc->key_string);
	cc->key_string = NULL;
	r = crypt_setkey(cc);
	memzero_explicit(cc->key, cc->key_size);
	return r;
}

/* ------------------------------------------------------------ cipher spec */

static const struct {
	const char *name;
	const struct crypt_iv_ops *ops;
} iv_modes[] = {
	{ "plain", &iv_plain_ops },
	{ "plain64", &iv_plain64_ops },
	{ "plain64be", &iv_plain64be_ops },
	{ "essiv", &iv_essiv_ops },
	{ "benbi", &iv_benbi_ops },
	{ "null", &iv_null_ops },
	{ "eboiv", &iv_eboiv_ops },
	{ "elephant", &iv_elephant_ops },
	{ "lmk", &iv_lmk_ops },
	{ "tcw", &iv_tcw_ops },
	{ "random", &iv_random_ops },
};

static int crypt_ctr_ivmode(struct dm_target *ti, const char *ivmode)
{
	struct crypt_config *cc = ti->private;
	unsigned int i;

	if (crypt_is_aead(cc))
		cc->iv_size = crypto_aead_ivsize(any_aead(cc));
	else
		cc->iv_size = crypto_skcipher_ivsize(any_sk(cc));

	if (cc->iv_size) {
		/* room for at least a 64-bit sector number */
		cc->iv_size = max_t(unsigned int, cc->iv_size, sizeof(u64));
	} else if (ivmode) {
		DMWARN("Selected cipher does not support IVs");
		ivmode = NULL;
	}

	cc->iv_ops = NULL;
	if (!ivmode)
		return 0;
	for (i = 0; i < ARRAY_SIZE(iv_modes); i++)
		if (!strcmp(ivmode, iv_modes[i].name))
			cc->iv_ops = iv_modes[i].ops;
	if (!cc->iv_ops) {
		ti->error = "Invalid IV mode";
		return -EINVAL;
	}

	if (cc->iv_ops == &iv_elephant_ops) {
		cc->key_parts = 2;
		cc->key_extra_size = cc->key_size / 2;
		if (cc->key_extra_size > ELEPHANT_MAX_KEY)
			return -EINVAL;
		set_bit(CRYPT_WRITE_INPLACE, &cc->flags);
		cc->bounce_size = cc->sector_size + 32;
	} else if (cc->iv_ops == &iv_lmk_ops) {
		/* a key that does not split into tfms_count parts has a seed part */
		if (cc->key_size % cc->key_parts) {
			cc->key_parts++;
			cc->key_extra_size = cc->key_size / cc->key_parts;
		}
		cc->bounce_size = SECTOR_SIZE;
	} else if (cc->iv_ops == &iv_tcw_ops) {
		cc->key_parts += 2;
		cc->key_extra_size = cc->iv_size + TCW_WHITEN_BYTES;
		cc->bounce_size = SECTOR_SIZE;
	} else if (cc->iv_ops == &iv_random_ops) {
		cc->integrity_iv_size = cc->iv_size;
	}
	return 0;
}

/* MAC key bytes of an authenc() AEAD: the digest size of its hash. */
static int crypt_ctr_authenc(struct crypt_config *cc, const char *api)
{
	const char *start, *end;
	struct crypto_ahash *mac_tfm;
	char *mac;

	if (!strstarts(api, "authenc("))
		return 0;
	start = strchr(api, '(');
	end = strchr(api, ',');
	if (!start || !end || ++start > end)
		return -EINVAL;
	mac = kzalloc(end - start + 1, GFP_KERNEL);
	if (!mac)
		return -ENOMEM;
	memcpy(mac, start, end - start);
	mac_tfm = crypto_alloc_ahash(mac, 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	kfree(mac);
	if (IS_ERR(mac_tfm))
		return PTR_ERR(mac_tfm);
	cc->key_mac_size = crypto_ahash_digestsize(mac_tfm);
	crypto_free_ahash(mac_tfm);
	cc->authenc_key = kmalloc(authenc_key_size(cc) + cc->key_mac_size, GFP_KERNEL);
	if (!cc->authenc_key)
		return -ENOMEM;
	set_bit(CRYPT_AUTHENC, &cc->flags);
	return 0;
}

static int crypt_ctr_cipher_capi(struct dm_target *ti, char *spec,
				 char **ivmode, char **ivopts)
{
	struct crypt_config *cc = ti->private;
	char name[CRYPTO_MAX_ALG_NAME];
	char *api = spec + strlen("capi:");
	int r;

	/* options last (hash names hold '-'), then the mode, then the API name */
	*ivopts = strrchr(api, ':');
	if (*ivopts)
		*(*ivopts)++ = '\0';
	*ivmode = strrchr(api, '-');
	if (*ivmode)
		*(*ivmode)++ = '\0';

	if (crypt_is_aead(cc)) {
		r = crypt_ctr_authenc(cc, api);
		if (r < 0) {
			ti->error = "Invalid AEAD cipher spec";
			return -ENOMEM;
		}
	}

	if (*ivmode && !strcmp(*ivmode, "lmk"))
		cc->tfms_count = 64;

	if (*ivmode && !strcmp(*ivmode, "essiv")) {
		if (!*ivopts) {
			ti->error = "Digest algorithm missing for ESSIV mode";
			return -EINVAL;
		}
		r = snprintf(name, sizeof(name), "essiv(%s,%s)", api, *ivopts);
		if (r < 0 || r >= sizeof(name)) {
			ti->error = "Cannot allocate cipher string";
			return -ENOMEM;
		}
		api = name;
	}

	cc->key_parts = cc->tfms_count;
	r = crypt_alloc_tfms(cc, api);
	if (r < 0) {
		ti->error = "Error allocating crypto tfm";
		return r;
	}
	return 0;
}

static int crypt_ctr_cipher_legacy(struct dm_target *ti, char *spec,
				   char **ivmode, char **ivopts)
{
	struct crypt_config *cc = ti->private;
	char *cipher, *count, *chain, *rest = spec;
	char name[CRYPTO_MAX_ALG_NAME];
	char c;
	int r;

	if (strchr(spec, '(') || crypt_is_aead(cc)) {
		ti->error = "Bad cipher specification";
		return -EINVAL;
	}

	count = strsep(&rest, "-");
	cipher = strsep(&count, ":");
	if (!count) {
		cc->tfms_count = 1;
	} else if (sscanf(count, "%u%c", &cc->tfms_count, &c) != 1 ||
		   !is_power_of_2(cc->tfms_count)) {
		ti->error = "Bad cipher key count specification";
		return -EINVAL;
	}
	cc->key_parts = cc->tfms_count;

	chain = strsep(&rest, "-");
	*ivmode = strsep(&rest, ":");
	*ivopts = rest;

	/* historic short forms mean cbc with the plain IV */
	if (!chain || (!strcmp(chain, "plain") && !*ivmode)) {
		chain = "cbc";
		*ivmode = "plain";
	}
	if (strcmp(chain, "ecb") && !*ivmode) {
		ti->error = "IV mechanism required";
		return -EINVAL;
	}

	if (*ivmode && !strcmp(*ivmode, "essiv")) {
		if (!*ivopts) {
			ti->error = "Digest algorithm missing for ESSIV mode";
			return -EINVAL;
		}
		r = snprintf(name, sizeof(name), "essiv(%s(%s),%s)", chain, cipher,
			     *ivopts);
	} else {
		r = snprintf(name, sizeof(name), "%s(%s)", chain, cipher);
	}
	if (r < 0 || r >= sizeof(name)) {
		ti->error = "Cannot allocate cipher strings";
		return -ENOMEM;
	}

	r = crypt_alloc_tfms(cc, name);
	if (r < 0) {
		ti->error = "Error allocating crypto tfm";
		return r;
	}
	return 0;
}

static int crypt_ctr_cipher(struct dm_target *ti, char *spec, char *key)
{
	struct crypt_config *cc = ti->private;
	char *ivmode = NULL, *ivopts = NULL;
	int r;

	cc->cipher_string = kstrdup(spec, GFP_KERNEL);
	if (!cc->cipher_string) {
		ti->error = "Cannot allocate cipher strings";
		return -ENOMEM;
	}

	if (strstarts(spec, "capi:"))
		r = crypt_ctr_cipher_capi(ti, spec, &ivmode, &ivopts);
	else
		r = crypt_ctr_cipher_legacy(ti, spec, &ivmode, &ivopts);
	if (r)
		return r;

	r = crypt_ctr_ivmode(ti, ivmode);
	if (r < 0)
		return r;

	r = crypt_set_key(cc, key);
	if (r < 0) {
		ti->error = "Error decoding and setting key";
		return r;
	}

	if (cc->iv_ops && cc->iv_ops->ctr) {
		r = cc->iv_ops->ctr(cc, ti, ivopts);
		if (r < 0) {
			ti->error = "Error creating IV";
			return r;
		}
	}
	if (cc->iv_ops && cc->iv_ops->init) {
		r = cc->iv_ops->init(cc);
		if (r < 0) {
			ti->error = "Error initialising IV";
			return r;
		}
	}

	/* a keyring key lives in the keyring; keep no copy */
	if (cc->key_string)
		memzero_explicit(cc->key, cc->key_size);
	return 0;
}

static int crypt_ctr_options(struct dm_target *ti, unsigned int argc, char **argv)
{
	static const struct dm_arg count_arg = {
		0, CRYPT_MAX_OPTS, "Invalid number of feature args"
	};
	struct crypt_config *cc = ti->private;
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	unsigned int left, val;
	const char *opt, *profile;
	unsigned short ss;
	char c;
	int r;

	r = dm_read_arg_group(&count_arg, &as, &left, &ti->error);
	if (r)
		return r;

	while (left--) {
		opt = dm_shift_arg(&as);
		if (!opt) {
			ti->error = "Not enough feature arguments";
			return -EINVAL;
		}
		if (!strcasecmp(opt, "allow_discards")) {
			ti->num_discard_bios = 1;
		} else if (!strcasecmp(opt, "same_cpu_crypt")) {
			set_bit(CRYPT_SAME_CPU, &cc->flags);
		} else if (!strcasecmp(opt, "submit_from_crypt_cpus")) {
			set_bit(CRYPT_NO_OFFLOAD, &cc->flags);
		} else if (!strcasecmp(opt, "no_read_workqueue")) {
			set_bit(CRYPT_NO_READ_WQ, &cc->flags);
		} else if (!strcasecmp(opt, "no_write_workqueue")) {
			set_bit(CRYPT_NO_WRITE_WQ, &cc->flags);
		} else if (sscanf(opt, "integrity:%u:", &val) == 1) {
			if (!val || val > CRYPT_MAX_TAG) {
				ti->error = "Invalid integrity arguments";
				return -EINVAL;
			}
			cc->on_disk_tag_size = val;
			profile = strchr(opt + strlen("integrity:"), ':') + 1;
			if (!strcasecmp(profile, "aead")) {
				set_bit(CRYPT_AEAD, &cc->flags);
			} else if (strcasecmp(profile, "none")) {
				ti->error = "Unknown integrity profile";
				return -EINVAL;
			}
			kfree(cc->cipher_auth);
			cc->cipher_auth = kstrdup(profile, GFP_KERNEL);
			if (!cc->cipher_auth)
				return -ENOMEM;
		} else if (sscanf(opt, "sector_size:%hu%c", &ss, &c) == 1) {
			if (ss < SECTOR_SIZE || ss > 4096 || !is_power_of_2(ss)) {
				ti->error = "Invalid feature value for sector_size";
				return -EINVAL;
			}
			if (ti->len & ((ss >> SECTOR_SHIFT) - 1)) {
				ti->error = "Device size is not multiple of sector_size feature";
				return -EINVAL;
			}
			cc->sector_size = ss;
			cc->sector_shift = __ffs(ss) - SECTOR_SHIFT;
		} else if (!strcasecmp(opt, "iv_large_sectors")) {
			set_bit(CRYPT_IV_LARGE, &cc->flags);
		} else {
			ti->error = "Invalid feature arguments";
			return -EINVAL;
		}
	}
	return 0;
}

/* The device below must be dm-integrity with our tag size and interval. */
static int crypt_ctr_integrity(struct crypt_config *cc, struct dm_target *ti)
{
#ifdef CONFIG_BLK_DEV_INTEGRITY
	struct blk_integrity *bi = blk_get_integrity(cc->dev->bdev->bd_disk);

	if (!bi || !bi->profile || !bi->profile->name ||
	    strcasecmp(bi->profile->name, "DM-DIF-EXT-TAG")) {
		ti->error = "Integrity profile not supported.";
		return -EINVAL;
	}
	if (bi->tag_size != cc->on_disk_tag_size ||
	    bi->tuple_size != cc->on_disk_tag_size) {
		ti->error = "Integrity profile tag size mismatch.";
		return -EINVAL;
	}
	if (1U << bi->interval_exp != cc->sector_size) {
		ti->error = "Integrity profile sector size mismatch.";
		return -EINVAL;
	}
	if (crypt_is_aead(cc)) {
		cc->tag_size = cc->on_disk_tag_size - cc->integrity_iv_size;
		if (crypto_aead_setauthsize(any_aead(cc), cc->tag_size)) {
			ti->error = "Integrity AEAD auth tag size is not supported.";
			return -EINVAL;
		}
	}
	if (cc->tag_size + cc->integrity_iv_size > cc->on_disk_tag_size) {
		ti->error = "Not enough space for integrity tag in the provided device.";
		return -EINVAL;
	}
	return 0;
#else
	ti->error = "Integrity profile not supported.";
	return -EINVAL;
#endif
}

/* ------------------------------------------------------------ data path */

static void crypt_convert_done(struct crypt_io *io, bool async);

static void crypt_free_tags(struct crypt_io *io)
{
	if (!io->tags)
		return;
	if (io->tags_pooled)
		mempool_free(io->tags, &io->cc->tag_pool);
	else
		kfree(io->tags);
	io->tags = NULL;
}

static void crypt_end_base(struct crypt_io *io, blk_status_t status)
{
	struct bio *base = io->base;

	crypt_free_tags(io);
	if (status)
		base->bi_status = status;
	bio_endio(base);
}

/* dm-audit records, as stock sends them; nothing when DM_AUDIT is off. */
static void crypt_audit_ti(int type, const char *op, struct dm_target *ti, int result)
{
#if IS_ENABLED(CONFIG_DM_AUDIT)
	dm_audit_log_ti(type, DM_MSG_PREFIX, op, ti, result);
#endif
}

static void crypt_audit_aead(struct bio *bio, sector_t sector)
{
	DMERR_LIMIT("%pg: INTEGRITY AEAD ERROR, sector %llu", bio->bi_bdev,
		    (unsigned long long)sector);
#if IS_ENABLED(CONFIG_DM_AUDIT)
	dm_audit_log_bio(DM_MSG_PREFIX, "integrity-aead", bio, sector, 0);
#endif
}

static void crypt_set_error(struct crypt_io *io, int r)
{
	blk_status_t st = r == -EBADMSG ? BLK_STS_PROTECTION : BLK_STS_IOERR;

	cmpxchg(&io->error, 0, st);
}

static void crypt_unit_release(struct crypt_config *cc, struct crypt_unit *u)
{
	if (u->pooled)
		mempool_free((u8 *)u - cc->unit_off, &cc->req_pool);
}

static void crypt_unit_done(struct crypto_async_request *areq, int err)
{
	struct crypt_unit *u = areq->data;
	struct crypt_io *io = u->io;
	struct crypt_config *cc = io->cc;
	void *req = (u8 *)u - cc->unit_off;

	/* a backlogged request was accepted: the submitter may go on */
	if (err == -EINPROGRESS) {
		complete(&io->restart);
		return;
	}
	if (!err && cc->iv_ops && cc->iv_ops->post)
		err = cc->iv_ops->post(cc, req_org_iv(cc, req), u);
	if (err == -EBADMSG)
		crypt_audit_aead(io->base, u->sector);
	if (err)
		crypt_set_error(io, err);
	crypt_unit_release(cc, u);
	if (atomic_dec_and_test(&io->pending))
		crypt_convert_done(io, true);
}

/* Point the unit's sg lists at data, and for AEAD at the AAD and tag too. */
static void crypt_unit_sg(struct crypt_config *cc, struct crypt_unit *u,
			  struct scatterlist *sg, struct bio_vec *bv, u8 *org_iv)
{
	if (!crypt_is_aead(cc)) {
		sg_init_table(sg, 1);
		sg_set_page(sg, bv->bv_page, cc->sector_size, bv->bv_offset);
		return;
	}
	sg_init_table(sg, 4);
	sg_set_buf(&sg[0], &u->aad_sector, sizeof(u64));
	sg_set_buf(&sg[1], org_iv, cc->iv_size);
	sg_set_page(&sg[2], bv->bv_page, cc->sector_size, bv->bv_offset);
	sg_set_buf(&sg[3], u->tag, cc->tag_size);
}

/*
 * Start the cipher on the next unit of io with request req. Returns 0 when
 * the unit is done, -EINPROGRESS/-EBUSY when the crypto driver took it, or
 * an error.
 */
static int crypt_unit_start(struct crypt_config *cc, struct crypt_io *io,
			    void *req)
{
	struct crypt_unit *u = req_unit(cc, req);
	u8 *iv = req_iv(cc, req), *org_iv = req_org_iv(cc, req);
	struct bio_vec bv_in = bio_iter_iovec(io->bio_in, io->iter_in);
	struct bio_vec bv_out = bio_iter_iovec(io->bio_out, io->iter_out);
	u64 cc_sector = io->next + cc->iv_offset;
	unsigned int idx = 0, unit_nr;
	struct scatterlist *src;
	int r;

	/* io_hints and dma_alignment promise whole units per segment */
	if (unlikely((bv_in.bv_len | bv_out.bv_len) & (cc->sector_size - 1)))
		return -EIO;

	u->io = io;
	u->sector = io->next;
	u->write = bio_data_dir(io->base) == WRITE;
	u->iv_sector = cc_sector;
	if (test_bit(CRYPT_IV_LARGE, &cc->flags))
		u->iv_sector >>= cc->sector_shift;
	u->aad_sector = cpu_to_le64(io->next);
	unit_nr = (io->next - io->sector) >> cc->sector_shift;
	u->tag = io->tags ? io->tags + unit_nr * cc->on_disk_tag_size : NULL;

	/* the tag bytes no one else writes are zero on disk */
	if (u->tag && u->write)
		memset(u->tag + cc->tag_size + cc->integrity_iv_size, 0,
		       cc->on_disk_tag_size - cc->tag_size - cc->integrity_iv_size);

	crypt_unit_sg(cc, u, u->sg_in, &bv_in, org_iv);
	crypt_unit_sg(cc, u, u->sg_out, &bv_out, org_iv);

	bio_advance_iter(io->bio_in, &io->iter_in, cc->sector_size);
	bio_advance_iter(io->bio_out, &io->iter_out, cc->sector_size);
	io->next += cc->sector_size >> SECTOR_SHIFT;

	if (cc->iv_ops) {
		r = cc->iv_ops->gen(cc, org_iv, u);
		if (r)
			return r;
		memcpy(iv, org_iv, cc->iv_size);
		if (u->tag && cc->integrity_iv_size && u->write)
			memcpy(u->tag + cc->tag_size, org_iv, cc->integrity_iv_size);
	}

	src = test_bit(CRYPT_WRITE_INPLACE, &cc->flags) && u->write ?
		u->sg_out : u->sg_in;

	if (crypt_is_aead(cc)) {
		struct aead_request *areq = req;
		unsigned int len = cc->sector_size;

		aead_request_set_tfm(areq, cc->tfms.aead[0]);
		aead_request_set_callback(areq, CRYPTO_TFM_REQ_MAY_BACKLOG,
					  crypt_unit_done, u);
		aead_request_set_ad(areq, sizeof(u64) + cc->iv_size);
		if (!u->write)
			len += cc->tag_size;
		aead_request_set_crypt(areq, src, u->sg_out, len, iv);
		r = u->write ? crypto_aead_encrypt(areq) : crypto_aead_decrypt(areq);
	} else {
		struct skcipher_request *sreq = req;

		idx = cc_sector & (cc->tfms_count - 1);
		skcipher_request_set_tfm(sreq, cc->tfms.sk[idx]);
		skcipher_request_set_callback(sreq, CRYPTO_TFM_REQ_MAY_BACKLOG,
					      crypt_unit_done, u);
		skcipher_request_set_crypt(sreq, src, u->sg_out, cc->sector_size, iv);
		r = u->write ? crypto_skcipher_encrypt(sreq) :
			crypto_skcipher_decrypt(sreq);
	}

	if (r == -EBADMSG)
		crypt_audit_aead(io->base, u->sector);
	if (!r && cc->iv_ops && cc->iv_ops->post)
		r = cc->iv_ops->post(cc, org_iv, u);
	return r;
}

/* Run the cipher over all of io. Process context only. */
static void crypt_convert(struct crypt_io *io)
{
	struct crypt_config *cc = io->cc;
	void *embedded = io_first_req(io);
	void *req;
	int r;

	atomic_set(&io->pending, 1);
	init_completion(&io->restart);
	io->spare_req = embedded;
	io->next = io->sector;

	while (io->iter_in.bi_size && io->iter_out.bi_size) {
		req = io->spare_req;
		if (!req)
			req = mempool_alloc(&cc->req_pool, GFP_NOIO);
		req_unit(cc, req)->pooled = req != embedded;
		io->spare_req = NULL;
		atomic_inc(&io->pending);

		r = crypt_unit_start(cc, io, req);
		if (r == -EBUSY) {
			/* backlogged: wait until the driver takes it, then go on */
			wait_for_completion(&io->restart);
			reinit_completion(&io->restart);
			continue;
		}
		if (r == -EINPROGRESS)
			continue;

		io->spare_req = req;
		atomic_dec(&io->pending);
		if (r) {
			crypt_set_error(io, r);
			break;
		}
		cond_resched();
	}

	if (io->spare_req && io->spare_req != embedded)
		mempool_free(io->spare_req, &cc->req_pool);
	io->spare_req = NULL;
	if (atomic_dec_and_test(&io->pending))
		crypt_convert_done(io, false);
}

/* --- writes: encrypt into our own pages, then submit */

static void crypt_free_buffer(struct crypt_config *cc, struct bio *clone)
{
	struct bio_vec *bv;
	struct bvec_iter_all iter;

	bio_for_each_segment_all(bv, clone, iter) {
		mempool_free(bv->bv_page, &cc->page_pool);
		bv->bv_page = NULL;
	}
}

static void crypt_write_done(struct bio *clone)
{
	struct crypt_io *io = clone->bi_private;
	blk_status_t status = clone->bi_status;

	crypt_free_buffer(io->cc, clone);
	bio_put(clone);
	crypt_end_base(io, status);
}

/*
 * A bio of fresh pages for size bytes. The first attempt does not sleep on
 * the pool; the second holds alloc_lock so that two bios cannot each hold
 * half of the pool and wait for the other half.
 */
static struct bio *crypt_alloc_buffer(struct crypt_io *io, unsigned int size)
{
	struct crypt_config *cc = io->cc;
	unsigned int nr = DIV_ROUND_UP(size, PAGE_SIZE);
	gfp_t gfp = GFP_NOWAIT | __GFP_HIGHMEM;
	struct bio *clone;
	unsigned int i, left, len;
	struct page *page;

retry:
	if (gfp & __GFP_DIRECT_RECLAIM)
		mutex_lock(&cc->alloc_lock);
	clone = bio_alloc_bioset(cc->dev->bdev, nr, io->base->bi_opf, GFP_NOIO,
				 &cc->bs);
	clone->bi_private = io;
	clone->bi_end_io = crypt_write_done;
	clone->bi_ioprio = io->base->bi_ioprio;
	left = size;
	for (i = 0; i < nr; i++) {
		page = mempool_alloc(&cc->page_pool, gfp);
		if (!page) {
			crypt_free_buffer(cc, clone);
			bio_put(clone);
			gfp |= __GFP_DIRECT_RECLAIM;
			goto retry;
		}
		len = min_t(unsigned int, left, PAGE_SIZE);
		__bio_add_page(clone, page, len, 0);
		left -= len;
	}
	if (gfp & __GFP_DIRECT_RECLAIM)
		mutex_unlock(&cc->alloc_lock);
	return clone;
}

static int crypt_attach_tags(struct crypt_io *io, struct bio *clone)
{
#ifdef CONFIG_BLK_DEV_INTEGRITY
	struct crypt_config *cc = io->cc;
	struct bio_integrity_payload *bip;
	unsigned int len;

	if (!io->tags)
		return 0;
	bip = bio_integrity_alloc(clone, GFP_NOIO, 1);
	if (IS_ERR(bip))
		return PTR_ERR(bip);
	len = cc->on_disk_tag_size * (bio_sectors(clone) >> cc->sector_shift);
	/* 6.1's bio_integrity_add_page() leaves the payload size to us */
	bip->bip_iter.bi_size = len;
	bip->bip_iter.bi_sector = cc->start + io->sector;
	if (bio_integrity_add_page(clone, virt_to_page(io->tags), len,
				   offset_in_page(io->tags)) != len)
		return -ENOMEM;
#endif
	return 0;
}

static void crypt_submit_write(struct crypt_io *io)
{
	struct crypt_config *cc = io->cc;
	struct bio *clone = io->clone;

	clone->bi_iter.bi_sector = cc->start + io->sector;
	if (crypt_attach_tags(io, clone)) {
		clone->bi_status = BLK_STS_RESOURCE;
		bio_endio(clone);
		return;
	}
	dm_submit_bio_remap(io->base, clone);
}

/* Hand an encrypted write to the write thread; any context. */
static void crypt_queue_write(struct crypt_io *io)
{
	struct crypt_config *cc = io->cc;
	struct rb_node **link = &cc->write_tree.rb_node, *parent = NULL;
	unsigned long flags;

	spin_lock_irqsave(&cc->write_lock, flags);
	if (RB_EMPTY_ROOT(&cc->write_tree))
		wake_up_process(cc->write_thread);
	while (*link) {
		parent = *link;
		if (io->sector < rb_entry(parent, struct crypt_io, rb_node)->sector)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&io->rb_node, parent, link);
	rb_insert_color(&io->rb_node, &cc->write_tree);
	spin_unlock_irqrestore(&cc->write_lock, flags);
}

static int crypt_write_thread(void *data)
{
	struct crypt_config *cc = data;
	struct rb_root batch;
	struct blk_plug plug;
	struct rb_node *node;

	for (;;) {
		spin_lock_irq(&cc->write_lock);
		while (RB_EMPTY_ROOT(&cc->write_tree)) {
			set_current_state(TASK_INTERRUPTIBLE);
			spin_unlock_irq(&cc->write_lock);
			if (kthread_should_stop()) {
				__set_current_state(TASK_RUNNING);
				return 0;
			}
			schedule();
			spin_lock_irq(&cc->write_lock);
		}
		/* take the whole tree: new writes start a fresh one */
		batch = cc->write_tree;
		cc->write_tree = RB_ROOT;
		spin_unlock_irq(&cc->write_lock);

		blk_start_plug(&plug);
		while ((node = rb_first(&batch))) {
			rb_erase(node, &batch);
			crypt_submit_write(rb_entry(node, struct crypt_io, rb_node));
		}
		blk_finish_plug(&plug);
		cond_resched();
	}
}

static void crypt_submit_write_work(struct work_struct *work)
{
	crypt_submit_write(container_of(work, struct crypt_io, work));
}

static void crypt_write_convert(struct crypt_io *io)
{
	io->clone = crypt_alloc_buffer(io, io->base->bi_iter.bi_size);
	io->bio_in = io->base;
	io->iter_in = io->base->bi_iter;
	io->bio_out = io->clone;
	io->iter_out = io->clone->bi_iter;
	crypt_convert(io);
}

static void crypt_write_work(struct work_struct *work)
{
	crypt_write_convert(container_of(work, struct crypt_io, work));
}

/* --- reads: a clone fills the caller's pages, decrypted in place after */

static void crypt_read_convert(struct crypt_io *io)
{
	io->bio_in = io->base;
	io->bio_out = io->base;
	io->iter_in = io->base->bi_iter;
	io->iter_out = io->base->bi_iter;
	crypt_convert(io);
}

static void crypt_read_work(struct work_struct *work)
{
	crypt_read_convert(container_of(work, struct crypt_io, work));
}

static void crypt_read_done(struct bio *clone)
{
	struct crypt_io *io = clone->bi_private;
	struct crypt_config *cc = io->cc;
	blk_status_t status = clone->bi_status;

	bio_put(clone);
	if (status) {
		crypt_end_base(io, status);
		return;
	}
	/*
	 * Inline only where we may sleep (request pool, async crypto);
	 * completions in atomic context go to the workqueue.
	 */
	if (test_bit(CRYPT_NO_READ_WQ, &cc->flags) && preemptible()) {
		crypt_read_convert(io);
		return;
	}
	INIT_WORK(&io->work, crypt_read_work);
	queue_work(cc->crypt_queue, &io->work);
}

static int crypt_submit_read(struct crypt_io *io, gfp_t gfp)
{
	struct crypt_config *cc = io->cc;
	struct bio *clone;

	clone = bio_alloc_clone(cc->dev->bdev, io->base, gfp, &cc->bs);
	if (!clone)
		return -ENOMEM;
	clone->bi_private = io;
	clone->bi_end_io = crypt_read_done;
	clone->bi_iter.bi_sector = cc->start + io->sector;
	if (crypt_attach_tags(io, clone)) {
		bio_put(clone);
		return -ENOMEM;
	}
	dm_submit_bio_remap(io->base, clone);
	return 0;
}

static void crypt_read_submit_work(struct work_struct *work)
{
	struct crypt_io *io = container_of(work, struct crypt_io, work);

	if (crypt_submit_read(io, GFP_NOIO))
		crypt_end_base(io, BLK_STS_RESOURCE);
}

static void crypt_convert_done(struct crypt_io *io, bool async)
{
	struct crypt_config *cc = io->cc;

	if (bio_data_dir(io->base) != WRITE) {
		crypt_end_base(io, io->error);
		return;
	}
	if (io->error) {
		crypt_free_buffer(cc, io->clone);
		bio_put(io->clone);
		crypt_end_base(io, io->error);
		return;
	}
	if (!async && (test_bit(CRYPT_NO_OFFLOAD, &cc->flags) ||
		       test_bit(CRYPT_NO_WRITE_WQ, &cc->flags))) {
		crypt_submit_write(io);
		return;
	}
	if (async && test_bit(CRYPT_NO_WRITE_WQ, &cc->flags)) {
		/* crypto callbacks may run in softirq context */
		INIT_WORK(&io->work, crypt_submit_write_work);
		queue_work(cc->io_queue, &io->work);
		return;
	}
	crypt_queue_write(io);
}

/* Metadata buffer for the units of bio; may shorten bio to fit the pool. */
static void crypt_alloc_tags(struct crypt_config *cc, struct crypt_io *io,
			     struct bio *bio)
{
	unsigned int len;

	len = cc->on_disk_tag_size * (bio_sectors(bio) >> cc->sector_shift);
	io->tags = kmalloc(len, GFP_NOIO | __GFP_NORETRY | __GFP_NOMEMALLOC |
			   __GFP_NOWARN);
	io->tags_pooled = false;
	if (io->tags)
		return;
	if (bio_sectors(bio) > cc->tag_pool_sectors)
		dm_accept_partial_bio(bio, cc->tag_pool_sectors);
	io->tags = mempool_alloc(&cc->tag_pool, GFP_NOIO);
	io->tags_pooled = true;
}

static int crypt_map(struct dm_target *ti, struct bio *bio)
{
	struct crypt_config *cc = ti->private;
	struct crypt_io *io;

	/* flushes and discards carry no data to encrypt */
	if (unlikely(bio->bi_opf & REQ_PREFLUSH ||
		     bio_op(bio) == REQ_OP_DISCARD)) {
		bio_set_dev(bio, cc->dev->bdev);
		if (bio_sectors(bio))
			bio->bi_iter.bi_sector = cc->start +
				dm_target_offset(ti, bio->bi_iter.bi_sector);
		return DM_MAPIO_REMAPPED;
	}

	/* a write clone holds at most BIO_MAX_VECS pages */
	if (unlikely(bio->bi_iter.bi_size > (BIO_MAX_VECS << PAGE_SHIFT)) &&
	    (bio_data_dir(bio) == WRITE || cc->on_disk_tag_size))
		dm_accept_partial_bio(bio, (BIO_MAX_VECS << PAGE_SHIFT) >> SECTOR_SHIFT);

	if (unlikely(bio->bi_iter.bi_sector & ((cc->sector_size >> SECTOR_SHIFT) - 1)))
		return DM_MAPIO_KILL;
	if (unlikely(bio->bi_iter.bi_size & (cc->sector_size - 1)))
		return DM_MAPIO_KILL;

	io = dm_per_bio_data(bio, cc->per_bio_size);
	io->cc = cc;
	io->base = bio;
	io->clone = NULL;
	io->sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	io->error = 0;
	io->tags = NULL;
	if (cc->on_disk_tag_size)
		crypt_alloc_tags(cc, io, bio);

	if (bio_data_dir(bio) == READ) {
		/* no sleeping on our bioset under submit_bio; else defer */
		if (crypt_submit_read(io, GFP_NOWAIT)) {
			INIT_WORK(&io->work, crypt_read_submit_work);
			queue_work(cc->io_queue, &io->work);
		}
	} else if (test_bit(CRYPT_NO_WRITE_WQ, &cc->flags)) {
		crypt_write_convert(io);
	} else {
		INIT_WORK(&io->work, crypt_write_work);
		queue_work(cc->crypt_queue, &io->work);
	}
	return DM_MAPIO_SUBMITTED;
}

/* ------------------------------------------------------------ target */

static void crypt_dtr(struct dm_target *ti)
{
	struct crypt_config *cc = ti->private;

	ti->private = NULL;
	if (!cc)
		return;

	if (cc->write_thread)
		kthread_stop(cc->write_thread);
	if (cc->crypt_queue)
		destroy_workqueue(cc->crypt_queue);
	if (cc->io_queue)
		destroy_workqueue(cc->io_queue);

	if (cc->iv_ops && cc->iv_ops->dtr)
		cc->iv_ops->dtr(cc);
	crypt_free_tfms(cc);

	bioset_exit(&cc->bs);
	mempool_exit(&cc->page_pool);
	mempool_exit(&cc->req_pool);
	mempool_exit(&cc->tag_pool);

	if (cc->dev)
		dm_put_device(ti, cc->dev);

	kfree_sensitive(cc->key_string);
	kfree_sensitive(cc->authenc_key);
	kfree(cc->cipher_string);
	kfree(cc->cipher_auth);
	mutex_destroy(&cc->alloc_lock);

	/* zeroes the key material stored in cc */
	kfree_sensitive(cc);

	crypt_audit_ti(AUDIT_DM_CTRL, "dtr", ti, 1);
}

/* Lay out one crypto request: tfm request, crypt_unit, IVs, bounce. */
static void crypt_layout_request(struct crypt_config *cc)
{
	unsigned int base, align;

	if (crypt_is_aead(cc)) {
		base = sizeof(struct aead_request) + crypto_aead_reqsize(any_aead(cc));
		align = crypto_aead_alignmask(any_aead(cc)) + 1;
	} else {
		base = sizeof(struct skcipher_request) +
			crypto_skcipher_reqsize(any_sk(cc));
		align = crypto_skcipher_alignmask(any_sk(cc)) + 1;
	}
	cc->iv_align = max_t(unsigned int, align, __alignof__(u64));
	cc->unit_off = ALIGN(base, __alignof__(struct crypt_unit));
	cc->iv_off = cc->unit_off + sizeof(struct crypt_unit);
	cc->bounce_off = ALIGN(cc->iv_off + cc->iv_align - 1 + 2 * cc->iv_size,
			       __alignof__(u64));
	cc->req_size = cc->bounce_off + cc->bounce_size;
	cc->per_bio_size = ALIGN(sizeof(struct crypt_io) + cc->req_size,
				 ARCH_KMALLOC_MINALIGN);
}

static int crypt_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct crypt_config *cc;
	const char *devname = dm_table_device_name(ti->table);
	unsigned long long tmp;
	char *key;
	int key_size;
	char c;
	int r;

	if (argc < 5) {
		ti->error = "Not enough arguments";
		return -EINVAL;
	}

	key = argv[1];
	key_size = crypt_key_size(&key);
	if (key_size < 0) {
		ti->error = "Cannot parse key size";
		return -EINVAL;
	}

	cc = kzalloc(struct_size(cc, key, key_size), GFP_KERNEL);
	if (!cc) {
		ti->error = "Cannot allocate encryption context";
		return -ENOMEM;
	}
	cc->key_size = key_size;
	cc->tfms_count = 1;
	cc->sector_size = SECTOR_SIZE;
	mutex_init(&cc->alloc_lock);
	ti->private = cc;

	/* the options (sector_size, integrity) shape the cipher setup */
	if (argc > 5) {
		r = crypt_ctr_options(ti, argc - 5, &argv[5]);
		if (r)
			goto bad;
	}

	r = crypt_ctr_cipher(ti, argv[0], key);
	if (r < 0)
		goto bad;

	crypt_layout_request(cc);
	ti->per_io_data_size = cc->per_bio_size;

	r = mempool_init_kmalloc_pool(&cc->req_pool, CRYPT_MIN_IOS, cc->req_size);
	if (r) {
		ti->error = "Cannot allocate crypt request mempool";
		goto bad;
	}
	r = mempool_init_page_pool(&cc->page_pool, BIO_MAX_VECS, 0);
	if (r) {
		ti->error = "Cannot allocate page mempool";
		goto bad;
	}
	r = bioset_init(&cc->bs, CRYPT_MIN_IOS, 0, BIOSET_NEED_BVECS);
	if (r) {
		ti->error = "Cannot allocate crypt bioset";
		goto bad;
	}

	r = -EINVAL;
	if (sscanf(argv[2], "%llu%c", &tmp, &c) != 1 ||
	    (tmp & ((cc->sector_size >> SECTOR_SHIFT) - 1))) {
		ti->error = "Invalid iv_offset sector";
		goto bad;
	}
	cc->iv_offset = tmp;

	r = dm_get_device(ti, argv[3], dm_table_get_mode(ti->table), &cc->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}

	r = -EINVAL;
	if (sscanf(argv[4], "%llu%c", &tmp, &c) != 1 || tmp != (sector_t)tmp) {
		ti->error = "Invalid device sector";
		goto bad;
	}
	cc->start = tmp;

	if (bdev_is_zoned(cc->dev->bdev)) {
		/* zone writes must reach the device in order: encrypt inline */
		set_bit(CRYPT_NO_OFFLOAD, &cc->flags);
		set_bit(CRYPT_NO_WRITE_WQ, &cc->flags);
		ti->emulate_zone_append = true;
	}

	if (crypt_is_aead(cc) || cc->integrity_iv_size) {
		r = crypt_ctr_integrity(cc, ti);
		if (r)
			goto bad;
		cc->tag_pool_sectors = TAG_POOL_BYTES / cc->on_disk_tag_size;
		if (!cc->tag_pool_sectors)
			cc->tag_pool_sectors = 1;
		r = mempool_init_kmalloc_pool(&cc->tag_pool, CRYPT_MIN_IOS,
					      cc->tag_pool_sectors * cc->on_disk_tag_size);
		if (r) {
			ti->error = "Cannot allocate integrity tags mempool";
			goto bad;
		}
		cc->tag_pool_sectors <<= cc->sector_shift;
	}

	r = -ENOMEM;
	cc->io_queue = alloc_workqueue("kcryptd_io/%s", WQ_MEM_RECLAIM, 1, devname);
	if (!cc->io_queue) {
		ti->error = "Couldn't create kcryptd io queue";
		goto bad;
	}
	if (test_bit(CRYPT_SAME_CPU, &cc->flags))
		cc->crypt_queue = alloc_workqueue("kcryptd/%s",
						  WQ_CPU_INTENSIVE | WQ_MEM_RECLAIM,
						  1, devname);
	else
		cc->crypt_queue = alloc_workqueue("kcryptd/%s",
						  WQ_CPU_INTENSIVE | WQ_MEM_RECLAIM |
						  WQ_UNBOUND, num_online_cpus(),
						  devname);
	if (!cc->crypt_queue) {
		ti->error = "Couldn't create kcryptd queue";
		goto bad;
	}
	spin_lock_init(&cc->write_lock);
	cc->write_tree = RB_ROOT;
	cc->write_thread = kthread_run(crypt_write_thread, cc, "dmcrypt_write/%s", devname);
	if (IS_ERR(cc->write_thread)) {
		r = PTR_ERR(cc->write_thread);
		cc->write_thread = NULL;
		ti->error = "Couldn't spawn write thread";
		goto bad;
	}

	ti->num_flush_bios = 1;
	ti->limit_swap_bios = true;
	ti->accounts_remapped_io = true;
	crypt_audit_ti(AUDIT_DM_CTRL, "ctr", ti, 1);
	return 0;

bad:
	crypt_audit_ti(AUDIT_DM_CTRL, "ctr", ti, 0);
	crypt_dtr(ti);
	return r;
}

static void crypt_status(struct dm_target *ti, status_type_t type,
			 unsigned int status_flags, char *result,
			 unsigned int maxlen)
{
	struct crypt_config *cc = ti->private;
	unsigned int sz = 0, i, n = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		result[0] = '\0';
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s ", cc->cipher_string);
		if (!cc->key_size)
			DMEMIT("-");
		else if (cc->key_string)
			DMEMIT(":%u:%s", cc->key_size, cc->key_string);
		else
			for (i = 0; i < cc->key_size; i++)
				DMEMIT("%02x", cc->key[i]);
		DMEMIT(" %llu %s %llu", (unsigned long long)cc->iv_offset,
		       cc->dev->name, (unsigned long long)cc->start);

		n += !!ti->num_discard_bios;
		n += test_bit(CRYPT_SAME_CPU, &cc->flags);
		n += test_bit(CRYPT_NO_OFFLOAD, &cc->flags);
		n += test_bit(CRYPT_NO_READ_WQ, &cc->flags);
		n += test_bit(CRYPT_NO_WRITE_WQ, &cc->flags);
		n += !!cc->on_disk_tag_size;
		n += cc->sector_size != SECTOR_SIZE;
		n += test_bit(CRYPT_IV_LARGE, &cc->flags);
		if (!n)
			break;
		DMEMIT(" %u", n);
		if (ti->num_discard_bios)
			DMEMIT(" allow_discards");
		if (test_bit(CRYPT_SAME_CPU, &cc->flags))
			DMEMIT(" same_cpu_crypt");
		if (test_bit(CRYPT_NO_OFFLOAD, &cc->flags))
			DMEMIT(" submit_from_crypt_cpus");
		if (test_bit(CRYPT_NO_READ_WQ, &cc->flags))
			DMEMIT(" no_read_workqueue");
		if (test_bit(CRYPT_NO_WRITE_WQ, &cc->flags))
			DMEMIT(" no_write_workqueue");
		if (cc->on_disk_tag_size)
			DMEMIT(" integrity:%u:%s", cc->on_disk_tag_size,
			       cc->cipher_auth);
		if (cc->sector_size != SECTOR_SIZE)
			DMEMIT(" sector_size:%u", cc->sector_size);
		if (test_bit(CRYPT_IV_LARGE, &cc->flags))
			DMEMIT(" iv_large_sectors");
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",allow_discards=%c", ti->num_discard_bios ? 'y' : 'n');
		DMEMIT(",same_cpu_crypt=%c",
		       test_bit(CRYPT_SAME_CPU, &cc->flags) ? 'y' : 'n');
		DMEMIT(",submit_from_crypt_cpus=%c",
		       test_bit(CRYPT_NO_OFFLOAD, &cc->flags) ? 'y' : 'n');
		DMEMIT(",no_read_workqueue=%c",
		       test_bit(CRYPT_NO_READ_WQ, &cc->flags) ? 'y' : 'n');
		DMEMIT(",no_write_workqueue=%c",
		       test_bit(CRYPT_NO_WRITE_WQ, &cc->flags) ? 'y' : 'n');
		DMEMIT(",iv_large_sectors=%c",
		       test_bit(CRYPT_IV_LARGE, &cc->flags) ? 'y' : 'n');
		if (cc->on_disk_tag_size)
			DMEMIT(",integrity_tag_size=%u,cipher_auth=%s",
			       cc->on_disk_tag_size, cc->cipher_auth);
		if (cc->sector_size != SECTOR_SIZE)
			DMEMIT(",sector_size=%u", cc->sector_size);
		if (cc->cipher_string)
			DMEMIT(",cipher_string=%s", cc->cipher_string);
		DMEMIT(",key_size=%u,key_parts=%u,key_extra_size=%u,key_mac_size=%u;",
		       cc->key_size, cc->key_parts, cc->key_extra_size,
		       cc->key_mac_size);
		break;
	}
}

static void crypt_postsuspend(struct dm_target *ti)
{
	struct crypt_config *cc = ti->private;

	set_bit(CRYPT_SUSPENDED, &cc->flags);
}

static int crypt_preresume(struct dm_target *ti)
{
	struct crypt_config *cc = ti->private;

	if (!test_bit(CRYPT_KEY_VALID, &cc->flags)) {
		DMERR("aborting resume - crypt key is not set.");
		return -EAGAIN;
	}
	return 0;
}

static void crypt_resume(struct dm_target *ti)
{
	struct crypt_config *cc = ti->private;

	clear_bit(CRYPT_SUSPENDED, &cc->flags);
}

/* "key set <key>" and "key wipe", only while suspended. */
static int crypt_message(struct dm_target *ti, unsigned int argc, char **argv,
			 char *result, unsigned int maxlen)
{
	struct crypt_config *cc = ti->private;
	char *key;
	int key_size, r;

	if (argc < 2 || strcasecmp(argv[0], "key"))
		goto unknown;

	if (!dm_suspended(ti)) {
		DMWARN("not suspended during key manipulation.");
		return -EINVAL;
	}

	if (argc == 3 && !strcasecmp(argv[1], "set")) {
		key = argv[2];
		key_size = crypt_key_size(&key);
		if (key_size < 0 || key_size != cc->key_size) {
			memset(argv[2], '0', strlen(argv[2]));
			return -EINVAL;
		}
		r = crypt_set_key(cc, key);
		if (r)
			return r;
		if (cc->iv_ops && cc->iv_ops->init)
			r = cc->iv_ops->init(cc);
		if (cc->key_string)
			memzero_explicit(cc->key, cc->key_size);
		return r;
	}
	if (argc == 2 && !strcasecmp(argv[1], "wipe"))
		return crypt_wipe_key(cc);

unknown:
	DMWARN("unrecognised message received.");
	return -EINVAL;
}

static int crypt_iterate_devices(struct dm_target *ti,
				 iterate_devices_callout_fn fn, void *data)
{
	struct crypt_config *cc = ti->private;

	return fn(ti, cc->dev, cc->start, ti->len, data);
}

static void crypt_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct crypt_config *cc = ti->private;

	limits->logical_block_size = max_t(unsigned int,
					   limits->logical_block_size, cc->sector_size);
	limits->physical_block_size = max_t(unsigned int,
					    limits->physical_block_size, cc->sector_size);
	limits->io_min = max_t(unsigned int, limits->io_min, cc->sector_size);
	/* every segment must hold whole encryption units */
	limits->dma_alignment = limits->logical_block_size - 1;
}

#ifdef CONFIG_BLK_DEV_ZONED
static int crypt_report_zones(struct dm_target *ti,
			      struct dm_report_zones_args *args,
			      unsigned int nr_zones)
{
	struct crypt_config *cc = ti->private;

	return dm_report_zones(cc->dev->bdev, cc->start,
			       cc->start + dm_target_offset(ti, args->next_sector),
			       args, nr_zones);
}
#else
#define crypt_report_zones NULL
#endif

static struct target_type crypt_target = {
	.name = "crypt",
	.version = { 1, 24, 0 },
	.features = DM_TARGET_ZONED_HM,
	.module = THIS_MODULE,
	.ctr = crypt_ctr,
	.dtr = crypt_dtr,
	.map = crypt_map,
	.status = crypt_status,
	.postsuspend = crypt_postsuspend,
	.preresume = crypt_preresume,
	.resume = crypt_resume,
	.message = crypt_message,
	.report_zones = crypt_report_zones,
	.iterate_devices = crypt_iterate_devices,
	.io_hints = crypt_io_hints,
};

static int __init dm_crypt_init(void)
{
	return dm_register_target(&crypt_target);
}

static void __exit dm_crypt_exit(void)
{
	dm_unregister_target(&crypt_target);
}

module_init(dm_crypt_init);
module_exit(dm_crypt_exit);

MODULE_DESCRIPTION(DM_NAME " target for transparent encryption / decryption");
MODULE_LICENSE("GPL");
