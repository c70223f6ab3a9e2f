// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-ioctl-fuzz: throw valid and malformed struct dm_ioctl buffers at
 * /dev/mapper/control for a fixed time.
 *
 *   dm-ioctl-fuzz [-s SEED] [-t SECONDS] [-v] BLOCKDEV...
 *
 * Valid sequences (create, load a random linear/striped/zero/error table over
 * the given devices, resume, read back, remove) must behave exactly as the
 * protocol says; malformed calls (bad sizes and offsets, random flags, broken
 * target-spec chains, unterminated strings, huge or negative numbers, unknown
 * commands) may fail or succeed, but whatever the kernel returns must be well
 * formed and the devices must stay consistent. Every device made during the
 * run is removed at the end, and the run fails if anything is left: dm
 * devices, holders on the block devices, or references on dm-mod.
 *
 * Exit status: 0 clean, 1 inconsistency found, 2 usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define HDR		sizeof(struct dm_ioctl)	/* 312: where payloads start */
#define HDR_MIN		offsetof(struct dm_ioctl, data)	/* 305 */
#define ARENA		(256 * 1024)
#define MAX_DEVS	8
#define MAX_TGT		8
#define PARAMS_LEN	256
#define GUARD_OVERRUN	8192	/* how far a lying data_size reaches past the buffer */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define PICK(a)		((a)[rn(ARRAY_SIZE(a))])

struct blockdev {
	const char *path;
	unsigned int major, minor;
	uint64_t sectors;
};

struct target {
	uint64_t start, len;
	char type[DM_MAX_TYPE_NAME];
	char params[PARAMS_LEN];
};

static int ctl = -1;
static int verbose;
static unsigned int failures;
static char prefix[32];
static struct blockdev bdevs[MAX_DEVS];
static int nr_bdevs;
static unsigned char *arena_end;	/* first byte of the guard page */
static uint64_t rng_state;
static unsigned long nr_calls, nr_ok, nr_err, nr_seq;

/* ------------------------------------------------------------ utilities */

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed, good enough for fuzzing */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned int rn(unsigned int n)
{
	return n ? (unsigned int)(rnd() % n) : 0;
}

