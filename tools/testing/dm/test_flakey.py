# SPDX-License-Identifier: GPL-2.0-only
"""flakey: up/down intervals, drop/error writes, byte corruption, table lines."""
import os

import pytest

from dmharness import KernelLog
from dmtest import (create, fails, fill, io_errno, pattern, read_at, remove, run,
                    status, table, target_versions, write_at, devno)

MB = 1 << 20


@pytest.fixture
def dev(brd):
    return brd(1, 16)[0]


def mk(dev, rest, size=8192, name="fl"):
    return create(name, f"0 {size} flakey {dev} {rest}")


def test_target_version(dev):
    mk(dev, "0 10 0")
    assert target_versions()["flakey"] == (1, 5, 0)
    remove("fl")


@pytest.mark.parametrize("args,line", [
    ("0 5 0", "{d} 0 5 0 0 "),
    ("16 1 2 0", "{d} 16 1 2 0 "),
    ("0 3 4 1 drop_writes", "{d} 0 3 4 1 drop_writes "),
    ("0 3 4 1 ERROR_WRITES", "{d} 0 3 4 1 error_writes "),
    ("0 1 1 5 corrupt_bio_byte 32 r 1 0",
     "{d} 0 1 1 5 corrupt_bio_byte 32 r 1 0 "),
    ("0 1 1 6 drop_writes corrupt_bio_byte 7 r 255 1",
     "{d} 0 1 1 6 drop_writes corrupt_bio_byte 7 r 255 1 "),
])
def test_table_line(dev, args, line):
    mk(dev, args)
    assert table("fl") == "0 8192 flakey " + line.format(d=devno(dev))
    assert status("fl") == "0 8192 flakey "
    remove("fl")


@pytest.mark.parametrize("args,msg", [
    ("0 1", "Invalid argument count"),
    ("x 1 1", "Invalid device sector"),
    ("0 x 1", "Invalid up interval"),
    # stock names the up interval for a bad down interval too
    ("0 1 -1", "Invalid up interval"),
    ("0 0 0", "Total (up + down) interval is zero"),
    ("0 4294967295 1", "Total (up + down) interval is zero"),
    ("0 4294967295 2", "Interval overflow"),
    ("0 1 1 7", "Invalid number of feature args"),
    ("0 1 1 2 drop_writes", "Invalid number of feature args"),
    ("0 1 1 2 drop_writes drop_writes", "Feature drop_writes duplicated"),
    ("0 1 1 2 error_writes error_writes", "Feature error_writes duplicated"),
    ("0 1 1 2 drop_writes error_writes",
     "Feature error_writes conflicts with feature drop_writes"),
    ("0 1 1 2 error_writes drop_writes",
     "Feature drop_writes conflicts with feature error_writes"),
    ("0 1 1 1 corrupt_bio_byte", "Feature corrupt_bio_byte requires parameters"),
    ("0 1 1 5 corrupt_bio_byte 0 r 1 0", "Invalid corrupt bio byte"),
    ("0 1 1 5 corrupt_bio_byte 1 x 1 0", "Invalid corrupt bio direction (r or w)"),
    ("0 1 1 5 corrupt_bio_byte 1 r 256 0",
     "Invalid corrupt value to write into bio byte (0-255)"),
    ("0 1 1 5 corrupt_bio_byte 1 r 1 x", "Invalid corrupt bio flags mask"),
    ("0 1 1 1 random_read_corrupt", "Unrecognised flakey feature requested"),
    ("0 1 1 6 drop_writes corrupt_bio_byte 1 w 1 0",
     "drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set"),
    ("0 1 1 6 error_writes corrupt_bio_byte 1 w 1 0",
     "error_writes is incompatible with corrupt_bio_byte with the WRITE flag set"),
])
def test_ctr_errors(dev, args, msg):
    klog = KernelLog()
    rc, out = fails("dmsetup", "create", "fl", "--table", f"0 8192 flakey {dev} {args}")
    lines = klog.read()
    klog.close()
    assert "Invalid argument" in out
    assert any(f"flakey: {msg}" in line for line in lines), lines


def test_bad_device(dev):
    klog = KernelLog()
    fails("dmsetup", "create", "fl", "--table", "0 8192 flakey /dev/nonexistent 0 1 1")
    assert any("flakey: Device lookup failed" in line for line in klog.read())
    klog.close()


