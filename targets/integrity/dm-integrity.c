// SPDX-License-Identifier: GPL-2.0-only
/*
 * integrity: a per-block tag (checksum) stored next to the data, checked on
 * every read.
 *
 * The on-disk format (superblock, journal, tag areas, bitmap) is the one of
 * the stock 6.1 target, so volumes move freely between the two.
 *
 * All I/O is done by one ordered worker, one bio at a time, synchronously.
 * That keeps the journal logic simple: a commit writes the journal sections
 * and then immediately copies their entries to the final data and tag
 * locations, so at most one window of uncommitted sections exists and reads
 * find pending blocks through a small index (xarray, block -> entry).
 */
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/dm-io.h>
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/audit.h>
#include <linux/blk-integrity.h>
#include <linux/ioprio.h>
#include <linux/random.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <asm/unaligned.h>
#include <linux/scatterlist.h>
#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <crypto/skcipher.h>

#include "dm-exports.h"

#define DM_MSG_PREFIX "integrity"

#define SB_MAGIC		"integrt"
#define SB_SECTORS		8
#define SALT_SIZE		16
#define MAX_TAG_SIZE		255
#define MAX_SPB			8
#define ENTRY_SECTORS		8	/* entry sectors at the head of a section */
#define JSECTOR_DATA		504	/* bytes before the commit id */
#define JMAC_PER_SECTOR		8
#define JMAC_SIZE		(JMAC_PER_SECTOR * ENTRY_SECTORS)
#define N_COMMIT_IDS		4
#define DISCARD_FILLER		0xf6
#define BITMAP_BLOCK		4096
#define RECALC_SB_EVERY		(32768 * 16)	/* sectors between sb writes */

#define DEF_INTERLEAVE		32768
#define DEF_BUFFER_SECTORS	128
#define DEF_WATERMARK		50
#define DEF_COMMIT_MS		10000
#define DEF_LOG2_SECTORS_PER_BIT 15
#define DEF_BITMAP_FLUSH_MS	10000
#define MAX_JOURNAL_SECTORS	131072

#define SB_FLAG_HAVE_JOURNAL_MAC	0x1
#define SB_FLAG_RECALCULATING		0x2
#define SB_FLAG_DIRTY_BITMAP		0x4
#define SB_FLAG_FIXED_PADDING		0x8
#define SB_FLAG_FIXED_HMAC		0x10

#define ENTRY_UNUSED_HI		0xffffffffU

struct integrity_sb {
	u8 magic[8];
	u8 version;
	u8 log2_interleave_sectors;
	__le16 integrity_tag_size;
	__le32 journal_sections;
	__le64 provided_data_sectors;
	__le32 flags;
	u8 log2_sectors_per_block;
	u8 log2_blocks_per_bitmap_bit;
	u8 pad[2];
	__le64 recalc_sector;
	u8 pad2[8];
	u8 salt[SALT_SIZE];
} __packed;

struct alg_arg {
	char *spec;		/* as given after "xxx:", for the table line */
	char *name;
	u8 *key;
	unsigned int key_size;
};

struct integrity_c {
	struct dm_target *ti;
	struct dm_dev *dev;
	struct dm_dev *meta_dev;
	sector_t start;
	unsigned int tag_size;
	char mode;

	/* table options */
	bool recalculate_flag;
	bool reset_recalculate;
	bool discard;
	bool fix_padding;
	bool fix_hmac;
	bool legacy_recalculate;
	unsigned int watermark;
	unsigned int commit_ms;
	unsigned int bitmap_flush_ms;
	struct alg_arg internal_hash_alg;
	struct alg_arg journal_crypt_alg;
	struct alg_arg journal_mac_alg;
	struct crypto_shash *internal_hash;
	struct crypto_shash *journal_mac;

	/*
	 * journal_crypt. A stream cipher (block size 1) is turned once into a
	 * keystream the journal is XORed with; a block cipher encrypts each
	 * section as one unit with an IV derived from the section number.
	 */
	struct crypto_skcipher *journal_crypt;	/* block cipher only */
	struct skcipher_request *jc_req;
	u8 *jc_ivs;			/* ivsize bytes per section */
	u8 *jc_iv;			/* the IV the request consumes */
	struct scatterlist *jc_src, *jc_dst;	/* pages of one section */
	u8 *journal_xor;		/* keystream (stream cipher) */
	u8 *journal_io;			/* on-disk (encrypted) journal image */

	/* geometry */
	struct integrity_sb *sb;
	unsigned int spb;
	unsigned int log2_spb;
	unsigned int log2_buffer_sectors;
	sector_t data_device_sectors;
	sector_t meta_device_sectors;
	sector_t provided;
	sector_t initial_sectors;
	sector_t metadata_run;
	unsigned int journal_sections;
	unsigned int entry_size;
	unsigned int entries_per_sector;
	unsigned int section_entries;
	unsigned int section_sectors;
	unsigned int journal_entries;
	unsigned int free_threshold;
	unsigned int max_io;		/* sectors */
	int log2_blocks_per_bit;
	unsigned int n_bitmap_blocks;

	struct dm_io_client *io;
	struct dm_bufio_client *bufio;
	u8 *buf;			/* max_io sectors of data */
	u8 *wbuf;			/* journal write-back runs (buf is busy) */
	u8 *tags;			/* tags of max_io sectors */
	u8 *calc;			/* one computed tag (digest sized) */

	/* journal (mode J; also the bitmap area's backing store in mode B) */
	u8 *journal;
	u64 commit_ids[N_COMMIT_IDS];
	unsigned int commit_start;	/* first section of the open window */
	unsigned int commit_seq;	/* its sequence */
	unsigned int win_sections;	/* sections in the open window */
	unsigned int cur_entry;		/* entries used in the last one */
	struct xarray pending;		/* block -> entry index + 1 */

	/* bitmap mode */
	unsigned long *bitmap;		/* may-be-stale bits, as on disk */
	unsigned long *recalc_bitmap;	/* ranges recalculation must do */
	bool bitmap_dirty_since_flush;

	bool sb_dirty;			/* write at resume */
	bool suspended;
	atomic64_t mismatches;
	bool failed;			/* journal unusable: all I/O fails */

	struct workqueue_struct *wq;	/* ordered: all I/O runs here */
	struct work_struct work;
	struct delayed_work commit_work;
	struct delayed_work bitmap_work;
	struct work_struct recalc_work;
	spinlock_t lock;		/* bios */
	struct bio_list bios;
};

/* dm-audit records, as stock sends them; nothing when DM_AUDIT is off. */
static void audit_ti(int type, const char *op, struct dm_target *ti, int result)
{
#if IS_ENABLED(CONFIG_DM_AUDIT)
	dm_audit_log_ti(type, DM_MSG_PREFIX, op, ti, result);
#endif
}

static void audit_event(struct integrity_c *ic, const char *op)
{
	audit_ti(AUDIT_DM_EVENT, op, ic->ti, 0);
}

/* ------------------------------------------------------------------ I/O */

static struct block_device *meta_bdev(struct integrity_c *ic)
{
	return ic->meta_dev ? ic->meta_dev->bdev : ic->dev->bdev;
}

static int sync_io(struct integrity_c *ic, struct block_device *bdev,
		   blk_opf_t opf, sector_t sector, sector_t count, void *buf)
{
	struct dm_io_region where = {
		.bdev = bdev, .sector = sector, .count = count,
	};
	struct dm_io_request req = {
		.bi_opf = opf, .client = ic->io, .notify.fn = NULL,
	};

	if (is_vmalloc_addr(buf)) {
		req.mem.type = DM_IO_VMA;
		req.mem.ptr.vma = buf;
	} else {
		req.mem.type = DM_IO_KMEM;
		req.mem.ptr.addr = buf;
	}
	return dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
}

static int flush_data_dev(struct integrity_c *ic)
{
	int r = blkdev_issue_flush(ic->dev->bdev);

	if (!r && ic->meta_dev)
		r = blkdev_issue_flush(ic->meta_dev->bdev);
	return r;
}

/* ------------------------------------------------------------- geometry */

static void sb_set_version(struct integrity_c *ic)
{
	u32 f = le32_to_cpu(ic->sb->flags);

	if (f & SB_FLAG_FIXED_HMAC)
		ic->sb->version = 5;
	else if (f & SB_FLAG_FIXED_PADDING)
		ic->sb->version = 4;
	else if (ic->mode == 'B' || (f & SB_FLAG_DIRTY_BITMAP))
		ic->sb->version = 3;
	else if (ic->meta_dev || (f & SB_FLAG_RECALCULATING))
		ic->sb->version = 2;
	else
		ic->sb->version = 1;
}

static bool sb_flag(struct integrity_c *ic, u32 flag)
{
	return le32_to_cpu(ic->sb->flags) & flag;
}

static void sb_set_flag(struct integrity_c *ic, u32 flag, bool on)
{
	u32 f = le32_to_cpu(ic->sb->flags);

	ic->sb->flags = cpu_to_le32(on ? f | flag : f & ~flag);
}

static void calc_section_size(struct integrity_c *ic)
{
	unsigned int space = JSECTOR_DATA;

	ic->journal_sections = le32_to_cpu(ic->sb->journal_sections);
	ic->entry_size = round_up(8 + 8 * ic->spb + ic->tag_size, 8);
	if (sb_flag(ic, SB_FLAG_HAVE_JOURNAL_MAC))
		space -= JMAC_PER_SECTOR;
	ic->entries_per_sector = space / ic->entry_size;
	ic->section_entries = ic->entries_per_sector * ENTRY_SECTORS;
	ic->section_sectors = (ic->section_entries << ic->log2_spb) + ENTRY_SECTORS;
	ic->journal_entries = ic->section_entries * ic->journal_sections;
}

static unsigned int log2_il(struct integrity_c *ic)
{
	return ic->sb->log2_interleave_sectors;
}

static sector_t area_sectors(struct integrity_c *ic)
{
	return ((sector_t)1 << log2_il(ic)) + ic->metadata_run;
}

/* Where logical sector @s lives on the data device. */
static sector_t data_sector(struct integrity_c *ic, sector_t s)
{
	sector_t area, off;

	if (ic->meta_dev)
		return s;
	area = s >> log2_il(ic);
	off = s & (((sector_t)1 << log2_il(ic)) - 1);
	return ic->start + ic->initial_sectors + area * area_sectors(ic) +
	       ic->metadata_run + off;
}

/* Byte offset of the tag of @s from the start of the tag space. */
static u64 tag_pos(struct integrity_c *ic, sector_t s)
{
	sector_t area, off;

	if (ic->meta_dev)
		return (u64)(s >> ic->log2_spb) * ic->tag_size;
	area = s >> log2_il(ic);
	off = s & (((sector_t)1 << log2_il(ic)) - 1);
	return ((u64)area * area_sectors(ic) << SECTOR_SHIFT) +
	       (u64)(off >> ic->log2_spb) * ic->tag_size;
}

