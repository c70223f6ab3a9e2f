# SPDX-License-Identifier: GPL-2.0-only
"""LVM2 on dm: linear and striped LVs, extend, rename, deactivate and
reactivate, remove; data verified across every step, tables checked."""
import os

from dmtest import SECTOR, devno, digest, dm_names, dmsetup, fill, run, table, udev_settle

VG = "dmtvg"
MB = 1 << 20


def lvm(*args):
    return run("lvm", *args, env={"LVM_SUPPRESS_FD_WARNINGS": "1"})


def _setup(brd):
    r0, r1 = brd(2, 32)
    lvm("pvcreate", "-q", "-y", r0, r1)
    # 1 MiB extents keep the layout easy to predict.
    lvm("vgcreate", "-q", "-s", "1m", VG, r0, r1)
    return r0, r1


def _teardown(r0, r1):
    lvm("vgremove", "-q", "-y", "-f", VG)
    lvm("pvremove", "-q", "-y", r0, r1)
    udev_settle()
    assert dm_names() == []


def _pe_start(pv):
    out = lvm("pvs", "--noheadings", "--units", "s", "--nosuffix", "-o", "pe_start", pv)
    return int(out.strip())


def test_lvm_linear_and_striped(brd):
    r0, r1 = _setup(brd)
    try:
        s0, s1 = _pe_start(r0), _pe_start(r1)
        lvm("lvcreate", "-q", "-y", "-n", "lin", "-L", "8m", VG, r0)
        lvm("lvcreate", "-q", "-y", "-n", "st", "-i", "2", "-I", "64k", "-L", "8m", VG, r0, r1)
        d0, d1 = devno(r0), devno(r1)
        assert table(VG + "-lin") == "0 16384 linear %s %d" % (d0, s0)
        # 4 extents on each PV; on r0 after the 8 used by lin.
        assert table(VG + "-st") == "0 16384 striped 2 128 %s %d %s %d" % (
            d0, s0 + 8 * 2048, d1, s1)
        lin, st = "/dev/%s/lin" % VG, "/dev/%s/st" % VG
        assert os.path.realpath(lin) == os.path.realpath("/dev/mapper/%s-lin" % VG)
        fill(lin, "lvm-lin")
        fill(st, "lvm-st")
        h_lin, h_st = digest(lin), digest(st)
        # The striped LV really stripes: its first 64 KiB chunk is on r0,
        # the second on r1.
        assert digest(r1, s1 * SECTOR, 64 << 10) == digest(st, 64 << 10, 64 << 10)
        assert digest(r0, (s0 + 8 * 2048) * SECTOR, 64 << 10) == digest(st, 0, 64 << 10)

        # Extend the linear LV: a second segment from the next free extents.
        lvm("lvextend", "-q", "-L", "12m", "%s/lin" % VG, r0)
        assert table(VG + "-lin").splitlines() == [
            "0 16384 linear %s %d" % (d0, s0),
            "16384 8192 linear %s %d" % (d0, s0 + 12 * 2048)]
        assert int(run("blockdev", "--getsz", lin)) == 24576
        assert digest(lin, 0, 8 * MB) == h_lin

        # Rename keeps the data and the table.
        lvm("lvrename", "-q", VG, "lin", "data")
        assert sorted(dm_names()) == [VG + "-data", VG + "-st"]
        data = "/dev/%s/data" % VG
        assert digest(data, 0, 8 * MB) == h_lin

        # Deactivate and reactivate the whole VG.
        lvm("vgchange", "-q", "-an", VG)
        udev_settle()
        assert dm_names() == []
        assert dmsetup("ls").strip() == "No devices found"
        lvm("vgchange", "-q", "-ay", VG)
        udev_settle()
        assert sorted(dm_names()) == [VG + "-data", VG + "-st"]
        assert digest(data, 0, 8 * MB) == h_lin
        assert digest(st) == h_st
        assert table(VG + "-st") == "0 16384 striped 2 128 %s %d %s %d" % (
            d0, s0 + 8 * 2048, d1, s1)
        uuid = dmsetup("info", "-c", "--noheadings", "-o", "uuid", VG + "-st").strip()
        assert uuid.startswith("LVM-") and len(uuid) == 4 + 32 + 32

        # Remove one LV; the other is untouched.
        lvm("lvremove", "-q", "-y", "%s/st" % VG)
        udev_settle()
        assert dm_names() == [VG + "-data"]
        assert digest(data, 0, 8 * MB) == h_lin
    finally:
        _teardown(r0, r1)