def test_up_passes_data_with_offset(dev):
    data = fill(dev, "under")
    fl = mk(dev, "2048 3600 1")
    assert read_at(fl, 0, MB) == data[2048 * 512:2048 * 512 + MB]
    new = pattern("new", MB)
    write_at(fl, 4096, new)
    assert read_at(dev, 2048 * 512 + 4096, MB) == new
    remove("fl")


def test_up_down_cycle(dev):
    """up 2 s / down 2 s: over 7 s I/O fails for a while, then works again."""
    import time
    fill(dev, "under", 0, 4096)
    fl = mk(dev, "0 2 2")
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 7:
        seen.append(io_errno(fl, 0, 4096))
        time.sleep(0.1)
    assert 5 in seen
    first_err = seen.index(5)
    assert 0 in seen[first_err:]
    remove("fl", "--retry")


def test_down_fails_all_io(dev):
    fill(dev, "under")
    fl = mk(dev, "0 0 3600")
    assert io_errno(fl, 0, 4096) == 5
    assert io_errno(fl, 0, 4096, write=True) == 5
    assert read_at(dev, 0, 4096) == pattern("under", 4096)
    remove("fl")


def test_drop_writes(dev):
    data = fill(dev, "under")
    fl = mk(dev, "0 0 3600 1 drop_writes")
    write_at(fl, 0, pattern("lost", MB))
    assert read_at(fl, 0, MB) == data[:MB]
    assert read_at(dev, 0, MB) == data[:MB]
    remove("fl")


def test_error_writes(dev):
    data = fill(dev, "under")
    fl = mk(dev, "0 0 3600 1 error_writes")
    assert io_errno(fl, 0, 4096, write=True) == 5
    assert read_at(fl, 0, MB) == data[:MB]
    remove("fl")


def test_corrupt_writes(dev):
    fill(dev, "under")
    fl = mk(dev, "0 0 3600 5 corrupt_bio_byte 100 w 171 0")
    new = pattern("new", 8192)
    write_at(fl, 8192, new)
    got = read_at(dev, 8192, 8192)
    want = bytearray(new)
    want[99] = 171
    assert got == bytes(want)
    # reads in the down interval pass unharmed with a write corruption
    assert read_at(fl, 8192, 8192) == bytes(want)
    remove("fl")


def test_corrupt_reads(dev):
    data = fill(dev, "under")
    fl = mk(dev, "0 0 3600 5 corrupt_bio_byte 5 r 0 0")
    got = read_at(fl, 4096, 4096)
    want = bytearray(data[4096:8192])
    want[4] = 0
    assert got == bytes(want)
    assert read_at(dev, 4096, 4096) == data[4096:8192]
    remove("fl")


def test_corrupt_flags_filter(dev):
    """Flag mask 1 (REQ_FAILFAST_DEV... bit 8+) never matches plain writes."""
    fill(dev, "under")
    fl = mk(dev, "0 0 3600 5 corrupt_bio_byte 1 w 7 2147483648")
    new = pattern("new", 4096)
    write_at(fl, 0, new)
    assert read_at(dev, 0, 4096) == new
    remove("fl")


def queue_attr(dm, attr):
    name = os.path.basename(os.path.realpath(dm))
    with open(f"/sys/block/{name}/queue/{attr}") as f:
        return f.read().strip()


def test_discard_passdown(loopdev):
    dev = loopdev(16)
    fill(dev, "under", 0, MB)
    fl = mk(dev, "0 3600 1")
    assert int(queue_attr(fl, "discard_max_bytes")) > 0
    run("blkdiscard", "-o", 0, "-l", MB, fl)
    assert read_at(dev, 0, MB) == bytes(MB)
    remove("fl")


def test_issue4_targets_listed_with_stock_versions():
    """dmsetup targets shows every fault-injection/remapping target (and zero)."""
    want = {"zero": (1, 1, 0), "delay": (1, 3, 0), "flakey": (1, 5, 0),
            "log-writes": (1, 1, 0), "switch": (1, 1, 0), "unstriped": (1, 1, 0)}
    for mod in ("dm-zero", "dm-delay", "dm-flakey", "dm-log-writes", "dm-switch",
                "dm-unstriped"):
        run("modprobe", mod)
    got = target_versions()
    assert {t: got.get(t) for t in want} == want