static int calc_limits(struct integrity_c *ic)
{
	u64 initial;

	calc_section_size(ic);
	initial = SB_SECTORS + (u64)ic->section_sectors * ic->journal_sections;
	if (initial + 8 >= ic->meta_device_sectors || initial > UINT_MAX)
		return -EINVAL;
	ic->initial_sectors = initial;

	if (!ic->meta_dev) {
		u64 pad = sb_flag(ic, SB_FLAG_FIXED_PADDING) ? 4096 : 131072;
		sector_t last;

		ic->metadata_run = round_up((u64)ic->tag_size <<
					    (log2_il(ic) - ic->log2_spb),
					    pad) >> SECTOR_SHIFT;
		last = data_sector(ic, ic->provided - 1);
		if (last < ic->start || last >= ic->meta_device_sectors)
			return -EINVAL;
	} else {
		u64 bsz = 1ULL << (ic->log2_buffer_sectors + SECTOR_SHIFT);
		u64 meta = (u64)(ic->provided >> ic->log2_spb) * ic->tag_size;

		meta = DIV_ROUND_UP_ULL(meta, bsz) << ic->log2_buffer_sectors;
		if (ic->initial_sectors + meta > ic->meta_device_sectors)
			return -EINVAL;
		ic->metadata_run = 1;
	}
	return 0;
}

static void calc_provided(struct integrity_c *ic)
{
	int bit;

	if (ic->meta_dev) {
		ic->provided = ic->data_device_sectors & ~(sector_t)(ic->spb - 1);
		return;
	}
	ic->provided = 0;
	for (bit = fls64(ic->meta_device_sectors) - 1; bit >= 3; bit--) {
		sector_t prev = ic->provided;

		ic->provided |= (sector_t)1 << bit;
		if (calc_limits(ic))
			ic->provided = prev;
	}
}

static int init_superblock(struct integrity_c *ic, unsigned int journal_sectors,
			   unsigned int interleave)
{
	unsigned int sections;
	int bit;

	memset(ic->sb, 0, SB_SECTORS << SECTOR_SHIFT);
	memcpy(ic->sb->magic, SB_MAGIC, 8);
	ic->sb->integrity_tag_size = cpu_to_le16(ic->tag_size);
	ic->sb->log2_sectors_per_block = ic->log2_spb;
	if (ic->journal_mac_alg.name)
		sb_set_flag(ic, SB_FLAG_HAVE_JOURNAL_MAC, true);
	calc_section_size(ic);
	sections = max(journal_sectors / ic->section_sectors, 1U);

	if (ic->fix_hmac && (ic->internal_hash_alg.name || ic->journal_mac_alg.name)) {
		sb_set_flag(ic, SB_FLAG_FIXED_HMAC, true);
		get_random_bytes(ic->sb->salt, SALT_SIZE);
	}

	if (!ic->meta_dev) {
		if (ic->fix_padding)
			sb_set_flag(ic, SB_FLAG_FIXED_PADDING, true);
		ic->sb->journal_sections = cpu_to_le32(sections);
		if (!interleave)
			interleave = DEF_INTERLEAVE;
		ic->sb->log2_interleave_sectors = clamp(__fls(interleave), 3UL, 31UL);
		calc_provided(ic);
		if (!ic->provided)
			return -EINVAL;
	} else {
		ic->sb->log2_interleave_sectors = 0;
		calc_provided(ic);
		if (!ic->provided)
			return -EINVAL;
retry:
		ic->sb->journal_sections = 0;
		/* the largest section count not above the request that fits */
		for (bit = fls(sections) - 1; bit >= 0; bit--) {
			u32 prev = le32_to_cpu(ic->sb->journal_sections);
			u32 try = prev | (1U << bit);

			if (try > sections)
				continue;
			ic->sb->journal_sections = cpu_to_le32(try);
			if (calc_limits(ic))
				ic->sb->journal_sections = cpu_to_le32(prev);
		}
		if (!ic->sb->journal_sections) {
			if (ic->log2_buffer_sectors > 3) {
				ic->log2_buffer_sectors--;
				goto retry;
			}
			return -EINVAL;
		}
	}
	ic->sb->provided_data_sectors = cpu_to_le64(ic->provided);
	sb_set_version(ic);
	return 0;
}

static void shash_update_mac(struct integrity_c *ic, struct shash_desc *d)
{
	if (sb_flag(ic, SB_FLAG_FIXED_HMAC))
		crypto_shash_update(d, ic->sb->salt, SALT_SIZE);
}

/* With fix_hmac and journal_mac the superblock carries its own MAC. */
static int sb_mac(struct integrity_c *ic, bool check)
{
	SHASH_DESC_ON_STACK(d, ic->journal_mac);
	unsigned int size = crypto_shash_digestsize(ic->journal_mac);
	u8 *sb = (u8 *)ic->sb;
	u8 mac[HASH_MAX_DIGESTSIZE];
	int r;

	if (sizeof(struct integrity_sb) + size > SECTOR_SIZE)
		return -EINVAL;
	d->tfm = ic->journal_mac;
	r = crypto_shash_digest(d, sb, SECTOR_SIZE - size, mac);
	if (r)
		return r;
	if (check) {
		if (crypto_memneq(mac, sb + SECTOR_SIZE - size, size)) {
			DMERR("superblock MAC mismatch");
			audit_event(ic, "mac-superblock");
			return -EILSEQ;
		}
	} else {
		memcpy(sb + SECTOR_SIZE - size, mac, size);
	}
	return 0;
}

static int write_sb(struct integrity_c *ic)
{
	int r;

	sb_set_version(ic);
	if (ic->journal_mac && sb_flag(ic, SB_FLAG_FIXED_HMAC)) {
		r = sb_mac(ic, false);
		if (r)
			return r;
	}
	return sync_io(ic, meta_bdev(ic), REQ_OP_WRITE | REQ_FUA | REQ_SYNC,
		       ic->start, SB_SECTORS, ic->sb);
}

/* ---------------------------------------------------------------- tags */

static int compute_tag(struct integrity_c *ic, sector_t s, const u8 *data, u8 *out)
{
	SHASH_DESC_ON_STACK(d, ic->internal_hash);
	unsigned int dsize = crypto_shash_digestsize(ic->internal_hash);
	__le64 le = cpu_to_le64(s);
	int r;

	d->tfm = ic->internal_hash;
	r = crypto_shash_init(d);
	if (!r) {
		shash_update_mac(ic, d);
		r = crypto_shash_update(d, (u8 *)&le, sizeof(le));
	}
	if (!r)
		r = crypto_shash_update(d, data, ic->spb << SECTOR_SHIFT);
	if (!r)
		r = crypto_shash_final(d, ic->calc);
	if (r) {
		DMERR("internal hash failed: %d", r);
		return r;
	}
	memcpy(out, ic->calc, min(dsize, ic->tag_size));
	if (dsize < ic->tag_size)
		memset(out + dsize, 0, ic->tag_size - dsize);
	return 0;
}

