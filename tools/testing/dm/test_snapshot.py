# SPDX-License-Identifier: GPL-2.0-only
"""snapshot, snapshot-origin: copy-out, reads and writes, exception stores
(persistent on-disk layout, transient), status lines, overflow and
invalidation, several snapshots of one origin, constructor errors.

Devices are brd RAM disks; tables are built with dmsetup as in the admin
guide: the snapshot first, then the origin mapping that triggers copies.
"""
import errno
import struct

import pytest

from dmtest import (create, dmsetup, fails, fill, io_errno, pattern, read_at, remove, sh,
                    size_sectors, status, table, wait_for, write_at, devno)

MB = 1 << 20
SNAP, ORIG = "st-snap", "st-origin"
SNAP_DEV, ORIG_DEV = "/dev/mapper/" + SNAP, "/dev/mapper/" + ORIG


def make_snap(origin, cow, store="P", chunk=16, extra=""):
    n = size_sectors(origin)
    sh(f"dmsetup create {SNAP} --table '0 {n} snapshot {origin} {cow} {store} {chunk}{extra}'\n"
       f"dmsetup create {ORIG} --table '0 {n} snapshot-origin {origin}'\n")
    return n


def drop_snap():
    sh(f"dmsetup remove {SNAP}; dmsetup remove {ORIG}")


def usage(name):
    """(allocated, total, metadata) sectors from a snapshot status line."""
    f = status(name).split()
    a, t = f[3].split("/")
    return int(a), int(t), int(f[4])


def test_origin_write_copies_old_chunk(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "orig-old", 0, 4 * MB)
    make_snap(origin, cow)
    try:
        new = pattern("orig-new", 1 * MB + 4096)
        # Unaligned to chunks: the first and last chunks are partly written.
        write_at(ORIG_DEV, 512 * 1024 + 4096, new)
        snap = read_at(SNAP_DEV, 0, 4 * MB)
        got = read_at(ORIG_DEV, 512 * 1024 + 4096, len(new))
    finally:
        drop_snap()
    assert snap == old
    assert got == new
    assert read_at(origin, 512 * 1024 + 4096, len(new)) == new


def test_snapshot_write_leaves_origin(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "sw-old", 0, 2 * MB)
    make_snap(origin, cow, chunk=32)
    try:
        new = pattern("sw-new", 12288)
        write_at(SNAP_DEV, 1 * MB + 2048, new)
        snap = read_at(SNAP_DEV, 0, 2 * MB)
        orig = read_at(ORIG_DEV, 0, 2 * MB)
    finally:
        drop_snap()
    assert orig == old
    expect = bytearray(old)
    expect[1 * MB + 2048:1 * MB + 2048 + len(new)] = new
    assert snap == bytes(expect)


def test_status_and_table_persistent(brd):
    origin, cow = brd(2, 16)
    n = make_snap(origin, cow, chunk=16)
    try:
        assert table(SNAP) == f"0 {n} snapshot {devno(origin)} {devno(cow)} P 16"
        assert table(ORIG) == f"0 {n} snapshot-origin {devno(origin)}"
        assert status(ORIG).split() == ["0", str(n), "snapshot-origin"]
        # header chunk + first metadata area
        assert status(SNAP) == f"0 {n} snapshot 32/{n} 32"
        write_at(ORIG_DEV, 0, b"x" * 4096)
        write_at(ORIG_DEV, 8192 * 3, b"y" * 8192)
        write_at(ORIG_DEV, 4096, b"z" * 4096)      # chunk 0 again: no copy
        assert status(SNAP) == f"0 {n} snapshot 64/{n} 32"
    finally:
        drop_snap()


