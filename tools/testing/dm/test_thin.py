# SPDX-License-Identifier: GPL-2.0-only
"""thin-pool and thin: the admin-guide dmsetup cookbook (pool, thin devices,
snapshots, delete), exact status and table lines, constructor and message
errors, discards, running out of data space, growing the data device,
metadata snapshots, read-only pools, external origins and commits on FLUSH.

Devices are brd RAM disks: ram0 holds the metadata, ram1 the data, 64 KiB
data blocks.
"""
import errno
import os
import subprocess
import tempfile
import time

import pytest

from corehelp import Kmsg, create_fails
from dmtest import (create, devno, dmsetup, fill, io_errno, load, pattern, read_at,
                    remove, run, sh, status, table, target_versions, wait_for, write_at)
from thinhelp import after_test

MB = 1 << 20
BS = 128                      # data block size, sectors
BLOCK = BS * 512
POOL, THIN, SNAP = "tp-pool", "tp-thin", "tp-snap"
POOL_DEV = "/dev/mapper/" + POOL
THIN_DEV = "/dev/mapper/" + THIN
SNAP_DEV = "/dev/mapper/" + SNAP


@pytest.fixture
def devs(request, brd):
    """(metadata, data, spare) RAM disks of 64 MiB each. After the test no
    pool may be left and the metadata must pass thin_check."""
    d = brd(3, 64)
    yield d
    after_test(request, d[0], "tp-")


def make_pool(devs, sectors=None, low_water=16, features=""):
    meta, data = devs[0], devs[1]
    if sectors is None:
        sectors = 64 * MB // 512
    create(POOL, f"0 {sectors} thin-pool {meta} {data} {BS} {low_water}"
           + (f" {features}" if features else ""))
    return sectors


def msg(*words, name=POOL, check=True):
    return dmsetup("message", name, "0", " ".join(str(w) for w in words), check=check)


def msg_fails(*words, name=POOL):
    p = subprocess.run(["dmsetup", "message", name, "0", " ".join(str(w) for w in words)],
                       capture_output=True, text=True)
    assert p.returncode != 0, f"message {words} unexpectedly succeeded"
    return p.stderr