/* Copy @len tag bytes at tag-space offset @pos to or from @p. */
static int rw_tag_bytes(struct integrity_c *ic, u64 pos, u8 *p, unsigned int len,
			bool write)
{
	unsigned int shift = ic->log2_buffer_sectors + SECTOR_SHIFT;
	unsigned int bsz = 1U << shift;

	while (len) {
		struct dm_buffer *b;
		unsigned int off = pos & (bsz - 1);
		unsigned int n = min(len, bsz - off);
		u8 *data = dm_bufio_read(ic->bufio, pos >> shift, &b);

		if (IS_ERR(data)) {
			DMERR_LIMIT("error reading tags: %ld", PTR_ERR(data));
			return PTR_ERR(data);
		}
		if (write) {
			memcpy(data + off, p, n);
			dm_bufio_mark_partial_buffer_dirty(b, off, off + n);
		} else {
			memcpy(p, data + off, n);
		}
		dm_bufio_release(b);
		pos += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Tags of @n sectors from @s; never crosses an interleave area. */
static int rw_tags(struct integrity_c *ic, sector_t s, sector_t n, u8 *tags,
		   bool write)
{
	return rw_tag_bytes(ic, tag_pos(ic, s), tags,
			    (n >> ic->log2_spb) * ic->tag_size, write);
}

static int commit_tags(struct integrity_c *ic)
{
	int r = dm_bufio_write_dirty_buffers(ic->bufio);

	if (!r)
		r = flush_data_dev(ic);
	return r;
}

/* -------------------------------------------------------------- journal */

static u8 *jsector(struct integrity_c *ic, unsigned int section, unsigned int j)
{
	return ic->journal + (((size_t)section * ic->section_sectors + j) << SECTOR_SHIFT);
}

static u8 *jentry(struct integrity_c *ic, unsigned int section, unsigned int e)
{
	return jsector(ic, section, e % ENTRY_SECTORS) +
	       (e / ENTRY_SECTORS) * ic->entry_size;
}

static u8 *jdata(struct integrity_c *ic, unsigned int section, unsigned int e)
{
	return jsector(ic, section, ENTRY_SECTORS + (e << ic->log2_spb));
}

static u64 entry_sector(u8 *je)
{
	return get_unaligned_le64(je);
}

static bool entry_unused(u8 *je)
{
	return get_unaligned_le32(je + 4) == ENTRY_UNUSED_HI;
}

static u64 commit_id(struct integrity_c *ic, unsigned int section,
		     unsigned int j, unsigned int seq)
{
	return ic->commit_ids[seq] ^ (((u64)section << 32) ^ j);
}

static void stamp_section(struct integrity_c *ic, unsigned int section,
			  unsigned int seq)
{
	unsigned int j;

	for (j = 0; j < ic->section_sectors; j++)
		put_unaligned_le64(commit_id(ic, section, j, seq),
				   jsector(ic, section, j) + JSECTOR_DATA);
}

static void clear_section(struct integrity_c *ic, unsigned int section)
{
	unsigned int j, e;

	for (j = 0; j < ic->section_sectors; j++)
		memset(jsector(ic, section, j), 0, JSECTOR_DATA);
	for (e = 0; e < ic->section_entries; e++)
		put_unaligned_le32(ENTRY_UNUSED_HI, jentry(ic, section, e) + 4);
}

static int section_mac(struct integrity_c *ic, unsigned int section, u8 *mac)
{
	SHASH_DESC_ON_STACK(d, ic->journal_mac);
	unsigned int size = crypto_shash_digestsize(ic->journal_mac);
	u8 digest[HASH_MAX_DIGESTSIZE];
	unsigned int e;
	int r;

	d->tfm = ic->journal_mac;
	r = crypto_shash_init(d);
	if (r)
		return r;
	if (sb_flag(ic, SB_FLAG_FIXED_HMAC)) {
		__le64 le = cpu_to_le64(section);

		crypto_shash_update(d, ic->sb->salt, SALT_SIZE);
		crypto_shash_update(d, (u8 *)&le, sizeof(le));
	}
	for (e = 0; e < ic->section_entries; e++) {
		r = crypto_shash_update(d, jentry(ic, section, e), 8);
		if (r)
			return r;
	}
	r = crypto_shash_final(d, digest);
	if (r)
		return r;
	memset(mac, 0, JMAC_SIZE);
	memcpy(mac, digest, min_t(unsigned int, size, JMAC_SIZE));
	return 0;
}

static int mac_section(struct integrity_c *ic, unsigned int section, bool check)
{
	u8 mac[JMAC_SIZE];
	unsigned int j;
	int r;

	if (!ic->journal_mac)
		return 0;
	r = section_mac(ic, section, mac);
	if (r)
		return r;
	for (j = 0; j < ENTRY_SECTORS; j++) {
		u8 *slot = jsector(ic, section, j) + JSECTOR_DATA - JMAC_PER_SECTOR;

		if (!check)
			memcpy(slot, mac + j * JMAC_PER_SECTOR, JMAC_PER_SECTOR);
		else if (crypto_memneq(slot, mac + j * JMAC_PER_SECTOR, JMAC_PER_SECTOR))
			return -EILSEQ;
	}
	return 0;
}

static size_t section_bytes(struct integrity_c *ic)
{
	return (size_t)ic->section_sectors << SECTOR_SHIFT;
}

static size_t journal_bytes(struct integrity_c *ic)
{
	return ic->journal_sections * section_bytes(ic);
}

/*
 * Point @sg at one section of a vmalloc'ed journal image. Sections are a
 * whole number of 4 KiB pages (8 entry sectors + 8 * n data sectors) and
 * the images are page aligned, so every entry is one full page.
 */
static void sg_section(struct integrity_c *ic, struct scatterlist *sg, u8 *base)
{
	unsigned int i, n = section_bytes(ic) >> PAGE_SHIFT;

	sg_init_table(sg, n);
	for (i = 0; i < n; i++)
		sg_set_page(&sg[i], vmalloc_to_page(base + ((size_t)i << PAGE_SHIFT)),
			    PAGE_SIZE, 0);
}

/* Encrypt a section from the journal into journal_io, or decrypt back. */
static int crypt_section(struct integrity_c *ic, unsigned int section, bool encrypt)
{
	size_t off = section * section_bytes(ic);
	u8 *from = (encrypt ? ic->journal : ic->journal_io) + off;
	u8 *to = (encrypt ? ic->journal_io : ic->journal) + off;
	unsigned int ivsize;
	DECLARE_CRYPTO_WAIT(wait);
	int r;

	if (ic->journal_xor) {
		crypto_xor_cpy(to, from, ic->journal_xor + off, section_bytes(ic));
		return 0;
	}
	ivsize = crypto_skcipher_ivsize(ic->journal_crypt);
	/* every section restarts from its own IV: the cipher updates jc_iv */
	memcpy(ic->jc_iv, ic->jc_ivs + (size_t)section * ivsize, ivsize);
	sg_section(ic, ic->jc_src, from);
	sg_section(ic, ic->jc_dst, to);
	skcipher_request_set_callback(ic->jc_req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP, crypto_req_done, &wait);
	skcipher_request_set_crypt(ic->jc_req, ic->jc_src, ic->jc_dst,
				   section_bytes(ic), ic->jc_iv);
	r = crypto_wait_req(encrypt ? crypto_skcipher_encrypt(ic->jc_req) :
			    crypto_skcipher_decrypt(ic->jc_req), &wait);
	if (r)
		DMERR_LIMIT("journal %s failed: %d", encrypt ? "encryption" : "decryption", r);
	return r;
}

/* Write @n sections from @first (wrapping) to disk. */
static int write_sections(struct integrity_c *ic, unsigned int first, unsigned int n)
{
	u8 *image = ic->journal_io ? ic->journal_io : ic->journal;
	unsigned int k;

	while (n) {
		unsigned int run = min(n, ic->journal_sections - first);
		int r = 0;

		for (k = 0; ic->journal_io && !r && k < run; k++)
			r = crypt_section(ic, first + k, true);
		if (!r)
			r = sync_io(ic, meta_bdev(ic), REQ_OP_WRITE | REQ_FUA | REQ_SYNC,
				    ic->start + SB_SECTORS +
				    (sector_t)first * ic->section_sectors,
				    (sector_t)run * ic->section_sectors,
				    image + first * section_bytes(ic));
		if (r)
			return r;
		n -= run;
		first = 0;
	}
	return 0;
}

/* Reset the whole journal to empty sections of sequence @seq and write it. */
static int init_journal(struct integrity_c *ic, unsigned int seq)
{
	unsigned int i;
	int r;

	for (i = 0; i < ic->journal_sections; i++) {
		clear_section(ic, i);
		r = mac_section(ic, i, false);
		if (r)
			return r;
		stamp_section(ic, i, seq);
	}
	r = write_sections(ic, 0, ic->journal_sections);
	if (r)
		DMERR("error writing journal: %d", r);
	return r;
}

/* Data block of entry @e of @section, with its real last bytes, into @out. */
static void entry_block(struct integrity_c *ic, unsigned int section,
			unsigned int e, u8 *out)
{
	u8 *je = jentry(ic, section, e);
	unsigned int i;

	memcpy(out, jdata(ic, section, e), ic->spb << SECTOR_SHIFT);
	for (i = 0; i < ic->spb; i++)
		memcpy(out + (i << SECTOR_SHIFT) + JSECTOR_DATA, je + 8 + 8 * i, 8);
}

/*
 * Copy the used entries of @n sections from @first to their home. Runs of
 * consecutive blocks are written with one I/O; entries later in the journal
 * are written later, so the newest copy of a block wins.
 */
static int writeback_sections(struct integrity_c *ic, unsigned int first,
			      unsigned int n, bool verify, bool *any)
{
	sector_t run_start = 0, run_len = 0;
	unsigned int bs = ic->spb;
	unsigned int k, e;
	int r = 0;

	for (k = 0; k < n; k++) {
		unsigned int section = (first + k) % ic->journal_sections;

		for (e = 0; e < ic->section_entries; e++) {
			u8 *je = jentry(ic, section, e);
			u64 s = entry_sector(je);
			u8 *tag = je + 8 + 8 * ic->spb;

			if (entry_unused(je) || s >= ic->provided || (s & (bs - 1)))
				continue;
			if (run_len && (s != run_start + run_len ||
					run_len + bs > ic->max_io ||
					(!ic->meta_dev && (s >> log2_il(ic)) !=
					 (run_start >> log2_il(ic))))) {
				r = sync_io(ic, ic->dev->bdev, REQ_OP_WRITE,
					    data_sector(ic, run_start), run_len, ic->wbuf);
				if (r)
					return r;
				run_len = 0;
			}
			if (!run_len)
				run_start = s;
			entry_block(ic, section, e, ic->wbuf + (run_len << SECTOR_SHIFT));
			if (verify && ic->internal_hash) {
				r = compute_tag(ic, s, ic->wbuf + (run_len << SECTOR_SHIFT),
						ic->tags);
				if (r)
					return r;
				if (memcmp(ic->tags, tag, ic->tag_size)) {
					DMERR_LIMIT("tag mismatch when replaying journal at sector 0x%llx",
						    (unsigned long long)s);
					audit_event(ic, "integrity-replay-journal");
					continue;
				}
			}
			run_len += bs;
			r = rw_tag_bytes(ic, tag_pos(ic, s), tag, ic->tag_size, true);
			if (r)
				return r;
			*any = true;
		}
	}
	if (run_len)
		r = sync_io(ic, ic->dev->bdev, REQ_OP_WRITE, data_sector(ic, run_start),
			    run_len, ic->wbuf);
	return r;
}

static void next_section(struct integrity_c *ic, unsigned int *section,
			 unsigned int *seq)
{
	if (++*section == ic->journal_sections) {
		*section = 0;
		*seq = (*seq + 1) % N_COMMIT_IDS;
	}
}

/*
 * Commit the open window (stamp, MAC, write with FUA), then copy it home and
 * flush so the sections may be reused.
 */
static int journal_commit(struct integrity_c *ic)
{
	unsigned int section = ic->commit_start, seq = ic->commit_seq, k;
	bool any = false;
	int r;

	if (!ic->win_sections)
		return 0;
	for (k = 0; k < ic->win_sections; k++) {
		r = mac_section(ic, section, false);
		if (r)
			return r;
		stamp_section(ic, section, seq);
		next_section(ic, &section, &seq);
	}
	r = write_sections(ic, ic->commit_start, ic->win_sections);
	if (!r)
		r = writeback_sections(ic, ic->commit_start, ic->win_sections, false, &any);
	if (!r)
		r = commit_tags(ic);
	if (r) {
		DMERR_LIMIT("error committing journal: %d", r);
		return r;
	}
	xa_destroy(&ic->pending);
	ic->commit_start = section;
	ic->commit_seq = seq;
	ic->win_sections = 0;
	ic->cur_entry = 0;
	return 0;
}

/* Put one block into the journal window. */
static int journal_add(struct integrity_c *ic, sector_t s, const u8 *data,
		       const u8 *tag)
{
	unsigned int section, e, i;
	u8 *je;
	int r;

	if (!ic->win_sections || ic->cur_entry == ic->section_entries) {
		if (ic->win_sections == ic->journal_sections) {
			r = journal_commit(ic);
			if (r)
				return r;
		}
		ic->win_sections++;
		ic->cur_entry = 0;
		clear_section(ic, (ic->commit_start + ic->win_sections - 1) %
			      ic->journal_sections);
	}
	section = (ic->commit_start + ic->win_sections - 1) % ic->journal_sections;
	e = ic->cur_entry++;
	je = jentry(ic, section, e);
	memcpy(jdata(ic, section, e), data, ic->spb << SECTOR_SHIFT);
	for (i = 0; i < ic->spb; i++)
		memcpy(je + 8 + 8 * i, data + (i << SECTOR_SHIFT) + JSECTOR_DATA, 8);
	if (tag)
		memcpy(je + 8 + 8 * ic->spb, tag, ic->tag_size);
	put_unaligned_le64(s, je);
	r = xa_err(xa_store(&ic->pending, s >> ic->log2_spb,
			    xa_mk_value(section * ic->section_entries + e + 1), GFP_NOIO));
	if (r)
		return r;
	if (ic->win_sections * ic->section_entries - (ic->section_entries - ic->cur_entry) >
	    ic->journal_entries - ic->free_threshold)
		return journal_commit(ic);
	return 0;
}

/*
 * A journal that cannot be trusted (wrong key, corrupt ids or MACs): as
 * stock, the device then fails all I/O and writes nothing, so the journal
 * stays on disk for a later load with the right parameters.
 */
static int integrity_fail(struct integrity_c *ic, const char *what, int err)
{
	DMERR("Error on %s: %d", what, err);
	WRITE_ONCE(ic->failed, true);
	return err;
}

/*
 * Replay at resume. Every sector must carry a known commit id; the walk
 * starts after the newest section of the last used sequence and accepts
 * sections while they carry the expected sequence.
 */
static int replay_journal(struct integrity_c *ic)
{
	bool used[N_COMMIT_IDS] = { };
	unsigned int max_section[N_COMMIT_IDS] = { };
	unsigned int i, j, k, unused, last_used, want, start, n, erase;
	bool any = false, empty = true;
	int r;

	r = sync_io(ic, meta_bdev(ic), REQ_OP_READ, ic->start + SB_SECTORS,
		    (sector_t)ic->journal_sections * ic->section_sectors,
		    ic->journal_io ? ic->journal_io : ic->journal);
	if (r) {
		DMERR("error reading journal: %d", r);
		return r;
	}
	for (i = 0; ic->journal_io && i < ic->journal_sections; i++) {
		r = crypt_section(ic, i, false);
		if (r)
			return r;
	}
	for (i = 0; i < ic->journal_sections; i++) {
		for (j = 0; j < ic->section_sectors; j++) {
			u64 id = get_unaligned_le64(jsector(ic, i, j) + JSECTOR_DATA);

			for (k = 0; k < N_COMMIT_IDS; k++)
				if (id == commit_id(ic, i, j, k))
					break;
			if (k == N_COMMIT_IDS)
				return integrity_fail(ic, "journal commit id", -EIO);
			if (!j) {
				used[k] = true;
				max_section[k] = i;
			}
		}
		if (mac_section(ic, i, true)) {
			audit_event(ic, "mac-journal");
			return integrity_fail(ic, "journal mac", -EILSEQ);
		}
		for (j = 0; j < ic->section_entries; j++)
			if (!entry_unused(jentry(ic, i, j)))
				empty = false;
	}
	for (unused = 0; unused < N_COMMIT_IDS; unused++)
		if (!used[unused] && used[(unused + N_COMMIT_IDS - 1) % N_COMMIT_IDS])
			break;
	if (unused == N_COMMIT_IDS)
		return integrity_fail(ic, "journal commit ids", -EIO);
	last_used = (unused + N_COMMIT_IDS - 1) % N_COMMIT_IDS;
	want = (last_used + N_COMMIT_IDS - 1) % N_COMMIT_IDS;
	start = max_section[last_used] + 1;
	if (start >= ic->journal_sections) {
		start = 0;
		want = (want + 1) % N_COMMIT_IDS;
	}
	i = start;
	for (n = 0; n < ic->journal_sections; n++) {
		for (j = 0; j < ic->section_sectors; j++)
			if (get_unaligned_le64(jsector(ic, i, j) + JSECTOR_DATA) !=
			    commit_id(ic, i, j, want))
				goto walked;
		next_section(ic, &i, &want);
	}
walked:
	if (!empty && n) {
		r = writeback_sections(ic, start, n, true, &any);
		if (!r && any)
			r = commit_tags(ic);
		if (r) {
			DMERR("error replaying journal: %d", r);
			return r;
		}
	}
	if (n == ic->journal_sections && (ic->mode == 'J' || !any)) {
		ic->commit_start = i;
		ic->commit_seq = want;
		return 0;
	}
	/* a sequence that is neither of the last two used */
	erase = (last_used + 2) % N_COMMIT_IDS;
	r = init_journal(ic, erase);
	ic->commit_start = 0;
	ic->commit_seq = (erase + 1) % N_COMMIT_IDS;
	return r;
}

/* --------------------------------------------------------------- bitmap */

static unsigned int bit_shift(struct integrity_c *ic)
{
	return ic->log2_blocks_per_bit + ic->log2_spb;
}

static int write_bitmap(struct integrity_c *ic, unsigned int first, unsigned int n)
{
	return sync_io(ic, meta_bdev(ic), REQ_OP_WRITE | REQ_FUA | REQ_SYNC,
		       ic->start + SB_SECTORS + (sector_t)first * (BITMAP_BLOCK >> SECTOR_SHIFT),
		       (sector_t)n * (BITMAP_BLOCK >> SECTOR_SHIFT),
		       (u8 *)ic->bitmap + (size_t)first * BITMAP_BLOCK);
}

static unsigned long n_bits(struct integrity_c *ic)
{
	return (ic->provided + ((sector_t)1 << bit_shift(ic)) - 1) >> bit_shift(ic);
}

/* Before writing [s, s+n): mark its bits and get them on disk. */
static int bitmap_mark(struct integrity_c *ic, sector_t s, sector_t n)
{
	unsigned long b = s >> bit_shift(ic), e = (s + n - 1) >> bit_shift(ic);
	unsigned long i, lo = ULONG_MAX, hi = 0;

	for (i = b; i <= e; i++) {
		if (test_bit_le(i, ic->bitmap))
			continue;
		__set_bit_le(i, ic->bitmap);
		lo = min(lo, i / (BITMAP_BLOCK * 8));
		hi = i / (BITMAP_BLOCK * 8);
	}
	if (lo == ULONG_MAX)
		return 0;
	ic->bitmap_dirty_since_flush = true;
	return write_bitmap(ic, lo, hi - lo + 1);
}

static sector_t recalc_pos(struct integrity_c *ic)
{
	if (!sb_flag(ic, SB_FLAG_RECALCULATING))
		return ic->provided;
	return min_t(sector_t, le64_to_cpu(ic->sb->recalc_sector), ic->provided);
}

/* Make tags durable, then drop the bits below the recalculation point. */
static int bitmap_flush(struct integrity_c *ic)
{
	unsigned long from = DIV_ROUND_UP_ULL(recalc_pos(ic), 1ULL << bit_shift(ic));
	unsigned long i;
	int r;

	r = commit_tags(ic);
	if (r)
		return r;
	for (i = 0; i < min(from, n_bits(ic)); i++)
		__clear_bit_le(i, ic->bitmap);
	ic->bitmap_dirty_since_flush = false;
	return write_bitmap(ic, 0, ic->n_bitmap_blocks);
}

/* ------------------------------------------------------------ data path */

static void copy_bio(struct bio *bio, u8 *buf, bool to_bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		if (to_bio)
			memcpy_to_bvec(&bv, buf);
		else
			memcpy_from_bvec(buf, &bv);
		buf += bv.bv_len;
	}
}

/*
 * Tags carried by the bio (dm-crypt AEAD), to or from @tags. Only the first
 * @len bytes: a core that does not trim the payload of a split clone hands
 * us the payload of the whole original bio.
 */
static void copy_bip(struct bio *bio, u8 *tags, unsigned int len, bool to_bip)
{
	struct bio_integrity_payload *bip = bio_integrity(bio);
	struct bvec_iter iter;
	struct bio_vec bv;

	bip_for_each_vec(bv, bip, iter) {
		unsigned int n = min(len, bv.bv_len);
		u8 *p = bvec_kmap_local(&bv);

		if (to_bip)
			memcpy(p, tags, n);
		else
			memcpy(tags, p, n);
		kunmap_local(p);
		tags += n;
		len -= n;
		if (!len)
			break;
	}
}

static bool tag_is_discarded(struct integrity_c *ic, const u8 *tag)
{
	return !memchr_inv(tag, DISCARD_FILLER, ic->tag_size);
}

static int do_read(struct integrity_c *ic, struct bio *bio, sector_t s, sector_t n)
{
	bool verify = ic->internal_hash && ic->mode != 'R' && s + n <= recalc_pos(ic);
	bool bip = bio_integrity(bio);
	sector_t i;
	int r;

	r = sync_io(ic, ic->dev->bdev, REQ_OP_READ, data_sector(ic, s), n, ic->buf);
	if (r)
		return r;
	if (verify || bip) {
		r = rw_tags(ic, s, n, ic->tags, false);
		if (r)
			return r;
	}
	for (i = 0; i < n; i += ic->spb) {
		u8 *data = ic->buf + (i << SECTOR_SHIFT);
		u8 *tag = ic->tags + (i >> ic->log2_spb) * ic->tag_size;
		void *ent = ic->win_sections ?
			xa_load(&ic->pending, (s + i) >> ic->log2_spb) : NULL;

		if (ent) {
			unsigned long idx = xa_to_value(ent) - 1;

			entry_block(ic, idx / ic->section_entries,
				    idx % ic->section_entries, data);
			memcpy(tag, jentry(ic, idx / ic->section_entries,
					   idx % ic->section_entries) + 8 + 8 * ic->spb,
			       ic->tag_size);
			continue;
		}
		if (!verify || tag_is_discarded(ic, tag))
			continue;
		r = compute_tag(ic, s + i, data, ic->tags + (ic->max_io >> ic->log2_spb) *
				ic->tag_size);
		if (r)
			return r;
		if (memcmp(ic->tags + (ic->max_io >> ic->log2_spb) * ic->tag_size, tag,
			   ic->tag_size)) {
			DMERR_LIMIT("%pg: Checksum failed at sector 0x%llx",
				    bio->bi_bdev, (unsigned long long)(s + i));
#if IS_ENABLED(CONFIG_DM_AUDIT)
			dm_audit_log_bio(DM_MSG_PREFIX, "integrity-checksum", bio, s + i, 0);
#endif
			atomic64_inc(&ic->mismatches);
			return -EILSEQ;
		}
	}
	copy_bio(bio, ic->buf, true);
	if (bip)
		copy_bip(bio, ic->tags, (n >> ic->log2_spb) * ic->tag_size, true);
	return 0;
}

static int do_write(struct integrity_c *ic, struct bio *bio, sector_t s, sector_t n)
{
	bool fua = bio->bi_opf & REQ_FUA;
	bool have_tags = ic->internal_hash || bio_integrity(bio);
	sector_t i;
	int r;

	copy_bio(bio, ic->buf, false);
	if (!ic->internal_hash && bio_integrity(bio))
		copy_bip(bio, ic->tags, (n >> ic->log2_spb) * ic->tag_size, false);
	if (ic->internal_hash) {
		for (i = 0; i < n; i += ic->spb) {
			r = compute_tag(ic, s + i, ic->buf + (i << SECTOR_SHIFT),
					ic->tags + (i >> ic->log2_spb) * ic->tag_size);
			if (r)
				return r;
		}
	}
	if (ic->mode == 'J') {
		for (i = 0; i < n; i += ic->spb) {
			r = journal_add(ic, s + i, ic->buf + (i << SECTOR_SHIFT),
					have_tags ?
					ic->tags + (i >> ic->log2_spb) * ic->tag_size : NULL);
			if (r)
				return r;
		}
		if (fua)
			return journal_commit(ic);
		if (ic->win_sections && !delayed_work_pending(&ic->commit_work))
			queue_delayed_work(ic->wq, &ic->commit_work,
					   msecs_to_jiffies(ic->commit_ms));
		return 0;
	}
	if (ic->mode == 'B') {
		r = bitmap_mark(ic, s, n);
		if (r)
			return r;
		if (!delayed_work_pending(&ic->bitmap_work))
			queue_delayed_work(ic->wq, &ic->bitmap_work,
					   msecs_to_jiffies(ic->bitmap_flush_ms));
	}
	r = sync_io(ic, ic->dev->bdev, REQ_OP_WRITE | (fua ? REQ_FUA : 0),
		    data_sector(ic, s), n, ic->buf);
	if (r)
		return r;
	if (have_tags) {
		r = rw_tags(ic, s, n, ic->tags, true);
		if (r)
			return r;
	}
	if (fua)
		return dm_bufio_write_dirty_buffers(ic->bufio);
	return 0;
}

/* Sectors from @s to the end of its interleave area. */
static sector_t area_left(struct integrity_c *ic, sector_t s)
{
	return (((s >> log2_il(ic)) + 1) << log2_il(ic)) - s;
}

static int do_discard(struct integrity_c *ic, sector_t s, sector_t n)
{
	sector_t i, len;
	int r;

	if (ic->mode == 'J') {
		/* pending journal copies would resurrect the data */
		r = journal_commit(ic);
		if (r)
			return r;
	}
	if (ic->mode == 'B') {
		r = bitmap_mark(ic, s, n);
		if (r)
			return r;
	}
	for (i = 0; i < n; i += len) {
		len = min_t(sector_t, n - i, ic->max_io);
		if (!ic->meta_dev)
			len = min_t(sector_t, len, area_left(ic, s + i));
		memset(ic->tags, DISCARD_FILLER, (len >> ic->log2_spb) * ic->tag_size);
		r = rw_tags(ic, s + i, len, ic->tags, true);
		if (r)
			return r;
	}
	r = dm_bufio_write_dirty_buffers(ic->bufio);
	/* the filler tags are down: now the data may go, as stock passes it on */
	for (i = 0; !r && i < n; i += len) {
		len = ic->meta_dev ? n : min_t(sector_t, n - i, area_left(ic, s + i));
		r = blkdev_issue_discard(ic->dev->bdev, data_sector(ic, s + i), len, GFP_NOIO);
	}
	return r;
}

static int do_flush(struct integrity_c *ic)
{
	if (ic->mode == 'J')
		return journal_commit(ic);
	if (ic->mode == 'R')
		return 0;
	return commit_tags(ic);
}

static void process_bio(struct integrity_c *ic, struct bio *bio)
{
	sector_t s = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	sector_t n = bio_sectors(bio);
	int r = 0;

	if (bio->bi_opf & REQ_PREFLUSH)
		r = do_flush(ic);
	if (!r && n) {
		switch (bio_op(bio)) {
		case REQ_OP_READ:
			r = do_read(ic, bio, s, n);
			break;
		case REQ_OP_WRITE:
			r = do_write(ic, bio, s, n);
			break;
		case REQ_OP_DISCARD:
			r = do_discard(ic, s, n);
			break;
		default:
			r = -EOPNOTSUPP;
		}
	}
	bio->bi_status = errno_to_blk_status(r);
	bio_endio(bio);
}

static void integrity_work(struct work_struct *w)
{
	struct integrity_c *ic = container_of(w, struct integrity_c, work);
	struct bio *bio;

	for (;;) {
		spin_lock_irq(&ic->lock);
		bio = bio_list_pop(&ic->bios);
		spin_unlock_irq(&ic->lock);
		if (!bio)
			break;
		process_bio(ic, bio);
	}
}

static void commit_work_fn(struct work_struct *w)
{
	struct integrity_c *ic = container_of(to_delayed_work(w), struct integrity_c,
					      commit_work);

	journal_commit(ic);
}

static void bitmap_work_fn(struct work_struct *w)
{
	struct integrity_c *ic = container_of(to_delayed_work(w), struct integrity_c,
					      bitmap_work);

	if (ic->bitmap_dirty_since_flush && bitmap_flush(ic))
		DMERR_LIMIT("error flushing the bitmap");
}

/* Recalculate the tags of one chunk per call; requeues itself. */
static void recalc_work_fn(struct work_struct *w)
{
	struct integrity_c *ic = container_of(w, struct integrity_c, recalc_work);
	sector_t pos, n, i, end;
	bool skip = false;
	int r;

	if (ic->suspended || !sb_flag(ic, SB_FLAG_RECALCULATING))
		return;
	pos = le64_to_cpu(ic->sb->recalc_sector);
	if (pos >= ic->provided)
		return;
	n = min_t(sector_t, ic->max_io, ic->provided - pos);
	if (!ic->meta_dev) {
		end = ((pos >> log2_il(ic)) + 1) << log2_il(ic);
		n = min_t(sector_t, n, end - pos);
	}
	if (ic->recalc_bitmap) {
		unsigned long b = pos >> bit_shift(ic);

		end = (sector_t)(b + 1) << bit_shift(ic);
		n = min_t(sector_t, n, end - pos);
		skip = !test_bit_le(b, ic->recalc_bitmap);
	}
	if (!skip) {
		r = sync_io(ic, ic->dev->bdev, REQ_OP_READ, data_sector(ic, pos), n, ic->buf);
		for (i = 0; !r && i < n; i += ic->spb)
			r = compute_tag(ic, pos + i, ic->buf + (i << SECTOR_SHIFT),
					ic->tags + (i >> ic->log2_spb) * ic->tag_size);
		if (!r)
			r = rw_tags(ic, pos, n, ic->tags, true);
		if (r) {
			DMERR("recalculation failed at sector 0x%llx: %d",
			      (unsigned long long)pos, r);
			return;
		}
	}
	ic->sb->recalc_sector = cpu_to_le64(pos + n);
	if (pos + n >= ic->provided ||
	    (pos + n) / RECALC_SB_EVERY != pos / RECALC_SB_EVERY) {
		r = commit_tags(ic);
		if (!r)
			r = write_sb(ic);
		if (r) {
			DMERR("error writing the superblock: %d", r);
			return;
		}
	}
	if (pos + n < ic->provided)
		queue_work(ic->wq, &ic->recalc_work);
}

static int integrity_map(struct dm_target *ti, struct bio *bio)
{
	struct integrity_c *ic = ti->private;
	sector_t n = bio_sectors(bio);

	if (READ_ONCE(ic->failed))
		return DM_MAPIO_KILL;
	if (n) {
		sector_t s = dm_target_offset(ti, bio->bi_iter.bi_sector);

		if ((s | n) & (ic->spb - 1)) {
			DMERR_LIMIT("bio not aligned on %u sectors: 0x%llx, 0x%llx",
				    ic->spb, (unsigned long long)s, (unsigned long long)n);
			return DM_MAPIO_KILL;
		}
		if (s + n > ic->provided) {
			DMERR_LIMIT("sector 0x%llx beyond the provided sectors",
				    (unsigned long long)(s + n));
			return DM_MAPIO_KILL;
		}
		if (ic->mode == 'R' && bio_op(bio) != REQ_OP_READ)
			return DM_MAPIO_KILL;
		if (bio_integrity(bio)) {
			unsigned int want = (n >> ic->log2_spb) * ic->tag_size;

			if (ic->internal_hash) {
				DMERR_LIMIT("unexpected integrity data when using internal hash");
				return DM_MAPIO_KILL;
			}
			if (bio_integrity(bio)->bip_iter.bi_size < want) {
				DMERR_LIMIT("invalid integrity data size %u, expected %u",
					    bio_integrity(bio)->bip_iter.bi_size, want);
				return DM_MAPIO_KILL;
			}
		}
	}
	spin_lock_irq(&ic->lock);
	bio_list_add(&ic->bios, bio);
	spin_unlock_irq(&ic->lock);
	queue_work(ic->wq, &ic->work);
	return DM_MAPIO_SUBMITTED;
}

/* ------------------------------------------------------ suspend, resume */

static void integrity_postsuspend(struct dm_target *ti)
{
	struct integrity_c *ic = ti->private;
	int r = 0;

	ic->suspended = true;
	cancel_delayed_work_sync(&ic->commit_work);
	cancel_delayed_work_sync(&ic->bitmap_work);
	cancel_work_sync(&ic->recalc_work);
	flush_workqueue(ic->wq);
	if (ic->mode == 'R' || ic->failed)
		return;
	if (ic->mode == 'J')
		r = journal_commit(ic);
	if (!r)
		r = commit_tags(ic);
	if (!r && ic->mode == 'B') {
		r = init_journal(ic, 0);
		sb_set_flag(ic, SB_FLAG_DIRTY_BITMAP, false);
		if (!r)
			r = write_sb(ic);
	} else if (!r && sb_flag(ic, SB_FLAG_RECALCULATING)) {
		r = write_sb(ic);
	}
	if (r)
		DMERR("error while suspending: %d", r);
}

static int bitmap_resume(struct integrity_c *ic)
{
	size_t bytes = (size_t)ic->n_bitmap_blocks * BITMAP_BLOCK;
	/* outside mode B the journal buffer holds the bitmap while we look */
	unsigned long *bm = ic->bitmap ? ic->bitmap : (unsigned long *)ic->journal;
	unsigned long nb = n_bits(ic);
	int r;

	if (sb_flag(ic, SB_FLAG_DIRTY_BITMAP)) {
		bool same = ic->sb->log2_blocks_per_bitmap_bit == ic->log2_blocks_per_bit &&
			    !ic->reset_recalculate;
		bool any;

		r = sync_io(ic, meta_bdev(ic), REQ_OP_READ, ic->start + SB_SECTORS,
			    bytes >> SECTOR_SHIFT, bm);
		if (r)
			return r;
		if (!same)
			memset(bm, 0xff, bytes);
		any = find_next_bit_le(bm, nb, 0) < nb;
		if (any) {
			sb_set_flag(ic, SB_FLAG_RECALCULATING, true);
			ic->sb->recalc_sector = 0;
		}
		if (ic->mode == 'B') {
			memcpy(ic->recalc_bitmap, ic->bitmap, bytes);
			ic->sb->log2_blocks_per_bitmap_bit = ic->log2_blocks_per_bit;
			ic->bitmap_dirty_since_flush = any;
			return write_sb(ic);
		}
		r = init_journal(ic, 0);
		if (r)
			return r;
		ic->commit_start = 0;
		ic->commit_seq = 1;
		sb_set_flag(ic, SB_FLAG_DIRTY_BITMAP, false);
		return write_sb(ic);
	}
	r = replay_journal(ic);
	if (r || ic->mode != 'B')
		return r;
	sb_set_flag(ic, SB_FLAG_DIRTY_BITMAP, true);
	ic->sb->log2_blocks_per_bitmap_bit = ic->log2_blocks_per_bit;
	r = write_sb(ic);
	if (r)
		return r;
	memset(ic->bitmap, 0, bytes);
	if (sb_flag(ic, SB_FLAG_RECALCULATING)) {
		unsigned long i;

		for (i = recalc_pos(ic) >> bit_shift(ic); i < nb; i++)
			__set_bit_le(i, ic->bitmap);
	}
	memcpy(ic->recalc_bitmap, ic->bitmap, bytes);
	ic->bitmap_dirty_since_flush = sb_flag(ic, SB_FLAG_RECALCULATING);
	return write_bitmap(ic, 0, ic->n_bitmap_blocks);
}

static void integrity_resume(struct dm_target *ti)
{
	struct integrity_c *ic = ti->private;
	int r = 0;

	if (ic->mode != 'R' && !ic->failed) {
		if (ic->sb_dirty) {
			r = write_sb(ic);
			ic->sb_dirty = false;
		}
		if (!r)
			r = bitmap_resume(ic);
		if (r)
			DMERR("error while resuming: %d", r);
	}
	ic->suspended = false;
	if (ic->mode == 'B' && ic->bitmap_dirty_since_flush)
		queue_delayed_work(ic->wq, &ic->bitmap_work,
				   msecs_to_jiffies(ic->bitmap_flush_ms));
	if (ic->mode != 'R' && sb_flag(ic, SB_FLAG_RECALCULATING) && ic->internal_hash) {
		if (le64_to_cpu(ic->sb->recalc_sector) < ic->provided)
			queue_work(ic->wq, &ic->recalc_work);
	}
}

/* ------------------------------------------------------ status, limits */

static void integrity_status(struct dm_target *ti, status_type_t type,
			     unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct integrity_c *ic = ti->private;
	unsigned int sz = 0;
	bool recalc = sb_flag(ic, SB_FLAG_RECALCULATING);
	bool fpad = sb_flag(ic, SB_FLAG_FIXED_PADDING);
	bool fhmac = sb_flag(ic, SB_FLAG_FIXED_HMAC);
	unsigned int count;
	u64 wm;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%llu %llu", (unsigned long long)atomic64_read(&ic->mismatches),
		       (unsigned long long)ic->provided);
		if (recalc)
			DMEMIT(" %llu", (unsigned long long)le64_to_cpu(ic->sb->recalc_sector));
		else
			DMEMIT(" -");
		break;
	case STATUSTYPE_TABLE:
		wm = (u64)(ic->journal_entries - ic->free_threshold) * 100 +
		     ic->journal_entries / 2;
		do_div(wm, ic->journal_entries);
		count = 3 + !!ic->meta_dev + (ic->spb != 1) + recalc +
			ic->reset_recalculate + ic->discard +
			2 * (ic->mode == 'J') + 2 * (ic->mode == 'B') +
			!!ic->internal_hash_alg.spec + !!ic->journal_crypt_alg.spec +
			!!ic->journal_mac_alg.spec + fpad + fhmac + ic->legacy_recalculate;
		DMEMIT("%s %llu %u %c %u", ic->dev->name, (unsigned long long)ic->start,
		       ic->tag_size, ic->mode, count);
		if (ic->meta_dev)
			DMEMIT(" meta_device:%s", ic->meta_dev->name);
		if (ic->spb != 1)
			DMEMIT(" block_size:%u", ic->spb << SECTOR_SHIFT);
		if (recalc)
			DMEMIT(" recalculate");
		if (ic->reset_recalculate)
			DMEMIT(" reset_recalculate");
		if (ic->discard)
			DMEMIT(" allow_discards");
		DMEMIT(" journal_sectors:%llu",
		       (unsigned long long)(ic->initial_sectors - SB_SECTORS));
		DMEMIT(" interleave_sectors:%u", 1U << log2_il(ic));
		DMEMIT(" buffer_sectors:%u", 1U << ic->log2_buffer_sectors);
		if (ic->mode == 'J') {
			DMEMIT(" journal_watermark:%u", (unsigned int)wm);
			DMEMIT(" commit_time:%u", ic->commit_ms);
		}
		if (ic->mode == 'B') {
			DMEMIT(" sectors_per_bit:%llu",
			       (unsigned long long)ic->spb << ic->log2_blocks_per_bit);
			DMEMIT(" bitmap_flush_interval:%u", ic->bitmap_flush_ms);
		}
		if (fpad)
			DMEMIT(" fix_padding");
		if (fhmac)
			DMEMIT(" fix_hmac");
		if (ic->legacy_recalculate)
			DMEMIT(" legacy_recalculate");
		if (ic->internal_hash_alg.spec)
			DMEMIT(" internal_hash:%s", ic->internal_hash_alg.spec);
		if (ic->journal_crypt_alg.spec)
			DMEMIT(" journal_crypt:%s", ic->journal_crypt_alg.spec);
		if (ic->journal_mac_alg.spec)
			DMEMIT(" journal_mac:%s", ic->journal_mac_alg.spec);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",dev_name=%s,start=%llu,tag_size=%u,mode=%c", ic->dev->name,
		       (unsigned long long)ic->start, ic->tag_size, ic->mode);
		if (ic->meta_dev)
			DMEMIT(",meta_device=%s", ic->meta_dev->name);
		if (ic->spb != 1)
			DMEMIT(",block_size=%u", ic->spb << SECTOR_SHIFT);
		DMEMIT(",recalculate=%c", recalc ? 'y' : 'n');
		DMEMIT(",allow_discards=%c", ic->discard ? 'y' : 'n');
		DMEMIT(",fix_padding=%c", fpad ? 'y' : 'n');
		DMEMIT(",fix_hmac=%c", fhmac ? 'y' : 'n');
		DMEMIT(",legacy_recalculate=%c", ic->legacy_recalculate ? 'y' : 'n');
		DMEMIT(",journal_sectors=%llu",
		       (unsigned long long)(ic->initial_sectors - SB_SECTORS));
		DMEMIT(",interleave_sectors=%u", 1U << log2_il(ic));
		DMEMIT(",buffer_sectors=%u", 1U << ic->log2_buffer_sectors);
		DMEMIT(";");
		break;
	}
}

