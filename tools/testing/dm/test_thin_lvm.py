# SPDX-License-Identifier: GPL-2.0-only
"""LVM2 thin provisioning: lvcreate --type thin-pool, thin volumes, thin
snapshots, lvextend of the pool's data and metadata, and ext4 with fstrim
on a thin volume.  LVM runs thin_check on the metadata at each activation,
so every test also checks the metadata our pool wrote."""
import tempfile

from dmtest import (dm_names, fill, pattern, read_at, run, sh, status, udev_settle,
                    write_at)

VG = "thinvg"
MB = 1 << 20
CONF = "global/use_lvmpolld=0 activation/monitoring=0"


def lvm(*args, check=True):
    return run("lvm", *args[:1], "--config", CONF, *args[1:], check=check,
               env={"LVM_SUPPRESS_FD_WARNINGS": "1"})


def setup_vg(brd):
    (pv,) = brd(1, 128)
    lvm("pvcreate", "-q", "-y", pv)
    lvm("vgcreate", "-q", "-s", "1m", VG, pv)
    return pv


def teardown_vg(pv):
    lvm("vgremove", "-q", "-y", "-f", VG)
    lvm("pvremove", "-q", "-y", pv)
    udev_settle()
    assert dm_names() == []


def lv(name):
    return f"/dev/{VG}/{name}"


def pool_fields():
    """The thin-pool status fields after the target name."""
    return status(f"{VG}-pool-tpool").split()[3:]


def make_pool_and_thin(size="32m", virt="48m"):
    lvm("lvcreate", "-q", "-y", "--type", "thin-pool", "-L", size,
        "--chunksize", "64k", "-n", "pool", VG)
    lvm("lvcreate", "-q", "-y", "-V", virt, "-T", f"{VG}/pool", "-n", "thin")
    udev_settle()


def test_lvm_thin_volume_and_snapshot(brd):
    pv = setup_vg(brd)
    try:
        make_pool_and_thin()
        old = fill(lv("thin"), "lvm-thin-old", 0, 4 * MB)
        lvm("lvcreate", "-q", "-y", "-s", "-kn", "-n", "snap", f"{VG}/thin")
        udev_settle()
        new = pattern("lvm-thin-new", MB)
        write_at(lv("thin"), MB, new)
        snap = read_at(lv("snap"), 0, 4 * MB)
        thin = read_at(lv("thin"), 0, 4 * MB)
        used = int(pool_fields()[2].split("/")[0])
        # Deactivate and activate again: thin_check runs on our metadata.
        lvm("vgchange", "-q", "-an", VG)
        lvm("vgchange", "-q", "-ay", "-K", VG)
        udev_settle()
        again = read_at(lv("snap"), 0, 4 * MB)
    finally:
        teardown_vg(pv)
    assert snap == old and again == old
    exp = bytearray(old)
    exp[MB:2 * MB] = new
    assert thin == bytes(exp)
    # 64 blocks of origin data plus the 16 the origin rewrote.
    assert used == 80


def test_lvm_extend_pool_data_and_metadata(brd):
    pv = setup_vg(brd)
    try:
        make_pool_and_thin(size="16m", virt="48m")
        data = fill(lv("thin"), "lvm-extend", 0, 8 * MB)
        before = pool_fields()
        lvm("lvextend", "-q", "-y", "-L", "+16m", f"{VG}/pool")
        lvm("lvextend", "-q", "-y", "--poolmetadatasize", "+4m", f"{VG}/pool")
        after = pool_fields()
        more = fill(lv("thin"), "lvm-extend-more", 8 * MB, 16 * MB)
        got = read_at(lv("thin"), 0, 24 * MB)
    finally:
        teardown_vg(pv)
    assert before[2] == "128/256"
    assert after[2] == "128/512"
    md_before = int(before[1].split("/")[1])
    md_after = int(after[1].split("/")[1])
    assert md_after == md_before + 1024
    assert after[4] == "rw"
    assert got == data + more


def test_lvm_thin_ext4_fstrim(brd):
    pv = setup_vg(brd)
    mnt = tempfile.mkdtemp()
    try:
        make_pool_and_thin(size="48m", virt="64m")
        sh(f"mkfs.ext4 -q -F -E nodiscard {lv('thin')}")
        sh(f"mount {lv('thin')} {mnt}")
        try:
            with open(f"{mnt}/big", "wb") as f:
                f.write(pattern("ext4-thin", 16 * MB))
            sh("sync")
            full = int(pool_fields()[2].split("/")[0])
            sh(f"rm {mnt}/big; sync; fstrim {mnt}")
            trimmed = int(pool_fields()[2].split("/")[0])
        finally:
            sh(f"umount {mnt}")
        run("fsck.ext4", "-n", "-f", lv("thin"))
    finally:
        teardown_vg(pv)
    assert full >= 256
    # ext4 frees the file's extents; whole pool blocks among them unmap.
    assert trimmed <= full - 128
