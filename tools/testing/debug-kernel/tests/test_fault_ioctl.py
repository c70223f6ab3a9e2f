# SPDX-License-Identifier: GPL-2.0-only
"""Allocation failures in the ioctl paths (fail-nth sweeps).

Each test repeats one DM ioctl with the Nth fault-injection point of the
calling thread made to fail (/proc/thread-self/fail-nth, with failslab
counting sleeping allocations too), for N = 1, 2, ... until the ioctl runs
through without reaching the Nth point. Every injected failure must end in
success or a clean errno with the device left as it was; the harness checks
the kernel log after each test and the debug-kernel lane's kmemleak scan
catches what an error path forgot to free.

Needs a kernel with fault injection (the debug-kernel lane); skips elsewhere.
"""
import fcntl
import mmap
import os
import struct

import pytest

import corehelp
from dmtest import CmdError, create, dm_names, dmsetup, remove, table

# A table load makes a bioset, and the slab cache for its bios may be new:
# kmem_cache_create() failing there dumps the stack, as do a failed percpu
# allocation and the page allocator's warning on a failed vmalloc (the
# kernel's doing, as under stock dm).
pytestmark = pytest.mark.stack_dump_ok(
    r"kmem_cache_create\w*\(.*\) failed with error|percpu: allocation failed|"
    r"vmalloc error: size|page allocation failure")

FAILSLAB = "/sys/kernel/debug/failslab"
MAX_N = 20000
EVERY = 300
STRIDE = 61

DM_DEV_CREATE = 3
DM_DEV_REMOVE = 4
DM_DEV_RENAME = 5
DM_DEV_SUSPEND = 6
DM_DEV_STATUS = 7
DM_TABLE_LOAD = 9
DM_TABLE_CLEAR = 10
DM_TARGET_MSG = 14
DM_INACTIVE_PRESENT_FLAG = 1 << 6


@pytest.fixture
def failslab():
    """Let fail-nth reach sleeping slab allocations, without stack dumps."""
    if not os.path.exists("/proc/self/fail-nth") or not os.path.isdir(FAILSLAB):
        pytest.skip("kernel without fault injection (run in the debug-kernel lane)")
    knobs = {"ignore-gfp-wait": "N", "verbose": "0", "probability": "0",
             "cache-filter": "N"}
    saved = {}
    for k, v in knobs.items():
        with open(f"{FAILSLAB}/{k}") as f:
            saved[k] = f.read().strip()
        with open(f"{FAILSLAB}/{k}", "w") as f:
            f.write(v)
    yield
    for k, v in saved.items():
        with open(f"{FAILSLAB}/{k}", "w") as f:
            f.write(v)


@pytest.fixture
def devs(brd):
    return brd(2, 8)


def dm_ioctl(nr, name, payload=b"", flags=0, target_count=0, nth=0):
    """One DM ioctl with fail-nth armed just before it.

    Returns (errno, injected): injected tells whether the Nth point was reached.
    """
    hdr, start = corehelp.DM_HDR_SIZE, corehelp.DM_DATA_START
    size = hdr + max(len(payload) + 1, 16384)
    buf = bytearray(size)
    struct.pack_into("=3IIIIiIIIQ", buf, 0, 4, 0, 0, size, start, target_count, 0,
                     flags, 0, 0, 0)
    n = name.encode()
    buf[48:48 + len(n)] = n
    buf[start:start + len(payload)] = payload
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    nthfd = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    try:
        if nth:
            os.write(nthfd, str(nth).encode())
        try:
            fcntl.ioctl(ctl, corehelp._iowr(nr), buf, True)
            err = 0
        except OSError as e:
            err = e.errno
        left = int(os.pread(nthfd, 32, 0).strip() or b"0")
        os.write(nthfd, b"0")
    finally:
        os.close(nthfd)
        os.close(ctl)
    return err, bool(nth) and left == 0