static int integrity_iterate_devices(struct dm_target *ti,
				     iterate_devices_callout_fn fn, void *data)
{
	struct integrity_c *ic = ti->private;

	if (!ic->meta_dev)
		return fn(ti, ic->dev, ic->start + ic->initial_sectors + ic->metadata_run,
			  ti->len, data);
	return fn(ti, ic->dev, 0, ti->len, data);
}

static void integrity_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct integrity_c *ic = ti->private;
	unsigned int bsz = ic->spb << SECTOR_SHIFT;

	if (ic->spb > 1) {
		limits->logical_block_size = bsz;
		limits->physical_block_size = max(limits->physical_block_size, bsz);
		blk_limits_io_min(limits, bsz);
	}
}

/* dm-crypt stores its per-block AEAD tag and IV through this profile. */
static const struct blk_integrity_profile integrity_profile = {
	.name = "DM-DIF-EXT-TAG",
};

static void register_profile(struct integrity_c *ic)
{
	struct gendisk *disk = dm_disk(dm_table_get_md(ic->ti->table));
	struct blk_integrity bi = {
		.profile = &integrity_profile,
		.tuple_size = ic->tag_size,
		.tag_size = ic->tag_size,
		.interval_exp = ic->log2_spb + SECTOR_SHIFT,
	};

	blk_integrity_register(disk, &bi);
	blk_queue_max_integrity_segments(disk->queue, UINT_MAX);
}

