# SPDX-License-Identifier: GPL-2.0-only
"""dm core: table validation (gaps, overlaps, zero length, unknown types,
devices too small, logical block alignment), and load/reload/clear of the
inactive table."""
import os
import re
import subprocess

import pytest

from corehelp import Kmsg, create_fails, info, load_fails
from dmtest import create, devno, dmsetup, fill, kerr, read_at, remove, status, table

ZERO = "0 8 zero"
GAP = r"Gap in table \(%s\)" % kerr("EINVAL")


def _kline(klog, text):
    pat = re.compile(r"device-mapper: table: \d+:\d+: " + text + "$")
    return any(pat.search(l) for l in klog)


@pytest.mark.parametrize("lines,msg", [
    (["10 100 linear {ram} 0"], r"linear: " + GAP),
    (["0 100 linear {ram} 0", "200 100 linear {ram} 0"], r"linear: " + GAP),
    (["0 100 linear {ram} 0", "50 100 linear {ram} 0"], r"linear: " + GAP),
    (["0 100 zero", "100 100 zero", "199 1 zero"], r"zero: " + GAP),
    (["0 0 linear {ram} 0"], r"zero-length target"),
    (["0 100 zero", "100 0 zero"], r"zero-length target"),
    (["0 100 no-such-target"], r"no-such-target: unknown target type"),
], ids=["start-not-0", "gap", "overlap", "overlap-last", "zero-length", "zero-length-2nd",
        "unknown-type"])
def test_invalid_table_layout(brd, lines, msg):
    ram, = brd(1, 16)
    stderr, klog = create_fails("bad", [l.format(ram=ram) for l in lines])
    assert "reload ioctl on bad" in stderr and "Invalid argument" in stderr
    assert _kline(klog, msg), klog
    assert "device-mapper: ioctl: error adding target to table" in klog


def test_missing_device(brd):
    stderr, klog = create_fails("bad", "0 100 linear /dev/mapper/not-there 0")
    assert "No such device" in stderr
    assert _kline(klog, r"linear: Device lookup failed \(%s\)" % kerr("ENODEV")), klog


def test_device_too_small(brd):
    ram, = brd(1, 16)
    stderr, klog = create_fails("bad", "0 40000 linear %s 0" % ram)
    assert "Invalid argument" in stderr
    assert _kline(klog, "ram0 too small for target: start=0, len=40000, dev_size=32768"), klog


def test_4k_device_misaligned_start(loopdev):
    loop = loopdev(16, 4096)
    kname = loop.split("/")[-1]
    stderr, klog = create_fails("bad", "0 96 linear %s 1" % loop)
    assert "Invalid argument" in stderr
    assert _kline(klog, "start=1 not aligned to h/w logical block size 4096 of %s" % kname), klog
    assert "device-mapper: core: Cannot calculate initial queue limits" in klog


def test_4k_device_misaligned_length(loopdev):
    loop = loopdev(16, 4096)
    kname = loop.split("/")[-1]
    stderr, klog = create_fails("bad", "0 100 linear %s 0" % loop)
    assert "Invalid argument" in stderr
    assert _kline(klog, "len=100 not aligned to h/w logical block size 4096 of %s" % kname), klog


def test_4k_device_misaligned_target_boundary(loopdev):
    loop = loopdev(16, 4096)
    # The linear piece is aligned on its device, but it starts at sector 7
    # of the table: a 4 KiB bio there would straddle two targets.
    stderr, klog = create_fails("bad", ["0 7 zero", "7 8 linear %s 0" % loop, "15 1 zero"])
    assert "Invalid argument" in stderr
    assert _kline(klog, r"table line 1 \(start sect 7 len 8\) not aligned to h/w logical "
                  "block size 4096"), klog


def test_misaligned_reload_fails_at_resume_and_stays_suspended(loopdev):
    loop = loopdev(16, 4096)
    kname = loop.split("/")[-1]
    create("t", "0 8 zero")
    # A later load is not checked against the queue limits: resume is.
    dmsetup("load", "t", input="0 8 zero\n8 5 linear %s 0\n" % loop)
    k = Kmsg()
    p = subprocess.run(["dmsetup", "resume", "t"], capture_output=True, text=True)
    klog = k.lines()
    k.close()
    assert p.returncode != 0 and "Invalid argument" in p.stderr
    assert _kline(klog, "len=5 not aligned to h/w logical block size 4096 of %s" % kname), klog
    i = info("t")
    assert i["attr"] == "L-sw", i
    assert table("t") == "0 8 zero "
    assert table("t", "--inactive") == ""
    dmsetup("resume", "t")
    assert info("t")["attr"] == "L--w"
    remove("t")


def test_4k_device_aligned_table(loopdev):
    loop = loopdev(16, 4096)
    dev = create("ok4k", ["0 8 zero", "8 96 linear %s 8" % loop])
    assert dmsetup("table", "ok4k").splitlines()[1] == "8 96 linear %s 8" % devno(loop)
    assert subprocess.run(["blockdev", "--getss", dev], capture_output=True,
                          text=True).stdout.strip() == "4096"
    remove("ok4k")


