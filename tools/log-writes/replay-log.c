// SPDX-License-Identifier: GPL-2.0-only
/*
 * replay-log: read a dm-log-writes log, list it, and replay it onto a device.
 *
 *   replay-log --log LOG --list
 *   replay-log --log LOG --replay DEV [--start-mark M | --start-entry N]
 *              [--end-mark M | --limit N] [--check fua|flush --fsck CMD]
 *              [--zero-discards] [-v]
 *
 * Entries are numbered from 0 in log order. A replay applies entries from
 * the start (default 0; --start-mark starts after the named mark) through
 * the end mark (inclusive) or for --limit entries. With --check, CMD runs
 * through the shell after every FUA (or FLUSH) entry is applied; the replay
 * stops with status 1 at the first failing check and names the entry.
 * Discards are replayed with BLKDISCARD, or as written zeroes with
 * --zero-discards (or when the device refuses discards).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <endian.h>
#include <stdarg.h>

#define LW_MAGIC	0x6a736677736872ULL
#define LW_FLUSH	0x01
#define LW_FUA		0x02
#define LW_DISCARD	0x04
#define LW_MARK		0x08
#define LW_METADATA	0x10

struct entry {
	uint64_t sector;	/* in log blocks */
	uint64_t nr;		/* in log blocks */
	uint64_t flags;
	uint64_t data_len;
	char *mark;		/* MARK entries only */
	off_t data_off;		/* where the payload sits in the log */
};

static struct {
	const char *log, *dev, *start_mark, *end_mark, *fsck;
	long long start_entry, limit;
	uint64_t check_flags;
	int list, verbose, zero_discards;
} opt = { .start_entry = -1, .limit = -1 };

static uint32_t blksz;
static uint64_t nr_entries;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("replay-log: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void read_exact(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read of log at %lld failed: %s", (long long)(off + done),
			    n ? strerror(errno) : "end of device");
		done += n;
	}
}

static void write_exact(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write to device at %lld failed: %s", (long long)(off + done),
			    strerror(errno));
		done += n;
	}
}