/* ---------------------------------------------------------- constructor */

static int parse_alg(struct alg_arg *a, const char *arg, char **error,
		     char *msg)
{
	const char *colon;

	kfree_sensitive(a->spec);
	kfree(a->name);
	kfree_sensitive(a->key);
	memset(a, 0, sizeof(*a));
	arg = strchr(arg, ':') + 1;
	a->spec = kstrdup(arg, GFP_KERNEL);
	if (!a->spec)
		goto nomem;
	colon = strchr(arg, ':');
	a->name = kstrndup(arg, colon ? colon - arg : strlen(arg), GFP_KERNEL);
	if (!a->name)
		goto nomem;
	if (colon) {
		size_t len = strlen(colon + 1);

		if (len & 1)
			goto bad;
		a->key_size = len / 2;
		a->key = kmalloc(a->key_size, GFP_KERNEL);
		if (!a->key)
			goto nomem;
		if (hex2bin(a->key, colon + 1, a->key_size))
			goto bad;
	}
	return 0;
nomem:
	*error = "Out of memory";
	return -ENOMEM;
bad:
	*error = msg;
	return -EINVAL;
}

static int get_mac(struct crypto_shash **tfm, struct alg_arg *a, char **error,
		   char *bad_alg, char *bad_key)
{
	int r;

	if (!a->name)
		return 0;
	*tfm = crypto_alloc_shash(a->name, 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(*tfm)) {
		r = PTR_ERR(*tfm);
		*tfm = NULL;
		*error = bad_alg;
		return r;
	}
	if (a->key) {
		r = crypto_shash_setkey(*tfm, a->key, a->key_size);
		if (r) {
			*error = bad_key;
			return r;
		}
	} else if (crypto_shash_get_flags(*tfm) & CRYPTO_TFM_NEED_KEY) {
		*error = bad_key;
		return -ENOKEY;
	}
	return 0;
}

