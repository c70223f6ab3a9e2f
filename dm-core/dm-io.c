// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-io: synchronous and asynchronous I/O to several regions of block
 * devices at once, from a page list, a bio's payload, vmalloc'ed or kmalloc'ed
 * memory. Part of dm-mod; used by kcopyd, mirror, dirty logs, bufio, ...
 *
 * One call becomes one "io" that counts its bios. Each region may need several
 * bios; every failed bio sets the bit of its region in the io's error mask, and
 * the io completes (callback or waking the sync caller) when its last bio ends.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/dm-io.h>
#include <linux/highmem.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "dm-libs.h"

/* Enough to keep one io moving under memory pressure per client. */
#define DM_IO_MIN_IOS	16

struct dm_io_client {
	mempool_t pool;
	struct bio_set bios;
};

/* One dm_io() call in flight. */
struct io {
	unsigned long error_bits;
	atomic_t count;			/* bios in flight + 1 while dispatching */
	struct dm_io_client *client;
	io_notify_fn callback;
	void *context;
	void *vma_addr;			/* vmalloc range to invalidate after reads */
	unsigned long vma_size;
};

/* Front pad of each bio: which io and region it belongs to. */
struct io_bio {
	struct io *io;
	unsigned int region;
	struct bio bio;
};

/* Where the next byte of the caller's buffer lives, whatever its type. */
struct io_cursor {
	enum dm_io_mem_type type;
	unsigned int offset;		/* into the current page-list page */
	union {
		struct page_list *pl;
		struct {
			struct bio *bio;
			struct bvec_iter iter;
		};
		char *addr;
	};
};

static struct kmem_cache *io_cache;

struct dm_io_client *dm_io_client_create(void)
{
	struct dm_io_client *client;
	int r;

	client = kzalloc(sizeof(*client), GFP_KERNEL);
	if (!client)
		return ERR_PTR(-ENOMEM);

	r = mempool_init_slab_pool(&client->pool, DM_IO_MIN_IOS, io_cache);
	if (r)
		goto bad_free;

	r = bioset_init(&client->bios, DM_IO_MIN_IOS,
			offsetof(struct io_bio, bio), BIOSET_NEED_BVECS);
	if (r)
		goto bad_pool;

	return client;

bad_pool:
	mempool_exit(&client->pool);
bad_free:
	kfree(client);
	return ERR_PTR(r);
}
EXPORT_SYMBOL(dm_io_client_create);

void dm_io_client_destroy(struct dm_io_client *client)
{
	mempool_exit(&client->pool);
	bioset_exit(&client->bios);
	kfree(client);
}
EXPORT_SYMBOL(dm_io_client_destroy);

/* ------------------------------------------------------------ cursor */

static void cursor_init(struct io_cursor *c, struct dm_io_memory *mem)
{
	c->type = mem->type;
	c->offset = 0;
	switch (mem->type) {
	case DM_IO_PAGE_LIST:
		c->pl = mem->ptr.pl;
		c->offset = mem->offset;
		break;
	case DM_IO_BIO:
		c->bio = mem->ptr.bio;
		c->iter = mem->ptr.bio->bi_iter;
		break;
	case DM_IO_VMA:
	case DM_IO_KMEM:
		c->addr = mem->ptr.addr;
		break;
	}
}

/* The page under the cursor, the offset in it and the bytes usable there. */
static void cursor_page(struct io_cursor *c, struct page **page,
			unsigned int *offset, unsigned int *len)
{
	struct bio_vec bv;

	switch (c->type) {
	case DM_IO_PAGE_LIST:
		*page = c->pl->page;
		*offset = c->offset;
		*len = PAGE_SIZE - c->offset;
		break;
	case DM_IO_BIO:
		bv = bio_iter_iovec(c->bio, c->iter);
		*page = bv.bv_page;
		*offset = bv.bv_offset;
		*len = bv.bv_len;
		break;
	case DM_IO_VMA:
		*page = vmalloc_to_page(c->addr);
		*offset = offset_in_page(c->addr);
		*len = PAGE_SIZE - *offset;
		break;
	case DM_IO_KMEM:
		*page = virt_to_page(c->addr);
		*offset = offset_in_page(c->addr);
		*len = PAGE_SIZE - *offset;
		break;
	}
}

