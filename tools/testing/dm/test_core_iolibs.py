# SPDX-License-Identifier: GPL-2.0-only
"""dm-io and dm-kcopyd (libraries inside dm-mod), driven through the targets
that use them: mirror (kcopyd resync copy, dm-io writes to every leg, disk
log through dm-io), snapshot (kcopyd COW copies, exception store through
dm-io) and thin (kcopyd zeroing of new blocks). Under DM=ours-core these
stock targets run on our dm-mod; under stock they run on stock's.
"""
import pytest

from dmtest import (create, digest, fill, has_target, pattern, read_at, remove, sh,
                    size_sectors, status, wait_for, write_at)

MB = 1 << 20


def need(target):
    if not has_target(target):
        pytest.skip(f"no {target} target in this module set")


def mirror_in_sync(name):
    # "... 2 <dev> <dev> <in-sync>/<total> 1 AA ..."
    fields = status(name).split()
    done, total = fields[6].split("/")
    return done == total


@pytest.mark.parametrize("region", [1024, 8192])
def test_mirror_resync_copies_leg(brd, region):
    """Resync copies leg 0 to leg 1 with kcopyd (split into sub-jobs when
    the region is bigger than the 512 KiB sub-job)."""
    need("mirror")
    a, b = brd(count=2, size_mb=16)
    data = fill(a, "mirror-src", 0, 16 * MB)
    fill(b, "mirror-junk", 0, 16 * MB)
    n = size_sectors(a)
    create("io-mirror", f"0 {n} mirror core 1 {region} 2 {a} 0 {b} 0")
    try:
        wait_for(lambda: mirror_in_sync("io-mirror"), 60, "mirror resync")
    finally:
        remove("io-mirror")
    assert read_at(b, 0, 16 * MB) == data


def test_mirror_writes_reach_every_leg(brd):
    """Writes through the mirror go to all legs in one dm_io call; the disk
    log lives on a third device, written with dm_io synchronously."""
    need("mirror")
    a, b, log = brd(count=3, size_mb=8)
    n = size_sectors(a)
    dev = create("io-mirror", f"0 {n} mirror disk 2 {log} 1024 2 {a} 0 {b} 0")
    try:
        wait_for(lambda: mirror_in_sync("io-mirror"), 60, "mirror resync")
        data = fill(dev, "through-mirror", 1 * MB, 3 * MB)
        sh("sync")
    finally:
        remove("io-mirror")
    assert read_at(a, 1 * MB, 3 * MB) == data
    assert read_at(b, 1 * MB, 3 * MB) == data


def test_snapshot_keeps_old_data(brd):
    """A write to the origin first copies the old chunk to the COW device
    (kcopyd); the persistent exception store is written through dm_io."""
    need("snapshot")
    origin, cow = brd(count=2, size_mb=16)
    old = fill(origin, "before-snap", 0, 4 * MB)
    n = size_sectors(origin)
    # The snapshot first, then the origin mapping that triggers the copies;
    # nothing writes in between, so no suspend is needed (a suspended origin
    # would block udev's probe of the new snapshot).
    sh(f"dmsetup create io-snap --table '0 {n} snapshot {origin} {cow} P 16'\n"
       f"dmsetup create io-base --table '0 {n} snapshot-origin {origin}'\n")
    try:
        new = pattern("after-snap", 2 * MB)
        write_at("/dev/mapper/io-base", 1 * MB, new)
        got_snap = read_at("/dev/mapper/io-snap", 0, 4 * MB)
        got_origin = read_at("/dev/mapper/io-base", 1 * MB, 2 * MB)
    finally:
        sh("dmsetup remove io-snap; dmsetup remove io-base")
    assert got_snap == old
    assert got_origin == new


def test_thin_zeroes_new_blocks(brd):
    """A partial write to an unprovisioned thin block makes the pool zero the
    rest of the block first (kcopyd zero, or write-zeroes)."""
    need("thin-pool")
    meta, data = brd(count=2, size_mb=32)
    fill(data, "stale", 0, 32 * MB)
    sh(f"dd if=/dev/zero of={meta} bs=4096 count=1 oflag=direct status=none")
    n = size_sectors(data)
    sh(f"dmsetup create io-pool --table '0 {n} thin-pool {meta} {data} 128 0'\n"
       "dmsetup message io-pool 0 'create_thin 0'\n"
       "dmsetup create io-thin --table '0 65536 thin /dev/mapper/io-pool 0'\n")
    try:
        chunk = pattern("thin-4k", 4096)
        write_at("/dev/mapper/io-thin", 4096, chunk)
        block = read_at("/dev/mapper/io-thin", 0, 64 * 1024)
    finally:
        sh("dmsetup remove io-thin; dmsetup remove io-pool")
    assert block[:4096] == b"\0" * 4096
    assert block[4096:8192] == chunk
    assert block[8192:] == b"\0" * (64 * 1024 - 8192)


def test_mirror_digest_after_heavy_writes(brd):
    """Many concurrent writes through a mirror: both legs identical."""
    need("mirror")
    a, b = brd(count=2, size_mb=16)
    n = size_sectors(a)
    dev = create("io-mirror", f"0 {n} mirror core 2 2048 nosync 2 {a} 0 {b} 0")
    try:
        sh(f"fio --name=w --filename={dev} --ioengine=libaio --direct=1 --rw=randwrite "
           "--bs=4k --iodepth=32 --size=16M --io_size=8M --randrepeat=0 "
           "--output=/dev/null")
    finally:
        remove("io-mirror")
    assert digest(a) == digest(b)
