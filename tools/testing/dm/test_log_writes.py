# SPDX-License-Identifier: GPL-2.0-only
"""log-writes: the log's order and format, marks, status, and replay with
tools/log-writes/replay-log (fsck and exact contents at every mark)."""
import os
import struct
import subprocess

import pytest

from dmharness import KernelLog
from dmtest import (create, devno, digest, dmsetup, fails, pattern, read_at,
                    remove, run, sh, status, table, target_versions, wait_for,
                    write_at)

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_SRC = os.path.join(HERE, "..", "..", "log-writes")
REPLAY = "/tmp/lw-tool/replay-log"
MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
SECTORS = 32768                       # 16 MiB of the data device


@pytest.fixture(scope="module")
def replay_tool():
    os.makedirs("/tmp/lw-tool", exist_ok=True)
    run("make", "-s", "-C", TOOL_SRC, "O=/tmp/lw-tool")
    return REPLAY


@pytest.fixture
def devs(brd):
    return brd(3, 48)


def raw_write(dev, offset, data, flags=0):
    """One O_DIRECT write with extra open FLAGS, no fsync."""
    import mmap
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT | flags)
    try:
        buf = mmap.mmap(-1, len(data))
        buf.write(data)
        os.pwrite(fd, buf, offset)
    finally:
        os.close(fd)


def flush(dev):
    fd = os.open(dev, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_log(logdev):
    """(nr_entries, sectorsize, [(sector, nr, flags, mark)])."""
    sb = read_at(logdev, 0, 4096)
    magic, version, nr, ssize = struct.unpack_from("<QQQI", sb)
    assert magic == MAGIC and version == 1
    entries = []
    pos = ssize
    for _ in range(nr):
        hdr = read_at(logdev, pos, ssize) if ssize >= 512 else None
        sector, count, flags, dlen = struct.unpack_from("<QQQQ", hdr)
        mark = hdr[32:32 + dlen].decode() if flags & MARK else None
        entries.append((sector, count, flags, mark))
        pos += ssize * (1 + (0 if flags & DISCARD else count))
    return nr, ssize, entries


def lw(devs, name="lw"):
    return create(name, f"0 {SECTORS} log-writes {devs[0]} {devs[1]}")


def entries_settle(name, n):
    wait_for(lambda: int(status(name).split()[3]) >= n, what=f"{n} log entries")


def test_version_table_status(devs):
    lw(devs)
    assert target_versions()["log-writes"] == (1, 1, 0)
    assert table("lw") == f"0 {SECTORS} log-writes {devno(devs[0])} {devno(devs[1])}"
    assert status("lw") == f"0 {SECTORS} log-writes 0 0"
    remove("lw")


@pytest.mark.parametrize("args,msg", [
    ("{0}", "Invalid argument count"),
    ("/dev/nonexistent {1}", "Device lookup failed"),
    ("{0} /dev/nonexistent", "Log device lookup failed"),
])
def test_ctr_errors(devs, args, msg):
    klog = KernelLog()
    fails("dmsetup", "create", "lw", "--table",
          f"0 {SECTORS} log-writes " + args.format(*devs))
    lines = klog.read()
    klog.close()
    assert any(f"log-writes: {msg}" in line for line in lines), lines


def test_message_errors(devs):
    lw(devs)
    klog = KernelLog()
    fails("dmsetup", "message", "lw", "0", "mark")
    fails("dmsetup", "message", "lw", "0", "mark", "a", "b")
    fails("dmsetup", "message", "lw", "0", "bogus")
    fails("dmsetup", "message", "lw", "0", "bogus", "x")
    lines = klog.read()
    klog.close()
    # the word count is checked before the name: "bogus" alone is "got 1"
    assert sum("expect 2 arguments, got 1" in line for line in lines) == 2, lines
    assert any("expect 2 arguments, got 3" in line for line in lines), lines
    assert any("Unrecognised log writes target message received: bogus" in line
               for line in lines), lines
    remove("lw")


def test_write_flush_mark_order_and_status(devs):
    dev = lw(devs)
    data = pattern("a", 4096)
    raw_write(dev, 8192, data)
    flush(dev)
    dmsetup("message", "lw", "0", "mark", "one")
    entries_settle("lw", 3)
    # write: header + 8 blocks; flush: header; mark: header -> next sector 12
    assert status("lw") == f"0 {SECTORS} log-writes 3 11"
    remove("lw")
    nr, ssize, ents = parse_log(devs[1])
    assert ssize == 512
    assert ents == [(16, 8, 0, None), (0, 0, FLUSH, None), (0, 0, MARK, "one"),
                    (0, 0, MARK, "dm-log-writes-end")]
    assert read_at(devs[1], 2 * 512, 4096) == data
    assert read_at(devs[0], 8192, 4096) == data


def test_fua_logged_before_older_unflushed(devs):
    dev = lw(devs)
    raw_write(dev, 0, pattern("plain", 4096))
    raw_write(dev, 4096, pattern("fua", 4096), os.O_DSYNC)
    entries_settle("lw", 3)
    remove("lw")
    _, _, ents = parse_log(devs[1])
    kinds = [(s, f & (FUA | FLUSH | MARK)) for s, _, f, _ in ents]
    # the FUA write is logged at completion, the plain one at the next flush
    assert kinds[0] == (8, FUA)
    assert kinds[1] == (0, 0)
    assert kinds[2] == (0, FLUSH)
    assert ents[-1][3] == "dm-log-writes-end"


def test_discard_logged_without_data(devs):
    dev = lw(devs)
    run("blkdiscard", "-f", "-o", 1 << 20, "-l", 1 << 20, dev, check=False)
    flush(dev)
    entries_settle("lw", 2)
    remove("lw")
    _, _, ents = parse_log(devs[1])
    assert ents[0] == (2048, 2048, DISCARD, None)
    assert ents[1][2] == FLUSH


def test_unflushed_writes_logged_at_removal(devs):
    dev = lw(devs)
    raw_write(dev, 0, pattern("x", 4096))
    remove("lw")
    nr, _, ents = parse_log(devs[1])
    assert ents == [(0, 8, 0, None), (0, 0, MARK, "dm-log-writes-end")]


def test_log_full_disables_logging(brd):
    data, log = brd(2, 16)
    dev = create("lw", f"0 {SECTORS} log-writes {data} {log}")
    klog = KernelLog()
    write_at(dev, 0, pattern("big", 16 << 20))
    wait_for(lambda: status("lw").endswith("logging_disabled"), what="log full")
    assert any("Ran out of space on the logdev" in line for line in klog.read())
    klog.close()
    # I/O still reaches the data device
    assert read_at(data, 15 << 20, 4096) == pattern("big", 16 << 20)[15 << 20:(15 << 20) + 4096]
    remove("lw")


def test_replay_list_and_exact_contents(devs, replay_tool):
    dev = lw(devs)
    write_at(dev, 0, pattern("p1", 65536))
    dmsetup("message", "lw", "0", "mark", "m1")
    write_at(dev, 32768, pattern("p2", 65536))
    raw_write(dev, 1 << 20, pattern("p3", 8192), os.O_DSYNC)
    dmsetup("message", "lw", "0", "mark", "m2")
    entries_settle("lw", 7)
    remove("lw")
    listing = run(replay_tool, "--log", devs[1], "--list")
    assert '"m1"' in listing and '"m2"' in listing and '"dm-log-writes-end"' in listing
    run(replay_tool, "--log", devs[1], "--replay", devs[2], "--end-mark", "m1")
    assert read_at(devs[2], 0, 65536) == pattern("p1", 65536)
    assert read_at(devs[2], 65536, 65536) == bytes(65536)
    run(replay_tool, "--log", devs[1], "--replay", devs[2], "--start-mark", "m1",
        "--end-mark", "m2")
    assert digest(devs[2], 0, 16 << 20) == digest(devs[0], 0, 16 << 20)
    fails(replay_tool, "--log", devs[1], "--replay", devs[2], "--end-mark", "nope")


def test_filesystem_replay_fsck_at_every_mark(devs, replay_tool):
    """ext4 through log-writes; replay to each mark: exact image, clean fsck."""
    data, log, target = devs
    dev = lw(devs)
    run("mkfs.ext4", "-q", "-E", "nodiscard,lazy_itable_init=0", dev)
    mnt = "/tmp/lw-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", dev, mnt)
    sums = {}
    try:
        for i in range(3):
            sh(f"""
                for f in $(seq 1 20); do
                    head -c $((f * 3000 + {i} * 777)) /dev/urandom > {mnt}/f{i}_$f
                done
                mkdir -p {mnt}/d{i}; cp {mnt}/f{i}_* {mnt}/d{i}/; rm -f {mnt}/f{i}_1*
                """)
            run("fsfreeze", "-f", mnt)
            try:
                sums[f"m{i}"] = digest(data, 0, SECTORS * 512)
                dmsetup("message", "lw", "0", "mark", f"m{i}")
            finally:
                run("fsfreeze", "-u", mnt)
    finally:
        run("umount", mnt)
    remove("lw")
    prev = None
    for i in range(3):
        args = [replay_tool, "--log", log, "--replay", target, "--end-mark", f"m{i}"]
        if prev:
            args += ["--start-mark", prev]
        run(*args)
        assert digest(target, 0, SECTORS * 512) == sums[f"m{i}"], f"m{i}"
        run("e2fsck", "-fn", target)
        prev = f"m{i}"