def test_load_shows_inactive_until_resume(brd):
    ram, = brd(1, 16)
    dev = create("t", "0 2048 linear %s 0" % ram)
    assert info("t")["attr"] == "L--w"
    dmsetup("load", "t", input="0 4096 linear %s 0\n" % ram)
    i = info("t")
    assert i["attr"] == "LI-w"
    assert i["tables_loaded"] == "Both"
    assert "Tables present:    LIVE & INACTIVE" in dmsetup("info", "t")
    assert table("t") == "0 2048 linear %s 0" % devno(ram)
    assert table("t", "--inactive") == "0 4096 linear %s 0" % devno(ram)
    assert status("t", "--inactive") == "0 4096 linear "
    assert subprocess.run(["blockdev", "--getsz", dev], capture_output=True,
                          text=True).stdout.strip() == "2048"
    dmsetup("resume", "t")
    assert info("t")["attr"] == "L--w"
    assert table("t") == "0 4096 linear %s 0" % devno(ram)
    assert table("t", "--inactive") == ""
    assert subprocess.run(["blockdev", "--getsz", dev], capture_output=True,
                          text=True).stdout.strip() == "4096"
    remove("t")


def test_clear_drops_inactive_table(brd):
    ram, = brd(1, 16)
    create("t", "0 2048 linear %s 0" % ram)
    dmsetup("load", "t", input="0 8 zero\n")
    dmsetup("clear", "t")
    assert info("t")["attr"] == "L--w"
    assert table("t", "--inactive") == ""
    dmsetup("clear", "t")           # nothing staged: still fine
    dmsetup("resume", "t")          # no-op resume keeps the live table
    assert table("t") == "0 2048 linear %s 0" % devno(ram)
    remove("t")


def test_reload_replaces_inactive_table(brd):
    ram, = brd(1, 16)
    create("t", ZERO)
    dmsetup("load", "t", input="0 16 zero\n")
    dmsetup("reload", "t", input="0 32 zero\n")
    assert table("t", "--inactive") == "0 32 zero "
    dmsetup("resume", "t")
    assert table("t") == "0 32 zero "
    remove("t")


def test_failed_load_keeps_live_and_inactive(brd):
    ram, = brd(1, 16)
    dev = create("t", "0 2048 linear %s 0" % ram)
    data = fill(dev, "keep", 0, 1 << 20)
    dmsetup("load", "t", input="0 16 zero\n")
    load_fails("t", "0 100 linear %s" % ram)
    # The staged table from before the failure is still there.
    assert info("t")["attr"] == "LI-w"
    assert table("t", "--inactive") == "0 16 zero "
    dmsetup("clear", "t")
    load_fails("t", "0 100 bogus-type")
    assert info("t")["attr"] == "L--w"
    assert read_at(dev, 0, len(data)) == data
    remove("t")


def test_device_without_table(harness):
    dmsetup("create", "empty", "--notable")
    harness.on_cleanup(lambda: subprocess.run(["dmsetup", "remove", "empty"],
                                              capture_output=True))
    i = info("empty")
    assert i["attr"] == "---w"
    assert i["segments"] == "0"
    assert "Tables present:    None" in dmsetup("info", "empty")
    assert table("empty") == ""
    assert status("empty") == ""
    # No disk is registered until the first table load.
    assert not any(open("/sys/block/%s/dm/name" % d).read() == "empty\n"
                   for d in os.listdir("/sys/block") if d.startswith("dm-"))
    dmsetup("load", "empty", input=ZERO + "\n")
    assert info("empty")["attr"] == "-I-w"
    dmsetup("resume", "empty")
    assert info("empty")["attr"] == "L--w"
    remove("empty")


def test_resume_of_device_without_table():
    dmsetup("create", "empty", "--notable")
    try:
        # Not suspended and nothing staged: resume is a successful no-op.
        dmsetup("resume", "empty")
        assert info("empty")["tables_loaded"] == "None"
        # Suspended without a table: resume has nothing to resume with.
        dmsetup("suspend", "empty")
        assert info("empty")["attr"] == "--sw"
        p = subprocess.run(["dmsetup", "resume", "empty"], capture_output=True, text=True)
        assert p.returncode != 0
        assert "resume ioctl on empty" in p.stderr and "Invalid argument" in p.stderr
    finally:
        subprocess.run(["dmsetup", "remove", "empty"], capture_output=True)
    assert "empty" not in dmsetup("ls")


def test_many_targets(brd):
    ram, = brd(1, 16)
    lines = ["%d 8 linear %s %d" % (i * 8, ram, (99 - i) * 8) for i in range(100)]
    create("many", lines)
    assert info("many")["segments"] == "100"
    got = dmsetup("table", "many").splitlines()
    assert got == [l.replace(ram, devno(ram)) for l in lines]
    remove("many")
