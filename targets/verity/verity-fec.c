// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-verity forward error correction: Reed-Solomon RS(255, 255 - roots)
 * over GF(2^8), interleaved across the covered area (data blocks followed
 * by hash-device blocks). Codeword (r, b) takes byte b of the blocks r,
 * r + rounds, r + 2 * rounds, ...; its parity bytes sit at byte
 * (r * block_size + b) * roots of the FEC area.
 *
 * Decoding is rare, so one preallocated work area per device, under a
 * mutex, is enough. A rebuilt block must match its expected digest.
 */

#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/rslib.h>
#include "verity.h"

/* FEC messages carry their own prefix, as in the stock module. */
#undef DM_MSG_PREFIX
#define DM_MSG_PREFIX "verity-fec"

#define FEC_RSM		255
#define FEC_MIN_RSN	231	/* at most 24 roots */
#define FEC_MAX_RSN	253	/* at least 2 roots */
/* Nested decoding (a hash block needed to check an erasure) stops here. */
#define FEC_MAX_DEPTH	4

struct verity_fec {
	struct dm_dev *dev;
	sector_t start;		/* FEC area start, in data blocks */
	sector_t blocks;	/* covered blocks */
	sector_t rounds;
	sector_t hash_blocks;	/* covered blocks on the hash device */
	unsigned char roots;
	unsigned char rsn;
	struct dm_bufio_client *data_bufio;
	struct dm_bufio_client *par_bufio;
	struct rs_control *rs;

	struct mutex lock;	/* protects the work area below */
	u8 *area;		/* rsn blocks, one after the other */
	u8 *par;		/* roots blocks of parity */
	bool *erased;
	int *eras_pos;
	u8 cw[FEC_RSM];
	u16 par16[FEC_RSM - FEC_MIN_RSN];
};

bool verity_fec_enabled(struct dm_verity *v)
{
	return v->fec && v->fec->dev;
}

bool verity_is_fec_opt(const char *name)
{
	return !strcasecmp(name, "use_fec_from_device") ||
		!strcasecmp(name, "fec_blocks") ||
		!strcasecmp(name, "fec_start") ||
		!strcasecmp(name, "fec_roots");
}

static bool parse_fec_blocks(const char *arg, unsigned int bits, sector_t *out)
{
	unsigned long long n;
	char dummy;
	unsigned int shift = bits - SECTOR_SHIFT;

	if (sscanf(arg, "%llu%c", &n, &dummy) != 1 || (sector_t)(n << shift) >> shift != n)
		return false;
	*out = n;
	return true;
}

int verity_fec_parse_opt(struct dm_verity *v, struct dm_arg_set *as,
			 unsigned int *argc, const char *name)
{
	struct verity_fec *f = v->fec;
	struct dm_target *ti = v->ti;
	const char *value;
	unsigned char roots;
	char dummy;
	int r;

	if (!*argc) {
		ti->error = "FEC feature arguments require a value";
		return -EINVAL;
	}
	value = dm_shift_arg(as);
	(*argc)--;

	if (!strcasecmp(name, "use_fec_from_device")) {
		if (f->dev)
			dm_put_device(ti, f->dev);
		f->dev = NULL;
		r = dm_get_device(ti, value, FMODE_READ, &f->dev);
		if (r) {
			ti->error = "FEC device lookup failed";
			return r;
		}
	} else if (!strcasecmp(name, "fec_blocks")) {
		if (!parse_fec_blocks(value, v->data_block_bits, &f->blocks)) {
			ti->error = "Invalid fec_blocks";
			return -EINVAL;
		}
	} else if (!strcasecmp(name, "fec_start")) {
		if (!parse_fec_blocks(value, v->data_block_bits, &f->start)) {
			ti->error = "Invalid fec_start";
			return -EINVAL;
		}
	} else if (!strcasecmp(name, "fec_roots")) {
		if (sscanf(value, "%hhu%c", &roots, &dummy) != 1 ||
		    roots < FEC_RSM - FEC_MAX_RSN || roots > FEC_RSM - FEC_MIN_RSN) {
			ti->error = "Invalid fec_roots";
			return -EINVAL;
		}
		f->roots = roots;
	} else {
		ti->error = "Unrecognized verity FEC feature request";
		return -EINVAL;
	}
	return 0;
}

int verity_fec_alloc(struct dm_verity *v)
{
	v->fec = kzalloc(sizeof(*v->fec), GFP_KERNEL);
	if (!v->fec) {
		v->ti->error = "Cannot allocate FEC structure";
		return -ENOMEM;
	}
	mutex_init(&v->fec->lock);
	return 0;
}