def make_thin(name=THIN, dev_id=0, sectors=32 * MB // 512, origin=None):
    return create(name, f"0 {sectors} thin {POOL_DEV} {dev_id}"
                  + (f" {origin}" if origin else ""))


def pool_fields():
    return status(POOL).split()[3:]


def used_data():
    used, total = pool_fields()[2].split("/")
    return int(used), int(total)


def discard_word(data):
    """How the pool reports discards on DATA when passdown is asked for."""
    name = os.path.basename(os.path.realpath(data))
    with open(f"/sys/block/{name}/queue/discard_max_bytes") as f:
        supported = int(f.read()) > 0
    return "discard_passdown" if supported else "no_discard_passdown"


def teardown(*names):
    for n in names:
        dmsetup("remove", n, check=False)


def test_target_versions(devs):
    run("modprobe", "dm-thin-pool")
    v = target_versions()
    assert v["thin-pool"] == (1, 22, 0)
    assert v["thin"] == (1, 22, 0)


def test_fresh_pool_status_and_table(devs):
    n = make_pool(devs)
    try:
        st = status(POOL)
        tb = table(POOL)
    finally:
        remove(POOL)
    # 64 MiB of metadata: 16384 blocks, threshold min(1024, 16384 / 4).
    # Used metadata counts the reserve stock keeps back: a tenth of the
    # device (1638 blocks) plus the 10 blocks a fresh pool uses.
    assert st == (f"0 131072 thin-pool 0 1648/16384 0/1024 - rw {discard_word(devs[1])} "
                  "queue_if_no_space - 1024 ")
    assert tb == f"0 {n} thin-pool {devno(devs[0])} {devno(devs[1])} 128 16 0 "


def test_features_table_order_and_status(devs):
    make_pool(devs, features="4 error_if_no_space no_discard_passdown "
              "ignore_discard skip_block_zeroing")
    try:
        tb = table(POOL)
        f = pool_fields()
    finally:
        remove(POOL)
    assert tb.endswith(" 128 16 4 skip_block_zeroing ignore_discard "
                       "no_discard_passdown error_if_no_space ")
    assert f[4:8] == ["rw", "ignore_discard", "error_if_no_space", "-"]


@pytest.mark.parametrize("args,msg", [
    ("{m} {d} 128", "Invalid argument count"),
    ("{m} {m} 128 0", "Error setting metadata or data device"),
    ("{m} {d} 64 0", "Invalid block size"),
    ("{m} {d} 192 0", "Invalid block size"),
    ("{m} {d} 4194304 0", "Invalid block size"),
    ("{m} {d} x 0", "Invalid block size"),
    ("{m} {d} 128 x", "Invalid low water mark"),
    ("{m} {d} 128 0 1 frobnicate", "Unrecognised pool feature requested"),
    ("{m} {d} 128 0 5 skip_block_zeroing ignore_discard no_discard_passdown "
     "read_only error_if_no_space", "Invalid number of pool feature arguments"),
    ("/dev/nonexistent {d} 128 0", "Error opening metadata block device"),
    ("{m} /dev/nonexistent 128 0", "Error getting data device"),
])
def test_pool_ctr_errors(devs, args, msg):
    a = args.format(m=devs[0], d=devs[1])
    err, klog = create_fails(POOL, f"0 131072 thin-pool {a}")
    assert "Invalid argument" in err or "No such" in err, err
    assert any(f"thin-pool: {msg}" in line for line in klog), klog


def test_block_size_change_refused(devs):
    make_pool(devs)
    remove(POOL)
    meta, data = devs[0], devs[1]
    err, klog = create_fails(POOL, f"0 131072 thin-pool {meta} {data} 256 0")
    assert any("thin-pool: Error creating metadata object" in line for line in klog), klog


def test_cookbook_thin_write_read(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            assert status(THIN) == "0 65536 thin 0 -"
            assert read_at(THIN_DEV, 0, 2 * MB) == bytes(2 * MB)
            data = pattern("cookbook", MB)
            write_at(THIN_DEV, 0, data)
            # A partial block far away: the rest of its block reads as zeroes.
            tail = pattern("tail", 4096)
            write_at(THIN_DEV, 20 * MB + 8192, tail)
            assert read_at(THIN_DEV, 0, MB) == data
            blk = read_at(THIN_DEV, 20 * MB, BLOCK)
            thin_st = status(THIN)
            used, total = used_data()
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert blk == bytes(8192) + tail + bytes(BLOCK - 8192 - 4096)
    # 16 + 1 blocks mapped; the highest is block 320 (20 MiB / 64 KiB).
    assert thin_st == f"0 65536 thin {17 * BS} {321 * BS - 1}"
    assert (used, total) == (17, 1024)


def pool_sectors():
    """(read, written) sectors the pool device's block layer counted."""
    name = os.path.basename(os.path.realpath(POOL_DEV))
    with open(f"/sys/block/{name}/stat") as f:
        fields = [int(x) for x in f.read().split()]
    return fields[2], fields[6]


def test_thin_io_goes_through_pool_device(devs):
    """Thin I/O and the copy that breaks sharing reach the data device
    through the pool device, so the pool's I/O statistics count them."""
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            data = fill(THIN_DEV, "via-pool", 0, MB)
            # udev reads a device closed after writing: let it finish.
            run("udevadm", "settle")
            r0, w0 = pool_sectors()
            got = read_at(THIN_DEV, 0, MB)
            r1, w1 = pool_sectors()
            fill(THIN_DEV, "more", MB, MB)
            r2, w2 = pool_sectors()
            dmsetup("suspend", THIN)
            msg("create_snap", 1, 0)
            dmsetup("resume", THIN)
            r3, w3 = pool_sectors()
            write_at(THIN_DEV, 0, pattern("broken", 4096))
            r4, w4 = pool_sectors()
        finally:
            remove(THIN)
        msg("delete", 1)
    finally:
        remove(POOL)
    assert got == data
    assert (r1 - r0, w1 - w0) == (2048, 0)
    assert w2 - w1 == 2048
    # The shared block is copied (read and written whole), then the write.
    assert w4 - w3 == BS + 8 and r4 - r3 >= BS


def test_thin_table_line(devs):
    make_pool(devs)
    try:
        pool_no = devno(POOL_DEV)
        msg("create_thin", 3)
        make_thin(dev_id=3)
        try:
            tb = table(THIN)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert tb == f"0 65536 thin {pool_no} 3"


def test_data_survives_reactivation(devs):
    make_pool(devs)
    data = pattern("persist", 3 * MB)
    try:
        msg("create_thin", 1)
        make_thin(dev_id=1)
        try:
            write_at(THIN_DEV, 5 * MB, data)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    make_pool(devs)
    try:
        make_thin(dev_id=1)
        try:
            got = read_at(THIN_DEV, 5 * MB, 3 * MB)
            zero = read_at(THIN_DEV, 0, MB)
        finally:
            remove(THIN)
        used = used_data()[0]
    finally:
        remove(POOL)
    assert got == data and zero == bytes(MB)
    assert used == 48


def test_snapshot_diverges(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            old = fill(THIN_DEV, "origin-old", 0, 2 * MB)
            dmsetup("suspend", THIN)
            msg("create_snap", 1, 0)
            dmsetup("resume", THIN)
            make_thin(SNAP, 1)
            try:
                assert used_data()[0] == 32
                new = pattern("origin-new", 4096)
                write_at(THIN_DEV, MB + 4096, new)
                snap_new = pattern("snap-new", BLOCK)
                write_at(SNAP_DEV, 0, snap_new)
                orig = read_at(THIN_DEV, 0, 2 * MB)
                snap = read_at(SNAP_DEV, 0, 2 * MB)
                used = used_data()[0]
            finally:
                remove(SNAP)
        finally:
            remove(THIN)
        msg("delete", 0)
        after_delete = used_data()[0]
        msg("delete", 1)
        after_both = used_data()[0]
    finally:
        remove(POOL)
    exp_orig = bytearray(old)
    exp_orig[MB + 4096:MB + 8192] = new
    exp_snap = bytearray(old)
    exp_snap[:BLOCK] = snap_new
    assert orig == bytes(exp_orig)
    assert snap == bytes(exp_snap)
    # Each side broke sharing of one block.
    assert used == 34
    assert after_delete == 32 and after_both == 0


def test_snapshot_of_snapshot(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            a = fill(THIN_DEV, "gen-a", 0, MB)
        finally:
            remove(THIN)
        msg("create_snap", 1, 0)
        make_thin(SNAP, 1)
        try:
            b = pattern("gen-b", BLOCK)
            write_at(SNAP_DEV, 0, b)
        finally:
            remove(SNAP)
        msg("create_snap", 2, 1)
        make_thin(SNAP, 2)
        try:
            got = read_at(SNAP_DEV, 0, MB)
        finally:
            remove(SNAP)
    finally:
        remove(POOL)
    assert got == b + a[BLOCK:]


@pytest.mark.parametrize("words,err", [
    (["create_thin", 0], "File exists"),
    (["create_thin", 16777216], "Invalid argument"),
    (["create_thin", "x"], "Invalid argument"),
    (["create_thin"], "Invalid argument"),
    (["create_snap", 5, 9], "No data available"),
    (["create_snap", 0, 0], "File exists"),
    (["delete", 7], "No data available"),
    (["set_transaction_id", 1, 2], "Invalid argument"),
    (["set_transaction_id", "x", 2], "Invalid argument"),
    (["release_metadata_snap"], "Invalid argument"),
    (["frobnicate"], "Invalid argument"),
])
def test_message_errors(devs, words, err):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        out = msg_fails(*words)
    finally:
        remove(POOL)
    assert err in out, out


def test_messages_are_case_insensitive_and_set_transaction_id(devs):
    make_pool(devs)
    try:
        msg("CREATE_THIN", 4)
        msg("set_transaction_id", 0, 7)
        f = pool_fields()
        msg("Delete", 4)
    finally:
        remove(POOL)
    assert f[0] == "7"


def test_open_thin_cannot_be_deleted(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            out = msg_fails("delete", 0)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert "Device or resource busy" in out, out


def test_reserve_release_metadata_snap(devs):
    make_pool(devs)
    try:
        assert pool_fields()[3] == "-"
        msg("reserve_metadata_snap")
        held = pool_fields()[3]
        again = msg_fails("reserve_metadata_snap")
        msg("release_metadata_snap")
        after = pool_fields()[3]
        twice = msg_fails("release_metadata_snap")
    finally:
        remove(POOL)
    assert held.isdigit() and int(held) > 0
    assert "Device or resource busy" in again
    assert after == "-"
    assert "Invalid argument" in twice


@pytest.mark.parametrize("args,msg", [
    ("{p}", "Invalid argument count"),
    ("{p} 0 {o} extra", "Invalid argument count"),
    ("{p} x", "Invalid device id"),
    ("{p} 16777216", "Invalid device id"),
    ("{p} 9", "Couldn't open thin internal device"),
    ("{p} 0 {p}", "Error setting origin device"),
    ("/dev/nonexistent 0", "Error opening pool device"),
    ("{o} 0", "Couldn't get pool mapped device"),
])
def test_thin_ctr_errors(devs, args, msg):
    make_pool(devs)
    try:
        dmsetup("message", POOL, "0", "create_thin 0")
        a = args.format(p=POOL_DEV, o=devs[2])
        err, klog = create_fails(THIN, f"0 8192 thin {a}")
    finally:
        remove(POOL)
    assert any(f"thin: {msg}" in line for line in klog), klog


def test_thin_refused_while_pool_suspended(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        dmsetup("suspend", POOL)
        try:
            err, klog = create_fails(THIN, f"0 8192 thin {POOL_DEV} 0")
        finally:
            dmsetup("resume", POOL)
    finally:
        remove(POOL)
    assert any("thin: Unable to activate thin device while pool is suspended" in line
               for line in klog), klog


def test_discard_unmaps_blocks(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            fill(THIN_DEV, "to-discard", 0, 2 * MB)
            before = used_data()[0]
            run("blkdiscard", "-o", str(MB), "-l", str(MB), THIN_DEV)
            after = used_data()[0]
            st = status(THIN)
            head = read_at(THIN_DEV, 0, MB)
            gone = read_at(THIN_DEV, MB, MB)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert (before, after) == (32, 16)
    assert st == f"0 65536 thin {16 * BS} {16 * BS - 1}"
    assert head == pattern("to-discard", 2 * MB)[:MB]
    assert gone == bytes(MB)


def test_discard_keeps_snapshot_data(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            data = fill(THIN_DEV, "shared-discard", 0, MB)
            dmsetup("suspend", THIN)
            msg("create_snap", 1, 0)
            dmsetup("resume", THIN)
            run("blkdiscard", THIN_DEV)
            used = used_data()[0]
        finally:
            remove(THIN)
        make_thin(SNAP, 1)
        try:
            snap = read_at(SNAP_DEV, 0, MB)
        finally:
            remove(SNAP)
    finally:
        remove(POOL)
    assert used == 16
    assert snap == data


def test_ignore_discard_thin_has_no_discard(devs):
    make_pool(devs, features="1 ignore_discard")
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            rc = subprocess.run(["blkdiscard", THIN_DEV], capture_output=True).returncode
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert rc != 0


def test_out_of_space_error_if_no_space(devs):
    # 32 data blocks (2 MiB) behind a 16 MiB thin device.
    make_pool(devs, sectors=32 * BS, low_water=4, features="1 error_if_no_space")
    try:
        msg("create_thin", 0)
        make_thin(sectors=16 * MB // 512)
        try:
            data = fill(THIN_DEV, "fills", 0, 2 * MB)
            e = io_errno(THIN_DEV, 4 * MB, 4096, write=True)
            f = pool_fields()
            # Mapped blocks still take writes; reads still work.
            write_at(THIN_DEV, 0, pattern("over", 4096))
            got = read_at(THIN_DEV, 4096, 2 * MB - 4096)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert e == errno.ENOSPC
    assert f[2] == "32/32"
    assert f[4:7] == ["out_of_data_space", discard_word(devs[1]), "error_if_no_space"]
    assert got == data[4096:]


def test_resize_data_dev_after_out_of_space(devs):
    make_pool(devs, sectors=32 * BS, features="1 error_if_no_space")
    try:
        msg("create_thin", 0)
        make_thin(sectors=16 * MB // 512)
        try:
            fill(THIN_DEV, "full", 0, 2 * MB)
            assert io_errno(THIN_DEV, 4 * MB, 4096, write=True) == errno.ENOSPC
            load(POOL, f"0 {64 * BS} thin-pool {devs[0]} {devs[1]} {BS} 16 1 error_if_no_space")
            dmsetup("resume", POOL)
            f = pool_fields()
            more = fill(THIN_DEV, "more", 4 * MB, MB)
            got = read_at(THIN_DEV, 4 * MB, MB)
            used = used_data()
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert f[2] == "32/64" and f[4] == "rw"
    assert got == more
    assert used == (48, 64)


def test_queued_write_completes_after_resize(devs):
    make_pool(devs, sectors=16 * BS)
    try:
        msg("create_thin", 0)
        make_thin(sectors=16 * MB // 512)
        try:
            fill(THIN_DEV, "q-full", 0, MB)
            data = pattern("queued", BLOCK)
            path = tempfile.mktemp()
            with open(path, "wb") as fh:
                fh.write(data)
            writer = subprocess.Popen(["dd", f"if={path}", f"of={THIN_DEV}", "bs=64k",
                                       "seek=40", "oflag=direct", "status=none"])
            try:
                wait_for(lambda: pool_fields()[4] == "out_of_data_space", timeout=20,
                         what="out_of_data_space")
                assert pool_fields()[6] == "queue_if_no_space"
                time.sleep(0.5)
                assert writer.poll() is None, "queued write finished before the resize"
                load(POOL, f"0 {32 * BS} thin-pool {devs[0]} {devs[1]} {BS} 16")
                dmsetup("resume", POOL)
                rc = writer.wait(timeout=30)
            finally:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait()
                os.unlink(path)
            got = read_at(THIN_DEV, 40 * BLOCK, BLOCK)
            f = pool_fields()
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert rc == 0
    assert got == data
    assert f[2] == "17/32" and f[4] == "rw"


def test_shrinking_data_refused(devs):
    make_pool(devs, sectors=64 * BS)
    try:
        load(POOL, f"0 {32 * BS} thin-pool {devs[0]} {devs[1]} {BS} 16")
        p = subprocess.run(["dmsetup", "resume", POOL], capture_output=True, text=True)
        if p.returncode == 0:
            total = pool_fields()[2]
        else:
            total = None
    finally:
        dmsetup("clear", POOL, check=False)
        dmsetup("remove", "--force", POOL, check=False)
    assert p.returncode != 0, total


def test_low_water_mark_event(devs):
    make_pool(devs, sectors=32 * BS, low_water=8)
    try:
        msg("create_thin", 0)
        make_thin(sectors=16 * MB // 512)
        try:
            ev0 = int(dmsetup("info", "-c", "--noheadings", "-o", "events", POOL).strip())
            fill(THIN_DEV, "lw-a", 0, 16 * BLOCK)
            ev1 = int(dmsetup("info", "-c", "--noheadings", "-o", "events", POOL).strip())
            fill(THIN_DEV, "lw-b", 16 * BLOCK, 10 * BLOCK)
            ev2 = int(dmsetup("info", "-c", "--noheadings", "-o", "events", POOL).strip())
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert ev1 == ev0
    assert ev2 == ev0 + 1


def test_read_only_pool(devs):
    make_pool(devs)
    data = pattern("ro-data", MB)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            write_at(THIN_DEV, 0, data)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    make_pool(devs, features="1 read_only")
    try:
        f = pool_fields()
        tb = table(POOL)
        out = msg_fails("create_thin", 1)
        make_thin()
        try:
            got = read_at(THIN_DEV, 0, MB)
            e_new = io_errno(THIN_DEV, 8 * MB, 4096, write=True)
            e_old = io_errno(THIN_DEV, 0, 4096, write=True)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert f[4] == "ro"
    assert tb.endswith(" 1 read_only ")
    assert "Operation not supported" in out
    assert got == data
    assert e_new == errno.EIO
    assert e_old == 0


def test_external_origin(devs):
    origin = devs[2]
    base = fill(origin, "ext-origin", 0, 4 * MB)
    make_pool(devs)
    try:
        msg("create_thin", 0)
        # The origin is 4 MiB; the thin device is 8 MiB.
        ext = create("tp-ext", f"0 8192 linear {origin} 0")
        try:
            make_thin(sectors=16384, origin=ext)
            try:
                expect_tb = f"0 16384 thin {devno(POOL_DEV)} 0 {devno(ext)}"
                tb = table(THIN)
                first = read_at(THIN_DEV, 0, 4 * MB)
                beyond = read_at(THIN_DEV, 4 * MB, MB)
                new = pattern("ext-new", 4096)
                write_at(THIN_DEV, MB + 4096, new)
                got = read_at(THIN_DEV, MB, BLOCK)
                st = status(THIN)
                ext_after = read_at(ext, 0, 4 * MB)
            finally:
                remove(THIN)
        finally:
            remove("tp-ext")
    finally:
        remove(POOL)
    assert tb == expect_tb
    assert first == base
    assert beyond == bytes(MB)
    exp = bytearray(base[MB:MB + BLOCK])
    exp[4096:8192] = new
    assert got == bytes(exp)
    assert st == f"0 16384 thin {BS} {17 * BS - 1}"
    assert ext_after == base


def test_flush_commits_mappings(devs):
    """After an fsync the mappings are on the metadata device: a raw copy of
    it, taken while the pool is live, lists them."""
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            fill(THIN_DEV, "flushed", 3 * MB, MB)
            # The copy goes to a block device: the tools open it O_DIRECT.
            sh(f"dd if={devs[0]} of={devs[2]} bs=1M iflag=direct oflag=direct status=none")
            dump = run("thin_dump", devs[2])
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    assert 'dev_id="0"' in dump
    assert 'mapped_blocks="16"' in dump, dump


def test_metadata_checks_clean_after_use(devs):
    make_pool(devs)
    try:
        msg("create_thin", 0)
        make_thin()
        try:
            fill(THIN_DEV, "chk", 0, 2 * MB)
            dmsetup("suspend", THIN)
            msg("create_snap", 1, 0)
            dmsetup("resume", THIN)
            write_at(THIN_DEV, 0, pattern("chk2", BLOCK * 3))
            run("blkdiscard", "-o", str(MB), "-l", str(MB), THIN_DEV)
        finally:
            remove(THIN)
    finally:
        remove(POOL)
    run("thin_check", devs[0])
    dump = run("thin_dump", devs[0])
    assert 'dev_id="0"' in dump and 'dev_id="1"' in dump


def test_discard_cannot_be_disabled_on_live_pool(devs):
    make_pool(devs)
    try:
        k = Kmsg()
        try:
            p = subprocess.run(["dmsetup", "load", POOL, "--table",
                                f"0 131072 thin-pool {devs[0]} {devs[1]} {BS} 16 1 ignore_discard"],
                               capture_output=True, text=True)
            klog = k.lines()
        finally:
            k.close()
        tb = table(POOL)
    finally:
        remove(POOL)
    assert p.returncode != 0
    assert any("thin-pool: Discard support cannot be disabled once enabled" in line
               for line in klog), klog
    assert tb.endswith(" 128 16 0 ")


def test_no_space_timeout_fails_queued_writes(devs):
    make_pool(devs, sectors=16 * BS)
    param = "/sys/module/dm_thin_pool/parameters/no_space_timeout"
    with open(param) as f:
        saved = f.read().strip()
    with open(param, "w") as f:
        f.write("2")
    try:
        msg("create_thin", 0)
        make_thin(sectors=16 * MB // 512)
        try:
            fill(THIN_DEV, "t-full", 0, MB)
            start = time.monotonic()
            e = io_errno(THIN_DEV, 4 * MB, 4096, write=True)
            waited = time.monotonic() - start
            f = pool_fields()
        finally:
            remove(THIN)
    finally:
        remove(POOL)
        with open(param, "w") as fh:
            fh.write(saved)
    assert e == errno.ENOSPC
    assert 1.5 <= waited < 20
    assert f[4:7] == ["out_of_data_space", discard_word(devs[1]), "error_if_no_space"]


def test_snapshot_of_external_origin_thin(devs):
    """The admin guide: an internal snapshot of a thin device with an
    external origin is activated with the same external origin; it sees the
    origin where neither has written, its parent's writes up to the
    snapshot, and not the parent's later writes."""
    base = fill(devs[2], "ext-base", 0, 4 * MB)
    make_pool(devs)
    try:
        msg("create_thin", 0)
        ext = create("tp-ext", f"0 8192 linear {devs[2]} 0")
        try:
            make_thin(sectors=8192, origin=ext)
            try:
                early = pattern("ext-early", BLOCK)
                write_at(THIN_DEV, 2 * BLOCK, early)
                dmsetup("suspend", THIN)
                msg("create_snap", 1, 0)
                dmsetup("resume", THIN)
                write_at(THIN_DEV, 5 * BLOCK, pattern("ext-late", BLOCK))
                make_thin(SNAP, 1, sectors=8192, origin=ext)
                try:
                    own = pattern("ext-snap", 4096)
                    write_at(SNAP_DEV, 9 * BLOCK + 4096, own)
                    snap = read_at(SNAP_DEV, 0, 4 * MB)
                    snap_tb = table(SNAP)
                    want_tb = f"0 8192 thin {devno(POOL_DEV)} 1 {devno(ext)}"
                finally:
                    remove(SNAP)
            finally:
                remove(THIN)
        finally:
            remove("tp-ext")
    finally:
        remove(POOL)
    want = bytearray(base)
    want[2 * BLOCK:3 * BLOCK] = early
    want[9 * BLOCK + 4096:9 * BLOCK + 8192] = own
    assert snap == bytes(want)
    assert snap_tb == want_tb