def test_persistent_layout_on_disk(brd):
    """A known origin write gives the COW layout of the format spec."""
    origin, cow = brd(2, 16)
    old = fill(origin, "layout", 0, 1 * MB)
    make_snap(origin, cow, chunk=16)
    try:
        write_at(ORIG_DEV, 5 * 8192, b"\xaa" * 4096)       # chunk 5
        write_at(ORIG_DEV, 9 * 8192 + 512, b"\xbb" * 512)  # chunk 9
    finally:
        drop_snap()
    hdr = read_at(cow, 0, 8192)
    assert struct.unpack_from("<4I", hdr) == (0x70416E53, 1, 1, 16)
    assert hdr[16:] == bytes(8192 - 16)
    area = read_at(cow, 8192, 8192)
    assert struct.unpack_from("<4Q", area) == (5, 2, 9, 3)
    assert area[32:] == bytes(8192 - 32)
    assert read_at(cow, 2 * 8192, 8192) == old[5 * 8192:6 * 8192]
    assert read_at(cow, 3 * 8192, 8192) == old[9 * 8192:10 * 8192]


def test_persistent_cow_built_by_hand_loads(brd):
    """A COW written to the spec (as stock writes it) is read back; chunk
    size 0 takes it from the header."""
    origin, cow = brd(2, 16)
    orig = fill(origin, "hand-orig", 0, 1 * MB)
    chunk = 8192
    saved = pattern("hand-saved", 2 * chunk)
    img = bytearray(4 * chunk)
    struct.pack_into("<4I", img, 0, 0x70416E53, 1, 1, 16)
    struct.pack_into("<4Q", img, chunk, 7, 3, 1, 2)   # entries out of order
    img[2 * chunk:4 * chunk] = saved[chunk:] + saved[:chunk]
    write_at(cow, 0, bytes(img))
    n = make_snap(origin, cow, chunk=0)
    try:
        assert table(SNAP) == f"0 {n} snapshot {devno(origin)} {devno(cow)} P 16"
        assert status(SNAP) == f"0 {n} snapshot 64/{n} 32"
        snap = read_at(SNAP_DEV, 0, 1 * MB)
    finally:
        drop_snap()
    expect = bytearray(orig)
    expect[7 * chunk:8 * chunk] = saved[:chunk]
    expect[1 * chunk:2 * chunk] = saved[chunk:]
    assert snap == bytes(expect)


