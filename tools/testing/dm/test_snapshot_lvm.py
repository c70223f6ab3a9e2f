# SPDX-License-Identifier: GPL-2.0-only
"""LVM2 snapshots: lvcreate -s of a mounted ext4 volume, several snapshots,
lvconvert --merge (at once, and deferred to the next activation as after a
reboot), and a full snapshot becoming invalid without harming the origin."""
import os
import tempfile

from dmtest import (digest, dm_names, fill, lvm, pattern, read_at, sh, status,
                    udev_settle, wait_for, write_at)

VG = "snapvg"
MB = 1 << 20


def lv(name):
    return f"/dev/{VG}/{name}"


def lv_names():
    out = lvm("lvs", "--noheadings", "-o", "lv_name", VG)
    return sorted(x.strip() for x in out.split())


def test_lvm_snapshot_of_mounted_ext4(vg):
    vg(VG, 64)
    mnt = tempfile.mkdtemp()
    smnt = tempfile.mkdtemp()
    try:
        lvm("lvcreate", "-q", "-y", "-n", "data", "-L", "16m", VG)
        sh(f"mkfs.ext4 -q -F {lv('data')}")
        sh(f"mount {lv('data')} {mnt}")
        try:
            with open(f"{mnt}/before", "wb") as f:
                f.write(pattern("ext4-before", 2 * MB))
            sh("sync")
            lvm("lvcreate", "-q", "-y", "-s", "-n", "snap", "-L", "8m", lv("data"))
            udev_settle()
            assert status(f"{VG}-snap").split()[2] == "snapshot"
            assert status(f"{VG}-data").split()[2] == "snapshot-origin"
            frozen = digest(lv("snap"))
            with open(f"{mnt}/after", "wb") as f:
                f.write(pattern("ext4-after", 3 * MB))
            with open(f"{mnt}/before", "r+b") as f:
                f.write(b"changed" * 1000)
            sh("sync")
            assert digest(lv("snap")) == frozen
            # The snapshot is a consistent file system of its own.
            sh(f"e2fsck -fn {lv('snap')} >/dev/null")
            sh(f"mount {lv('snap')} {smnt}")
            try:
                with open(f"{smnt}/before", "rb") as f:
                    assert f.read() == pattern("ext4-before", 2 * MB)
                assert not os.path.exists(f"{smnt}/after")
                with open(f"{smnt}/only-in-snap", "wb") as f:
                    f.write(pattern("snap-file", MB))
                sh("sync")
            finally:
                sh(f"umount {smnt}")
            with open(f"{mnt}/after", "rb") as f:
                assert f.read() == pattern("ext4-after", 3 * MB)
            assert not os.path.exists(f"{mnt}/only-in-snap")
        finally:
            sh(f"umount {mnt}")
        sh(f"e2fsck -fn {lv('data')} >/dev/null")
        lvm("lvremove", "-q", "-y", f"{VG}/snap")
        udev_settle()
        assert dm_names() == [f"{VG}-data"]
    finally:
        os.rmdir(mnt)
        os.rmdir(smnt)


def test_lvm_several_snapshots(vg):
    vg(VG, 64)
    lvm("lvcreate", "-q", "-y", "-n", "data", "-L", "8m", VG)
    a = fill(lv("data"), "lvm-a", 0, 8 * MB)
    lvm("lvcreate", "-q", "-y", "-s", "-n", "s1", "-L", "12m", "-c", "4k", lv("data"))
    write_at(lv("data"), 1 * MB, pattern("lvm-b", 2 * MB))
    b = read_at(lv("data"), 0, 8 * MB)
    lvm("lvcreate", "-q", "-y", "-s", "-n", "s2", "-L", "12m", "-c", "64k", lv("data"))
    c = fill(lv("data"), "lvm-c", 0, 8 * MB)
    write_at(lv("s2"), 0, b"s2" * 2048)
    assert read_at(lv("s1"), 0, 8 * MB) == a
    assert read_at(lv("s2"), 4096, 8 * MB - 4096) == b[4096:]
    assert read_at(lv("s2"), 0, 4096) == b"s2" * 2048
    assert read_at(lv("data"), 0, 8 * MB) == c
    lvm("lvremove", "-q", "-y", f"{VG}/s1")
    assert read_at(lv("s2"), 4096, 8 * MB - 4096) == b[4096:]


def test_lvm_merge(vg):
    vg(VG, 64)
    lvm("lvcreate", "-q", "-y", "-n", "data", "-L", "8m", VG)
    a = fill(lv("data"), "merge-a", 0, 8 * MB)
    lvm("lvcreate", "-q", "-y", "-s", "-n", "snap", "-L", "8m", lv("data"))
    fill(lv("data"), "merge-b", 0, 6 * MB)
    s = pattern("merge-s", 256 * 1024)
    write_at(lv("snap"), 7 * MB, s)
    want = a[:7 * MB] + s + a[7 * MB + len(s):]
    assert read_at(lv("snap"), 0, 8 * MB) == want
    # Waits for the merge to finish, then drops the snapshot.
    lvm("lvconvert", "-q", "--merge", f"{VG}/snap")
    udev_settle()
    assert lv_names() == ["data"]
    assert read_at(lv("data"), 0, 8 * MB) == want
    assert dm_names() == [f"{VG}-data"]


def test_lvm_merge_on_next_activation(vg):
    """Merge requested while inactive starts when the LV is activated, from
    the exception table on disk (the reboot case)."""
    vg(VG, 64)
    lvm("lvcreate", "-q", "-y", "-n", "data", "-L", "8m", VG)
    a = fill(lv("data"), "defer-a", 0, 8 * MB)
    lvm("lvcreate", "-q", "-y", "-s", "-n", "snap", "-L", "8m", lv("data"))
    fill(lv("data"), "defer-b", 1 * MB, 5 * MB)
    lvm("vgchange", "-q", "-an", VG)
    udev_settle()
    lvm("lvconvert", "-q", "--merge", f"{VG}/snap")
    lvm("vgchange", "-q", "-ay", "--poll", "n", VG)
    udev_settle()
    # snapshot-merge on the origin: it already reads as the snapshot
    assert status(f"{VG}-data").split()[2] == "snapshot-merge"
    assert read_at(lv("data"), 0, 8 * MB) == a
    lvm("lvchange", "-q", "--poll", "y", f"{VG}/data")

    def merged():
        return lv_names() == ["data"]
    wait_for(merged, 60, "merge to finish")
    udev_settle()
    assert read_at(lv("data"), 0, 8 * MB) == a


def test_lvm_snapshot_overflow(vg):
    vg(VG, 64)
    lvm("lvcreate", "-q", "-y", "-n", "data", "-L", "8m", VG)
    lvm("lvcreate", "-q", "-y", "-s", "-n", "snap", "-L", "1m", lv("data"))
    new = fill(lv("data"), "ovf-lvm", 0, 4 * MB)
    assert status(f"{VG}-snap").split()[3] == "Invalid"
    attr = lvm("lvs", "--noheadings", "-o", "lv_attr", f"{VG}/snap").strip()
    assert attr[4] == "I"
    assert read_at(lv("data"), 0, 4 * MB) == new
    lvm("lvremove", "-q", "-y", f"{VG}/snap")
    assert read_at(lv("data"), 0, 4 * MB) == new
