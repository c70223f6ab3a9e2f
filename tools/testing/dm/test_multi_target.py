# SPDX-License-Identifier: GPL-2.0-only
"""dm core: tables of several targets; I/O that crosses target boundaries is
split so that each piece reaches the right target."""
import errno

from corehelp import info
from dmtest import (SECTOR, create, devno, dmsetup, io_errno, pattern, read_at, remove,
                    status, table, write_at)


def test_concatenation_in_reverse_order(brd):
    r0, r1 = brd(2, 16)
    # Four 1 MiB pieces taken from two disks in a scrambled order.
    dev = create("cat", ["0 2048 linear %s 6144" % r1,
                         "2048 2048 linear %s 0" % r0,
                         "4096 2048 linear %s 0" % r1,
                         "6144 2048 linear %s 2048" % r0])
    data = pattern("cat", 8192 * SECTOR)
    # One big write spanning every boundary, unaligned to the boundaries.
    write_at(dev, 0, data)
    mb = 1 << 20
    assert read_at(r1, 6144 * SECTOR, mb) == data[0:mb]
    assert read_at(r0, 0, mb) == data[mb:2 * mb]
    assert read_at(r1, 0, mb) == data[2 * mb:3 * mb]
    assert read_at(r0, 2048 * SECTOR, mb) == data[3 * mb:4 * mb]
    # Reads crossing a boundary in the middle of a bio.
    for off in (mb - 4096, 2 * mb - 512, 3 * mb - 8192):
        assert read_at(dev, off, 16384) == data[off:off + 16384]
    remove("cat")


def test_mixed_targets_and_boundaries(brd):
    r0, r1 = brd(2, 16)
    dev = create("mix", ["0 1024 linear %s 0" % r0,
                         "1024 1024 zero",
                         "2048 2048 striped 2 8 %s 1024 %s 1024" % (r0, r1),
                         "4096 1024 error"])
    i = info("mix")
    assert i["segments"] == "4"
    d0, d1 = devno(r0), devno(r1)
    assert table("mix").splitlines() == [
        "0 1024 linear %s 0" % d0,
        "1024 1024 zero ",
        "2048 2048 striped 2 8 %s 1024 %s 1024" % (d0, d1),
        "4096 1024 error "]
    assert status("mix").splitlines() == [
        "0 1024 linear ",
        "1024 1024 zero ",
        "2048 2048 striped 2 %s %s 1 AA" % (d0, d1),
        "4096 1024 error "]
    data = pattern("mix", 4096 * SECTOR)
    write_at(dev, 0, data)
    got = read_at(dev, 0, 4096 * SECTOR)
    assert got[:1024 * SECTOR] == data[:1024 * SECTOR]
    assert got[1024 * SECTOR:2048 * SECTOR] == bytes(1024 * SECTOR)
    assert got[2048 * SECTOR:] == data[2048 * SECTOR:]
    # The linear piece really is on r0 at 0, the striped piece is on both.
    assert read_at(r0, 0, 1024 * SECTOR) == data[:1024 * SECTOR]
    assert read_at(r1, 1024 * SECTOR, 8 * SECTOR) == data[2056 * SECTOR:2064 * SECTOR]
    # I/O touching the error target fails as a whole; just before it works.
    assert io_errno(dev, 4095 * SECTOR, SECTOR) == 0
    assert io_errno(dev, 4094 * SECTOR, 4 * SECTOR) == errno.EIO
    assert io_errno(dev, 4096 * SECTOR, 4096, write=True) == errno.EIO
    remove("mix")


def test_single_sector_targets(brd):
    ram, = brd(1, 16)
    # 64 one-sector targets, each mapping to a different place.
    lines = ["%d 1 linear %s %d" % (i, ram, 1000 + 7 * i) for i in range(64)]
    dev = create("tiny", lines)
    data = pattern("tiny", 64 * SECTOR)
    write_at(dev, 0, data)
    for i in range(64):
        assert read_at(ram, (1000 + 7 * i) * SECTOR, SECTOR) == \
            data[i * SECTOR:(i + 1) * SECTOR], f"sector {i}"
    assert read_at(dev, 0, len(data)) == data
    remove("tiny")


def test_reload_changes_layout_under_data(brd):
    ram, = brd(1, 16)
    dev = create("swap", ["0 1024 linear %s 0" % ram, "1024 1024 linear %s 1024" % ram])
    data = pattern("swap", 2048 * SECTOR)
    write_at(dev, 0, data)
    dmsetup("load", "swap", input="0 1024 linear %s 1024\n1024 1024 linear %s 0\n"
            % (ram, ram))
    dmsetup("resume", "swap")
    half = 1024 * SECTOR
    assert read_at(dev, 0, 2 * half) == data[half:] + data[:half]
    remove("swap")