static void cursor_advance(struct io_cursor *c, unsigned int bytes)
{
	switch (c->type) {
	case DM_IO_PAGE_LIST:
		c->offset += bytes;
		while (c->offset >= PAGE_SIZE) {
			c->offset -= PAGE_SIZE;
			c->pl = c->pl->next;
		}
		break;
	case DM_IO_BIO:
		bio_advance_iter_single(c->bio, &c->iter, bytes);
		break;
	case DM_IO_VMA:
	case DM_IO_KMEM:
		c->addr += bytes;
		break;
	}
}

/* ------------------------------------------------------------ completion */

static void complete_io(struct io *io)
{
	unsigned long error_bits = io->error_bits;
	io_notify_fn fn = io->callback;
	void *context = io->context;

	if (io->vma_addr)
		invalidate_kernel_vmap_range(io->vma_addr, io->vma_size);

	mempool_free(io, &io->client->pool);
	fn(error_bits, context);
}

static void put_io(struct io *io)
{
	if (atomic_dec_and_test(&io->count))
		complete_io(io);
}

static void region_failed(struct io *io, unsigned int region)
{
	set_bit(region, &io->error_bits);
}

static void io_bio_end(struct bio *bio)
{
	struct io_bio *ib = container_of(bio, struct io_bio, bio);
	struct io *io = ib->io;

	if (bio->bi_status)
		region_failed(io, ib->region);
	bio_put(bio);
	put_io(io);
}

/* ------------------------------------------------------------ dispatch */

static struct bio *alloc_io_bio(struct io *io, unsigned int region,
				struct dm_io_region *where, blk_opf_t opf,
				unsigned short nr_vecs, sector_t done,
				unsigned short ioprio)
{
	struct bio *bio;
	struct io_bio *ib;

	bio = bio_alloc_bioset(where->bdev, nr_vecs, opf, GFP_NOIO,
			       &io->client->bios);
	ib = container_of(bio, struct io_bio, bio);
	ib->io = io;
	ib->region = region;
	bio->bi_iter.bi_sector = where->sector + done;
	bio->bi_ioprio = ioprio;
	bio->bi_end_io = io_bio_end;
	return bio;
}

static void submit_io_bio(struct io *io, struct bio *bio)
{
	atomic_inc(&io->count);
	submit_bio(bio);
}

/* Discard and write-zeroes carry no data: chop at the device's limit. */
static void do_region_nodata(struct io *io, unsigned int region,
			     struct dm_io_region *where, blk_opf_t opf,
			     unsigned short ioprio)
{
	enum req_op op = opf & REQ_OP_MASK;
	sector_t limit, done = 0;
	struct bio *bio;

	if (op == REQ_OP_WRITE_ZEROES)
		limit = bdev_write_zeroes_sectors(where->bdev);
	else
		limit = bdev_max_discard_sectors(where->bdev);

	if (!limit) {
		region_failed(io, region);
		return;
	}
	/* bi_size is 32 bits wide */
	limit = min_t(sector_t, limit, UINT_MAX >> SECTOR_SHIFT);

	while (done < where->count) {
		sector_t n = min_t(sector_t, where->count - done, limit);

		bio = alloc_io_bio(io, region, where, opf, 0, done, ioprio);
		bio->bi_iter.bi_size = n << SECTOR_SHIFT;
		submit_io_bio(io, bio);
		done += n;
	}
}

static void do_region(struct io *io, unsigned int region,
		      struct dm_io_region *where, blk_opf_t opf,
		      struct io_cursor *cur, unsigned short ioprio)
{
	enum req_op op = opf & REQ_OP_MASK;
	sector_t done = 0;
	struct bio *bio;

	if (op == REQ_OP_DISCARD || op == REQ_OP_SECURE_ERASE ||
	    op == REQ_OP_WRITE_ZEROES) {
		do_region_nodata(io, region, where, opf, ioprio);
		return;
	}

	/* A flush of a zero-length region is an empty bio. */
	if (!where->count) {
		bio = alloc_io_bio(io, region, where, opf, 0, 0, ioprio);
		submit_io_bio(io, bio);
		return;
	}