/*
 * Stream cipher: the keystream is the encryption of zeros with a zero IV over
 * the journal and 32 more bytes; those encrypt the four commit ids, and the
 * encrypted values are the ids used from then on.
 */
static int make_keystream(struct integrity_c *ic, struct crypto_skcipher *tfm)
{
	size_t bytes = journal_bytes(ic);
	unsigned int pages = bytes >> PAGE_SHIFT, i;
	struct skcipher_request *req;
	struct scatterlist *sg;
	DECLARE_CRYPTO_WAIT(wait);
	__le64 *ids;
	u8 *iv;
	int r = -ENOMEM;

	ic->journal_xor = vzalloc(bytes);
	sg = kvmalloc_array(pages + 1, sizeof(*sg), GFP_KERNEL);
	ids = kmalloc_array(N_COMMIT_IDS, sizeof(*ids), GFP_KERNEL);
	iv = kzalloc(max(crypto_skcipher_ivsize(tfm), 1U), GFP_KERNEL);
	req = skcipher_request_alloc(tfm, GFP_KERNEL);
	if (!ic->journal_xor || !sg || !ids || !iv || !req)
		goto out;
	sg_init_table(sg, pages + 1);
	for (i = 0; i < pages; i++)
		sg_set_page(&sg[i], vmalloc_to_page(ic->journal_xor + ((size_t)i << PAGE_SHIFT)),
			    PAGE_SIZE, 0);
	for (i = 0; i < N_COMMIT_IDS; i++)
		ids[i] = cpu_to_le64(ic->commit_ids[i]);
	sg_set_buf(&sg[pages], ids, N_COMMIT_IDS * sizeof(*ids));
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP, crypto_req_done, &wait);
	skcipher_request_set_crypt(req, sg, sg, bytes + N_COMMIT_IDS * sizeof(*ids), iv);
	r = crypto_wait_req(crypto_skcipher_encrypt(req), &wait);
	for (i = 0; !r && i < N_COMMIT_IDS; i++)
		ic->commit_ids[i] = le64_to_cpu(ids[i]);
out:
	skcipher_request_free(req);
	kfree(iv);
	kfree(ids);
	kvfree(sg);
	return r;
}

/*
 * Block cipher: section i is encrypted as one message whose IV is the
 * encryption (zero IV) of le32(i) padded with zeros to a whole block.
 */
static int make_section_ivs(struct integrity_c *ic, struct crypto_skcipher *tfm)
{
	unsigned int ivsize = crypto_skcipher_ivsize(tfm);
	unsigned int len = roundup(ivsize, crypto_skcipher_blocksize(tfm));
	unsigned int pages = section_bytes(ic) >> PAGE_SHIFT, i;
	DECLARE_CRYPTO_WAIT(wait);
	struct scatterlist sg;
	u8 *blk;
	int r = 0;

	ic->jc_req = skcipher_request_alloc(tfm, GFP_KERNEL);
	ic->jc_iv = kzalloc(max(ivsize, 1U), GFP_KERNEL);
	ic->jc_ivs = kvzalloc(max((size_t)ic->journal_sections * ivsize, (size_t)1),
			      GFP_KERNEL);
	ic->jc_src = kmalloc_array(pages, sizeof(struct scatterlist), GFP_KERNEL);
	ic->jc_dst = kmalloc_array(pages, sizeof(struct scatterlist), GFP_KERNEL);
	blk = kmalloc(max(len, 4U), GFP_KERNEL);
	if (!ic->jc_req || !ic->jc_iv || !ic->jc_ivs || !ic->jc_src || !ic->jc_dst || !blk) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; ivsize && i < ic->journal_sections; i++) {
		memset(blk, 0, len);
		put_unaligned_le32(i, blk);
		memset(ic->jc_iv, 0, ivsize);
		sg_init_one(&sg, blk, len);
		skcipher_request_set_callback(ic->jc_req, CRYPTO_TFM_REQ_MAY_BACKLOG |
					      CRYPTO_TFM_REQ_MAY_SLEEP, crypto_req_done, &wait);
		skcipher_request_set_crypt(ic->jc_req, &sg, &sg, len, ic->jc_iv);
		r = crypto_wait_req(crypto_skcipher_encrypt(ic->jc_req), &wait);
		if (r)
			break;
		memcpy(ic->jc_ivs + (size_t)i * ivsize, blk, ivsize);
	}