static int chance(unsigned int pct)
{
	return rn(100) < pct;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

static void note(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/*
 * A buffer of SIZE bytes that ends right at a PROT_NONE page, so that a
 * data_size larger than what was really passed makes the kernel fault
 * instead of reading stale memory.
 */
static struct dm_ioctl *buffer(size_t size)
{
	unsigned char *p;

	size = (size + 7) & ~(size_t)7;
	if (size > ARENA)
		size = ARENA;
	p = arena_end - size;
	memset(p, 0, size);
	return (struct dm_ioctl *)p;
}

static void hdr_init(struct dm_ioctl *h, size_t size, const char *name)
{
	h->version[0] = DM_VERSION_MAJOR;
	h->version[1] = 0;
	h->version[2] = 0;
	h->data_size = size;
	h->data_start = HDR;
	if (name)
		snprintf(h->name, sizeof(h->name), "%s", name);
}

/* The last calls, to show what led to a leak. */
#define HISTORY		64
#define HISTORY_LEN	400
static char history[HISTORY][HISTORY_LEN];
static unsigned long history_pos;

static void describe(unsigned long cmd, struct dm_ioctl *h, char *buf, size_t len)
{
	int n, i;
	uint32_t off;

	n = snprintf(buf, len, "nr %lu ver %u.%u size %u start %u flags %#x tc %u dev %#llx name '%.40s' uuid '%.20s'",
		     (unsigned long)_IOC_NR(cmd), h->version[0], h->version[1],
		     h->data_size, h->data_start, h->flags, h->target_count,
		     (unsigned long long)h->dev, h->name, h->uuid);
	if (_IOC_NR(cmd) != DM_TABLE_LOAD_CMD)
		return;
	off = h->data_start;
	for (i = 0; i < 4 && n < (int)len - 80; i++) {
		struct dm_target_spec *sp = (void *)((char *)h + off);

		if (off < HDR_MIN || off + sizeof(*sp) + 40 > ARENA ||
		    (unsigned char *)sp + sizeof(*sp) + 40 > arena_end)
			break;
		n += snprintf(buf + n, len - n, " | %llu+%llu %.16s '%.40s' next %u",
			      (unsigned long long)sp->sector_start,
			      (unsigned long long)sp->length, sp->target_type,
			      (char *)(sp + 1), sp->next);
		if (!sp->next)
			break;
		off += sp->next;
	}
}

static int xioctl(unsigned long cmd, struct dm_ioctl *h)
{
	char *slot = history[history_pos++ % HISTORY];
	int r;

	describe(cmd, h, slot, HISTORY_LEN);
	nr_calls++;
	r = ioctl(ctl, cmd, h);
	r = r ? errno : 0;
	snprintf(slot + strlen(slot), HISTORY_LEN - strlen(slot), " -> %s",
		 r ? strerror(r) : "ok");
	if (r == 0)
		nr_ok++;
	else
		nr_err++;
	return r;
}

static void dump_history(void)
{
	unsigned long i;

	fprintf(stderr, "last calls, oldest first:\n");
	for (i = history_pos > HISTORY ? history_pos - HISTORY : 0; i < history_pos; i++)
		fprintf(stderr, "  %s\n", history[i % HISTORY]);
}

static unsigned long cmd_of(unsigned int nr)
{
	return _IOWR(DM_IOCTL, nr, struct dm_ioctl);
}

/* ------------------------------------------------------------ reply checks */

/* A NUL must occur in [s, end). */
static int terminated(const char *s, const char *end)
{
	return s < end && memchr(s, 0, end - s) != NULL;
}

/*
 * A successful reply must describe itself correctly: data_size within what
 * we passed, data_start past the header, every chained record inside the
 * reply, 8-aligned and terminated.
 */
static void check_reply(unsigned int nr, struct dm_ioctl *h, size_t passed)
{
	char *base = (char *)h, *end;
	uint32_t off, i;

	if (h->version[0] != DM_VERSION_MAJOR)
		fail("cmd %u: reply version %u.%u.%u", nr, h->version[0],
		     h->version[1], h->version[2]);
	if (nr == DM_REMOVE_ALL_CMD || nr == DM_DEV_SET_GEOMETRY_CMD ||
	    nr == DM_VERSION_CMD)
		return;
	if (h->data_size > passed) {
		fail("cmd %u: reply data_size %u > buffer %zu", nr, h->data_size,
		     passed);
		return;
	}
	/* 305 means "nothing produced"; producers write from offset 312 */
	if (h->data_size <= HDR)
		return;
	if (h->data_start < HDR || h->data_start > h->data_size) {
		fail("cmd %u: reply data_start %u (size %u)", nr, h->data_start,
		     h->data_size);
		return;
	}
	end = base + h->data_size;

	switch (nr) {
	case DM_LIST_DEVICES_CMD:
		off = h->data_start;
		for (i = 0; i < 100000; i++) {
			struct dm_name_list *nl = (void *)(base + off);

			if (off % 8 || off + sizeof(*nl) > h->data_size) {
				fail("list_devices: record at %u out of reply", off);
				return;
			}
			if (!terminated(nl->name, end)) {
				fail("list_devices: name not terminated");
				return;
			}
			if (!nl->next)
				return;
			off += nl->next;
		}
		fail("list_devices: chain does not end");
		break;
	case DM_LIST_VERSIONS_CMD:
	case DM_GET_TARGET_VERSION_CMD:
		off = h->data_start;
		for (i = 0; i < 100000; i++) {
			struct dm_target_versions *tv = (void *)(base + off);

			if (off % 8 || off + sizeof(*tv) > h->data_size) {
				fail("versions: record at %u out of reply", off);
				return;
			}
			if (!terminated(tv->name, end)) {
				fail("versions: name not terminated");
				return;
			}
			if (!tv->next)
				return;
			off += tv->next;
		}
		fail("versions: chain does not end");
		break;
	case DM_TABLE_STATUS_CMD:
	case DM_DEV_WAIT_CMD:
		off = h->data_start;
		for (i = 0; i < h->target_count; i++) {
			struct dm_target_spec *sp = (void *)(base + off);

			if (off % 8 || off + sizeof(*sp) > h->data_size) {
				/* BUFFER_FULL replies may stop early */
				if (!(h->flags & DM_BUFFER_FULL_FLAG))
					fail("status: spec %u at %u out of reply", i, off);
				return;
			}
			if (!terminated(sp->target_type, sp->target_type +
					DM_MAX_TYPE_NAME)) {
				fail("status: target type not terminated");
				return;
			}
			if (!terminated((char *)(sp + 1), end) &&
			    !(h->flags & DM_BUFFER_FULL_FLAG)) {
				fail("status: params of spec %u not terminated", i);
				return;
			}
			/* output `next` counts from the first spec */
			off = h->data_start + sp->next;
		}
		break;
	case DM_TABLE_DEPS_CMD: {
		struct dm_target_deps *d = (void *)(base + h->data_start);

		if (h->data_start + sizeof(*d) > h->data_size ||
		    h->data_start + sizeof(*d) + (uint64_t)d->count * 8 > h->data_size)
			fail("deps: %u devices do not fit the reply", d->count);
		break;
	}
	}
}

/* ------------------------------------------------------------ device ops */

static int dev_status(const char *name, struct dm_ioctl *out)
{
	struct dm_ioctl *h = buffer(HDR);
	int r;

	hdr_init(h, HDR, name);
	r = xioctl(DM_DEV_STATUS, h);
	if (!r && out)
		*out = *h;
	return r;
}

static int simple(unsigned long cmd, const char *name, uint32_t flags)
{
	struct dm_ioctl *h = buffer(HDR);

	hdr_init(h, HDR, name);
	h->flags = flags;
	return xioctl(cmd, h);
}

/* Removal may race with udev probing the new device: retry for a while. */
static int remove_dev(const char *name)
{
	int r, i;

	for (i = 0; i < 200; i++) {
		r = simple(DM_DEV_REMOVE, name, 0);
		if (r != EBUSY)
			return r;
		usleep(50000);
	}
	return r;
}

/* Build a TABLE_LOAD buffer from NR targets, in the canonical layout. */
static struct dm_ioctl *table_buffer(const char *name, struct target *t,
				     int nr, size_t *sizep)
{
	size_t size = HDR, off;
	struct dm_ioctl *h;
	int i;

	for (i = 0; i < nr; i++)
		size += sizeof(struct dm_target_spec) +
			((strlen(t[i].params) + 1 + 7) & ~(size_t)7);
	h = buffer(size);
	hdr_init(h, size, name);
	h->target_count = nr;
	off = HDR;
	for (i = 0; i < nr; i++) {
		struct dm_target_spec *sp = (void *)((char *)h + off);
		size_t len = sizeof(*sp) +
			((strlen(t[i].params) + 1 + 7) & ~(size_t)7);

		sp->sector_start = t[i].start;
		sp->length = t[i].len;
		snprintf(sp->target_type, sizeof(sp->target_type), "%s", t[i].type);
		strcpy((char *)(sp + 1), t[i].params);
		sp->next = len;
		off += len;
	}
	*sizep = size;
	return h;
}

/*
 * A random table that is valid by construction: contiguous from sector 0,
 * every linear/striped area inside its device.
 */
static int random_table(struct target *t)
{
	int nr = 1 + rn(MAX_TGT), i;
	uint64_t start = 0;

	for (i = 0; i < nr; i++) {
		unsigned int kind = rn(4);
		struct blockdev *b = &bdevs[rn(nr_bdevs)];

		t[i].start = start;
		t[i].params[0] = 0;
		if (kind == 0) {
			uint64_t off = rn(b->sectors / 2);

			strcpy(t[i].type, "linear");
			t[i].len = 1 + rnd() % (b->sectors - off);
			snprintf(t[i].params, PARAMS_LEN, "%u:%u %" PRIu64,
				 b->major, b->minor, off);
		} else if (kind == 1) {
			unsigned int stripes = 1 + rn(nr_bdevs);
			uint64_t chunk = 8ULL << rn(6);	/* 4 KiB .. 128 KiB */
			uint64_t per = chunk * (1 + rn(4));
			int n, j;

			strcpy(t[i].type, "striped");
			n = snprintf(t[i].params, PARAMS_LEN, "%u %" PRIu64,
				     stripes, chunk);
			for (j = 0; j < (int)stripes; j++) {
				struct blockdev *s = &bdevs[j];
				uint64_t room = s->sectors > per ? s->sectors - per : 0;
				uint64_t off = room ? (rnd() % (room / 8 + 1)) * 8 : 0;

				n += snprintf(t[i].params + n, PARAMS_LEN - n,
					      " %u:%u %" PRIu64, s->major, s->minor, off);
			}
			t[i].len = per * stripes;
		} else {
			strcpy(t[i].type, kind == 2 ? "zero" : "error");
			t[i].len = 1 + rnd() % (chance(10) ? (1ULL << 40) : 65536);
		}
		start += t[i].len;
	}
	return nr;
}

static int read_table(const char *name, uint32_t flags, struct dm_ioctl **out)
{
	size_t size = 16384;
	struct dm_ioctl *h = buffer(size);
	int r;

	hdr_init(h, size, name);
	h->flags = flags;
	r = xioctl(DM_TABLE_STATUS, h);
	if (!r)
		check_reply(DM_TABLE_STATUS_CMD, h, size);
	*out = h;
	return r;
}

/* The table read back must be the one loaded, target by target. */
static void compare_table(const char *what, struct dm_ioctl *h,
			  struct target *t, int nr)
{
	uint32_t off = h->data_start;
	int i;

	if ((int)h->target_count != nr) {
		fail("%s: %u targets, loaded %d", what, h->target_count, nr);
		return;
	}
	if (h->flags & DM_BUFFER_FULL_FLAG) {
		fail("%s: buffer full on a 16 KiB buffer", what);
		return;
	}
	for (i = 0; i < nr; i++) {
		struct dm_target_spec *sp = (void *)((char *)h + off);

		if (sp->sector_start != t[i].start || sp->length != t[i].len ||
		    strcmp(sp->target_type, t[i].type) ||
		    strcmp((char *)(sp + 1), t[i].params)) {
			fail("%s: target %d is '%" PRIu64 " %" PRIu64 " %s %s', loaded '%"
			     PRIu64 " %" PRIu64 " %s %s'", what, i, (uint64_t)sp->sector_start,
			     (uint64_t)sp->length, sp->target_type, (char *)(sp + 1),
			     t[i].start, t[i].len, t[i].type, t[i].params);
			return;
		}
		off = h->data_start + sp->next;
	}
}

/* create -> load -> check -> resume -> check -> (reload) -> remove */
static void valid_sequence(void)
{
	struct target t[MAX_TGT];
	struct dm_ioctl st, *h;
	char name[DM_NAME_LEN];
	size_t size;
	int nr, r;

	nr_seq++;
	snprintf(name, sizeof(name), "%sv%lu", prefix, nr_seq);

	h = buffer(HDR);
	hdr_init(h, HDR, name);
	if (chance(50))
		snprintf(h->uuid, sizeof(h->uuid), "%s-uuid-%lu", prefix, nr_seq);
	r = xioctl(DM_DEV_CREATE, h);
	if (r) {
		fail("create %s: %s", name, strerror(r));
		return;
	}
	if (h->flags & (DM_ACTIVE_PRESENT_FLAG | DM_INACTIVE_PRESENT_FLAG))
		fail("create %s: fresh device reports tables (flags %#x)", name,
		     h->flags);

	nr = random_table(t);
	h = table_buffer(name, t, nr, &size);
	r = xioctl(DM_TABLE_LOAD, h);
	if (r) {
		fail("load %s (%d targets, first %s %s): %s", name, nr, t[0].type,
		     t[0].params, strerror(r));
		goto out;
	}
	if (!(h->flags & DM_INACTIVE_PRESENT_FLAG))
		fail("load %s: no inactive table reported", name);

	r = read_table(name, DM_STATUS_TABLE_FLAG | DM_QUERY_INACTIVE_TABLE_FLAG, &h);
	if (r)
		fail("inactive table of %s: %s", name, strerror(r));
	else
		compare_table("inactive table", h, t, nr);

	r = simple(DM_DEV_SUSPEND, name, 0);	/* resume */
	if (r) {
		fail("resume %s: %s", name, strerror(r));
		goto out;
	}
	r = dev_status(name, &st);
	if (r)
		fail("status of %s: %s", name, strerror(r));
	else if (!(st.flags & DM_ACTIVE_PRESENT_FLAG) ||
		 (st.flags & (DM_INACTIVE_PRESENT_FLAG | DM_SUSPEND_FLAG)) ||
		 (int)st.target_count != nr)
		fail("%s after resume: flags %#x targets %u (want %d)", name,
		     st.flags, st.target_count, nr);

	r = read_table(name, DM_STATUS_TABLE_FLAG, &h);
	if (r)
		fail("live table of %s: %s", name, strerror(r));
	else
		compare_table("live table", h, t, nr);

	/* plain status must parse too */
	r = read_table(name, 0, &h);
	if (r)
		fail("status of %s: %s", name, strerror(r));
	else if ((int)h->target_count != nr)
		fail("status of %s: %u targets, want %d", name, h->target_count, nr);

	if (chance(30)) {
		/* suspend and resume again, live table unchanged */
		r = simple(DM_DEV_SUSPEND, name, DM_SUSPEND_FLAG |
			   (chance(50) ? DM_NOFLUSH_FLAG : 0));
		if (r)
			fail("suspend %s: %s", name, strerror(r));
		r = dev_status(name, &st);
		if (!r && !(st.flags & DM_SUSPEND_FLAG))
			fail("%s not suspended after suspend", name);
		r = simple(DM_DEV_SUSPEND, name, 0);
		if (r)
			fail("second resume %s: %s", name, strerror(r));
	}
out:
	r = remove_dev(name);
	if (r)
		fail("remove %s: %s", name, strerror(r));
	r = dev_status(name, NULL);
	if (r != ENXIO)
		fail("status of removed %s: %s", name, r ? strerror(r) : "success");
}

/* ------------------------------------------------------------ malformed */

static const char *const junk_numbers[] = {
	"0", "-1", "-9223372036854775808", "18446744073709551615",
	"18446744073709551616", "99999999999999999999999", "0x10", "1e3", "",
	"4294967296", "2147483648", " ", "8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8",
};

static const char *const junk_types[] = {
	"linear", "striped", "zero", "error", "", "linear ", "LINEAR",
	"striped\x01", "no-such-target", "aaaaaaaaaaaaaaa",
};

static const char *const messages[] = {
	"", "@stats_list", "@stats_create - /1", "@stats_create - /0",
	"@stats_create 0+18446744073709551615 /1", "@stats_print 0",
	"@stats_delete 0", "@stats_delete -1", "@stats_clear 99999999999",
	"@stats_set_aux 0 x", "@cancel_deferred_remove", "@stats_create - /-1",
	"bogus message", "@stats_print_clear 0 0 18446744073709551615",
};

static void random_bytes(void *p, size_t n)
{
	unsigned char *c = p;

	while (n--)
		*c++ = rnd();
}

/* A name for a malformed call: ours, an existing one of ours, or junk. */
static void pick_name(struct dm_ioctl *h, const char *live)
{
	switch (rn(6)) {
	case 0:
	case 1:
		if (live) {
			snprintf(h->name, sizeof(h->name), "%s", live);
			break;
		}
		/* fall through */
	case 2:
		snprintf(h->name, sizeof(h->name), "%sm%u", prefix, rn(4));
		break;
	case 3:
		memset(h->name, 'a' + rn(26), sizeof(h->name));	/* unterminated */
		memcpy(h->name, prefix, strlen(prefix));
		break;
	case 4:
		h->name[0] = 0;
		break;
	default:
		snprintf(h->name, sizeof(h->name), "%s/%s", prefix,
			 chance(50) ? ".." : "x");
		break;
	}
	if (chance(5))
		random_bytes(h->name, sizeof(h->name));
	if (chance(15))
		snprintf(h->uuid, sizeof(h->uuid), "%su%u", prefix, rn(3));
	if (chance(5))
		memset(h->uuid, 'u', sizeof(h->uuid));
}

/* A TABLE_LOAD payload with random defects in the spec chain. */
static size_t bad_table(struct dm_ioctl *h, size_t room)
{
	int nr = 1 + rn(MAX_TGT), i;
	size_t off = HDR;
	uint64_t start = 0;

	for (i = 0; i < nr && off + sizeof(struct dm_target_spec) + 64 < room; i++) {
		struct dm_target_spec *sp = (void *)((char *)h + off);
		char *params = (char *)(sp + 1);
		struct blockdev *b = &bdevs[rn(nr_bdevs)];
		size_t len;

		sp->sector_start = chance(80) ? start : rnd();
		sp->length = chance(60) ? 1 + rn(4096) :
			(chance(50) ? rnd() : (uint64_t)-1 - rn(8));
		snprintf(sp->target_type, DM_MAX_TYPE_NAME, "%s",
			 PICK(junk_types));
		if (chance(5))
			memset(sp->target_type, 'z', DM_MAX_TYPE_NAME);
		switch (rn(5)) {
		case 0:
			snprintf(params, 64, "%u:%u %s", b->major, b->minor,
				 PICK(junk_numbers));
			break;
		case 1:
			snprintf(params, 64, "%s %s %u:%u 0",
				 PICK(junk_numbers),
				 PICK(junk_numbers),
				 b->major, b->minor);
			break;
		case 2:
			snprintf(params, 64, "%u:%u %" PRIu64, b->major, b->minor,
				 b->sectors - rn(16));
			break;
		case 3:
			snprintf(params, 64, "/dev/nonexistent%u %u", rn(9), rn(9));
			break;
		default:
			params[0] = 0;
			break;
		}
		len = sizeof(*sp) + ((strlen(params) + 1 + 7) & ~(size_t)7);
		switch (rn(12)) {
		case 0:
			sp->next = 0;
			break;
		case 1:
			sp->next = rnd();
			break;
		case 2:
			sp->next = len + 1 + rn(7);	/* misaligned */
			break;
		case 3:
			sp->next = (uint32_t)-(int32_t)(off - rn(off));	/* backwards */
			break;
		default:
			sp->next = len;
			break;
		}
		start += sp->length;
		off += len;
	}
	h->target_count = chance(80) ? (uint32_t)i : rnd() % 1000000;
	if (chance(10)) {
		/* last string runs to the end of the buffer without a NUL */
		memset((char *)h + off - 8, 'x', 8);
	}
	return off;
}

/* Commands that read only the header, whatever data_size says. */
static int no_params(unsigned int nr)
{
	return nr == DM_VERSION_CMD || nr == DM_REMOVE_ALL_CMD ||
	       nr == DM_DEV_CREATE_CMD || nr == DM_DEV_REMOVE_CMD ||
	       nr == DM_DEV_SUSPEND_CMD || nr == DM_DEV_STATUS_CMD ||
	       nr == DM_TABLE_CLEAR_CMD || nr == DM_DEV_ARM_POLL_CMD;
}

/* One malformed call against a device of ours (LIVE may be NULL). */
static void malformed(const char *live)
{
	static const unsigned int cmds[] = {
		DM_VERSION_CMD, DM_LIST_DEVICES_CMD, DM_DEV_CREATE_CMD,
		DM_DEV_REMOVE_CMD, DM_DEV_RENAME_CMD, DM_DEV_SUSPEND_CMD,
		DM_DEV_STATUS_CMD, DM_DEV_WAIT_CMD, DM_TABLE_LOAD_CMD,
		DM_TABLE_CLEAR_CMD, DM_TABLE_DEPS_CMD, DM_TABLE_STATUS_CMD,
		DM_LIST_VERSIONS_CMD, DM_TARGET_MSG_CMD, DM_DEV_SET_GEOMETRY_CMD,
		DM_DEV_ARM_POLL_CMD, DM_GET_TARGET_VERSION_CMD,
	};
	size_t room = 512 + rn(16384), size;
	unsigned int nr = PICK(cmds);
	unsigned long cmd = cmd_of(nr);
	int expect_fail = 0, r;
	struct dm_ioctl *h = buffer(room);

	hdr_init(h, room, NULL);
	pick_name(h, live);
	size = HDR;

	switch (nr) {
	case DM_TABLE_LOAD_CMD:
		size = bad_table(h, room);
		break;
	case DM_DEV_RENAME_CMD:
		/* the new name (or uuid) stays ours so cleanup finds it */
		size = HDR + snprintf((char *)h + HDR, room - HDR, "%sr%u", prefix, rn(4)) + 1;
		if (chance(20))
			h->flags |= DM_UUID_FLAG;
		if (chance(10))
			size--;		/* unterminated */
		break;
	case DM_TARGET_MSG_CMD: {
		struct dm_target_msg *m = (void *)((char *)h + HDR);

		m->sector = chance(70) ? rn(64) : rnd();
		size = HDR + 8 + snprintf(m->message, room - HDR - 8, "%s",
				PICK(messages)) + 1;
		break;
	}
	case DM_DEV_SET_GEOMETRY_CMD:
		size = HDR + snprintf((char *)h + HDR, room - HDR, "%s %s %s %s",
				      PICK(junk_numbers), PICK(junk_numbers),
				      PICK(junk_numbers), PICK(junk_numbers)) + 1;
		break;
	case DM_GET_TARGET_VERSION_CMD:
		size = HDR + snprintf((char *)h + HDR, room - HDR, "%s",
				      PICK(junk_types)) + 1;
		break;
	default:
		size = chance(50) ? HDR : room;
		break;
	}
	h->data_size = size;

	/* Header damage. */
	if (chance(40))
		h->flags = rnd() & ~(uint32_t)0;
	if (chance(10))
		h->flags |= DM_SECURE_DATA_FLAG;
	if (chance(10))
		h->data_start = chance(50) ? rn(HDR_MIN + 8) : rnd();
	if (chance(10))
		h->target_count = rnd();
	if (chance(10))
		h->dev = chance(50) ? rnd() : makedev(bdevs[0].major, rn(8));
	if (chance(10))
		h->open_count = rnd();
	if (chance(8)) {
		/* sizes that must be refused */
		h->data_size = rn(HDR_MIN);
		expect_fail = nr != DM_VERSION_CMD;
	} else if (chance(5)) {
		/* beyond the buffer: the copy runs into the guard page */
		h->data_size = room + GUARD_OVERRUN;
		expect_fail = !no_params(nr);
	} else if (chance(5)) {
		h->data_size = size + rn(64);
	}
	if (chance(5)) {
		h->version[0] = chance(50) ? 3 : 5 + rn(1000);
		expect_fail = 1;
	} else if (chance(5)) {
		h->version[1] = 48 + rn(1000);
		expect_fail = 1;
	}
	if (nr == DM_DEV_WAIT_CMD)
		h->event_nr = 0x80000000u | rnd();	/* never block */
	else if (chance(10))
		h->event_nr = rnd();
	/* DM_REMOVE_ALL would take other people's devices: never. */
	if (nr == DM_REMOVE_ALL_CMD)
		return;

	r = xioctl(cmd, h);
	note("cmd %u size %u flags %#x name '%.20s' -> %s", nr, h->data_size,
	     h->flags, h->name, r ? strerror(r) : "ok");
	if (expect_fail && !r)
		fail("cmd %u with bad header (version %u.%u, data_size %u) succeeded",
		     nr, h->version[0], h->version[1], h->data_size);
	if (!r)
		check_reply(nr, h, room);
}

/* Unknown commands and foreign ioctl types. */
static void unknown_command(void)
{
	struct dm_ioctl *h = buffer(HDR);
	unsigned int nr = 18 + rn(238);
	int r;

	hdr_init(h, HDR, NULL);
	if (chance(50)) {
		r = xioctl(cmd_of(nr), h);
		if (r != ENOTTY)
			fail("unknown command %u: %s, want ENOTTY", nr,
			     r ? strerror(r) : "success");
	} else {
		r = xioctl(_IOWR(rn(256) == DM_IOCTL ? 0 : rn(256), rn(32),
				 struct dm_ioctl), h);
		if (!r)
			fail("foreign ioctl succeeded on the control device");
	}
}

/* ------------------------------------------------------------ bookkeeping */

#define MAX_NAMES 4096

/* Names of all dm devices, from LIST_DEVICES. Returns count or -1. */
static int list_devices(char names[][DM_NAME_LEN], int max)
{
	size_t size = 65536;
	struct dm_ioctl *h = buffer(size);
	uint32_t off;
	int n = 0, r;

	hdr_init(h, size, NULL);
	r = xioctl(DM_LIST_DEVICES, h);
	if (r) {
		fail("list devices: %s", strerror(r));
		return -1;
	}
	check_reply(DM_LIST_DEVICES_CMD, h, size);
	if (h->flags & DM_BUFFER_FULL_FLAG) {
		fail("list devices: buffer full at 64 KiB");
		return -1;
	}
	if (h->data_size <= HDR)
		return 0;
	off = h->data_start;
	for (;;) {
		struct dm_name_list *nl = (void *)((char *)h + off);

		if (n < max)
			snprintf(names[n++], DM_NAME_LEN, "%s", nl->name);
		if (!nl->next)
			break;
		off += nl->next;
	}
	return n;
}

static char initial[MAX_NAMES][DM_NAME_LEN];
static int nr_initial;

static int was_there(const char *name)
{
	int i;

	for (i = 0; i < nr_initial; i++)
		if (!strcmp(initial[i], name))
			return 1;
	return 0;
}

/* Devices we made (any name not present at the start). */
static int ours(char names[][DM_NAME_LEN], int max)
{
	static char all[MAX_NAMES][DM_NAME_LEN];
	int n = list_devices(all, MAX_NAMES), i, k = 0;

	for (i = 0; i < n; i++)
		if (!was_there(all[i]) && k < max)
			memcpy(names[k++], all[i], DM_NAME_LEN);
	return k;
}

/*
 * After a malformed call: nothing of ours may stay suspended (udev would hang
 * on it). Resume; if the inactive table refuses, drop it and resume.
 */
static void repair(void)
{
	static char names[64][DM_NAME_LEN];
	struct dm_ioctl st;
	int n = ours(names, 64), i, r;

	for (i = 0; i < n; i++) {
		if (dev_status(names[i], &st))
			continue;
		/*
		 * Suspended without a live table: nothing can do I/O on it,
		 * and resume refuses (EINVAL) until a table is loaded.
		 */
		if (!(st.flags & DM_SUSPEND_FLAG) ||
		    !(st.flags & DM_ACTIVE_PRESENT_FLAG))
			continue;
		if (simple(DM_DEV_SUSPEND, names[i], 0)) {
			/* a bad inactive table is dropped by the failed swap */
			simple(DM_TABLE_CLEAR, names[i], 0);
			r = simple(DM_DEV_SUSPEND, names[i], 0);
			if (r)
				fail("cannot resume %s (flags %#x): %s", names[i],
				     st.flags, strerror(r));
		}
	}
}

static void remove_ours(int report)
{
	static char names[MAX_NAMES][DM_NAME_LEN];
	int n, i, r;

	repair();
	n = ours(names, MAX_NAMES);
	for (i = 0; i < n; i++) {
		r = remove_dev(names[i]);
		if (r && r != ENXIO)
			fail("cleanup: remove %s: %s", names[i], strerror(r));
		else if (report)
			note("cleanup: removed %s", names[i]);
	}
}

static long module_refs(void)
{
	long refs = -1, holders = 0;
	FILE *f = fopen("/sys/module/dm_mod/refcnt", "r");
	DIR *d;

	if (f) {
		if (fscanf(f, "%ld", &refs) != 1)
			refs = -1;
		fclose(f);
	}
	/* Other dm modules (targets loaded on demand) hold one each. */
	d = opendir("/sys/module/dm_mod/holders");
	if (d) {
		struct dirent *e;

		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				holders++;
		closedir(d);
	}
	return refs < 0 ? -1 : refs - holders;
}

static long refs_base = -1;

/*
 * udev may still have a just-removed device open for a moment, which holds
 * dm-mod too: give the count a few seconds to come back to WANT.
 */
static long settled_refs(long want)
{
	long refs = module_refs();
	int i;

	for (i = 0; i < 100 && refs != want; i++) {
		usleep(50000);
		refs = module_refs();
	}
	return refs;
}

/* With none of our devices left, dm-mod must be back at its base count. */
static void check_refs_after_cleanup(void)
{
	static char names[4][DM_NAME_LEN];
	long refs;

	remove_ours(0);
	if (ours(names, 4))
		return;
	refs = settled_refs(refs_base);
	if (refs_base >= 0 && refs != refs_base) {
		fail("leak: dm_mod references %ld, %ld expected with no devices",
		     refs, refs_base);
		dump_history();
		refs_base = refs;	/* report each leak once */
	}
}

static int holders_of(struct blockdev *b)
{
	char path[256];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", b->major,
		 b->minor);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int setup_bdev(struct blockdev *b, const char *path)
{
	struct stat st;
	uint64_t bytes;
	int fd;

	b->path = path;
	if (stat(path, &st) || !S_ISBLK(st.st_mode)) {
		fprintf(stderr, "%s: not a block device\n", path);
		return -1;
	}
	b->major = major(st.st_rdev);
	b->minor = minor(st.st_rdev);
	fd = open(path, O_RDONLY);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &bytes)) {
		perror(path);
		return -1;
	}
	close(fd);
	b->sectors = bytes >> 9;
	if (b->sectors < 4096) {
		fprintf(stderr, "%s: too small (need 2 MiB)\n", path);
		return -1;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long seed = time(NULL);
	double seconds = 20, end;
	long refs0, refs1;
	unsigned char *map;
	int opt, i;

	while ((opt = getopt(argc, argv, "s:t:v")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind >= argc || argc - optind > MAX_DEVS)
		goto usage;
	for (i = optind; i < argc; i++)
		if (setup_bdev(&bdevs[nr_bdevs++], argv[i]))
			return 2;

	rng_state = seed * 2654435761ULL + 1;
	snprintf(prefix, sizeof(prefix), "fuzz%d-", (int)getpid());
	printf("dm-ioctl-fuzz: seed %llu, %.0f s, %d devices, prefix %s\n", seed,
	       seconds, nr_bdevs, prefix);
	fflush(stdout);

	map = mmap(NULL, ARENA + 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map + ARENA, 4096, PROT_NONE)) {
		perror("mmap");
		return 2;
	}
	arena_end = map + ARENA;

	ctl = open("/dev/mapper/control", O_RDWR);
	if (ctl < 0) {
		perror("/dev/mapper/control");
		return 2;
	}
	nr_initial = list_devices(initial, MAX_NAMES);
	if (nr_initial < 0)
		return 2;
	refs0 = module_refs();
	refs_base = refs0;

	end = now() + seconds;
	while (now() < end) {
		unsigned int what = rn(100);

		if (what < 30) {
			valid_sequence();
		} else if (what < 90) {
			char live[DM_NAME_LEN];

			/* a device of ours to aim at, in some state */
			snprintf(live, sizeof(live), "%sm%u", prefix, rn(4));
			if (chance(30)) {
				simple(DM_DEV_CREATE, live, 0);
				if (chance(50)) {
					struct target t[MAX_TGT];
					size_t sz;
					int nr = random_table(t);

					if (!xioctl(DM_TABLE_LOAD,
						    table_buffer(live, t, nr, &sz)) &&
					    chance(50))
						simple(DM_DEV_SUSPEND, live, 0);
				}
			}
			for (i = 0; i < 8; i++)
				malformed(chance(70) ? live : NULL);
			repair();
			if (chance(10))
				check_refs_after_cleanup();
		} else {
			unknown_command();
		}
		if (failures > 20)
			break;
	}

	remove_ours(1);
	{
		static char left[MAX_NAMES][DM_NAME_LEN];
		int n = ours(left, MAX_NAMES);

		for (i = 0; i < n; i++)
			fail("leak: device %s still exists", left[i]);
	}
	for (i = 0; i < nr_bdevs; i++) {
		int h = holders_of(&bdevs[i]), tries;

		/* deferred removals finish once udev lets go */
		for (tries = 0; h && tries < 100; tries++) {
			usleep(50000);
			h = holders_of(&bdevs[i]);
		}
		if (h)
			fail("leak: %s still has %d holders", bdevs[i].path, h);
	}
	refs1 = settled_refs(refs0);	/* our open control device holds one */
	close(ctl);
	if (refs0 >= 0 && refs1 != refs0)
		fail("leak: dm_mod references %ld before, %ld after", refs0, refs1);

	printf("dm-ioctl-fuzz: %lu calls (%lu ok, %lu errors), %lu valid sequences, %u failures\n",
	       nr_calls, nr_ok, nr_err, nr_seq, failures);
	return failures ? 1 : 0;

usage:
	fprintf(stderr, "usage: %s [-s SEED] [-t SECONDS] [-v] BLOCKDEV...\n", argv[0]);
	return 2;
}