def table_payload(lines):
    """struct dm_target_spec records, each followed by its parameters."""
    out = bytearray()
    for line in lines:
        start, length, ttype, params = (line.split(None, 3) + [""])[:4]
        p = params.encode() + b"\0"
        rec = 40 + len(p)
        rec += -rec % 8
        spec = struct.pack("=QQiI16s", int(start), int(length), 0, rec, ttype.encode())
        out += spec + p + b"\0" * (rec - 40 - len(p))
    return bytes(out)


def fail_points():
    """Every point up to EVERY, then every STRIDE-th: a thin pool's
    constructor fills mempools of 1024 elements one allocation at a time,
    and trying each of those would take hours in the debug guest."""
    yield from range(1, EVERY + 1)
    yield from range(EVERY + STRIDE, MAX_N, STRIDE)


def sweep(op, after):
    """op(nth) -> (errno, injected); after(errno) checks and restores state."""
    for nth in fail_points():
        err, injected = op(nth)
        after(err)
        if not injected:
            assert err == 0, f"ioctl failed ({corehelp.errname(err)}) with no fault injected"
            return nth
    pytest.fail(f"still failing at fail-nth {MAX_N}")


TABLES = {
    "linear": ["0 2048 linear {0} 0", "2048 2048 linear {1} 0"],
    "striped": ["0 4096 striped 2 8 {0} 0 {1} 0"],
    "zero-error": ["0 1024 zero", "1024 1024 error"],
    "flakey": ["0 2048 flakey {0} 0 1 1 1 drop_writes"],
    "delay": ["0 2048 delay {0} 0 10 {1} 0 20"],
    "dust": ["0 2048 dust {0} 0 512"],
    "ebs": ["0 2048 ebs {0} 0 8"],
    "switch": ["0 2048 switch 2 128 0 {0} 0 {1} 0"],
    "unstriped": ["0 2048 unstriped 2 8 0 {0} 0"],
    "log-writes": ["0 2048 log-writes {0} {1}"],
}


def reference(name, lines):
    """Create and drop the table once normally: loads the target module and
    gives the table line every later load must reproduce."""
    try:
        create(name, lines)
    except CmdError:
        pytest.skip(f"table not accepted here: {lines}")
    want = table(name)
    remove(name)
    return want


def test_create(failslab):
    def after(err):
        if err:
            assert "fi" not in dm_names(), "failed create left a device"
        else:
            remove("fi")
    sweep(lambda n: dm_ioctl(DM_DEV_CREATE, "fi", nth=n), after)


def inactive_present(name):
    err, hdr = corehelp.raw_ioctl(DM_DEV_STATUS, name.encode())
    assert err == 0, f"DM_DEV_STATUS {name}: {corehelp.errname(err)}"
    return bool(hdr["flags"] & DM_INACTIVE_PRESENT_FLAG)


def load_sweep(name, lines, before=None):
    """Sweep fail-nth over loading LINES into NAME (a device without a
    table): a failed load leaves no inactive table; the load that gets
    through leaves exactly the table a plain load gives. BEFORE runs ahead
    of every attempt. Checks with raw ioctls: a dmsetup costs seconds here."""
    want = reference(name, lines)
    dmsetup("create", name, "--notable")
    payload = table_payload(lines)

    def op(n):
        if before:
            before()
        return dm_ioctl(DM_TABLE_LOAD, name, payload, target_count=len(lines), nth=n)

    def after(err):
        present = inactive_present(name)
        if err:
            assert not present, "failed load left an inactive table"
        elif present:
            assert corehelp.raw_ioctl(DM_TABLE_CLEAR, name.encode())[0] == 0
    sweep(op, after)
    dmsetup("load", name, input="\n".join(lines) + "\n")
    assert table(name, "--inactive") == want
    remove(name)


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_table_load(failslab, devs, kind):
    load_sweep("fi", [ln.format(*devs) for ln in TABLES[kind]])


