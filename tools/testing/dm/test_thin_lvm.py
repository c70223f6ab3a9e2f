# SPDX-License-Identifier: GPL-2.0-only
"""LVM2 thin provisioning: lvcreate --type thin-pool, thin volumes, thin
snapshots, lvextend of the pool's data and metadata, ext4 with fstrim on a
thin volume, lvconvert --repair, and dmeventd extending a pool that filled
past its threshold.  LVM runs thin_check on the metadata at each
activation, so every test also checks the metadata our pool wrote."""
import os
import subprocess
import tempfile

from dmtest import (dm_names, fill, lvm, pattern, read_at, run, sh, status,
                    udev_settle, wait_for, write_at)

VG = "thinvg"
MB = 1 << 20


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


def test_lvm_thin_volume_and_snapshot(vg):
    vg(VG, 128)
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
    assert snap == old and again == old
    exp = bytearray(old)
    exp[MB:2 * MB] = new
    assert thin == bytes(exp)
    # 64 blocks of origin data plus the 16 the origin rewrote.
    assert used == 80


def test_lvm_extend_pool_data_and_metadata(vg):
    vg(VG, 128)
    make_pool_and_thin(size="16m", virt="48m")
    data = fill(lv("thin"), "lvm-extend", 0, 8 * MB)
    before = pool_fields()
    lvm("lvextend", "-q", "-y", "-L", "+16m", f"{VG}/pool")
    lvm("lvextend", "-q", "-y", "--poolmetadatasize", "+4m", f"{VG}/pool")
    after = pool_fields()
    more = fill(lv("thin"), "lvm-extend-more", 8 * MB, 16 * MB)
    got = read_at(lv("thin"), 0, 24 * MB)
    assert before[2] == "128/256"
    assert after[2] == "128/512"
    md_before = int(before[1].split("/")[1])
    md_after = int(after[1].split("/")[1])
    assert md_after == md_before + 1024
    assert after[4] == "rw"
    assert got == data + more


def test_lvm_thin_ext4_fstrim(vg):
    vg(VG, 128)
    mnt = tempfile.mkdtemp()
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
        os.rmdir(mnt)
    run("fsck.ext4", "-n", "-f", lv("thin"))
    assert full >= 256
    # ext4 frees the file's extents; whole pool blocks among them unmap.
    assert trimmed <= full - 128


def lv_names():
    out = lvm("lvs", "-a", "--noheadings", "-o", "lv_name", VG)
    return sorted(x.strip() for x in out.split())


def test_lvm_repair_inactive_pool(vg):
    """lvconvert --repair runs thin_repair over the metadata our pool wrote
    into the spare LV and swaps it in; the old metadata stays as
    pool_meta0 and the thin volume keeps its data."""
    vg(VG, 128)
    make_pool_and_thin()
    data = fill(lv("thin"), "lvm-repair", 0, 4 * MB)
    lvm("vgchange", "-q", "-an", VG)
    lvm("lvconvert", "-q", "-y", "--repair", f"{VG}/pool")
    names = lv_names()
    lvm("vgchange", "-q", "-ay", "-K", VG)
    udev_settle()
    got = read_at(lv("thin"), 0, 4 * MB)
    fields = pool_fields()
    lvm("lvremove", "-q", "-y", f"{VG}/pool_meta0")
    assert "pool_meta0" in names, names
    assert got == data
    assert fields[2] == "64/512" and fields[4] == "rw" and fields[7] == "-"


def lv_size_mb(name, env):
    out = run("lvs", "--noheadings", "--nosuffix", "--units", "m", "-o", "lv_size",
              f"{VG}/{name}", env=env)
    return float(out.strip())


def test_lvm_dmeventd_autoextends_pool(brd, tmp_path):
    """With monitoring on and thin_pool_autoextend_threshold=70, filling a
    pool past 70% makes dmeventd's thin plugin run lvextend --use-policies:
    the pool's data grows by 20%."""
    # dmeventd's plugin runs LVM inside dmeventd: it reads this config too.
    (tmp_path / "lvm.conf").write_text(
        "global { use_lvmpolld = 0 }\n"
        "activation {\n monitoring = 1\n thin_pool_autoextend_threshold = 70\n"
        " thin_pool_autoextend_percent = 20\n}\n")
    env = {"LVM_SYSTEM_DIR": str(tmp_path), "LVM_SUPPRESS_FD_WARNINGS": "1"}
    daemon = subprocess.Popen(["/usr/sbin/dmeventd", "-f"], env=dict(os.environ, **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (pv,) = brd(1, 128)
    try:
        run("pvcreate", "-q", "-y", pv, env=env)
        run("vgcreate", "-q", "-s", "1m", VG, pv, env=env)
        run("lvcreate", "-q", "-y", "--type", "thin-pool", "-L", "20m",
            "--chunksize", "64k", "-n", "pool", VG, env=env)
        run("lvcreate", "-q", "-y", "-V", "48m", "-T", f"{VG}/pool", "-n", "thin",
            env=env)
        udev_settle()
        monitored = run("lvs", "--noheadings", "-o", "seg_monitor", f"{VG}/pool",
                        env=env).strip()
        before = lv_size_mb("pool", env)
        data = fill(lv("thin"), "lvm-autoextend", 0, 16 * MB)      # 80%
        wait_for(lambda: lv_size_mb("pool", env) > before, timeout=60,
                 what="dmeventd to extend the pool")
        after = lv_size_mb("pool", env)
        got = read_at(lv("thin"), 0, 16 * MB)
    finally:
        run("vgremove", "-q", "-y", "-f", VG, env=env, check=False)
        run("pvremove", "-q", "-y", pv, env=env, check=False)
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        udev_settle()
    assert monitored == "monitored"
    assert before == 20.0 and after == 24.0
    assert got == data
    assert dm_names() == []