static uint64_t le64_at(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void read_super(int fd)
{
	unsigned char sb[32];
	uint32_t s;

	read_exact(fd, sb, sizeof(sb), 0);
	if (le64_at(sb) != LW_MAGIC)
		die("%s: bad magic, not a log-writes log", opt.log);
	if (le64_at(sb + 8) != 1)
		die("%s: unsupported version %" PRIu64, opt.log, le64_at(sb + 8));
	nr_entries = le64_at(sb + 16);
	memcpy(&s, sb + 24, 4);
	blksz = le32toh(s);
	if (blksz < 512 || blksz > 65536 || (blksz & (blksz - 1)))
		die("%s: bad sector size %u", opt.log, blksz);
}

/* Read the entry header at *pos and advance *pos past it and its data. */
static void read_entry(int fd, off_t *pos, struct entry *e, uint64_t idx)
{
	unsigned char *hdr = malloc(blksz);

	if (!hdr)
		die("out of memory");
	read_exact(fd, hdr, blksz, *pos);
	e->sector = le64_at(hdr);
	e->nr = le64_at(hdr + 8);
	e->flags = le64_at(hdr + 16);
	e->data_len = le64_at(hdr + 24);
	e->mark = NULL;
	if (!e->flags && !e->nr)
		die("entry %" PRIu64 " at %lld is empty: corrupt log", idx, (long long)*pos);
	if (e->flags & LW_MARK) {
		if (e->data_len > blksz - 32)
			die("entry %" PRIu64 ": mark too long", idx);
		e->mark = strndup((char *)hdr + 32, e->data_len);
	} else if (hdr[32]) {
		die("entry %" PRIu64 " at %lld: header padding not zero", idx, (long long)*pos);
	}
	free(hdr);
	*pos += blksz;
	e->data_off = *pos;
	if (!(e->flags & LW_DISCARD))
		*pos += (off_t)e->nr * blksz;
}

static void print_entry(uint64_t idx, const struct entry *e)
{
	printf("%" PRIu64 " sector %" PRIu64 " len %" PRIu64 " flags 0x%" PRIx64 "%s%s%s%s%s",
	       idx, e->sector, e->nr, e->flags,
	       e->flags & LW_FLUSH ? " FLUSH" : "", e->flags & LW_FUA ? " FUA" : "",
	       e->flags & LW_DISCARD ? " DISCARD" : "",
	       e->flags & LW_METADATA ? " META" : "", e->flags & LW_MARK ? " MARK" : "");
	if (e->mark)
		printf(" \"%s\"", e->mark);
	putchar('\n');
}

static void apply(int logfd, int devfd, const struct entry *e)
{
	uint64_t off = e->sector * blksz, len = e->nr * blksz, done = 0;
	size_t bufsz = 1 << 20;
	char *buf;

	if (!len)
		return;
	buf = calloc(1, bufsz);
	if (!buf)
		die("out of memory");
	if (e->flags & LW_DISCARD) {
		uint64_t range[2] = { off, len };

		if (opt.zero_discards || ioctl(devfd, BLKDISCARD, range)) {
			while (done < len) {
				size_t n = len - done < bufsz ? len - done : bufsz;

				write_exact(devfd, buf, n, off + done);
				done += n;
			}
		}
	} else {
		while (done < len) {
			size_t n = len - done < bufsz ? len - done : bufsz;

			read_exact(logfd, buf, n, e->data_off + done);
			write_exact(devfd, buf, n, off + done);
			done += n;
		}
	}
	free(buf);
}

static int run_check(uint64_t idx)
{
	int r;

	fflush(stdout);
	r = system(opt.fsck);
	if (r) {
		fprintf(stderr, "replay-log: check failed after entry %" PRIu64 " (status %d)\n",
			idx, WIFEXITED(r) ? WEXITSTATUS(r) : -1);
		return 1;
	}
	if (opt.verbose)
		fprintf(stderr, "check passed after entry %" PRIu64 "\n", idx);
	return 0;
}

static void usage(void)
{
	fputs("usage: replay-log --log LOG (--list | --replay DEV)\n"
	      "  [--start-mark M | --start-entry N] [--end-mark M | --limit N]\n"
	      "  [--check fua|flush --fsck CMD] [--zero-discards] [-v]\n"
	      "  --num-entries: print the entry count and exit\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "log", 1, NULL, 'l' }, { "replay", 1, NULL, 'r' },
		{ "list", 0, NULL, 'L' }, { "start-mark", 1, NULL, 's' },
		{ "start-entry", 1, NULL, 'S' }, { "end-mark", 1, NULL, 'e' },
		{ "limit", 1, NULL, 'n' }, { "check", 1, NULL, 'c' },
		{ "fsck", 1, NULL, 'f' }, { "zero-discards", 0, NULL, 'z' },
		{ "num-entries", 0, NULL, 'N' }, { "verbose", 0, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	int c, logfd, devfd = -1, started, count_only = 0, found_end = 0;
	uint64_t i, applied = 0;
	off_t pos;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			opt.log = optarg;
			break;
		case 'r':
			opt.dev = optarg;
			break;
		case 'L':
			opt.list = 1;
			break;
		case 's':
			opt.start_mark = optarg;
			break;
		case 'S':
			opt.start_entry = atoll(optarg);
			break;
		case 'e':
			opt.end_mark = optarg;
			break;
		case 'n':
			opt.limit = atoll(optarg);
			break;
		case 'c':
			if (!strcmp(optarg, "fua"))
				opt.check_flags = LW_FUA;
			else if (!strcmp(optarg, "flush"))
				opt.check_flags = LW_FLUSH;
			else
				usage();
			break;
		case 'f':
			opt.fsck = optarg;
			break;
		case 'z':
			opt.zero_discards = 1;
			break;
		case 'N':
			count_only = 1;
			break;
		case 'v':
			opt.verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (!opt.log || (!opt.list && !opt.dev && !count_only) ||
	    (opt.check_flags && !opt.fsck) || (opt.start_mark && opt.start_entry >= 0))
		usage();

	logfd = open(opt.log, O_RDONLY);
	if (logfd < 0)
		die("%s: %s", opt.log, strerror(errno));
	read_super(logfd);
	if (count_only) {
		printf("%" PRIu64 "\n", nr_entries);
		return 0;
	}
	if (opt.dev) {
		devfd = open(opt.dev, O_WRONLY);
		if (devfd < 0)
			die("%s: %s", opt.dev, strerror(errno));
	}

	started = !opt.start_mark && opt.start_entry <= 0;
	pos = blksz;
	for (i = 0; i < nr_entries; i++) {
		struct entry e;

		read_entry(logfd, &pos, &e, i);
		if (opt.list)
			print_entry(i, &e);
		if (!started) {
			if (opt.start_mark && e.mark && !strcmp(e.mark, opt.start_mark))
				started = 1;
			else if (opt.start_entry >= 0 && i + 1 == (uint64_t)opt.start_entry)
				started = 1;
			free(e.mark);
			continue;
		}
		if (opt.limit >= 0 && applied == (uint64_t)opt.limit) {
			free(e.mark);
			break;
		}
		if (devfd >= 0)
			apply(logfd, devfd, &e);
		applied++;
		if (opt.verbose)
			print_entry(i, &e);
		if (devfd >= 0 && (e.flags & opt.check_flags)) {
			if (fsync(devfd))
				die("fsync: %s", strerror(errno));
			if (run_check(i))
				return 1;
		}
		if (opt.end_mark && e.mark && !strcmp(e.mark, opt.end_mark)) {
			free(e.mark);
			found_end = 1;
			break;
		}
		free(e.mark);
	}
	if (devfd >= 0 && fsync(devfd))
		die("fsync: %s", strerror(errno));
	if (opt.end_mark && !found_end)
		die("mark \"%s\" not found", opt.end_mark);
	if (!started)
		die("start point not found");
	if (opt.verbose)
		fprintf(stderr, "applied %" PRIu64 " of %" PRIu64 " entries\n", applied, nr_entries);
	return 0;
}