void verity_fec_dtr(struct dm_verity *v)
{
	struct verity_fec *f = v->fec;

	if (!f)
		return;
	if (f->rs)
		free_rs(f->rs);
	kvfree(f->area);
	kvfree(f->par);
	kfree(f->erased);
	kfree(f->eras_pos);
	if (f->data_bufio)
		dm_bufio_client_destroy(f->data_bufio);
	if (f->par_bufio)
		dm_bufio_client_destroy(f->par_bufio);
	if (f->dev)
		dm_put_device(v->ti, f->dev);
	mutex_destroy(&f->lock);
	kfree(f);
	v->fec = NULL;
}

int verity_fec_ctr(struct dm_verity *v)
{
	struct verity_fec *f = v->fec;
	struct dm_target *ti = v->ti;
	unsigned int bs = 1 << v->data_block_bits;
	sector_t tree_blocks = v->hash_blocks - v->hash_start;
	sector_t par_units, need;

	if (!verity_fec_enabled(v)) {
		verity_fec_dtr(v);
		return 0;
	}
	if (v->data_block_bits != v->hash_block_bits) {
		ti->error = "Block sizes must match to use FEC";
		return -EINVAL;
	}
	if (!f->roots) {
		ti->error = "Missing fec_roots";
		return -EINVAL;
	}
	f->rsn = FEC_RSM - f->roots;
	if (!f->blocks) {
		ti->error = "Missing fec_blocks";
		return -EINVAL;
	}
	f->rounds = f->blocks;
	if (sector_div(f->rounds, f->rsn))
		f->rounds++;
	/* The covered area may extend past the tree, never fall short of it. */
	if (f->blocks < v->data_blocks + tree_blocks || !f->rounds) {
		ti->error = "Invalid fec_blocks";
		return -EINVAL;
	}
	f->hash_blocks = f->blocks - v->data_blocks;
	if (dm_bufio_get_device_size(v->bufio) < f->hash_blocks) {
		ti->error = "Hash device is too small for fec_blocks";
		return -E2BIG;
	}

	f->par_bufio = dm_bufio_client_create(f->dev->bdev, bs, 1, 0, NULL, NULL, 0);
	if (IS_ERR(f->par_bufio)) {
		ti->error = "Cannot initialize FEC bufio client";
		return PTR_ERR(f->par_bufio);
	}
	dm_bufio_set_sector_offset(f->par_bufio, f->start << (v->data_block_bits - SECTOR_SHIFT));
	/*
	 * Size check in units of roots sectors, as the stock module does, so
	 * that both accept the same tables.
	 */
	par_units = bdev_nr_sectors(f->dev->bdev);
	need = f->start << (v->data_block_bits - SECTOR_SHIFT);
	par_units = par_units > need ? par_units - need : 0;
	sector_div(par_units, f->roots);
	need = div64_u64((u64)f->rounds * f->roots, (u64)f->roots << SECTOR_SHIFT);
	if (par_units < need) {
		ti->error = "FEC device is too small";
		return -E2BIG;
	}

	f->data_bufio = dm_bufio_client_create(v->data_dev->bdev, bs, 1, 0, NULL, NULL, 0);
	if (IS_ERR(f->data_bufio)) {
		ti->error = "Cannot initialize FEC data bufio client";
		return PTR_ERR(f->data_bufio);
	}
	if (dm_bufio_get_device_size(f->data_bufio) < v->data_blocks) {
		ti->error = "Data device is too small";
		return -E2BIG;
	}

	f->rs = init_rs(8, 0x11d, 0, 1, f->roots);
	f->area = kvmalloc_array(f->rsn, bs, GFP_KERNEL);
	f->par = kvmalloc_array(f->roots, bs, GFP_KERNEL);
	f->erased = kcalloc(f->rsn, sizeof(bool), GFP_KERNEL);
	f->eras_pos = kcalloc(f->rsn, sizeof(int), GFP_KERNEL);
	if (!f->rs || !f->area || !f->par || !f->erased || !f->eras_pos) {
		ti->error = "Cannot allocate RS pool";
		return -ENOMEM;
	}
	return 0;
}

unsigned int verity_fec_status(struct dm_verity *v, char *result,
			       unsigned int sz, unsigned int maxlen)
{
	struct verity_fec *f = v->fec;

	if (!verity_fec_enabled(v))
		return sz;
	DMEMIT(" use_fec_from_device %s fec_blocks %llu fec_start %llu fec_roots %d",
	       f->dev->name, (unsigned long long)f->blocks,
	       (unsigned long long)f->start, f->roots);
	return sz;
}

/*
 * Copy covered block 'vb' into dst. Returns 1 when the block could not be
 * read (an erasure), 0 otherwise; blocks past the covered area are zero.
 */
static int load_block(struct dm_verity *v, sector_t vb, u8 *dst)
{
	struct verity_fec *f = v->fec;
	unsigned int bs = 1 << v->data_block_bits;
	struct dm_bufio_client *c = f->data_bufio;
	struct dm_buffer *buf;
	sector_t blk = vb;
	u8 *data;

	if (vb >= f->blocks) {
		memset(dst, 0, bs);
		return 0;
	}
	if (vb >= v->data_blocks) {
		blk = v->hash_start + (vb - v->data_blocks);
		c = v->bufio;
	}
	data = dm_bufio_read(c, blk, &buf);
	if (IS_ERR(data)) {
		memset(dst, 0, bs);
		return 1;
	}
	memcpy(dst, data, bs);
	dm_bufio_release(buf);
	return 0;
}

