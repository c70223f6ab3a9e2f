/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace stand-ins for the kernel interfaces the persistent-data library
 * uses: types, endian helpers, allocation, locking (single-threaded), crc32c
 * and a dm-bufio over an in-memory block device.
 */
#ifndef PD_SHIM_H
#define PD_SHIM_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;
typedef u64 sector_t;

#define __packed __attribute__((packed))
#define GFP_KERNEL 0
#define GFP_NOIO 0
#define EXPORT_SYMBOL_GPL(sym) extern int pd_shim_export_unused
#define MODULE_DESCRIPTION(s) extern int pd_shim_export_unused
#define MODULE_LICENSE(s) extern int pd_shim_export_unused
#define MODULE_SOFTDEP(s) extern int pd_shim_export_unused

#define cpu_to_le32(x) ((__le32)htole32(x))
#define cpu_to_le64(x) ((__le64)htole64(x))
#define le32_to_cpu(x) ((u32)le32toh(x))
#define le64_to_cpu(x) ((u64)le64toh(x))

static inline void le32_add_cpu(__le32 *p, u32 v)
{
	*p = cpu_to_le32(le32_to_cpu(*p) + v);
}

static inline u64 get_unaligned_le64(const void *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void put_unaligned_le64(u64 v, void *p)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })
#define max(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a > _b ? _a : _b; })
#define min_t(t, a, b) min((t)(a), (t)(b))
#define max_t(t, a, b) max((t)(a), (t)(b))
#include <assert.h>
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define div_u64(a, b) ((u64)(a) / (b))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define MAX_ERRNO 4095
#define IS_ERR(p) ((unsigned long)(p) >= (unsigned long)-MAX_ERRNO)
#define PTR_ERR(p) ((long)(p))
#define ERR_PTR(e) ((void *)(long)(e))

extern int pd_shim_quiet;
#define pr_err(...) do { if (!pd_shim_quiet) fprintf(stderr, __VA_ARGS__); } while (0)

void *pd_shim_alloc(size_t size, bool zero);
#define kmalloc(s, g) pd_shim_alloc(s, false)
#define kzalloc(s, g) pd_shim_alloc(s, true)
#define kvzalloc(s, g) pd_shim_alloc(s, true)
#define kcalloc(n, s, g) pd_shim_alloc((size_t)(n) * (s), true)
#define kvcalloc(n, s, g) pd_shim_alloc((size_t)(n) * (s), true)
#define kfree(p) free(p)
#define kvfree(p) free(p)

typedef int spinlock_t;
typedef int wait_queue_head_t;
#define spin_lock_init(l) (*(l) = 0)
#define spin_lock(l) ((void)(l))
#define spin_unlock(l) ((void)(l))
#define init_waitqueue_head(w) (*(w) = 0)
#define current ((void *)&pd_shim_quiet)
#define wake_up(w) ((void)(w))
/* Single-threaded: a wait that cannot succeed at once is a deadlock. */
#define wait_event(w, cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "deadlock: %s:%d\n", __FILE__, __LINE__); \
		abort(); \
	} \
} while (0)

u32 crc32c(u32 crc, const void *data, size_t len);

/* The block device: memory, growable, with optional read failures. */
struct block_device {
	u8 *mem;
	u64 nr_blocks;
	unsigned int block_size;
	u64 fail_read_block;	/* reads of this block fail (~0: none) */
	unsigned long writes, flushes;
	u8 *written;		/* if set: flags of blocks written */
};

struct block_device *pd_shim_bdev_create(u64 nr_blocks);
void pd_shim_bdev_destroy(struct block_device *bdev);
int pd_shim_bdev_resize(struct block_device *bdev, u64 nr_blocks);
/* Evict clean unheld buffers on release, so every read re-validates. */
extern bool pd_shim_evict;

struct dm_buffer;
struct dm_bufio_client;

struct dm_bufio_client *
dm_bufio_client_create(struct block_device *bdev, unsigned int block_size,
		       unsigned int reserved_buffers, unsigned int aux_size,
		       void (*alloc_callback)(struct dm_buffer *),
		       void (*write_callback)(struct dm_buffer *),
		       unsigned int flags);
void dm_bufio_client_destroy(struct dm_bufio_client *c);
void dm_bufio_client_reset(struct dm_bufio_client *c);
void *dm_bufio_read(struct dm_bufio_client *c, sector_t block,
		    struct dm_buffer **bp);
void *dm_bufio_get(struct dm_bufio_client *c, sector_t block,
		   struct dm_buffer **bp);
void *dm_bufio_new(struct dm_bufio_client *c, sector_t block,
		   struct dm_buffer **bp);
void dm_bufio_prefetch(struct dm_bufio_client *c, sector_t block,
		       unsigned int n_blocks);
void dm_bufio_release(struct dm_buffer *b);
void dm_bufio_mark_buffer_dirty(struct dm_buffer *b);
int dm_bufio_write_dirty_buffers(struct dm_bufio_client *c);
int dm_bufio_issue_flush(struct dm_bufio_client *c);
sector_t dm_bufio_get_device_size(struct dm_bufio_client *c);
sector_t dm_bufio_get_block_number(struct dm_buffer *b);
void *dm_bufio_get_block_data(struct dm_buffer *b);
void *dm_bufio_get_aux_data(struct dm_buffer *b);
/* Number of buffers currently held (for leak checks). */
unsigned long pd_shim_held(struct dm_bufio_client *c);

/* dm log lines (the prefix comes from the including file). */
#define DMERR(fmt, ...) \
	pr_err("device-mapper: " DM_MSG_PREFIX ": " fmt "\n", ##__VA_ARGS__)
#define DMWARN(fmt, ...) \
	pr_err("device-mapper: " DM_MSG_PREFIX ": " fmt "\n", ##__VA_ARGS__)

/*
 * Single-threaded reader/writer semaphore: it only checks that the lock is
 * used consistently.  A blocking acquire that would wait is a deadlock;
 * pd_shim_rwsem_busy makes every trylock fail (to test the callers).
 */
struct rw_semaphore {
	int readers;
	bool writer;
};

extern bool pd_shim_rwsem_busy;

static inline void init_rwsem(struct rw_semaphore *s)
{
	s->readers = 0;
	s->writer = false;
}

static inline void pd_shim_rwsem_die(const char *fn, const char *what)
{
	fprintf(stderr, "rwsem: %s %s\n", fn, what);
	abort();
}

static inline void down_read(struct rw_semaphore *s)
{
	if (s->writer)
		pd_shim_rwsem_die(__func__, "under the write lock");
	s->readers++;
}

static inline int down_read_trylock(struct rw_semaphore *s)
{
	if (s->writer || pd_shim_rwsem_busy)
		return 0;
	s->readers++;
	return 1;
}

static inline void up_read(struct rw_semaphore *s)
{
	if (s->readers <= 0)
		pd_shim_rwsem_die(__func__, "without down_read");
	s->readers--;
}

static inline void down_write(struct rw_semaphore *s)
{
	if (s->writer || s->readers)
		pd_shim_rwsem_die(__func__, "while held");
	s->writer = true;
}

static inline void up_write(struct rw_semaphore *s)
{
	if (!s->writer)
		pd_shim_rwsem_die(__func__, "without down_write");
	s->writer = false;
}

#endif