def test_persistent_survives_reload(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "reload-old", 0, 2 * MB)
    make_snap(origin, cow, chunk=32)
    try:
        write_at(ORIG_DEV, 0, pattern("reload-new", 2 * MB))
        write_at(SNAP_DEV, 1 * MB, b"S" * 4096)
    finally:
        drop_snap()
    # Table chunk size differs from the header's: the header wins.
    n = make_snap(origin, cow, chunk=8)
    try:
        assert table(SNAP).endswith(" P 32")
        snap = read_at(SNAP_DEV, 0, 2 * MB)
        a, _, meta = usage(SNAP)
    finally:
        drop_snap()
    expect = bytearray(old)
    expect[1 * MB:1 * MB + 4096] = b"S" * 4096
    assert snap == bytes(expect)
    assert (a, meta) == ((2 + 2 * MB // 16384) * 32, 64)


def test_reload_hands_over_exceptions(brd):
    """A new table for the snapshot takes over the exception table of the
    old one at resume (no re-read of the store)."""
    origin, cow = brd(2, 16)
    for store in ("P", "N"):
        old = fill(origin, "handover-" + store, 0, 1 * MB)
        n = make_snap(origin, cow, store=store, chunk=16)
        try:
            write_at(ORIG_DEV, 0, pattern("handover-new", 64 * 1024))
            before = status(SNAP)
            sh(f"dmsetup load {SNAP} --table '0 {n} snapshot {origin} {cow} {store} 16'\n"
               f"dmsetup resume {SNAP}\n")
            assert status(SNAP) == before
            assert read_at(SNAP_DEV, 0, 1 * MB) == old
            # and the new table keeps protecting the old data
            write_at(ORIG_DEV, 512 * 1024, pattern("handover-more", 64 * 1024))
            assert read_at(SNAP_DEV, 0, 1 * MB) == old
        finally:
            drop_snap()


def test_transient_store(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "trans", 0, 1 * MB)
    n = make_snap(origin, cow, store="N", chunk=8)
    try:
        assert table(SNAP) == f"0 {n} snapshot {devno(origin)} {devno(cow)} N 8"
        assert status(SNAP) == f"0 {n} snapshot 0/{n} 0"
        new = pattern("trans-new", 8192)
        write_at(ORIG_DEV, 4096 * 5, new)
        assert status(SNAP) == f"0 {n} snapshot 16/{n} 0"
        snap = read_at(SNAP_DEV, 0, 1 * MB)
    finally:
        drop_snap()
    assert snap == old
    # chunks handed out from chunk 0 of the COW, in order
    assert read_at(cow, 0, 8192) == old[4096 * 5:4096 * 7]


def test_several_snapshots_of_one_origin(brd):
    origin, c1, c2 = brd(3, 16)
    a = fill(origin, "multi-a", 0, 2 * MB)
    n = size_sectors(origin)
    sh(f"dmsetup create st-s1 --table '0 {n} snapshot {origin} {c1} P 8'\n"
       f"dmsetup create {ORIG} --table '0 {n} snapshot-origin {origin}'\n")
    try:
        b = pattern("multi-b", 1 * MB)
        write_at(ORIG_DEV, 512 * 1024, b)
        sh(f"dmsetup suspend {ORIG}\n"
           f"dmsetup create st-s2 --table '0 {n} snapshot {origin} {c2} P 64'\n"
           f"dmsetup resume {ORIG}\n")
        c = pattern("multi-c", 2 * MB)
        write_at(ORIG_DEV, 0, c)
        s1 = read_at("/dev/mapper/st-s1", 0, 2 * MB)
        s2 = read_at("/dev/mapper/st-s2", 0, 2 * MB)
        o = read_at(ORIG_DEV, 0, 2 * MB)
    finally:
        sh(f"dmsetup remove st-s1; dmsetup remove st-s2; dmsetup remove {ORIG}")
    assert s1 == a
    assert s2 == a[:512 * 1024] + b + a[512 * 1024 + len(b):]
    assert o == c


def test_merge_from_disk(brd):
    """snapshot-merge loaded over a COW left by a removed snapshot copies the
    saved chunks back (newest first) and ends with allocated == metadata."""
    origin, cow = brd(2, 16)
    old = fill(origin, "merge-old", 0, 2 * MB)
    n = make_snap(origin, cow, chunk=16)
    try:
        write_at(ORIG_DEV, 0, pattern("merge-new", 1 * MB))
        write_at(SNAP_DEV, 1 * MB + 8192, b"m" * 8192)
        a, _, meta = usage(SNAP)
        assert (a, meta) == ((2 + 128 + 1) * 16, 32)
    finally:
        drop_snap()
    want = old[:1 * MB + 8192] + b"m" * 8192 + old[1 * MB + 16384:]
    create("st-merge", f"0 {n} snapshot-merge {origin} {cow} P 16")
    try:
        assert table("st-merge") == \
            f"0 {n} snapshot-merge {devno(origin)} {devno(cow)} P 16"
        # reads see the snapshot while the merge runs
        assert read_at("/dev/mapper/st-merge", 0, 2 * MB) == want

        def done():
            a, _, meta = usage("st-merge")
            return a == meta
        wait_for(done, 60, "merge to finish")
        assert status("st-merge") == f"0 {n} snapshot-merge 32/{n} 32"
        got = read_at("/dev/mapper/st-merge", 0, 2 * MB)
    finally:
        remove("st-merge")
    assert got == want
    assert read_at(origin, 0, 2 * MB) == want
    # every entry cleared on disk
    assert read_at(cow, 8192, 8192) == bytes(8192)


def test_merge_restarts_after_reload(brd):
    """A merge stopped half way (suspend, table removed: a reboot) goes on
    from the on-disk table when snapshot-merge is loaded again."""
    raw, cow = brd(2, 16)
    old = fill(raw, "restart-old", 0, 1 * MB)
    n = size_sectors(raw)
    # Origin writes take 50 ms each, so the merge (one batch per
    # non-adjacent chunk) is still running when it is stopped.
    slow = create("st-slow", f"0 {n} delay {raw} 0 0 {raw} 0 50")
    try:
        make_snap(slow, cow, chunk=8)
        try:
            for i in range(0, 64, 2):
                write_at(ORIG_DEV, i * 4096, b"n" * 4096)
        finally:
            drop_snap()
        table_line = f"0 {n} snapshot-merge {slow} {cow} P 8"
        create("st-merge", table_line)
        sh("sleep 0.3; dmsetup suspend st-merge")
        remove("st-merge")
        create("st-merge", table_line)
        try:
            def done():
                a, _, meta = usage("st-merge")
                return a == meta
            wait_for(done, 60, "merge to finish")
        finally:
            remove("st-merge")
    finally:
        remove("st-slow")
    assert read_at(raw, 0, 1 * MB) == old


def small_cow(cow, sectors):
    """A COW of SECTORS sectors (a linear slice of COW)."""
    create("st-cow", f"0 {sectors} linear {cow} 0")
    return "/dev/mapper/st-cow"


def test_overflow_invalidates_keeps_origin(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "ovf-old", 0, 1 * MB)
    # header, area, two data chunks of 16 sectors
    c = small_cow(cow, 64)
    n = make_snap(origin, c, chunk=16)
    try:
        new = pattern("ovf-new", 3 * 8192)
        write_at(ORIG_DEV, 0, new)
        assert status(SNAP) == f"0 {n} snapshot Invalid"
        assert io_errno(SNAP_DEV, 0, 4096) != 0
        assert read_at(ORIG_DEV, 0, 1 * MB) == new + old[len(new):]
    finally:
        drop_snap()
    # The header says invalid: a new table is Invalid at once.
    make_snap(origin, c, chunk=16)
    try:
        assert status(SNAP) == f"0 {n} snapshot Invalid"
    finally:
        drop_snap()
        remove("st-cow")
    assert struct.unpack_from("<4I", read_at(cow, 0, 512)) == (0x70416E53, 0, 1, 16)


def test_overflow_po_snapshot_write(brd):
    origin, cow = brd(2, 16)
    old = fill(origin, "po-old", 0, 1 * MB)
    c = small_cow(cow, 64)
    n = make_snap(origin, c, store="PO", chunk=16)
    try:
        assert table(SNAP).endswith(" PO 16")
        write_at(SNAP_DEV, 0, b"a" * 8192)
        write_at(SNAP_DEV, 8192, b"b" * 8192)
        assert io_errno(SNAP_DEV, 3 * 8192, 4096, write=True) != 0
        assert status(SNAP) == f"0 {n} snapshot Overflow"
        got = read_at(SNAP_DEV, 0, 1 * MB)
        # No write is accepted any more, not even into copied chunks.
        assert io_errno(SNAP_DEV, 0, 4096, write=True) == errno.EIO
        assert read_at(ORIG_DEV, 0, 1 * MB) == old
    finally:
        drop_snap()
        remove("st-cow")
    assert got == b"a" * 8192 + b"b" * 8192 + old[16384:]


def test_discard_zeroes_cow(loopdev):
    origin, cow = loopdev(16), loopdev(16)
    old = fill(origin, "disc-old", 0, 1 * MB)
    n = make_snap(origin, cow, chunk=16, extra=" 1 discard_zeroes_cow")
    try:
        assert table(SNAP).endswith(" P 16 1 discard_zeroes_cow")
        write_at(SNAP_DEV, 0, b"d" * 16384)
        sh(f"blkdiscard -o 0 -l 16384 {SNAP_DEV}")
        got = read_at(SNAP_DEV, 0, 32768)
        # no exception: the discard is dropped, the origin is untouched
        sh(f"blkdiscard -o 65536 -l 16384 {SNAP_DEV}")
        assert read_at(SNAP_DEV, 65536, 16384) == old[65536:65536 + 16384]
        a, _, _ = usage(SNAP)
    finally:
        drop_snap()
    assert got == bytes(16384) + old[16384:32768]
    assert a == 4 * 16
    assert read_at(origin, 0, 1 * MB) == old


def test_discard_passdown_origin(loopdev):
    """With discard_passdown_origin a discard also reaches the origin,
    without copying the chunk to the COW first."""
    origin, cow = loopdev(16), loopdev(16)
    old = fill(origin, "pass-old", 0, 1 * MB)
    n = make_snap(origin, cow, chunk=16,
                  extra=" 2 discard_zeroes_cow discard_passdown_origin")
    try:
        assert table(SNAP).endswith(" P 16 2 discard_zeroes_cow discard_passdown_origin")
        sh(f"blkdiscard -o 65536 -l 65536 {SNAP_DEV}")
        snap = read_at(SNAP_DEV, 0, 1 * MB)
        assert status(SNAP) == f"0 {n} snapshot 32/{n} 32"
    finally:
        drop_snap()
    want = old[:65536] + bytes(65536) + old[131072:]
    assert snap == want
    assert read_at(origin, 0, 1 * MB) == want


@pytest.mark.parametrize("args,why", [
    ("{o} {c} P", "too few arguments"),
    ("{o} {c} X 16", "unknown store type"),
    ("{o} {c} PX 16", "unknown persistent option"),
    ("{o} {c} P 12", "chunk size not a power of two"),
    ("{o} {c} P abc", "chunk size not a number"),
    ("{o} {c} N 0", "transient store without a chunk size"),
    ("{o} {o} P 16", "COW is the origin"),
    ("{o} /dev/nonexistent P 16", "no COW device"),
    ("/dev/nonexistent {c} P 16", "no origin device"),
    ("{o} {c} P 16 1 discard_passdown_origin", "passdown needs zeroes_cow"),
    ("{o} {c} P 16 1 bogus", "unknown feature"),
    ("{o} {c} P 16 3 discard_zeroes_cow discard_passdown_origin x", "too many features"),
    ("{o} {c} P 16 2 discard_zeroes_cow", "feature count larger than given"),
])
def test_snapshot_ctr_errors(brd, args, why):
    origin, cow = brd(2, 16)
    n = size_sectors(origin)
    a = args.format(o=origin, c=cow)
    fails("dmsetup", "create", SNAP, "--table", f"0 {n} snapshot {a}")
    sh(f"dmsetup remove {SNAP} 2>/dev/null || true")


def test_snapshot_ctr_bad_magic(brd):
    origin, cow = brd(2, 16)
    write_at(cow, 0, b"junkjunk" * 64)
    n = size_sectors(origin)
    fails("dmsetup", "create", SNAP, "--table", f"0 {n} snapshot {origin} {cow} P 16")
    sh(f"dmsetup remove {SNAP} 2>/dev/null || true")


def test_other_ctr_errors(brd):
    origin, cow = brd(2, 16)
    n = size_sectors(origin)
    fails("dmsetup", "create", ORIG, "--table", f"0 {n} snapshot-origin")
    fails("dmsetup", "create", ORIG, "--table", f"0 {n} snapshot-origin {origin} {cow}")
    fails("dmsetup", "create", SNAP, "--table",
          f"0 {n} snapshot-merge {origin} {cow} N 16")
    sh(f"dmsetup remove {SNAP} 2>/dev/null || true; dmsetup remove {ORIG} 2>/dev/null || true")


def test_store_option_spellings(brd):
    """Only the first character picks the store, case-insensitively."""
    origin, cow = brd(2, 16)
    n = size_sectors(origin)
    try:
        create(SNAP, f"0 {n} snapshot {origin} {cow} po 16")
        assert table(SNAP).endswith(" PO 16")
        remove(SNAP)
        create(SNAP, f"0 {n} snapshot {origin} {cow} nXYZ 16")
        assert table(SNAP).endswith(" N 16")
    finally:
        sh(f"dmsetup remove {SNAP} 2>/dev/null || true")


def test_target_versions():
    sh("modprobe dm-snapshot")
    v = {line.split()[0]: line.split()[1] for line in dmsetup("targets").splitlines()}
    assert v["snapshot"] == "v1.16.0"
    assert v["snapshot-origin"] == "v1.9.0"
    assert v["snapshot-merge"] == "v1.5.0"