out:
	kfree_sensitive(blk);
	return r;
}

static int setup_journal_crypt(struct integrity_c *ic, char **error)
{
	struct crypto_skcipher *tfm;
	unsigned int i, j;
	int r;

	if (ic->journal_crypt_alg.name) {
		tfm = crypto_alloc_skcipher(ic->journal_crypt_alg.name, 0,
					    CRYPTO_ALG_ALLOCATES_MEMORY);
		if (IS_ERR(tfm)) {
			*error = "Invalid journal cipher";
			return PTR_ERR(tfm);
		}
		if (ic->journal_crypt_alg.key) {
			r = crypto_skcipher_setkey(tfm, ic->journal_crypt_alg.key,
						   ic->journal_crypt_alg.key_size);
			if (r) {
				crypto_free_skcipher(tfm);
				*error = "Error setting encryption key";
				return r;
			}
		}
		ic->journal_io = vmalloc(journal_bytes(ic));
		if (!ic->journal_io) {
			crypto_free_skcipher(tfm);
			*error = "Cannot allocate buffers";
			return -ENOMEM;
		}
		if (crypto_skcipher_blocksize(tfm) == 1) {
			/* the keystream is all we need afterwards */
			r = make_keystream(ic, tfm);
			crypto_free_skcipher(tfm);
		} else {
			ic->journal_crypt = tfm;
			r = make_section_ivs(ic, tfm);
		}
		if (r) {
			*error = "Unable to encrypt journal";
			return r;
		}
	}
	/* the encrypted ids may collide: bump until all four differ */
	for (i = 1; i < N_COMMIT_IDS; i++) {
		for (j = 0; j < i; ) {
			if (ic->commit_ids[j] == ic->commit_ids[i]) {
				ic->commit_ids[i]++;
				j = 0;
			} else {
				j++;
			}
		}
	}
	return 0;
}

static void free_alg(struct alg_arg *a)
{
	kfree_sensitive(a->spec);
	kfree(a->name);
	kfree_sensitive(a->key);
}

static void integrity_dtr(struct dm_target *ti)
{
	struct integrity_c *ic = ti->private;

	if (ic->wq)
		destroy_workqueue(ic->wq);
	if (ic->bufio)
		dm_bufio_client_destroy(ic->bufio);
	if (ic->io)
		dm_io_client_destroy(ic->io);
	xa_destroy(&ic->pending);
	kvfree(ic->buf);
	kvfree(ic->wbuf);
	kvfree(ic->tags);
	kfree(ic->calc);
	vfree(ic->journal);
	vfree(ic->journal_io);
	if (ic->journal_xor)
		kvfree_sensitive(ic->journal_xor, journal_bytes(ic));
	skcipher_request_free(ic->jc_req);
	kfree_sensitive(ic->jc_iv);
	kvfree(ic->jc_ivs);
	kfree(ic->jc_src);
	kfree(ic->jc_dst);
	if (ic->journal_crypt)
		crypto_free_skcipher(ic->journal_crypt);
	kvfree(ic->bitmap);
	kvfree(ic->recalc_bitmap);
	if (ic->sb)
		free_pages_exact(ic->sb, SB_SECTORS << SECTOR_SHIFT);
	if (ic->internal_hash)
		crypto_free_shash(ic->internal_hash);
	if (ic->journal_mac)
		crypto_free_shash(ic->journal_mac);
	free_alg(&ic->internal_hash_alg);
	free_alg(&ic->journal_crypt_alg);
	free_alg(&ic->journal_mac_alg);
	if (ic->meta_dev)
		dm_put_device(ti, ic->meta_dev);
	if (ic->dev)
		dm_put_device(ti, ic->dev);
	kfree(ic);
	audit_ti(AUDIT_DM_CTRL, "dtr", ti, 1);
}

/* Refused unless legacy_recalculate: an attacker could make us sign data. */
static bool recalc_refused(struct integrity_c *ic)
{
	bool ih_key = ic->internal_hash_alg.key, jm_key = ic->journal_mac_alg.key;

	if (ic->legacy_recalculate)
		return false;
	if (!sb_flag(ic, SB_FLAG_FIXED_HMAC))
		return ih_key || jm_key;
	return ih_key && !jm_key;
}