def test_resume(failslab, devs):
    lines = [ln.format(*devs) for ln in TABLES["linear"]]
    want = reference("fi", lines)

    def op(n):
        dmsetup("create", "fi", "--notable")
        dmsetup("load", "fi", input="\n".join(lines) + "\n")
        return dm_ioctl(DM_DEV_SUSPEND, "fi", nth=n)

    def after(err):
        if not err:
            assert table("fi") == want
        remove("fi")
    sweep(op, after)


def test_rename(failslab):
    dmsetup("create", "fi", "--notable")

    def after(err):
        names = dm_names()
        if err:
            assert "fi" in names and "fi2" not in names
        else:
            assert "fi2" in names and "fi" not in names
            dmsetup("rename", "fi2", "fi")
    sweep(lambda n: dm_ioctl(DM_DEV_RENAME, "fi", b"fi2", nth=n), after)
    remove("fi")


def test_remove(failslab):
    def op(n):
        dmsetup("create", "fi", "--notable")
        return dm_ioctl(DM_DEV_REMOVE, "fi", nth=n)

    def after(err):
        if err:
            assert "fi" in dm_names()
            remove("fi")
        else:
            assert "fi" not in dm_names()
    sweep(op, after)


def test_message(failslab, devs):
    lines = [ln.format(*devs) for ln in TABLES["dust"]]
    reference("fi", lines)
    create("fi", "\n".join(lines))
    payload = struct.pack("=Q", 0) + b"addbadblock 7\0"

    def after(err):
        if not err:
            dmsetup("message", "fi", "0", "removebadblock", "7")
    sweep(lambda n: dm_ioctl(DM_TARGET_MSG, "fi", payload, nth=n), after)
    remove("fi")


# The targets with metadata or keys: the constructors with the most to undo.
# {0} and {1} are the two 8 MiB disks; "zero" wipes {0}'s first 4 KiB before
# every attempt, so that each one takes the format path, not the open path.
META_TABLES = {
    "thin-pool-format": (["0 16384 thin-pool {0} {1} 128 0"], True),
    "thin-pool-open": (["0 16384 thin-pool {0} {1} 128 0"], False),
    "snapshot": (["0 16384 snapshot {1} {0} P 8"], True),
    "snapshot-origin": (["0 16384 snapshot-origin {1}"], False),
    "crypt": (["0 16384 crypt aes-xts-plain64 " + "0123456789abcdef" * 4 + " 0 {0} 0"],
              False),
}


def zero_head(dev):
    """Zero the first 4 KiB of DEV, past the page cache (an mmap is page
    aligned, as O_DIRECT wants)."""
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    try:
        os.pwrite(fd, mmap.mmap(-1, 4096), 0)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", sorted(META_TABLES))
def test_metadata_table_load(failslab, devs, kind):
    lines, zero = META_TABLES[kind]
    if zero:
        zero_head(devs[0])
    load_sweep("fi", [ln.format(*devs) for ln in lines],
               before=(lambda: zero_head(devs[0])) if zero else None)


@pytest.fixture
def pool(devs):
    """A live thin pool "fp" with thin 1 created."""
    zero_head(devs[0])
    create("fp", f"0 16384 thin-pool {devs[0]} {devs[1]} 128 0")
    dmsetup("message", "fp", "0", "create_thin", "1")
    yield "/dev/mapper/fp"
    remove("fp")


def test_thin_table_load(failslab, pool):
    load_sweep("fi", [f"0 8192 thin {pool} 1"])


@pytest.mark.parametrize("msg,undo", [
    ("create_thin 2", "delete 2"),
    ("create_snap 3 1", "delete 3"),
    ("reserve_metadata_snap", "release_metadata_snap"),
])
def test_pool_message(failslab, pool, msg, undo):
    payload = struct.pack("=Q", 0) + msg.encode() + b"\0"

    def after(err):
        if not err:
            dmsetup("message", "fp", "0", *undo.split())
    sweep(lambda n: dm_ioctl(DM_TARGET_MSG, "fp", payload, nth=n), after)
    # The pool still works: the message goes through once more.
    dmsetup("message", "fp", "0", *msg.split())
    dmsetup("message", "fp", "0", *undo.split())