def test_replay_check_at_each_fua(devs, replay_tool):
    """Every FUA point of an ext4 run is consistent once its journal is replayed."""
    data, log, target = devs
    dev = lw(devs)
    run("mkfs.ext4", "-q", "-E", "nodiscard,lazy_itable_init=0", dev)
    dmsetup("message", "lw", "0", "mark", "mkfs")
    mnt = "/tmp/lw-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", dev, mnt)
    try:
        sh(f"for f in 1 2 3 4; do head -c 50000 /dev/urandom > {mnt}/f$f; sync; done")
    finally:
        run("umount", mnt)
    remove("lw")
    check = (f"dd if={target} of=/tmp/lw-img bs=1M count=16 status=none && "
             "e2fsck -E journal_only -y /tmp/lw-img >/dev/null 2>&1; "
             "e2fsck -fn /tmp/lw-img >/dev/null 2>&1")
    out = subprocess.run([replay_tool, "-v", "--log", log, "--replay", target,
                          "--check", "fua", "--fsck", check],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count("check passed") >= 2
    assert digest(target, 0, SECTORS * 512) == digest(data, 0, SECTORS * 512)


def test_discard_reaches_capable_data_device(loopdev):
    data, log = loopdev(16), loopdev(16)
    write_at(data, 0, pattern("d", 1 << 20))
    dev = create("lw", f"0 {SECTORS} log-writes {data} {log}")
    run("blkdiscard", "-o", 0, "-l", 1 << 20, dev)
    flush(dev)
    entries_settle("lw", 2)
    assert read_at(data, 0, 1 << 20) == bytes(1 << 20)
    remove("lw")
    _, _, ents = parse_log(log)
    assert ents[0] == (0, 2048, DISCARD, None)