/* Is covered data block vb wrong according to the tree? Hash blocks are not checked. */
static bool data_block_bad(struct dm_verity *v, sector_t vb, const u8 *data)
{
	u8 want[HASH_MAX_DIGESTSIZE], got[HASH_MAX_DIGESTSIZE];
	bool zero;

	if (vb >= v->data_blocks)
		return false;
	if (verity_hash_for_block(v, vb, want, &zero, FEC_MAX_DEPTH))
		return false;
	if (zero)
		return false;
	if (verity_digest(v, data, 1 << v->data_block_bits, got))
		return false;
	return memcmp(want, got, v->digest_size) != 0;
}

/* Decode every codeword of the group; the target's symbols go to out. */
static int decode_group(struct dm_verity *v, unsigned int target, u8 *out, int neras)
{
	struct verity_fec *f = v->fec;
	unsigned int bs = 1 << v->data_block_bits;
	unsigned int b, i, total = 0;
	int res;

	for (b = 0; b < bs; b++) {
		for (i = 0; i < f->rsn; i++)
			f->cw[i] = f->area[i * bs + b];
		for (i = 0; i < f->roots; i++)
			f->par16[i] = f->par[b * f->roots + i];
		res = decode_rs8(f->rs, f->cw, f->par16, f->rsn, NULL, neras,
				 neras ? f->eras_pos : NULL, 0, NULL);
		if (res < 0)
			return -EBADMSG;
		total += res;
		out[b] = f->cw[target];
	}
	return total;
}

int verity_fec_decode(struct dm_verity *v, enum verity_block_type type,
		      sector_t block, const u8 *want, u8 *out, int depth)
{
	struct verity_fec *f = v->fec;
	unsigned int bs = 1 << v->data_block_bits;
	u8 got[HASH_MAX_DIGESTSIZE];
	sector_t vb, index, round;
	unsigned int i, attempt;
	int r = -EIO, neras, fixed;
	u8 *fixed_block;

	if (!verity_fec_enabled(v) || depth >= FEC_MAX_DEPTH)
		return -EOPNOTSUPP;
	if (type == VERITY_BLOCK_METADATA) {
		if (block < v->hash_start)
			return -EIO;
		vb = v->data_blocks + (block - v->hash_start);
	} else {
		vb = block;
	}
	if (vb >= f->blocks)
		return -EIO;
	/* vb is symbol 'index' of the codewords of group 'round'. */
	index = vb;
	round = sector_div(index, f->rounds);

	fixed_block = kmalloc(bs, GFP_NOIO);
	if (!fixed_block)
		return -ENOMEM;

	mutex_lock(&f->lock);
	neras = 0;
	for (i = 0; i < f->rsn; i++) {
		f->erased[i] = load_block(v, (sector_t)i * f->rounds + round, f->area + i * bs);
		if (f->erased[i])
			f->eras_pos[neras++] = i;
	}
	for (i = 0; i < f->roots; i++) {
		struct dm_buffer *buf;
		u8 *p = dm_bufio_read(f->par_bufio, round * f->roots + i, &buf);

		if (IS_ERR(p))
			goto unlock;
		memcpy(f->par + i * bs, p, bs);
		dm_bufio_release(buf);
	}

	/* First the plain decode, then with digest mismatches as erasures. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt) {
			/* The target first: it is known to be wrong. */
			f->eras_pos[0] = index;
			neras = 1;
			for (i = 0; i < f->rsn && neras <= f->roots; i++) {
				sector_t vbi = (sector_t)i * f->rounds + round;

				if (i != index && (f->erased[i] ||
				    data_block_bad(v, vbi, f->area + i * bs)))
					f->eras_pos[neras++] = i;
			}
		}
		if (neras > f->roots)
			continue;
		fixed = decode_group(v, index, fixed_block, neras);
		if (fixed < 0)
			continue;
		if (verity_digest(v, fixed_block, bs, got) ||
		    memcmp(got, want, v->digest_size))
			continue;
		memcpy(out, fixed_block, bs);
		DMWARN_LIMIT("%s: FEC %llu: corrected %d errors", v->data_dev->name,
			     (unsigned long long)round << v->data_block_bits, fixed);
		r = 0;
		break;
	}
	/* Named by the group's first codeword, as the stock module does. */
	if (r)
		DMERR_LIMIT("%s: FEC %llu: failed to correct (%d erasures)",
			    v->data_dev->name,
			    (unsigned long long)round << v->data_block_bits, neras);
unlock:
	mutex_unlock(&f->lock);
	kfree(fixed_block);
	return r;
}
