// SPDX-License-Identifier: GPL-2.0-only
/*
 * Block manager: whole 4 KiB metadata blocks cached by dm-bufio, each held
 * under a read or write lock and checked by a validator on first read.
 */
#include "pd-internal.h"

struct dm_pd_bm {
	struct dm_bufio_client *bufio;
	bool read_only;
	spinlock_t lock;		/* protects every buffer's lock state */
	wait_queue_head_t wait;
};

#define PD_TRACKED_READERS 4

/* Per-buffer state kept by dm-bufio beside the data. */
struct pd_aux {
	struct dm_pd_bm *bm;
	const struct dm_pd_validator *v;	/* validated as this type */
	int lock;				/* >0 readers, -1 writer */
	/*
	 * Holders, to turn a task locking a block it already holds (only
	 * corrupt metadata can make a tree point back at itself) into an
	 * error instead of a hang.
	 */
	void *writer;
	void *readers[PD_TRACKED_READERS];
};

static struct pd_aux *aux_of(struct dm_buffer *buf)
{
	return dm_bufio_get_aux_data(buf);
}

__le32 dm_pd_block_csum(const void *data, size_t size, u32 salt)
{
	return cpu_to_le32(crc32c(~(u32)0, (const u8 *)data + 4, size - 4) ^ salt);
}
EXPORT_SYMBOL_GPL(dm_pd_block_csum);

static void pd_buffer_alloc(struct dm_buffer *buf)
{
	struct pd_aux *aux = aux_of(buf);

	memset(aux, 0, sizeof(*aux));
}

static void pd_buffer_write(struct dm_buffer *buf)
{
	struct pd_aux *aux = aux_of(buf);

	if (aux->v && aux->v->prepare_for_write)
		aux->v->prepare_for_write(aux->v, dm_bufio_get_block_data(buf),
					  dm_bufio_get_block_number(buf),
					  DM_PD_BLOCK_SIZE);
}

struct dm_pd_bm *dm_pd_bm_create(struct block_device *bdev,
				 unsigned int max_held)
{
	struct dm_pd_bm *bm = kzalloc(sizeof(*bm), GFP_KERNEL);

	if (!bm)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&bm->lock);
	init_waitqueue_head(&bm->wait);
	bm->bufio = dm_bufio_client_create(bdev, DM_PD_BLOCK_SIZE, max_held,
					   sizeof(struct pd_aux),
					   pd_buffer_alloc, pd_buffer_write, 0);
	if (IS_ERR(bm->bufio)) {
		void *err = bm->bufio;

		kfree(bm);
		return err;
	}
	return bm;
}
EXPORT_SYMBOL_GPL(dm_pd_bm_create);

void dm_pd_bm_destroy(struct dm_pd_bm *bm)
{
	dm_bufio_client_destroy(bm->bufio);
	kfree(bm);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_destroy);

u64 dm_pd_bm_nr_blocks(struct dm_pd_bm *bm)
{
	return dm_bufio_get_device_size(bm->bufio);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_nr_blocks);

static bool is_reader(struct pd_aux *aux, void *task)
{
	int i;

	for (i = 0; i < PD_TRACKED_READERS; i++)
		if (aux->readers[i] == task)
			return true;
	return false;
}

static void set_reader(struct pd_aux *aux, void *old, void *task)
{
	int i;

	for (i = 0; i < PD_TRACKED_READERS; i++) {
		if (aux->readers[i] == old) {
			aux->readers[i] = task;
			return;
		}
	}
}

/* 1: locked, 0: must wait, -EINVAL: the caller already holds it. */
static int take_lock(struct pd_aux *aux, bool write)
{
	void *task = current;
	int r = 0;

	spin_lock(&aux->bm->lock);
	if (aux->lock < 0 && aux->writer == task) {
		r = -EINVAL;
	} else if (write && aux->lock > 0 && is_reader(aux, task)) {
		r = -EINVAL;
	} else if (write ? aux->lock == 0 : aux->lock >= 0) {
		r = 1;
		if (write) {
			aux->lock = -1;
			aux->writer = task;
		} else {
			aux->lock++;
			set_reader(aux, NULL, task);
		}
	}
	spin_unlock(&aux->bm->lock);
	return r;
}

static void drop_lock(struct pd_aux *aux, bool write)
{
	spin_lock(&aux->bm->lock);
	if (write) {
		aux->lock = 0;
		aux->writer = NULL;
	} else {
		aux->lock--;
		set_reader(aux, current, NULL);
	}
	spin_unlock(&aux->bm->lock);
	wake_up(&aux->bm->wait);
}

