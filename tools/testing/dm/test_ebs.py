# SPDX-License-Identifier: GPL-2.0-only
"""ebs: 512-byte logical blocks emulated over a 4K-sector device (not in Debian)."""
import random

import pytest

from dmharness import KernelLog
from dmtest import (create, devno, dmsetup, fails, fill, pattern, read_at,
                    remove, run, status, table, target_versions, write_at)

pytestmark = pytest.mark.ours_only("CONFIG_DM_EBS is not set in Debian")

SECTORS = 16384              # 8 MiB


@pytest.fixture
def dev4k(loopdev):
    return loopdev(16, 4096)


def test_version_table_status(dev4k):
    create("eb", f"0 {SECTORS} ebs {dev4k} 8 1")
    create("eb2", f"0 {SECTORS} ebs {dev4k} 0 2 8")
    assert target_versions()["ebs"] == (1, 0, 1)
    assert table("eb") == f"0 {SECTORS} ebs {devno(dev4k)} 8 1"
    assert table("eb2") == f"0 {SECTORS} ebs {devno(dev4k)} 0 2 8"
    assert status("eb") == f"0 {SECTORS} ebs "
    remove("eb")
    remove("eb2")


def test_block_sizes(dev4k):
    eb = create("eb", f"0 {SECTORS} ebs {dev4k} 0 1")
    assert run("blockdev", "--getss", eb).strip() == "512"
    assert run("blockdev", "--getpbsz", eb).strip() == "4096"
    remove("eb")


def test_unaligned_io_matches_model(dev4k):
    """Random 512-byte-granular writes land exactly; reads see them."""
    base = fill(dev4k, "base", 0, SECTORS * 512)
    model = bytearray(base)
    eb = create("eb", f"0 {SECTORS} ebs {dev4k} 0 1")
    rnd = random.Random(7)
    for i in range(40):
        sec = rnd.randrange(0, SECTORS - 40)
        n = rnd.randrange(1, 33)
        data = pattern(f"w{i}", n * 512)
        write_at(eb, sec * 512, data)
        model[sec * 512:(sec + n) * 512] = data
    for i in range(20):
        sec = rnd.randrange(0, SECTORS - 40)
        n = rnd.randrange(1, 33)
        assert read_at(eb, sec * 512, n * 512) == bytes(model[sec * 512:(sec + n) * 512])
    remove("eb")
    assert read_at(dev4k, 0, SECTORS * 512) == bytes(model)


def test_offset(dev4k):
    base = fill(dev4k, "base", 0, 1 << 20)
    eb = create("eb", f"0 2048 ebs {dev4k} 16 1")
    assert read_at(eb, 512, 1024) == base[16 * 512 + 512:16 * 512 + 1536]
    write_at(eb, 1536, pattern("x", 512))
    remove("eb")
    assert read_at(dev4k, 0, 16384)[16 * 512 + 1536:16 * 512 + 2048] == pattern("x", 512)


def test_suspend_drops_cache(dev4k):
    fill(dev4k, "old", 0, 1 << 20)
    eb = create("eb", f"0 {SECTORS} ebs {dev4k} 0 1")
    assert read_at(eb, 512, 512) == pattern("old", 1024)[512:]
    write_at(dev4k, 0, pattern("new", 4096))
    dmsetup("suspend", "eb")
    dmsetup("resume", "eb")
    assert read_at(eb, 512, 512) == pattern("new", 4096)[512:1024]
    remove("eb")


def test_filesystem(dev4k):
    """A 1K-block ext4 (needs 512/1K I/O) works and checks clean."""
    eb = create("eb", f"0 {SECTORS} ebs {dev4k} 0 1")
    run("mkfs.ext4", "-q", "-b", "1024", eb)
    run("mount", eb, "/mnt")
    try:
        run("cp", "-r", "/etc/ssl", "/mnt/")
        run("diff", "-r", "/etc/ssl", "/mnt/ssl")
    finally:
        run("umount", "/mnt")
    run("e2fsck", "-fn", eb)
    remove("eb")


@pytest.mark.parametrize("args,err", [
    ("{0} 0", "Invalid argument count"),
    ("{0} 0 1 8 9", "Invalid argument count"),
    ("{0} x 1", "Invalid device offset sector"),
    ("{0} 99999 1", "Invalid device offset sector"),
    ("{0} 0 3", "Invalid emulated block size"),
    ("{0} 0 16", "Invalid emulated block size"),
    ("{0} 0 0", "Invalid emulated block size"),
    ("{0} 0 1 6", "Invalid underlying block size"),
    ("/dev/nonexistent 0 1", "Device lookup failed"),
    ("{0} 4 1", "Device offset must be multiple of underlying block size"),
])
def test_ctr_errors(dev4k, args, err):
    klog = KernelLog()
    fails("dmsetup", "create", "eb", "--table", f"0 {SECTORS} ebs " + args.format(dev4k))
    lines = klog.read()
    klog.close()
    assert any(f"ebs: {err}" in line for line in lines), lines
