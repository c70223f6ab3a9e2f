# SPDX-License-Identifier: GPL-2.0-only
"""Zoned pass-through: linear (and flakey) over a host-managed null_blk.

The mapped device inherits the zoned model, zone size and zone count,
reports the lower zones remapped to its own sector space, passes zone
management through, and refuses tables that would map partial zones or mix
zoned models.
"""
import json
import os
import re

import pytest

from corehelp import create_fails
from dmtest import (create, io_errno, pattern, read_at, remove, run, udev_settle,
                    write_at)

SECTOR = 512
ZONE_MB = 4
ZONE = ZONE_MB << 11          # sectors

CONV = 2                      # conventional zones at the start


@pytest.fixture
def zoned(null_blk):
    """A 1 GiB host-managed null_blk (4 MiB zones, two conventional)."""
    # gb must be an integer: 1 GiB of 4 MiB zones, memory-backed lazily.
    dev, = null_blk(1, 1, zoned=1, zone_size=ZONE_MB, zone_nr_conv=CONV,
                    memory_backed=1)
    return dev


def queue_attr(dev, attr):
    name = os.path.basename(os.path.realpath(dev))
    with open(f"/sys/block/{name}/queue/{attr}") as f:
        return f.read().strip()


def zones(dev, start=0, count=None):
    """blkzone report as (start, len, wp offset in zone, type, cond) tuples."""
    args = ["blkzone", "report", "-o", str(start)]
    if count is not None:
        args += ["-c", str(count)]
    zs = []
    for line in run(*args, dev).splitlines():
        m = re.search(r"start: (0x[0-9a-f]+), len (0x[0-9a-f]+), .*"
                      r"wptr (0x[0-9a-f]+) .*zcond:\s*(\d+)\(.*type:\s*(\d+)\(",
                      line)
        assert m, line
        start_, len_, wp, cond, typ = m.groups()
        zs.append((int(start_, 16), int(len_, 16), int(wp, 16), int(typ),
                   int(cond)))
    return zs


def test_linear_inherits_zoned_model(zoned):
    nzones = int(queue_attr(zoned, "nr_zones"))
    size = nzones * ZONE
    dm = create("zlin", f"0 {size} linear {zoned} 0")
    assert queue_attr(dm, "zoned") == "host-managed"
    assert queue_attr(dm, "chunk_sectors") == str(ZONE)
    assert queue_attr(dm, "nr_zones") == str(nzones)
    udev_settle()
    remove("zlin", "--retry")


def test_linear_reports_zones_remapped(zoned):
    # Map zones 4..11 of the device: the dm device's zone 0 is zone 4 below.
    write_at(zoned, 5 * ZONE * SECTOR, pattern("wp", 64 << 10))
    dm = create("zlin", f"0 {8 * ZONE} linear {zoned} {4 * ZONE}")
    top = zones(dm)
    below = zones(zoned, 4 * ZONE, 8)
    assert len(top) == 8
    for (ts, tl, twp, tt, tc), (bs, bl, bwp, bt, bc) in zip(top, below):
        assert (ts + 4 * ZONE, tl, twp, tt, tc) == (bs, bl, bwp, bt, bc)
    # Zone 1 above (5 below) was written 128 sectors deep.
    assert top[1][2] == 128
    udev_settle()
    remove("zlin", "--retry")


def test_linear_sequential_write_advances_wp(zoned):
    dm = create("zlin", f"0 {8 * ZONE} linear {zoned} {4 * ZONE}")
    data = pattern("seq", 256 << 10)
    write_at(dm, 2 * ZONE * SECTOR, data)
    assert zones(dm, 2 * ZONE, 1)[0][2] == len(data) // SECTOR
    assert zones(zoned, 6 * ZONE, 1)[0][2] == len(data) // SECTOR
    assert read_at(zoned, 6 * ZONE * SECTOR, len(data)) == data
    assert read_at(dm, 2 * ZONE * SECTOR, len(data)) == data
    udev_settle()
    remove("zlin", "--retry")


def test_linear_unaligned_write_to_seq_zone_fails(zoned):
    dm = create("zlin", f"0 {8 * ZONE} linear {zoned} {4 * ZONE}")
    assert io_errno(dm, 3 * ZONE * SECTOR + 4096, 4096, write=True) is not None
    assert zones(zoned, 7 * ZONE, 1)[0][2] == 0
    udev_settle()
    remove("zlin", "--retry")


def test_linear_zone_reset_passes_through(zoned):
    write_at(zoned, 6 * ZONE * SECTOR, pattern("z", 64 << 10))
    dm = create("zlin", f"0 {8 * ZONE} linear {zoned} {4 * ZONE}")
    run("blkzone", "reset", "-o", str(2 * ZONE), "-c", "1", dm)
    assert zones(zoned, 6 * ZONE, 1)[0][2] == 0
    assert zones(dm, 2 * ZONE, 1)[0][4] == 1     # empty
    udev_settle()
    remove("zlin", "--retry")


def test_linear_zone_finish_passes_through(zoned):
    dm = create("zlin", f"0 {8 * ZONE} linear {zoned} {4 * ZONE}")
    run("blkzone", "finish", "-o", str(3 * ZONE), "-c", "1", dm)
    z = zones(zoned, 7 * ZONE, 1)[0]
    assert z[4] == 14                            # full
    udev_settle()
    remove("zlin", "--retry")


def test_conventional_zones_only_map_as_regular(zoned):
    # Two conventional zones and nothing else: the zone model still comes
    # from the device.
    dm = create("zlin", f"0 {CONV * ZONE} linear {zoned} 0")
    data = pattern("conv", 1 << 20)
    write_at(dm, 4096, data)
    assert read_at(dm, 4096, len(data)) == data
    udev_settle()
    remove("zlin", "--retry")


def test_flakey_passes_zones(zoned):
    dm = create("zfl", f"0 {8 * ZONE} flakey {zoned} {4 * ZONE} 60 0")
    assert queue_attr(dm, "zoned") == "host-managed"
    assert len(zones(dm)) == 8
    udev_settle()
    remove("zfl", "--retry")


@pytest.mark.parametrize("line,msg", [
    (f"0 {ZONE} linear {{dev}} 8",
     r"start=8 not aligned to h/w zone size %d of nullb0" % ZONE),
    (f"0 {ZONE + 8} linear {{dev}} 0",
     r"len=%d not aligned to h/w zone size %d of nullb0" % (ZONE + 8, ZONE)),
])
def test_partial_zone_mapping_rejected(zoned, line, msg):
    stderr, klog = create_fails("zbad", line.format(dev=zoned))
    assert any(re.search(msg, l) for l in klog), klog


def test_mixed_zoned_and_regular_rejected(zoned, brd):
    ram, = brd(1, 8)
    stderr, klog = create_fails("zmix", [f"0 {ZONE} linear {zoned} {4 * ZONE}",
                                         f"{ZONE} 8192 linear {ram} 0"])
    assert any("zoned model is not consistent across all devices" in l
               for l in klog), klog


def test_zero_target_cannot_sit_with_zoned(zoned):
    stderr, klog = create_fails("zmix", [f"0 {ZONE} linear {zoned} {4 * ZONE}",
                                         f"{ZONE} {ZONE} zero"])
    assert any("zoned model is not consistent across all devices" in l
               for l in klog), klog
