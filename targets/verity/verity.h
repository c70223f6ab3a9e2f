/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-verity: shared declarations of the target, FEC and signature parts.
 */
#ifndef DM_VERITY_LOCAL_H
#define DM_VERITY_LOCAL_H

#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/workqueue.h>
#include <linux/mutex.h>
#include <crypto/hash.h>

#define DM_MSG_PREFIX "verity"

#define VERITY_MAX_LEVELS	63
#define VERITY_MAX_CORRUPTED	100

enum verity_mode {
	VERITY_MODE_EIO,
	VERITY_MODE_LOGGING,
	VERITY_MODE_RESTART,
	VERITY_MODE_PANIC,
};

/* The type numbers are part of the uevent ABI. */
enum verity_block_type {
	VERITY_BLOCK_DATA = 0,
	VERITY_BLOCK_METADATA = 1,
};

struct verity_fec;

struct dm_verity {
	struct dm_target *ti;
	struct dm_dev *data_dev;
	struct dm_dev *hash_dev;
	struct dm_bufio_client *bufio;
	struct crypto_shash *tfm;
	char *alg_name;
	u8 *root_digest;
	u8 *salt;
	u8 *zero_digest;		/* set with ignore_zero_blocks */
	unsigned long *validated;	/* set with check_at_most_once */
	char *sig_key_desc;

	unsigned int salt_size;
	unsigned int digest_size;
	unsigned char version;
	unsigned char data_block_bits;
	unsigned char hash_block_bits;
	unsigned char hash_per_block_bits;
	unsigned char levels;
	bool use_tasklet;
	bool hash_failed;
	enum verity_mode mode;
	unsigned int corrupted_errs;

	sector_t data_blocks;
	sector_t hash_start;
	sector_t hash_blocks;		/* first hash block after the tree */
	sector_t level_start[VERITY_MAX_LEVELS];

	struct workqueue_struct *verify_wq;
	struct verity_fec *fec;
};

/* Per-bio state, in the bio's per-target data. */
struct dm_verity_io {
	struct dm_verity *v;
	bio_end_io_t *orig_end_io;
	sector_t block;
	unsigned int n_blocks;
	struct bvec_iter iter;
	struct work_struct work;
};

/* Kept in each bufio buffer of the hash device. */
struct verity_buffer_aux {
	bool verified;
};

int verity_digest(struct dm_verity *v, const u8 *data, size_t len, u8 *out);
int verity_hash_for_block(struct dm_verity *v, sector_t block, u8 *digest,
			  bool *is_zero, int fec_depth);
int verity_handle_err(struct dm_verity *v, enum verity_block_type type,
		      unsigned long long block);

/* FEC (verity-fec.c) */
bool verity_is_fec_opt(const char *name);
int verity_fec_parse_opt(struct dm_verity *v, struct dm_arg_set *as,
			 unsigned int *argc, const char *name);
int verity_fec_alloc(struct dm_verity *v);
int verity_fec_ctr(struct dm_verity *v);
void verity_fec_dtr(struct dm_verity *v);
bool verity_fec_enabled(struct dm_verity *v);
int verity_fec_decode(struct dm_verity *v, enum verity_block_type type,
		      sector_t block, const u8 *want, u8 *out, int depth);
unsigned int verity_fec_status(struct dm_verity *v, char *result,
			       unsigned int sz, unsigned int maxlen);

/* Root hash signature (verity-sig.c) */
struct verity_sig {
	u8 *data;
	size_t size;
};

bool verity_is_sig_opt(const char *name);
int verity_sig_parse_opt(struct dm_verity *v, struct dm_arg_set *as,
			 unsigned int *argc, struct verity_sig *sig);
int verity_sig_check(const char *root_hex, struct verity_sig *sig);
void verity_sig_free(struct verity_sig *sig);

#endif