static int integrity_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	static const struct dm_arg _args[] = {
		{0, 18, "Invalid number of feature args"},
	};
	struct integrity_c *ic;
	struct dm_arg_set as;
	unsigned int extra = 0, journal_sectors = 0, interleave = DEF_INTERLEAVE;
	unsigned int buffer_sectors = DEF_BUFFER_SECTORS, val, i;
	int log2_sectors_per_bit = -1;
	unsigned long long llval, start;
	bool format = false;
	u64 bits, threshold;
	char dummy;
	int r;

	if (argc < 5) {
		ti->error = "Invalid number of arguments";
		return -EINVAL;
	}
	ic = kzalloc(sizeof(*ic), GFP_KERNEL);
	if (!ic) {
		ti->error = "Cannot allocate integrity context";
		return -ENOMEM;
	}
	ti->private = ic;
	ic->ti = ti;
	ic->spb = 1;
	ic->watermark = DEF_WATERMARK;
	ic->commit_ms = DEF_COMMIT_MS;
	ic->bitmap_flush_ms = DEF_BITMAP_FLUSH_MS;
	spin_lock_init(&ic->lock);
	bio_list_init(&ic->bios);
	xa_init(&ic->pending);
	atomic64_set(&ic->mismatches, 0);
	INIT_WORK(&ic->work, integrity_work);
	INIT_DELAYED_WORK(&ic->commit_work, commit_work_fn);
	INIT_DELAYED_WORK(&ic->bitmap_work, bitmap_work_fn);
	INIT_WORK(&ic->recalc_work, recalc_work_fn);
	ic->suspended = true;

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &ic->dev);
	if (r) {
		ti->error = "Device lookup failed";
		goto bad;
	}
	if (sscanf(argv[1], "%llu%c", &start, &dummy) != 1 || start != (sector_t)start) {
		ti->error = "Invalid starting offset";
		r = -EINVAL;
		goto bad;
	}
	ic->start = start;
	if (strcmp(argv[2], "-")) {
		if (sscanf(argv[2], "%u%c", &ic->tag_size, &dummy) != 1 || !ic->tag_size) {
			ti->error = "Invalid tag size";
			r = -EINVAL;
			goto bad;
		}
	}
	if (strlen(argv[3]) != 1 || !strchr("JBDR", argv[3][0])) {
		ti->error = "Invalid mode (expecting J, B, D, R)";
		r = -EINVAL;
		goto bad;
	}
	ic->mode = argv[3][0];

	as.argc = argc - 4;
	as.argv = argv + 4;
	r = dm_read_arg_group(_args, &as, &extra, &ti->error);
	if (r)
		goto bad;
	while (extra--) {
		const char *opt = dm_shift_arg(&as);

		if (!opt) {
			ti->error = "Not enough feature arguments";
			r = -EINVAL;
			goto bad;
		}
		if (sscanf(opt, "journal_sectors:%u%c", &val, &dummy) == 1) {
			journal_sectors = val ? val : 1;
		} else if (sscanf(opt, "interleave_sectors:%u%c", &val, &dummy) == 1) {
			interleave = val;
		} else if (sscanf(opt, "buffer_sectors:%u%c", &val, &dummy) == 1) {
			buffer_sectors = val;
		} else if (sscanf(opt, "journal_watermark:%u%c", &val, &dummy) == 1 &&
			   val <= 100) {
			ic->watermark = val;
		} else if (sscanf(opt, "commit_time:%u%c", &val, &dummy) == 1) {
			ic->commit_ms = val;
		} else if (!strncmp(opt, "meta_device:", strlen("meta_device:"))) {
			if (ic->meta_dev) {
				dm_put_device(ti, ic->meta_dev);
				ic->meta_dev = NULL;
			}
			r = dm_get_device(ti, strchr(opt, ':') + 1,
					  dm_table_get_mode(ti->table), &ic->meta_dev);
			if (r) {
				ti->error = "Device lookup failed";
				goto bad;
			}
		} else if (sscanf(opt, "block_size:%u%c", &val, &dummy) == 1) {
			if (val < SECTOR_SIZE || val > MAX_SPB * SECTOR_SIZE ||
			    !is_power_of_2(val)) {
				ti->error = "Invalid block_size argument";
				r = -EINVAL;
				goto bad;
			}
			ic->spb = val >> SECTOR_SHIFT;
		} else if (sscanf(opt, "sectors_per_bit:%llu%c", &llval, &dummy) == 1) {
			log2_sectors_per_bit = llval ? ilog2(llval) : 0;
		} else if (sscanf(opt, "bitmap_flush_interval:%u%c", &val, &dummy) == 1) {
			if ((u64)val >= (u64)UINT_MAX * 1000 / HZ) {
				ti->error = "Invalid bitmap_flush_interval argument";
				r = -EINVAL;
				goto bad;
			}
			ic->bitmap_flush_ms = val;
		} else if (!strncmp(opt, "internal_hash:", strlen("internal_hash:"))) {
			r = parse_alg(&ic->internal_hash_alg, opt, &ti->error,
				      "Invalid internal_hash argument");
			if (r)
				goto bad;
		} else if (!strncmp(opt, "journal_crypt:", strlen("journal_crypt:"))) {
			r = parse_alg(&ic->journal_crypt_alg, opt, &ti->error,
				      "Invalid journal_crypt argument");
			if (r)
				goto bad;
		} else if (!strncmp(opt, "journal_mac:", strlen("journal_mac:"))) {
			r = parse_alg(&ic->journal_mac_alg, opt, &ti->error,
				      "Invalid journal_mac argument");
			if (r)
				goto bad;
		} else if (!strcmp(opt, "recalculate")) {
			ic->recalculate_flag = true;
		} else if (!strcmp(opt, "reset_recalculate")) {
			ic->recalculate_flag = true;
			ic->reset_recalculate = true;
		} else if (!strcmp(opt, "allow_discards")) {
			ic->discard = true;
		} else if (!strcmp(opt, "fix_padding")) {
			ic->fix_padding = true;
		} else if (!strcmp(opt, "fix_hmac")) {
			ic->fix_hmac = true;
		} else if (!strcmp(opt, "legacy_recalculate")) {
			ic->legacy_recalculate = true;
		} else {
			ti->error = "Invalid argument";
			r = -EINVAL;
			goto bad;
		}
	}
	ic->log2_spb = __ffs(ic->spb);

	ic->data_device_sectors = bdev_nr_sectors(ic->dev->bdev);
	ic->meta_device_sectors = ic->meta_dev ? bdev_nr_sectors(ic->meta_dev->bdev) :
				  ic->data_device_sectors;
	if (!journal_sectors)
		journal_sectors = min_t(sector_t, MAX_JOURNAL_SECTORS,
					ic->data_device_sectors >> 7);
	if (!buffer_sectors)
		buffer_sectors = 1;
	ic->log2_buffer_sectors = min_t(unsigned int, __fls(buffer_sectors),
					31 - SECTOR_SHIFT);

	r = get_mac(&ic->internal_hash, &ic->internal_hash_alg, &ti->error,
		    "Invalid internal hash", "Error setting internal hash key");
	if (r)
		goto bad;
	r = get_mac(&ic->journal_mac, &ic->journal_mac_alg, &ti->error,
		    "Invalid journal mac", "Error setting journal mac key");
	if (r)
		goto bad;
	if (!ic->tag_size) {
		if (!ic->internal_hash) {
			ti->error = "Unknown tag size";
			r = -EINVAL;
			goto bad;
		}
		ic->tag_size = crypto_shash_digestsize(ic->internal_hash);
	}
	if (ic->tag_size > MAX_TAG_SIZE) {
		ti->error = "Too big tag size";
		r = -EINVAL;
		goto bad;
	}
	if (ic->mode == 'B' && !ic->internal_hash) {
		ti->error = "Bitmap mode can be only used with internal hash";
		r = -EINVAL;
		goto bad;
	}
	if (ic->discard && !ic->internal_hash) {
		ti->error = "Discard can be only used with internal hash";
		r = -EINVAL;
		goto bad;
	}

	ic->io = dm_io_client_create();
	if (IS_ERR(ic->io)) {
		r = PTR_ERR(ic->io);
		ic->io = NULL;
		ti->error = "Cannot allocate dm io";
		goto bad;
	}
	ic->sb = alloc_pages_exact(SB_SECTORS << SECTOR_SHIFT, GFP_KERNEL);
	ic->calc = kmalloc(HASH_MAX_DIGESTSIZE, GFP_KERNEL);
	if (!ic->sb || !ic->calc) {
		ti->error = "Cannot allocate superblock area";
		r = -ENOMEM;
		goto bad;
	}
	r = sync_io(ic, meta_bdev(ic), REQ_OP_READ, ic->start, SB_SECTORS, ic->sb);
	if (r) {
		ti->error = "Error reading superblock";
		goto bad;
	}
	if (memcmp(ic->sb->magic, SB_MAGIC, 8)) {
		/* mode R never writes: it works on an in-memory superblock */
		if (ic->mode != 'R' &&
		    memchr_inv(ic->sb, 0, SB_SECTORS << SECTOR_SHIFT)) {
			ti->error = "The device is not initialized";
			r = -EINVAL;
			goto bad;
		}
		r = init_superblock(ic, journal_sectors, interleave);
		if (r) {
			ti->error = "Could not initialize superblock";
			goto bad;
		}
		format = ic->mode != 'R';
	}
	if (!ic->sb->version || ic->sb->version > 5) {
		ti->error = "Unknown version";
		r = -EINVAL;
		goto bad;
	}
	if (le16_to_cpu(ic->sb->integrity_tag_size) != ic->tag_size) {
		ti->error = "Tag size doesn't match the information in superblock";
		r = -EINVAL;
		goto bad;
	}
	if (ic->sb->log2_sectors_per_block != ic->log2_spb) {
		ti->error = "Block size doesn't match the information in superblock";
		r = -EINVAL;
		goto bad;
	}
	if (!le32_to_cpu(ic->sb->journal_sections)) {
		ti->error = "Corrupted superblock, journal_sections is 0";
		r = -EINVAL;
		goto bad;
	}
	if (ic->meta_dev ? log2_il(ic) != 0 : (log2_il(ic) < 3 || log2_il(ic) > 31)) {
		ti->error = "Invalid interleave_sectors in the superblock";
		r = -EINVAL;
		goto bad;
	}
	if (sb_flag(ic, SB_FLAG_HAVE_JOURNAL_MAC) != !!ic->journal_mac_alg.name) {
		ti->error = "Journal mac mismatch";
		r = -EINVAL;
		goto bad;
	}
	if (!format && ic->mode != 'R' && ic->journal_mac && sb_flag(ic, SB_FLAG_FIXED_HMAC)) {
		r = sb_mac(ic, true);
		if (r) {
			ti->error = "Invalid superblock checksum";
			goto bad;
		}
	}

	calc_provided(ic);
	if (!ic->provided) {
		ti->error = "The device is too small";
		r = -EINVAL;
		goto bad;
	}
	while ((r = calc_limits(ic))) {
		if (ic->meta_dev && ic->log2_buffer_sectors > 3) {
			ic->log2_buffer_sectors--;
			continue;
		}
		ti->error = "The device is too small";
		goto bad;
	}
	if (le64_to_cpu(ic->sb->provided_data_sectors) != ic->provided) {
		ic->sb->provided_data_sectors = cpu_to_le64(ic->provided);
		ic->sb_dirty = true;
	}

	/* bitmap granularity: as requested, coarser until the bits fit */
	if (log2_sectors_per_bit < 0)
		log2_sectors_per_bit = DEF_LOG2_SECTORS_PER_BIT;
	if (log2_sectors_per_bit < ic->log2_spb)
		log2_sectors_per_bit = ic->log2_spb;
	bits = ((u64)ic->section_sectors * ic->journal_sections) << (SECTOR_SHIFT + 3);
	if (bits > UINT_MAX)
		bits = UINT_MAX;
	while (bits < (ic->provided + ((sector_t)1 << log2_sectors_per_bit) - 1) >>
	       log2_sectors_per_bit)
		log2_sectors_per_bit++;
	ic->log2_blocks_per_bit = log2_sectors_per_bit - ic->log2_spb;
	if (format)
		ic->sb->log2_blocks_per_bitmap_bit = ic->log2_blocks_per_bit;
	ic->n_bitmap_blocks = DIV_ROUND_UP(n_bits(ic), BITMAP_BLOCK * 8);

	if (!ic->meta_dev)
		ic->log2_buffer_sectors = min_t(unsigned int, ic->log2_buffer_sectors,
						__ffs(ic->metadata_run));
	if (ti->len > ic->provided) {
		ti->error = "Not enough provided sectors for requested mapping size";
		r = -EINVAL;
		goto bad;
	}
	threshold = (u64)ic->journal_entries * (100 - ic->watermark) + 50;
	do_div(threshold, 100);
	ic->free_threshold = threshold;

	ic->max_io = 256;
	if (!ic->meta_dev)
		ic->max_io = min(ic->max_io, 1U << log2_il(ic));
	ic->max_io = max(ic->max_io, ic->spb);
	ic->buf = kvmalloc(ic->max_io << SECTOR_SHIFT, GFP_KERNEL);
	ic->wbuf = kvmalloc(ic->max_io << SECTOR_SHIFT, GFP_KERNEL);
	/* tags of max_io sectors plus one scratch tag */
	ic->tags = kvmalloc(((ic->max_io >> ic->log2_spb) + 1) * ic->tag_size, GFP_KERNEL);
	ic->journal = vmalloc(max_t(size_t, (size_t)ic->journal_sections *
				    ic->section_sectors << SECTOR_SHIFT,
				    (size_t)ic->n_bitmap_blocks * BITMAP_BLOCK));
	if (!ic->buf || !ic->wbuf || !ic->tags || !ic->journal) {
		ti->error = "Cannot allocate buffers";
		r = -ENOMEM;
		goto bad;
	}
	if (ic->mode == 'B') {
		size_t bytes = (size_t)ic->n_bitmap_blocks * BITMAP_BLOCK;

		ic->bitmap = kvzalloc(bytes, GFP_KERNEL);
		ic->recalc_bitmap = kvzalloc(bytes, GFP_KERNEL);
		if (!ic->bitmap || !ic->recalc_bitmap) {
			ti->error = "Cannot allocate bitmap";
			r = -ENOMEM;
			goto bad;
		}
	}
	for (i = 0; i < N_COMMIT_IDS; i++)
		ic->commit_ids[i] = 0x1111111111111111ULL * (i + 1);
	r = setup_journal_crypt(ic, &ti->error);
	if (r)
		goto bad;

	ic->bufio = dm_bufio_client_create(meta_bdev(ic), 1U << (SECTOR_SHIFT +
					   ic->log2_buffer_sectors), 1, 0, NULL, NULL, 0);
	if (IS_ERR(ic->bufio)) {
		r = PTR_ERR(ic->bufio);
		ic->bufio = NULL;
		ti->error = "Cannot initialize dm-bufio";
		goto bad;
	}
	dm_bufio_set_sector_offset(ic->bufio, ic->start + ic->initial_sectors);

	ic->wq = alloc_ordered_workqueue("dm-integrity", WQ_MEM_RECLAIM);
	if (!ic->wq) {
		ti->error = "Cannot allocate workqueue";
		r = -ENOMEM;
		goto bad;
	}

	if (ic->recalculate_flag) {
		if (!ic->internal_hash) {
			ti->error = "Recalculate can only be specified with internal_hash";
			r = -EINVAL;
			goto bad;
		}
		if (!sb_flag(ic, SB_FLAG_RECALCULATING) || ic->reset_recalculate) {
			sb_set_flag(ic, SB_FLAG_RECALCULATING, true);
			ic->sb->recalc_sector = 0;
			ic->sb_dirty = true;
		}
	}
	if (sb_flag(ic, SB_FLAG_RECALCULATING) && !ic->internal_hash) {
		ti->error = "Recalculate can only be specified with internal_hash";
		r = -EINVAL;
		goto bad;
	}
	if (sb_flag(ic, SB_FLAG_RECALCULATING) &&
	    le64_to_cpu(ic->sb->recalc_sector) < ic->provided && recalc_refused(ic)) {
		ti->error = "Recalculating with HMAC is disabled for security reasons - if you really need it, use the argument \"legacy_recalculate\"";
		r = -EOPNOTSUPP;
		goto bad;
	}

	if (format && ic->mode != 'R') {
		r = init_journal(ic, 0);
		if (!r)
			r = write_sb(ic);
		if (r) {
			ti->error = "Error initializing superblock";
			goto bad;
		}
		ic->commit_seq = 1;
	}

	r = dm_set_target_max_io_len(ti, ic->max_io);
	if (r)
		goto bad;
	if (!ic->internal_hash)
		register_profile(ic);
	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	if (ic->discard)
		ti->num_discard_bios = 1;
	audit_ti(AUDIT_DM_CTRL, "ctr", ti, 1);
	return 0;
bad:
	audit_ti(AUDIT_DM_CTRL, "ctr", ti, 0);
	integrity_dtr(ti);
	return r;
}

static struct target_type integrity_target = {
	.name = "integrity",
	.version = {1, 10, 0},
	.module = THIS_MODULE,
	.features = DM_TARGET_SINGLETON | DM_TARGET_INTEGRITY,
	.ctr = integrity_ctr,
	.dtr = integrity_dtr,
	.map = integrity_map,
	.postsuspend = integrity_postsuspend,
	.resume = integrity_resume,
	.status = integrity_status,
	.iterate_devices = integrity_iterate_devices,
	.io_hints = integrity_io_hints,
};

static int __init dm_integrity_init(void)
{
	return dm_register_target(&integrity_target);
}

static void __exit dm_integrity_exit(void)
{
	dm_unregister_target(&integrity_target);
}

module_init(dm_integrity_init);
module_exit(dm_integrity_exit);

MODULE_DESCRIPTION(DM_NAME " target keeping a checksum per block");
MODULE_LICENSE("GPL");
