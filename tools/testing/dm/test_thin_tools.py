# SPDX-License-Identifier: GPL-2.0-only
"""thin-pool metadata and the userspace tools: metadata a pool wrote passes
thin_check and thin_dump lists what was written; metadata thin_restore wrote
activates and reads back; a metadata snapshot of a live pool is what
thin_dump -m shows; a grown pool still checks; the metadata space the pool
reports as used includes stock's reserve.

Devices are brd RAM disks of 16 MiB: ram0 holds the metadata, ram1 the
data, 64 KiB data blocks.
"""
import re
import xml.etree.ElementTree as ET

import pytest

from dmtest import (create, dmsetup, load, pattern, read_at, remove, run, status,
                    write_at)
from thinhelp import after_test

BS = 128                       # data block size, sectors
BLOCK = BS * 512
DATA_BLOCKS = 256              # 16 MiB
META_BLOCKS = 4096             # 16 MiB
POOL, THIN, SNAP = "tt-pool", "tt-thin", "tt-snap"
POOL_DEV = "/dev/mapper/" + POOL


@pytest.fixture
def devs(request, brd):
    """(metadata, data) RAM disks. After the test no pool may be left and
    the metadata must pass thin_check."""
    d = brd(2, 16)
    yield d
    after_test(request, d[0], "tt-")


def make_pool(meta, data, blocks=DATA_BLOCKS):
    create(POOL, f"0 {blocks * BS} thin-pool {meta} {data} {BS} 0")


def make_thin(name, dev_id, blocks=64):
    create(name, f"0 {blocks * BS} thin {POOL_DEV} {dev_id}")


def msg(*words):
    dmsetup("message", POOL, "0", " ".join(str(w) for w in words))


def teardown(*names):
    for n in names:
        dmsetup("remove", n, check=False)


def zero_meta(meta):
    """An all-zero block 0 makes the pool format the device."""
    write_at(meta, 0, bytes(4096))


def dump_devices(xml_text):
    """{dev_id: (attributes, {vblock: (dblock, time)})} of a thin_dump."""
    devices = {}
    for dev in ET.fromstring(xml_text).iter("device"):
        maps = {}
        for m in dev:
            t = int(m.get("time"))
            if m.tag == "single_mapping":
                maps[int(m.get("origin_block"))] = (int(m.get("data_block")), t)
            elif m.tag == "range_mapping":
                o, d = int(m.get("origin_begin")), int(m.get("data_begin"))
                for i in range(int(m.get("length"))):
                    maps[o + i] = (d + i, t)
        devices[int(dev.get("dev_id"))] = (dict(dev.attrib), maps)
    return devices


def test_deactivated_pool_checks_and_dumps(devs):
    """Writes through a thin device and a snapshot of it, then the pool goes
    away: thin_check passes and thin_dump shows every mapping, with the data
    blocks holding what was written."""
    meta, data = devs
    zero_meta(meta)
    make_pool(meta, data)
    try:
        msg("create_thin", 1)
        make_thin(THIN, 1)
        thin = "/dev/mapper/" + THIN
        for vb in (0, 5, 40):
            write_at(thin, vb * BLOCK, pattern(vb, BLOCK))
        # The admin guide: suspend an active origin around the snapshot.
        dmsetup("suspend", THIN)
        msg("create_snap", 2, 1)
        dmsetup("resume", THIN)
        make_thin(SNAP, 2)
        # Breaks the sharing of block 5 only.
        write_at(thin, 5 * BLOCK, pattern(99, BLOCK))
        msg("set_transaction_id", 0, 7)
    finally:
        teardown(SNAP, THIN, POOL)
    run("thin_check", meta)
    dump = run("thin_dump", meta)
    sb = ET.fromstring(dump)
    assert sb.get("transaction") == "7" and sb.get("time") == "1", dump[:200]
    assert sb.get("data_block_size") == str(BS)
    assert sb.get("nr_data_blocks") == str(DATA_BLOCKS)
    devices = dump_devices(dump)
    assert sorted(devices) == [1, 2]
    attrs1, map1 = devices[1]
    attrs2, map2 = devices[2]
    assert sorted(map1) == sorted(map2) == [0, 5, 40]
    assert attrs1["mapped_blocks"] == attrs2["mapped_blocks"] == "3"
    assert attrs1["snap_time"] == "1" and attrs2["creation_time"] == "1"
    assert map1[0] == map2[0] and map1[40] == map2[40]
    assert map1[5][0] != map2[5][0] and map1[5][1] == 1 and map2[5][1] == 0
    for vb, seed in ((0, 0), (40, 40)):
        assert read_at(data, map1[vb][0] * BLOCK, BLOCK) == pattern(seed, BLOCK)
    assert read_at(data, map1[5][0] * BLOCK, BLOCK) == pattern(99, BLOCK)
    assert read_at(data, map2[5][0] * BLOCK, BLOCK) == pattern(5, BLOCK)


