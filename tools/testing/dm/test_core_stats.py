# SPDX-License-Identifier: GPL-2.0-only
"""dm statistics: the @stats_* messages handled by dm core, and dmstats.

Counters are checked against I/O the test issues itself (O_DIRECT, known
sectors). I/Os are not contiguous: "merged" compares with the previous I/O of the same
CPU, which the test does not control.
"""
import fcntl
import mmap
import os
import re
import struct

import pytest

from corehelp import Kmsg
from dmtest import CmdError, create, dmsetup, remove, run, udev_settle

SECTOR = 512
PARAM = "/sys/module/dm_mod/parameters/stats_current_allocated_bytes"


def msg(name, *args):
    """Send a message; return the reply as dmsetup prints it, without the final newline."""
    out = dmsetup("message", name, "0", *args)
    return out[:-1] if out.endswith("\n") else out


def msg_error(name, *args):
    """Send a message that must fail; return the errno text dmsetup printed."""
    try:
        dmsetup("message", name, "0", "--", *args)   # "-1" is not an option
    except CmdError as e:
        m = re.search(r"failed: (.*)", e.err)
        assert m, e.err
        return m.group(1).strip()
    raise AssertionError(f"message {args} succeeded")


class Dev:
    """One O_DIRECT read-write descriptor kept open for the whole test.

    udev watches dm devices and probes them (reads) whenever a writer closes
    them; keeping the descriptor open keeps those reads out of the counters.
    """

    BLKDISCARD = 0x1277

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        self.buf = mmap.mmap(-1, 1 << 20)
        OPEN.append(self)

    def read(self, sector, nbytes):
        assert os.preadv(self.fd, [memoryview(self.buf)[:nbytes]], sector * SECTOR) == nbytes

    def write(self, sector, nbytes):
        assert os.pwritev(self.fd, [memoryview(self.buf)[:nbytes]], sector * SECTOR) == nbytes

    def discard(self, sector, nsectors):
        fcntl.ioctl(self.fd, self.BLKDISCARD, struct.pack("QQ", sector * SECTOR,
                                                          nsectors * SECTOR))

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.buf.close()
            udev_settle()


OPEN = []


@pytest.fixture(autouse=True)
def close_devs(harness):
    """A failed test must not leave its descriptor open: removal would fail."""
    yield
    while OPEN:
        OPEN.pop().close()


def zero_dev(name="st", sectors=2048):
    path = create(name, f"0 {sectors} zero")
    udev_settle()       # udev's probe reads must not land in the counters
    return Dev(path)


def done(d, name="st"):
    d.close()
    remove(name)


def areas(name, region, *rng):
    """@stats_print as a list of (range, [13 numbers], histogram-or-None)."""
    rows = []
    for line in msg(name, "@stats_print", str(region), *rng).splitlines():
        f = line.split()
        assert len(f) in (14, 15), line
        rows.append((f[0], [int(x) for x in f[1:14]], f[14] if len(f) == 15 else None))
    return rows


def test_stats_create_list_formats():
    dev = zero_dev()
    assert msg("st", "@stats_create", "-", "/4") == "0"
    assert msg("st", "@stats_create", "100+1000", "300", "2", "precise_timestamps",
               "histogram:1,10,100", "prog", "aux") == "1"
    assert msg("st", "@stats_create", "8+8", "1", "prog") == "2"
    assert msg("st", "@stats_list") == (
        "0: 0+2048 512 - -\n"
        "1: 100+1000 300 prog aux precise_timestamps histogram:1,10,100\n"
        "2: 8+8 1 prog -")
    assert msg("st", "@stats_list", "prog") == (
        "1: 100+1000 300 prog aux precise_timestamps histogram:1,10,100\n"
        "2: 8+8 1 prog -")
    assert msg("st", "@stats_list", "nobody") == ""
    done(dev)


def test_stats_ids_reuse_smallest_free():
    dev = zero_dev()
    for i in range(3):
        assert msg("st", "@stats_create", "-", "/1") == str(i)
    assert msg("st", "@stats_delete", "1") == ""
    assert msg("st", "@stats_create", "-", "/1") == "1"
    assert msg("st", "@stats_create", "-", "/1") == "3"
    assert msg("st", "@STATS_DELETE", "0") == ""
    assert [l.split(":")[0] for l in msg("st", "@stats_list").splitlines()] == ["1", "2", "3"]
    done(dev)


