// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace shim: crc32c and a dm-bufio over memory.  Buffers are kept in a
 * table indexed by block; with pd_shim_evict, clean buffers are dropped as
 * soon as nobody holds them so that use-after-release shows up under ASan
 * and every read goes through the validators again.
 */
#include "pd-shim.h"

int pd_shim_quiet;
bool pd_shim_rwsem_busy;
bool pd_shim_evict = true;
static unsigned long evict_tick;

void *pd_shim_alloc(size_t size, bool zero)
{
	void *p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		abort();
	}
	return p;
}

/* The SSE4.2 crc32 instruction computes CRC32C: tests run much faster. */
__attribute__((target("sse4.2")))
static u32 crc32c_hw(u32 crc, const u8 *p, size_t len)
{
	u64 c = crc;

	for (; len >= 8; len -= 8, p += 8) {
		u64 w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	for (; len; len--)
		c = __builtin_ia32_crc32qi((u32)c, *p++);
	return (u32)c;
}

u32 crc32c(u32 crc, const void *data, size_t len)
{
	static u32 table[256];
	static int hw = -1;
	const u8 *p = data;
	size_t i;

	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") && !getenv("PDATA_SOFT_CRC");
	if (hw)
		return crc32c_hw(crc, p, len);

	if (!table[1]) {
		for (u32 n = 0; n < 256; n++) {
			u32 c = n;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82F63B78 : c >> 1;
			table[n] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

struct block_device *pd_shim_bdev_create(u64 nr_blocks)
{
	struct block_device *bdev = pd_shim_alloc(sizeof(*bdev), true);

	bdev->block_size = 4096;
	bdev->nr_blocks = nr_blocks;
	bdev->mem = pd_shim_alloc(nr_blocks * 4096, true);
	bdev->fail_read_block = ~0ULL;
	return bdev;
}

void pd_shim_bdev_destroy(struct block_device *bdev)
{
	free(bdev->mem);
	free(bdev);
}

int pd_shim_bdev_resize(struct block_device *bdev, u64 nr_blocks)
{
	u8 *mem = realloc(bdev->mem, nr_blocks * 4096);

	if (!mem)
		return -ENOMEM;
	if (nr_blocks > bdev->nr_blocks)
		memset(mem + bdev->nr_blocks * 4096, 0,
		       (nr_blocks - bdev->nr_blocks) * 4096);
	bdev->mem = mem;
	bdev->nr_blocks = nr_blocks;
	return 0;
}

struct dm_buffer {
	struct dm_bufio_client *c;
	u64 block;
	int hold;
	bool dirty;
	u8 *data;
	u8 aux[];
};

struct dm_bufio_client {
	struct block_device *bdev;
	unsigned int aux_size;
	void (*alloc_cb)(struct dm_buffer *b);
	void (*write_cb)(struct dm_buffer *b);
	u64 table_size;
	struct dm_buffer **table;
};

static void ensure_table(struct dm_bufio_client *c, u64 block)
{
	if (block < c->table_size)
		return;
	u64 n = max(block + 1, c->table_size * 2);

	c->table = realloc(c->table, n * sizeof(*c->table));
	memset(c->table + c->table_size, 0,
	       (n - c->table_size) * sizeof(*c->table));
	c->table_size = n;
}

struct dm_bufio_client *
dm_bufio_client_create(struct block_device *bdev, unsigned int block_size,
		       unsigned int reserved_buffers, unsigned int aux_size,
		       void (*alloc_callback)(struct dm_buffer *),
		       void (*write_callback)(struct dm_buffer *),
		       unsigned int flags)
{
	struct dm_bufio_client *c = pd_shim_alloc(sizeof(*c), true);

	if (block_size != 4096)
		abort();
	c->bdev = bdev;
	c->aux_size = aux_size;
	c->alloc_cb = alloc_callback;
	c->write_cb = write_callback;
	return c;
}

static void free_buffer(struct dm_buffer *b)
{
	b->c->table[b->block] = NULL;
	free(b->data);
	free(b);
}

static void write_buffer(struct dm_buffer *b)
{
	struct block_device *bdev = b->c->bdev;

	if (b->c->write_cb)
		b->c->write_cb(b);
	if (b->block < bdev->nr_blocks) {
		memcpy(bdev->mem + b->block * 4096, b->data, 4096);
		bdev->writes++;
		if (bdev->written)
			bdev->written[b->block] = 1;
	}
	b->dirty = false;
}

static void drop_all(struct dm_bufio_client *c)
{
	u64 i;

	for (i = 0; i < c->table_size; i++) {
		struct dm_buffer *b = c->table[i];

		if (!b)
			continue;
		if (b->hold) {
			fprintf(stderr, "bufio: block %llu still held\n",
				(unsigned long long)b->block);
			abort();
		}
		if (b->dirty)
			write_buffer(b);
		free_buffer(b);
	}
}

void dm_bufio_client_destroy(struct dm_bufio_client *c)
{
	drop_all(c);
	free(c->table);
	free(c);
}

void dm_bufio_client_reset(struct dm_bufio_client *c)
{
	drop_all(c);
}

static void *get_buffer(struct dm_bufio_client *c, sector_t block,
			struct dm_buffer **bp, int mode)
{
	struct block_device *bdev = c->bdev;
	struct dm_buffer *b;

	if (block >= bdev->nr_blocks)
		return ERR_PTR(-EIO);
	ensure_table(c, block);
	b = c->table[block];
	if (!b) {
		if (mode == 1)
			return NULL;
		if (mode == 0 && block == bdev->fail_read_block)
			return ERR_PTR(-EIO);
		b = pd_shim_alloc(sizeof(*b) + c->aux_size, true);
		b->c = c;
		b->block = block;
		b->data = pd_shim_alloc(4096, false);
		if (mode == 0)
			memcpy(b->data, bdev->mem + block * 4096, 4096);
		else
			memset(b->data, 0xa5, 4096);	/* caller must init */
		c->table[block] = b;
		if (c->alloc_cb)
			c->alloc_cb(b);
	}
	b->hold++;
	*bp = b;
	return b->data;
}

void *dm_bufio_read(struct dm_bufio_client *c, sector_t block,
		    struct dm_buffer **bp)
{
	return get_buffer(c, block, bp, 0);
}

void *dm_bufio_get(struct dm_bufio_client *c, sector_t block,
		   struct dm_buffer **bp)
{
	return get_buffer(c, block, bp, 1);
}

void *dm_bufio_new(struct dm_bufio_client *c, sector_t block,
		   struct dm_buffer **bp)
{
	return get_buffer(c, block, bp, 2);
}

void dm_bufio_prefetch(struct dm_bufio_client *c, sector_t block,
		       unsigned int n_blocks)
{
}

void dm_bufio_release(struct dm_buffer *b)
{
	if (b->hold <= 0) {
		fprintf(stderr, "bufio: release of unheld block\n");
		abort();
	}
	/* Drop some clean buffers: their next read is validated again. */
	if (!--b->hold && !b->dirty && pd_shim_evict && !(++evict_tick % 8))
		free_buffer(b);
}

void dm_bufio_mark_buffer_dirty(struct dm_buffer *b)
{
	b->dirty = true;
}

int dm_bufio_write_dirty_buffers(struct dm_bufio_client *c)
{
	u64 i;

	for (i = 0; i < c->table_size; i++) {
		struct dm_buffer *b = c->table[i];

		if (b && b->dirty) {
			write_buffer(b);
			if (!b->hold && pd_shim_evict)
				free_buffer(b);
		}
	}
	return 0;
}

int dm_bufio_issue_flush(struct dm_bufio_client *c)
{
	c->bdev->flushes++;
	return 0;
}

sector_t dm_bufio_get_device_size(struct dm_bufio_client *c)
{
	return c->bdev->nr_blocks;
}

sector_t dm_bufio_get_block_number(struct dm_buffer *b)
{
	return b->block;
}

void *dm_bufio_get_block_data(struct dm_buffer *b)
{
	return b->data;
}

void *dm_bufio_get_aux_data(struct dm_buffer *b)
{
	return b->aux;
}

unsigned long pd_shim_held(struct dm_bufio_client *c)
{
	unsigned long n = 0;
	u64 i;

	for (i = 0; i < c->table_size; i++)
		if (c->table[i] && c->table[i]->hold)
			n++;
	return n;
}