def test_restored_metadata_activates(devs, tmp_path):
    """Metadata written by thin_restore opens: the mappings read back, the
    pool reports its transaction id and usage, the thin its mapped size."""
    meta, data = devs
    for db in (10, 11, 12, 20):
        write_at(data, db * BLOCK, pattern(db, BLOCK))
    xml = tmp_path / "meta.xml"
    xml.write_text(
        f'<superblock uuid="" time="0" transaction="5" version="2" '
        f'data_block_size="{BS}" nr_data_blocks="{DATA_BLOCKS}">\n'
        '  <device dev_id="7" mapped_blocks="4" transaction="0" '
        'creation_time="0" snap_time="0">\n'
        '    <range_mapping origin_begin="0" data_begin="10" length="3" time="0"/>\n'
        '    <single_mapping origin_block="50" data_block="20" time="0"/>\n'
        '  </device>\n</superblock>\n')
    run("thin_restore", "-i", xml, "-o", meta)
    make_pool(meta, data)
    try:
        make_thin(THIN, 7)
        thin = "/dev/mapper/" + THIN
        for vb in range(3):
            assert read_at(thin, vb * BLOCK, BLOCK) == pattern(10 + vb, BLOCK)
        assert read_at(thin, 50 * BLOCK, BLOCK) == pattern(20, BLOCK)
        assert read_at(thin, 3 * BLOCK, BLOCK) == bytes(BLOCK)
        assert status(THIN) == f"0 {64 * BS} thin {4 * BS} {51 * BS - 1}"
        fields = status(POOL).split()
        assert fields[3] == "5"
        assert fields[5] == f"4/{DATA_BLOCKS}"
    finally:
        teardown(THIN, POOL)
    run("thin_check", meta)


def test_live_metadata_snapshot_dumps(devs):
    """reserve_metadata_snap on a live pool: thin_dump -m shows the mappings
    at the reserve, later writes do not appear in it; release clears it."""
    meta, data = devs
    zero_meta(meta)
    make_pool(meta, data)
    try:
        msg("create_thin", 1)
        make_thin(THIN, 1)
        thin = "/dev/mapper/" + THIN
        write_at(thin, 0, pattern(1, BLOCK))
        msg("reserve_metadata_snap")
        held = status(POOL).split()[6]
        assert re.fullmatch(r"\d+", held) and int(held) > 0, status(POOL)
        write_at(thin, 3 * BLOCK, pattern(2, BLOCK))
        # The pool commits on a status; the snapshot must not change.
        status(POOL)
        snap = dump_devices(run("thin_dump", "-m", meta))
        assert sorted(snap) == [1] and sorted(snap[1][1]) == [0]
        msg("release_metadata_snap")
        assert status(POOL).split()[6] == "-"
    finally:
        teardown(THIN, POOL)
    run("thin_check", meta)
    live = dump_devices(run("thin_dump", meta))
    assert sorted(live[1][1]) == [0, 3]


def test_grown_pool_checks(devs):
    """Growing the data device (pool reload) and the metadata space map:
    thin_check passes and thin_dump reports the new data size."""
    meta, data = devs
    zero_meta(meta)
    create("tt-meta", f"0 {1024 * 8} linear {meta} 0")
    create("tt-data", f"0 {128 * BS} linear {data} 0")
    m, d = "/dev/mapper/tt-meta", "/dev/mapper/tt-data"
    try:
        make_pool(m, d, blocks=128)
        msg("create_thin", 1)
        make_thin(THIN, 1)
        write_at("/dev/mapper/" + THIN, 0, pattern(3, BLOCK))
        for name, tbl in (("tt-meta", f"0 {META_BLOCKS * 8} linear {meta} 0"),
                          ("tt-data", f"0 {DATA_BLOCKS * BS} linear {data} 0"),
                          (POOL, f"0 {DATA_BLOCKS * BS} thin-pool {m} {d} {BS} 0")):
            load(name, tbl)
            dmsetup("suspend", name)
            dmsetup("resume", name)
        f = status(POOL).split()
        assert f[4].endswith(f"/{META_BLOCKS}") and f[5].endswith(f"/{DATA_BLOCKS}"), f
        write_at("/dev/mapper/" + THIN, 63 * BLOCK, pattern(4, BLOCK))
    finally:
        teardown(THIN, POOL)
    try:
        run("thin_check", m)
        dump = run("thin_dump", m)
    finally:
        teardown("tt-meta", "tt-data")
    assert ET.fromstring(dump).get("nr_data_blocks") == str(DATA_BLOCKS)
    assert sorted(dump_devices(dump)[1][1]) == [0, 63]


