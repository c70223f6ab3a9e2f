# SPDX-License-Identifier: GPL-2.0-only
"""thin-pool: ordering against bios in flight, and the pool's failure modes.

In-flight ordering: the pool's data device is a delay target that is made
to hold reads for a second (after the setup, so udev's probes stay fast).  A
read of a thin block is started, then the block is
unmapped (discard) or its sharing broken, and the freed data block is handed
to another write.  The slow read must still return what the block held when
it was issued: the pool waits for bios in flight before it lets a data
block go.

Failure modes, as Debian's stock 6.1 module behaves: a pool whose metadata
space runs out switches to read-only (status `ro`, `needs_check` not set)
and a bigger metadata device brings it back; when that happens under
provisioning writes, the mapping in flight fails on the read-only metadata
and the pool ends in fail mode.  An I/O error on the metadata device fails
the pool.  A pool whose superblock has NEEDS_CHECK stays read-only until
thin_check --clear-needs-check-flag.

Devices are brd RAM disks (ram0 metadata, ram1 data), 64 KiB data blocks.
"""
import errno
import mmap
import os
import subprocess
import threading
import time

import pytest

from corehelp import Kmsg
from dmtest import (create, dmsetup, io_errno, load, pattern, read_at, remove, run,
                    status, udev_settle, write_at)
from thinhelp import after_test

BS = 128                      # data block size, sectors
BLOCK = BS * 512
PREFIX = "tm-"
POOL, DELAY, META, DATA = "tm-pool", "tm-delay", "tm-meta", "tm-data"
POOL_DEV = "/dev/mapper/" + POOL
READ_DELAY_MS = 1000


@pytest.fixture
def devs(request, brd):
    d = brd(2, 16)
    yield d
    after_test(request, d[0], PREFIX)


def msg(*words):
    return dmsetup("message", POOL, "0", " ".join(str(w) for w in words))


def delay_table(devs, blocks, read_ms):
    data = devs[1]
    return f"0 {blocks * BS} delay {data} 0 {read_ms} {data} 0 0"


def slow_pool(devs, blocks, features=""):
    """A pool of BLOCKS data blocks over a delay target (no delay yet)."""
    create(DELAY, delay_table(devs, blocks, 0))
    create(POOL, f"0 {blocks * BS} thin-pool {devs[0]} /dev/mapper/{DELAY} {BS} 0"
           + (f" {features}" if features else ""))


def slow_reads(devs, blocks, read_ms):
    dmsetup("suspend", DELAY)
    dmsetup("load", DELAY, "--table", delay_table(devs, blocks, read_ms))
    dmsetup("resume", DELAY)


def remove_all(*thins):
    udev_settle()
    for name in thins + (POOL, DELAY):
        remove(name, "--retry")


def thin(name, dev_id, blocks):
    dev = create(PREFIX + name, f"0 {blocks * BS} thin {POOL_DEV} {dev_id}")
    # udev's probe reads through the delay: let it finish first
    udev_settle()
    return dev


class SlowRead(threading.Thread):
    """read_at(dev, offset, 4096) in the background."""

    def __init__(self, dev, offset):
        super().__init__()
        self.dev, self.offset, self.data, self.error = dev, offset, None, None
        self.start()
        # the read is now held in the delay target
        time.sleep(0.3)

    def run(self):
        try:
            self.data = read_at(self.dev, self.offset, 4096)
        except OSError as e:
            self.error = e

    def result(self):
        self.join()
        assert self.error is None, self.error
        return self.data