def test_stats_step_and_partial_last_area():
    dev = zero_dev()
    msg("st", "@stats_create", "0+1000", "300")
    assert [r[0] for r in areas("st", 0)] == ["0+300", "300+300", "600+300", "900+300"]
    # "/3" rounds the step up: 1000 / 3 -> 334.
    msg("st", "@stats_create", "0+1000", "/3")
    assert [r[0] for r in areas("st", 1)] == ["0+334", "334+334", "668+334"]
    # A range past the end of the device is accepted as given.
    msg("st", "@stats_create", "2000+100", "/1")
    assert [r[0] for r in areas("st", 2)] == ["2000+100"]
    done(dev)


def test_stats_print_ranges():
    dev = zero_dev()
    msg("st", "@stats_create", "-", "/8")
    assert [r[0] for r in areas("st", 0, "2", "3")] == ["512+256", "768+256", "1024+256"]
    assert [r[0] for r in areas("st", 0, "6", "-")] == ["1536+256", "1792+256"]
    assert [r[0] for r in areas("st", 0, "-", "1")] == ["0+256"]
    assert areas("st", 0, "8", "5") == []
    assert len(areas("st", 0, "100", "100")) == 0
    done(dev)


def test_stats_counts_reads_and_writes_per_area():
    dev = zero_dev()
    msg("st", "@stats_create", "-", "/4")            # 4 areas of 512 sectors
    dev.read(8, 4096)
    dev.read(24, 4096)                               # not contiguous: not merged
    dev.write(600, 8192)
    dev.read(1020, 4096)               # 4 sectors in area 1, 4 in area 2
    rows = areas("st", 0)
    assert [r[0] for r in rows] == ["0+512", "512+512", "1024+512", "1536+512"]
    pick = [[n[0], n[1], n[2], n[4], n[5], n[6], n[8]] for _, n, _ in rows]
    assert pick == [
        [2, 0, 16, 0, 0, 0, 0],
        [1, 0, 4, 1, 0, 16, 0],
        [1, 0, 4, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    assert all(h is None for _, _, h in rows)
    done(dev)


def test_stats_region_counts_only_its_range():
    dev = zero_dev()
    msg("st", "@stats_create", "100+50", "/1")
    dev.read(8, 4096)                  # outside
    dev.read(96, 4096)                 # sectors 100..103 inside
    dev.write(144, 8192)        # 144..149 inside
    (rng, n, _), = areas("st", 0)
    assert rng == "100+50"
    assert (n[0], n[2], n[4], n[6]) == (1, 4, 1, 6)
    done(dev)


def test_stats_clear_and_print_clear():
    dev = zero_dev()
    msg("st", "@stats_create", "-", "/2")
    for i in range(3):
        dev.read((8 + 8 * i), 4096)
    dev.write(1500, 4096)
    first = msg("st", "@stats_print_clear", "0")
    assert [l.split()[1] for l in first.splitlines()] == ["3", "0"]
    assert [l.split()[5] for l in first.splitlines()] == ["0", "1"]
    for _, n, _ in areas("st", 0):
        assert n[0] == n[2] == n[4] == n[6] == 0
    dev.read(8, 4096)
    assert areas("st", 0)[0][1][0] == 1
    assert msg("st", "@stats_clear", "0") == ""
    assert all(n[0] == n[2] == 0 for _, n, _ in areas("st", 0))
    # print_clear of one area leaves the other alone.
    dev.read(8, 4096)
    dev.write(1500, 4096)
    msg("st", "@stats_print_clear", "0", "1", "1")
    rows = areas("st", 0)
    assert rows[0][1][0] == 1 and rows[1][1][4] == 0
    done(dev)


def test_stats_set_aux():
    dev = zero_dev()
    msg("st", "@stats_create", "-", "/1", "prog", "old")
    assert msg("st", "@stats_set_aux", "0", "new_aux") == ""
    assert msg("st", "@stats_list") == "0: 0+2048 2048 prog new_aux"
    done(dev)


def test_stats_histogram_buckets():
    dev = zero_dev()
    # Boundaries in ms: every I/O of the zero target is far below 100 s.
    msg("st", "@stats_create", "-", "/1", "1", "histogram:100000,200000")
    # With precise timestamps the boundaries are ns: 1 ns is always exceeded.
    msg("st", "@stats_create", "-", "/1", "2", "precise_timestamps", "histogram:1")
    for i in range(5):
        dev.read((8 + 8 * i), 4096)
    dev.write(200, 4096)
    assert areas("st", 0)[0][2] == "6:0:0"
    (_, n, h), = areas("st", 1)
    assert h == "0:6"
    # Nanosecond times: reading took more than 0 ns.
    assert n[3] > 0 and n[7] > 0
    assert msg("st", "@stats_list") == (
        "0: 0+2048 2048 - - histogram:100000,200000\n"
        "1: 0+2048 2048 - - precise_timestamps histogram:1")
    done(dev)


def test_stats_discard_counts_as_write(loopdev):
    lo = loopdev(16)
    sectors = int(run("blockdev", "--getsz", lo))
    create("st", f"0 {sectors} linear {lo} 0")
    udev_settle()
    dev = Dev("/dev/mapper/st")
    msg("st", "@stats_create", "-", "/1")
    dev.discard(1024, 2048)
    (_, n, _), = areas("st", 0)
    assert (n[0], n[2]) == (0, 0)
    assert n[4] >= 1 and n[6] == 2048
    done(dev)


def test_stats_errors():
    dev = zero_dev()
    msg("st", "@stats_create", "-", "/1")
    k = Kmsg()
    cases = {
        ("@stats_delete", "5"): "No such file or directory",
        ("@stats_clear", "5"): "No such file or directory",
        ("@stats_print", "5"): "No such file or directory",
        ("@stats_print_clear", "5"): "No such file or directory",
        ("@stats_set_aux", "5", "x"): "No such file or directory",
        ("@stats_delete", "-1"): "Invalid argument",
        ("@stats_delete", "x"): "Invalid argument",
        ("@stats_delete",): "Invalid argument",
        ("@stats_delete", "0", "0"): "Invalid argument",
        ("@stats_print", "0", "1"): "Invalid argument",
        ("@stats_print", "0", "x", "1"): "Invalid argument",
        ("@stats_set_aux", "0"): "Invalid argument",
        ("@stats_list", "a", "b"): "Invalid argument",
        ("@stats_create", "-"): "Invalid argument",
        ("@stats_create", "x", "1"): "Invalid argument",
        ("@stats_create", "10+0", "1"): "Invalid argument",
        ("@stats_create", "-", "0"): "Invalid argument",
        ("@stats_create", "-", "/0"): "Invalid argument",
        ("@stats_create", "-", "1", "1", "bogus"): "Invalid argument",
        ("@stats_create", "-", "1", "2", "precise_timestamps"): "Invalid argument",
        ("@stats_create", "-", "1", "1", "histogram:10,5"): "Invalid argument",
        ("@stats_create", "-", "1", "1", "histogram:10,"): "Invalid argument",
        ("@stats_create", "-", "1", "1", "histogram:x"): "Invalid argument",
        ("@stats_create", "-", "1", "p", "a", "extra"): "Invalid argument",
        ("@stats_bogus",): "Invalid argument",
    }
    got = {args: msg_error("st", *args) for args in cases}
    assert got == cases
    lines = k.lines()
    k.close()
    assert any("Invalid parameters for message @stats_create" in l for l in lines), lines
    # Nothing was created by the failures.
    assert msg("st", "@stats_list") == "0: 0+2048 2048 - -"
    done(dev)


def test_stats_memory_cap_and_parameter():
    create("big", f"0 {1 << 40} zero")
    udev_settle()
    before = int(open(PARAM).read())
    # One area per sector of 512 GiB would need far more than 1/4 of RAM.
    assert msg_error("big", "@stats_create", "-", "1") == "Cannot allocate memory"
    assert int(open(PARAM).read()) == before
    msg("big", "@stats_create", "0+100000", "1")
    during = int(open(PARAM).read())
    assert during >= before + 100000 * 8
    msg("big", "@stats_delete", "0")
    assert int(open(PARAM).read()) == before
    remove("big")


def test_stats_device_without_table():
    dmsetup("create", "nt", "--notable")
    assert msg("nt", "@stats_create", "-", "/1") == "0"
    assert msg("nt", "@stats_list") == "0: 0+1 1 - -"
    remove("nt")


def test_stats_regions_go_with_device():
    dev = zero_dev()
    before = int(open(PARAM).read())
    msg("st", "@stats_create", "-", "1")
    assert int(open(PARAM).read()) > before
    done(dev)
    assert int(open(PARAM).read()) == before


def test_dmstats_create_list_report():
    dev = zero_dev()
    out = run("dmstats", "create", "st", "--areas", "2")
    assert "Created new region with 2 area(s) as region ID 0" in out, out
    assert msg("st", "@stats_list") == "0: 0+2048 1024 dmstats -"
    dev.read(8, 4096)
    dev.write(1100, 8192)
    rep = run("dmstats", "report", "st", "--region", "--noheadings", "-o",
              "region_id,read_count,read_sector_count,write_count,write_sector_count",
              "--separator", " ")
    rows = [tuple(l.split()) for l in rep.splitlines() if l.strip()]
    assert rows == [("0", "1", "8", "1", "16")], rep
    lst = run("dmstats", "list", "st", "--noheadings", "-o", "region_id,area_count",
              "--separator", " ")
    assert lst.split() == ["0", "2"], lst
    run("dmstats", "delete", "st", "--allregions")
    assert msg("st", "@stats_list") == ""
    done(dev)