/* Lock, then validate unless the buffer already passed this validator. */
static int lock_buffer(struct dm_pd_bm *bm, struct dm_buffer *buf,
		       const struct dm_pd_validator *v, bool write, bool fresh,
		       bool try)
{
	struct pd_aux *aux = aux_of(buf);
	int r;

	aux->bm = bm;
	if (try) {
		r = take_lock(aux, write);
		if (!r)
			return -EWOULDBLOCK;
	} else {
		wait_event(bm->wait, (r = take_lock(aux, write)) != 0);
	}
	if (r < 0) {
		PD_ERR("recursive lock of block %llu: corrupt metadata?",
		       (unsigned long long)dm_bufio_get_block_number(buf));
		return r;
	}

	if (fresh) {
		aux->v = v;
		return 0;
	}
	if (!v || aux->v == v)
		return 0;
	if (aux->v) {
		PD_ERR("block %llu validated as %s, requested as %s",
		       (unsigned long long)dm_bufio_get_block_number(buf),
		       aux->v->name, v->name);
		r = -EINVAL;
	} else {
		r = v->check(v, dm_bufio_get_block_data(buf),
			     dm_bufio_get_block_number(buf), DM_PD_BLOCK_SIZE);
		if (!r)
			aux->v = v;
	}
	if (r)
		drop_lock(aux, write);
	return r;
}

static int bm_lock(struct dm_pd_bm *bm, u64 b, const struct dm_pd_validator *v,
		   struct dm_pd_block **blk, int mode)
{
	struct dm_buffer *buf;
	bool write = mode != 0, fresh = mode == 2, try = mode == 3;
	void *p;
	int r;

	if (try)
		write = false;
	if (write && bm->read_only)
		return -EPERM;
	if (b >= dm_pd_bm_nr_blocks(bm)) {
		PD_ERR("block %llu beyond the metadata device",
		       (unsigned long long)b);
		return -EINVAL;
	}
	if (fresh)
		p = dm_bufio_new(bm->bufio, b, &buf);
	else if (try)
		p = dm_bufio_get(bm->bufio, b, &buf);
	else
		p = dm_bufio_read(bm->bufio, b, &buf);
	if (!p)
		return -EWOULDBLOCK;
	if (IS_ERR(p))
		return PTR_ERR(p);
	if (fresh)
		memset(p, 0, DM_PD_BLOCK_SIZE);
	r = lock_buffer(bm, buf, v, write, fresh, try);
	if (r) {
		dm_bufio_release(buf);
		return r;
	}
	*blk = (struct dm_pd_block *)buf;
	return 0;
}

int dm_pd_bm_read_lock(struct dm_pd_bm *bm, u64 b,
		       const struct dm_pd_validator *v, struct dm_pd_block **blk)
{
	return bm_lock(bm, b, v, blk, 0);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_read_lock);

int dm_pd_bm_read_try_lock(struct dm_pd_bm *bm, u64 b,
			   const struct dm_pd_validator *v,
			   struct dm_pd_block **blk)
{
	return bm_lock(bm, b, v, blk, 3);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_read_try_lock);

int dm_pd_bm_write_lock(struct dm_pd_bm *bm, u64 b,
			const struct dm_pd_validator *v,
			struct dm_pd_block **blk)
{
	return bm_lock(bm, b, v, blk, 1);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_write_lock);

int dm_pd_bm_write_lock_zero(struct dm_pd_bm *bm, u64 b,
			     const struct dm_pd_validator *v,
			     struct dm_pd_block **blk)
{
	return bm_lock(bm, b, v, blk, 2);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_write_lock_zero);

void dm_pd_bm_unlock(struct dm_pd_block *blk)
{
	struct dm_buffer *buf = (struct dm_buffer *)blk;
	struct pd_aux *aux = aux_of(buf);
	bool write = aux->lock < 0;

	/* Dirty before the lock goes: a writer's changes are complete. */
	if (write)
		dm_bufio_mark_buffer_dirty(buf);
	drop_lock(aux, write);
	dm_bufio_release(buf);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_unlock);

int dm_pd_bm_flush(struct dm_pd_bm *bm)
{
	int r;

	if (bm->read_only)
		return -EPERM;
	r = dm_bufio_write_dirty_buffers(bm->bufio);
	if (r)
		return r;
	return dm_bufio_issue_flush(bm->bufio);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_flush);

void dm_pd_bm_prefetch(struct dm_pd_bm *bm, u64 b)
{
	if (b < dm_pd_bm_nr_blocks(bm))
		dm_bufio_prefetch(bm->bufio, b, 1);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_prefetch);

void dm_pd_bm_reset(struct dm_pd_bm *bm)
{
	dm_bufio_client_reset(bm->bufio);
}
EXPORT_SYMBOL_GPL(dm_pd_bm_reset);

void dm_pd_bm_set_read_only(struct dm_pd_bm *bm)
{
	bm->read_only = true;
}
EXPORT_SYMBOL_GPL(dm_pd_bm_set_read_only);

void dm_pd_bm_set_read_write(struct dm_pd_bm *bm)
{
	bm->read_only = false;
}
EXPORT_SYMBOL_GPL(dm_pd_bm_set_read_write);

bool dm_pd_bm_is_read_only(struct dm_pd_bm *bm)
{
	return bm->read_only;
}
EXPORT_SYMBOL_GPL(dm_pd_bm_is_read_only);

void *dm_pd_block_data(struct dm_pd_block *blk)
{
	return dm_bufio_get_block_data((struct dm_buffer *)blk);
}
EXPORT_SYMBOL_GPL(dm_pd_block_data);

u64 dm_pd_block_location(struct dm_pd_block *blk)
{
	return dm_bufio_get_block_number((struct dm_buffer *)blk);
}
EXPORT_SYMBOL_GPL(dm_pd_block_location);
