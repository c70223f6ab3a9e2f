# SPDX-License-Identifier: GPL-2.0-only
"""dust: emulated bad blocks (stock Debian does not build dm-dust)."""
import pytest

from dmharness import KernelLog
from dmtest import (create, devno, dmsetup, fails, fill, io_errno, pattern,
                    read_at, remove, status, table, target_versions, write_at)

pytestmark = pytest.mark.ours_only("CONFIG_DM_DUST is not set in Debian")

SECTORS = 8192


@pytest.fixture
def dev(brd):
    d = brd(1, 8)[0]
    fill(d, "under")
    return d


def dust(dev, blksz=512, offset=0):
    return create("ds", f"0 {SECTORS} dust {dev} {offset} {blksz}")


def msg(*words):
    return dmsetup("message", "ds", "0", *words).rstrip("\n")


def test_version_table_status(dev):
    dust(dev, 4096)
    assert target_versions()["dust"] == (1, 0, 0)
    assert table("ds") == f"0 {SECTORS} dust {devno(dev)} 0 4096"
    assert status("ds") == f"0 {SECTORS} dust {devno(dev)} bypass verbose"
    msg("enable")
    msg("quiet")
    assert status("ds") == f"0 {SECTORS} dust {devno(dev)} fail_read_on_bad_block quiet"
    msg("disable")
    msg("quiet")
    assert status("ds") == f"0 {SECTORS} dust {devno(dev)} bypass verbose"
    remove("ds")


def test_bad_block_reads_fail_only_when_enabled(dev):
    ds = dust(dev, 4096)
    klog = KernelLog()
    msg("addbadblock", "3")
    assert io_errno(ds, 3 * 4096, 4096) == 0
    msg("enable")
    assert io_errno(ds, 3 * 4096, 4096) == 5
    assert read_at(ds, 2 * 4096, 4096) == pattern("under", 3 * 4096)[2 * 4096:]
    lines = klog.read()
    klog.close()
    assert any("dust: dust_add_block: badblock added at block 3 with write fail count 0"
               in line for line in lines), lines
    assert any("dust: enabling read failures on bad sectors" in line for line in lines)
    remove("ds")


def test_write_remaps_bad_block(dev):
    ds = dust(dev)
    msg("addbadblock", "60")
    msg("enable")
    assert io_errno(ds, 60 * 512, 512) == 5
    klog = KernelLog()
    data = pattern("fix", 512)
    write_at(ds, 60 * 512, data)
    assert read_at(ds, 60 * 512, 512) == data
    assert any("dust: block 60 removed from badblocklist by write" in line
               for line in klog.read())
    klog.close()
    assert msg("countbadblocks") == "countbadblocks: 0 badblock(s) found"
    remove("ds")


def test_write_fail_count(dev):
    ds = dust(dev)
    msg("addbadblock", "7", "2")
    msg("enable")
    assert io_errno(ds, 7 * 512, 512, write=True) == 5
    assert io_errno(ds, 7 * 512, 512, write=True) == 5
    assert io_errno(ds, 7 * 512, 512, write=True) == 0
    assert msg("queryblock", "7") == "dust_query_block: block 7 not found in badblocklist"
    remove("ds")


def test_list_query_count_clear(dev):
    dust(dev)
    assert msg("listbadblocks") == "No blocks in badblocklist"
    assert msg("clearbadblocks") == "dust_clear_badblocks: no badblocks found"
    for b in ("30", "2", "100"):
        msg("addbadblock", b)
    assert msg("listbadblocks").split("\n") == ["2", "30", "100"]
    assert msg("countbadblocks") == "countbadblocks: 3 badblock(s) found"
    assert msg("queryblock", "30") == "dust_query_block: block 30 found in badblocklist"
    assert msg("queryblock", "31") == "dust_query_block: block 31 not found in badblocklist"
    msg("removebadblock", "30")
    assert msg("countbadblocks") == "countbadblocks: 2 badblock(s) found"
    assert msg("clearbadblocks") == "dust_clear_badblocks: badblocks cleared"
    assert msg("countbadblocks") == "countbadblocks: 0 badblock(s) found"
    remove("ds")


@pytest.mark.parametrize("words,log", [
    (["addbadblock", "5"], "dust_add_block: block 5 already in badblocklist"),
    (["removebadblock", "6"], "dust_remove_block: block 6 not found in badblocklist"),
    (["addbadblock"], "addbadblock requires an additional argument"),
    (["queryblock"], "queryblock requires an additional argument"),
    (["addbadblock", "99999"], "selected block value out of range"),
    (["addbadblock", "1", "256"], "selected write fail count out of range"),
    (["frobnicate"], "unrecognized message 'frobnicate' received"),
    (["removebadblock", "1", "2"], "unrecognized message 'removebadblock' received"),
    (["a", "b", "c", "d"], "invalid number of arguments '4'"),
    (["addbadblock", "x"], None),
])
def test_message_errors(dev, words, log):
    dust(dev)
    msg("addbadblock", "5")
    klog = KernelLog()
    rc, out = fails("dmsetup", "message", "ds", "0", *words)
    lines = klog.read()
    klog.close()
    assert "Invalid argument" in out
    if log:
        assert any(f"dust: {log}" in line for line in lines), lines
    remove("ds")


def test_offset_maps_blocks_of_underlying_device(dev):
    """Block numbers count from the start of the underlying device."""
    ds = dust(dev, 512, 16)
    msg("addbadblock", "20")
    msg("enable")
    assert io_errno(ds, 4 * 512, 512) == 5
    assert io_errno(ds, 20 * 512, 512) == 0
    remove("ds")


@pytest.mark.parametrize("args,err", [
    ("{0} 0", "Invalid argument count"),
    ("{0} 0 x", "Invalid block size parameter"),
    ("{0} 0 256", "Block size must be at least 512"),
    ("{0} 0 1536", "Block size must be a power of 2"),
    ("{0} 0 8388608", "Block size is too large"),
    ("{0} x 512", "Invalid device offset sector"),
    ("/dev/nonexistent 0 512", "Device lookup failed"),
])
def test_ctr_errors(dev, args, err):
    klog = KernelLog()
    fails("dmsetup", "create", "ds", "--table", f"0 {SECTORS} dust " + args.format(dev))
    lines = klog.read()
    klog.close()
    assert any(f"dust: {err}" in line for line in lines), lines


def test_discard_and_flush_pass(loopdev):
    d = loopdev(8)
    fill(d, "x", 0, 1 << 20)
    ds = create("ds", f"0 {SECTORS} dust {d} 0 4096")
    from dmtest import run
    run("blkdiscard", "-o", 0, "-l", 1 << 20, ds)
    assert read_at(d, 0, 1 << 20) == bytes(1 << 20)
    write_at(ds, 0, pattern("y", 4096))      # write_at fsyncs: a flush
    assert read_at(d, 0, 4096) == pattern("y", 4096)
    remove("ds")