def test_fresh_pool_reports_metadata_reserve(devs):
    """A fresh pool counts a tenth of its metadata device (at most 4096
    blocks) as used: space kept back so commits never run out."""
    meta, data = devs
    zero_meta(meta)
    make_pool(meta, data)
    try:
        used, total = status(POOL).split()[4].split("/")
    finally:
        remove(POOL)
    assert int(total) == META_BLOCKS
    assert META_BLOCKS // 10 < int(used) < META_BLOCKS // 10 + 32, (used, total)


def rmap_pairs(text):
    """{(data_block, dev_id, vblock)} of a thin_rmap output."""
    pairs = set()
    for line in text.splitlines():
        m = re.fullmatch(r"data (\d+)\.\.(\d+) -> thin\((\d+)\) (\d+)\.\.(\d+)", line.strip())
        assert m, line
        d0, d1, dev, v0, v1 = (int(x) for x in m.groups())
        assert d1 - d0 == v1 - v0, line
        pairs.update((d0 + i, dev, v0 + i) for i in range(d1 - d0))
    return pairs


def test_ls_rmap_and_restore_round_trip(devs, tmp_path):
    """Metadata the pool wrote: thin_ls counts mapped, exclusive and shared
    blocks per device as written; thin_rmap is the exact reverse of the
    thin_dump mappings; thin_dump | thin_restore onto fresh metadata gives
    the same dump, and a pool on it reads the data back."""
    meta, data = devs
    zero_meta(meta)
    make_pool(meta, data)
    thin, snap = "/dev/mapper/" + THIN, "/dev/mapper/" + SNAP
    try:
        msg("create_thin", 1)
        make_thin(THIN, 1)
        for vb in range(6):
            write_at(thin, vb * BLOCK, pattern(f"ls-{vb}", BLOCK))
        dmsetup("suspend", THIN)
        msg("create_snap", 2, 1)
        dmsetup("resume", THIN)
        make_thin(SNAP, 2)
        # Origin breaks sharing of 0 and 1, the snapshot of 2; each adds one.
        write_at(thin, 0, pattern("ls-o0", BLOCK))
        write_at(thin, BLOCK, pattern("ls-o1", 4096))
        write_at(thin, 20 * BLOCK, pattern("ls-o20", BLOCK))
        write_at(snap, 2 * BLOCK, pattern("ls-s2", BLOCK))
        write_at(snap, 33 * BLOCK, pattern("ls-s33", BLOCK))
        want1 = read_at(thin, 0, 64 * BLOCK)
        want2 = read_at(snap, 0, 64 * BLOCK)
    finally:
        teardown(SNAP, THIN, POOL)
    ls = run("thin_ls", "--no-headers", "-o",
             "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS", meta)
    rows = sorted(tuple(int(x) for x in line.split()) for line in ls.splitlines())
    # 1 owns 0, 1, 2 (the snapshot broke that one) and 20; 2 owns the old
    # 0 and 1, its new 2, and 33; 3-5 are shared.
    assert rows == [(1, 7, 4, 3), (2, 7, 4, 3)], ls
    dump = run("thin_dump", meta)
    fwd = {(d, dev, v) for dev, (_, maps) in dump_devices(dump).items()
           for v, (d, _) in maps.items()}
    rmap = rmap_pairs(run("thin_rmap", f"--region=0..{DATA_BLOCKS}", meta))
    assert rmap == fwd and len(fwd) == 14

    xml = tmp_path / "dump.xml"
    xml.write_text(dump)
    zero_meta(meta)
    run("thin_restore", "-i", xml, "-o", meta)
    again = run("thin_dump", meta)
    assert dump_devices(again) == dump_devices(dump)
    sb0, sb1 = ET.fromstring(dump).attrib, ET.fromstring(again).attrib
    for k in ("time", "transaction", "data_block_size", "nr_data_blocks"):
        assert sb1[k] == sb0[k], (k, sb0, sb1)
    make_pool(meta, data)
    try:
        make_thin(THIN, 1)
        make_thin(SNAP, 2)
        got1 = read_at(thin, 0, 64 * BLOCK)
        got2 = read_at(snap, 0, 64 * BLOCK)
    finally:
        teardown(SNAP, THIN, POOL)
    assert got1 == want1 and got2 == want2