	while (done < where->count) {
		sector_t left = where->count - done;
		unsigned long pages = DIV_ROUND_UP(left << SECTOR_SHIFT, PAGE_SIZE);
		unsigned short nr_vecs = min_t(unsigned long, pages + 1, BIO_MAX_VECS);

		bio = alloc_io_bio(io, region, where, opf, nr_vecs, done, ioprio);
		while (done < where->count) {
			struct page *page;
			unsigned int offset, len;

			cursor_page(cur, &page, &offset, &len);
			len = min_t(sector_t, len,
				    (where->count - done) << SECTOR_SHIFT);
			if (WARN_ON_ONCE(len < SECTOR_SIZE) ||
			    !bio_add_page(bio, page, len, offset))
				break;
			cursor_advance(cur, len);
			done += len >> SECTOR_SHIFT;
		}
		if (!bio->bi_iter.bi_size) {
			/* Nothing fits or the buffer is unaligned: give up. */
			bio_put(bio);
			region_failed(io, region);
			return;
		}
		submit_io_bio(io, bio);
	}
}

static void dispatch_io(struct io *io, struct dm_io_request *req,
			unsigned int num_regions, struct dm_io_region *where,
			unsigned short ioprio)
{
	struct io_cursor start, cur;
	unsigned int i;

	cursor_init(&start, &req->mem);
	for (i = 0; i < num_regions; i++) {
		/* Every region is written from the start of the same buffer. */
		cur = start;
		if (where[i].count || (req->bi_opf & REQ_PREFLUSH))
			do_region(io, i, where + i, req->bi_opf, &cur, ioprio);
	}
	put_io(io);
}

static void start_io(struct dm_io_request *req, unsigned int num_regions,
		     struct dm_io_region *where, io_notify_fn fn, void *context,
		     unsigned short ioprio)
{
	struct io *io = mempool_alloc(&req->client->pool, GFP_NOIO);
	unsigned int i;

	io->error_bits = 0;
	atomic_set(&io->count, 1);
	io->client = req->client;
	io->callback = fn;
	io->context = context;
	io->vma_addr = NULL;
	io->vma_size = 0;

	if (req->mem.type == DM_IO_VMA) {
		unsigned long size = 0;

		for (i = 0; i < num_regions; i++)
			size = max_t(unsigned long, size,
				     where[i].count << SECTOR_SHIFT);
		if (op_is_write(req->bi_opf)) {
			flush_kernel_vmap_range(req->mem.ptr.vma, size);
		} else {
			io->vma_addr = req->mem.ptr.vma;
			io->vma_size = size;
		}
	}

	dispatch_io(io, req, num_regions, where, ioprio);
}

struct sync_io {
	unsigned long error_bits;
	struct completion done;
};

static void sync_io_done(unsigned long error_bits, void *context)
{
	struct sync_io *sio = context;

	sio->error_bits = error_bits;
	complete(&sio->done);
}

int dm_io(struct dm_io_request *io_req, unsigned int num_regions,
	  struct dm_io_region *where, unsigned long *sync_error_bits,
	  unsigned short ioprio)
{
	struct sync_io sio;

	/* The error mask has one bit per region; reads have one source. */
	if (num_regions > BITS_PER_LONG ||
	    (num_regions > 1 && !op_is_write(io_req->bi_opf)))
		return -EIO;

	if (io_req->notify.fn) {
		start_io(io_req, num_regions, where, io_req->notify.fn,
			 io_req->notify.context, ioprio);
		return 0;
	}

	init_completion(&sio.done);
	sio.error_bits = 0;
	start_io(io_req, num_regions, where, sync_io_done, &sio, ioprio);
	wait_for_completion_io(&sio.done);

	if (sync_error_bits)
		*sync_error_bits = sio.error_bits;
	return sio.error_bits ? -EIO : 0;
}
EXPORT_SYMBOL(dm_io);

int dm_io_init(void)
{
	io_cache = KMEM_CACHE(io, 0);
	return io_cache ? 0 : -ENOMEM;
}

void dm_io_exit(void)
{
	kmem_cache_destroy(io_cache);
	io_cache = NULL;
}