def flush(dev):
    fd = os.open(dev, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pool_used():
    return dmsetup("status", POOL).split()[5]


@pytest.mark.parametrize("features", ["", "1 no_discard_passdown"])
def test_discard_waits_for_read_in_flight(devs, features):
    """Discarding a block with a read in flight, then reusing its data block
    for another write: the read still returns the old contents."""
    slow_pool(devs, 4, features)
    msg("create_thin", 0)
    a = thin("a", 0, 8)
    old = [pattern(f"old{i}", BLOCK) for i in range(4)]
    for i in range(4):
        write_at(a, i * BLOCK, old[i])
    assert pool_used() == "4/4"

    slow_reads(devs, 4, READ_DELAY_MS)
    reader = SlowRead(a, 0)
    run("blkdiscard", "-o", "0", "-l", str(BLOCK), a)
    flush(a)
    new = pattern("new", BLOCK)
    write_at(a, 4 * BLOCK, new)          # takes the block vblock 0 had
    used = pool_used()
    seen = reader.result()
    slow_reads(devs, 4, 0)
    got_new, got_old = read_at(a, 4 * BLOCK, BLOCK), read_at(a, 0, 4096)
    remove_all(PREFIX + "a")
    assert used == "4/4"
    assert seen == old[0][:4096]
    assert got_new == new
    assert got_old == bytes(4096)


def test_break_sharing_waits_for_read_in_flight(devs):
    """Overwriting a block shared with a snapshot while a read of it is in
    flight, then freeing the old data block (the snapshot overwrites it
    too) and reusing it: the read still returns the old contents."""
    slow_pool(devs, 4)
    msg("create_thin", 0)
    a = thin("a", 0, 8)
    old = [pattern(f"old{i}", BLOCK) for i in range(2)]
    for i in range(2):
        write_at(a, i * BLOCK, old[i])
    dmsetup("suspend", PREFIX + "a")
    msg("create_snap", 1, 0)
    dmsetup("resume", PREFIX + "a")
    b = thin("b", 1, 8)

    slow_reads(devs, 4, READ_DELAY_MS)
    reader = SlowRead(a, 0)
    a0, b0, c = (pattern(s, BLOCK) for s in ("a0", "b0", "c"))
    write_at(a, 0, a0)                   # a: vblock 0 to a new block
    write_at(b, 0, b0)                   # b too: the old block is free
    used = [pool_used()]
    write_at(a, 2 * BLOCK, c)            # takes the old block
    used.append(pool_used())
    seen = reader.result()
    slow_reads(devs, 4, 0)
    got = [read_at(a, 0, BLOCK), read_at(b, 0, BLOCK), read_at(a, 2 * BLOCK, BLOCK),
           read_at(b, BLOCK, BLOCK)]
    remove_all(PREFIX + "a", PREFIX + "b")
    assert used == ["3/4", "4/4"]
    assert seen == old[0][:4096]
    assert got == [a0, b0, c, old[1]]


# ------------------------------------------------------------ failure modes

def pool_fields():
    return status(POOL).split()[3:]


def meta_free():
    used, total = (int(x) for x in pool_fields()[1].split("/"))
    return total - used


def linear_meta(devs, sectors):
    return create(META, f"0 {sectors} linear {devs[0]} 0")


def grow_meta(devs, sectors):
    """Grow the metadata device under the suspended pool, then resume it."""
    dmsetup("suspend", POOL)
    load(META, f"0 {sectors} linear {devs[0]} 0")
    dmsetup("resume", META)
    dmsetup("resume", POOL)


def try_msg(*words):
    p = subprocess.run(["dmsetup", "message", POOL, "0"] + [str(w) for w in words],
                       capture_output=True, text=True)
    return p.returncode, p.stderr


def fill_metadata_with_thins(first_id, leave=0, limit=400):
    """create_thin until the pool refuses, or until LEAVE free blocks are
    left. Returns the next unused id and the last refusal."""
    dev_id = first_id
    while dev_id < first_id + limit:
        if leave and meta_free() <= leave:
            return dev_id, None
        rc, err = try_msg("create_thin", dev_id)
        if rc:
            return dev_id, err
        dev_id += 1
    raise AssertionError("the metadata never filled up")


def has(lines, text):
    return any(text in line for line in lines)


def test_out_of_metadata_space_read_only_then_grow(devs):
    """Thin devices fill a 64-block metadata device: the pool goes
    read-only (not needs_check) and refuses messages; growing the
    metadata device makes it writable again."""
    linear_meta(devs, 512)
    create(POOL, f"0 {256 * BS} thin-pool /dev/mapper/{META} {devs[1]} {BS} 0")
    klog = Kmsg()
    next_id, err = fill_metadata_with_thins(0)
    full = pool_fields()
    lines = klog.lines()
    grow_meta(devs, 2048)
    grown = pool_fields()
    rc, _ = try_msg("create_thin", next_id)
    after = pool_fields()
    lines += klog.lines()
    klog.close()
    remove(POOL)
    remove(META)
    assert "Operation not supported" in err
    assert full[4] == "ro" and full[7] == "-", full
    used, total = full[1].split("/")
    assert used == total == "64"
    assert has(lines, "thin: No free metadata blocks"), lines
    assert has(lines, "switching pool to read-only mode"), lines
    assert has(lines, "growing the metadata device from 64 to 256 blocks"), lines
    assert grown[4] == "rw" and grown[1].endswith("/256"), grown
    assert rc == 0 and after[4] == "rw"


@pytest.mark.xfail(reason="with the metadata pre-filled by thin devices neither stock nor ours "
                   "ends in fail mode (status '0 63/64 ...' on both); only writes alone "
                   "took stock there: the expected lines need another look")
def test_out_of_metadata_space_under_writes_fails_pool(devs):
    """Provisioning writes use up the metadata: the pool commits and goes
    read-only, the mapping in flight then fails on read-only metadata and
    the pool ends in fail mode.  The last commit is intact: a new pool
    over a bigger metadata device is writable."""
    blocks = 16384
    linear_meta(devs, 512)
    create(DATA, f"0 {blocks * BS} zero")
    table = (f"0 {blocks * BS} thin-pool /dev/mapper/{META} /dev/mapper/{DATA} {BS} 0 "
             "1 skip_block_zeroing")
    create(POOL, table)
    run("dmsetup", "message", POOL, "0", "create_thin 0")
    fill_metadata_with_thins(1, leave=3)
    a = create(PREFIX + "a", f"0 {blocks * BS} thin {POOL_DEV} 0")
    udev_settle()
    klog = Kmsg()
    mem = mmap.mmap(-1, 4096)
    mem.write(pattern("w", 4096))
    fd = os.open(a, os.O_WRONLY | os.O_DIRECT)
    failed = None
    try:
        for i in range(blocks):
            try:
                os.pwrite(fd, mem, i * BLOCK)
            except OSError as e:
                failed = (i, e.errno)
                break
    finally:
        os.close(fd)
    pool_st = status(POOL).split()[3:]
    thin_st = status(PREFIX + "a").split()[3:]
    lines = klog.lines()
    klog.close()
    remove(PREFIX + "a")
    remove(POOL)
    load(META, f"0 2048 linear {devs[0]} 0")
    dmsetup("resume", META)
    create(POOL, table)
    again = pool_fields()
    rc, _ = try_msg("create_thin", 100000)
    remove(POOL)
    remove(DATA)
    remove(META)
    assert failed and failed[1] == errno.EIO and failed[0] > 0, failed
    assert pool_st == ["Fail"] and thin_st == ["Fail"]
    assert has(lines, "thin: No free metadata blocks"), lines
    assert has(lines, "switching pool to read-only mode"), lines
    assert has(lines, "switching pool to fail mode"), lines
    assert again[4] == "rw" and again[7] == "-" and again[1].endswith("/256"), again
    assert rc == 0


def test_metadata_io_error_fails_pool(devs):
    """The metadata device starts failing I/O: the commit behind a FLUSH
    fails, the pool goes to fail mode and every bio errors.  The last
    commit survives on disk."""
    linear_meta(devs, 2048)
    create(POOL, f"0 {256 * BS} thin-pool /dev/mapper/{META} {devs[1]} {BS} 0")
    run("dmsetup", "message", POOL, "0", "create_thin 0")
    a = create(PREFIX + "a", f"0 {16 * BS} thin {POOL_DEV} 0")
    udev_settle()
    kept = pattern("kept", BLOCK)
    write_at(a, 0, kept)
    klog = Kmsg()
    dmsetup("suspend", META)
    load(META, "0 2048 error")
    dmsetup("resume", META)
    err_write = io_errno(a, BLOCK, 4096, write=True)
    pool_st = status(POOL).split()[3:]
    thin_st = status(PREFIX + "a").split()[3:]
    err_read = io_errno(a, 0, 4096)
    lines = klog.lines()
    klog.close()
    remove(PREFIX + "a")
    remove(POOL)
    load(META, f"0 2048 linear {devs[0]} 0")
    dmsetup("resume", META)
    create(POOL, f"0 {256 * BS} thin-pool /dev/mapper/{META} {devs[1]} {BS} 0")
    again = pool_fields()
    a = create(PREFIX + "a", f"0 {16 * BS} thin {POOL_DEV} 0")
    got = read_at(a, 0, BLOCK)
    remove(PREFIX + "a")
    remove(POOL)
    remove(META)
    assert err_write == errno.EIO and err_read == errno.EIO
    assert pool_st == ["Fail"] and thin_st == ["Fail"]
    assert has(lines, "metadata operation"), lines
    assert has(lines, "switching pool to fail mode"), lines
    assert again[2] == "1/256" and again[4] == "rw" and again[7] == "-", again
    assert got == kept


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


def set_needs_check(meta):
    """Set NEEDS_CHECK in the superblock (flags bit 0) with a fresh checksum."""
    table = _crc32c_table()
    blk = bytearray(read_at(meta, 0, 4096))
    blk[4] |= 1
    reg = 0xFFFFFFFF
    for b in blk[4:]:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    blk[0:4] = (reg ^ 160774).to_bytes(4, "little")
    write_at(meta, 0, bytes(blk))


def test_needs_check_keeps_pool_read_only(devs):
    """A superblock with NEEDS_CHECK: the pool comes up read-only with
    needs_check in its status, mapped blocks read and overwrite, new blocks
    and messages are refused; thin_check --clear-needs-check-flag lets it
    go read-write."""
    meta, data = devs
    table = f"0 {256 * BS} thin-pool {meta} {data} {BS} 0"
    create(POOL, table)
    run("dmsetup", "message", POOL, "0", "create_thin 0")
    a = create(PREFIX + "a", f"0 {16 * BS} thin {POOL_DEV} 0")
    old = pattern("nc", BLOCK)
    write_at(a, 0, old)
    remove(PREFIX + "a")
    remove(POOL)
    set_needs_check(meta)

    klog = Kmsg()
    create(POOL, table)
    ro = pool_fields()
    a = create(PREFIX + "a", f"0 {16 * BS} thin {POOL_DEV} 0")
    got = read_at(a, 0, BLOCK)
    new = pattern("nc-over", 4096)
    write_at(a, 0, new)
    err_new = io_errno(a, BLOCK, 4096, write=True)
    rc, err = try_msg("create_thin", 1)
    lines = klog.lines()
    klog.close()
    remove(PREFIX + "a")
    remove(POOL)
    run("thin_check", "--clear-needs-check-flag", meta)
    create(POOL, table)
    rw = pool_fields()
    remove(POOL)
    assert ro[4] == "ro" and ro[7] == "needs_check", ro
    assert has(lines, "unable to switch pool to write mode until repaired"), lines
    assert got == old
    assert err_new == errno.EIO
    assert rc and "Operation not supported" in err
    assert rw[4] == "rw" and rw[7] == "-", rw
