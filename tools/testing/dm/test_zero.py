# SPDX-License-Identifier: GPL-2.0-only
"""zero target (dm-zero, 1.1.0): reads zeros, swallows writes, takes no args."""
import os
import re

from corehelp import create_fails
from dmtest import (create, dmsetup, fails, io_errno, kerr, pattern, read_at, remove, status,
                    table, target_versions, write_at)

SECTOR = 512


def test_zero_autoloads_and_version():
    # The first table naming "zero" loads dm-zero through request_module.
    create("z", "0 8 zero")
    assert target_versions()["zero"] == (1, 1, 0)
    remove("z")


def test_zero_reads_zeros_and_drops_writes():
    dev = create("z", "0 8192 zero")
    assert read_at(dev, 0, 4 << 20) == bytes(4 << 20)
    write_at(dev, 4096, pattern("z", 1 << 20))
    assert read_at(dev, 0, 4 << 20) == bytes(4 << 20)
    # Buffered reads too (page cache, read-ahead).
    with open(dev, "rb") as f:
        assert f.read() == bytes(8192 * SECTOR)
    remove("z")


def test_zero_table_and_status_lines():
    create("z", "0 8192 zero")
    assert table("z") == "0 8192 zero "
    assert status("z") == "0 8192 zero "
    remove("z")


def test_zero_rejects_arguments():
    stderr, klog = create_fails("bad", "0 8 zero x")
    assert "Invalid argument" in stderr
    assert any(re.search(r"device-mapper: table: \d+:\d+: zero: No arguments required "
                         r"\(%s\)$" % kerr("EINVAL"), l) for l in klog), klog


def test_zero_does_not_advertise_discard():
    dev = create("z", "0 8192 zero")
    with open("/sys/block/%s/queue/discard_max_bytes" % _kname(dev)) as f:
        assert f.read().strip() == "0"
    rc, out = fails("blkdiscard", dev)
    assert "Operation not supported" in out, out
    remove("z")


def test_zero_size_follows_table():
    dev = create("z", "0 24 zero")
    assert io_errno(dev, 0, 24 * SECTOR) == 0
    assert int(dmsetup("info", "-c", "--noheadings", "-o", "segments", "z")) == 1
    remove("z")


def _kname(dev):
    return os.path.basename(os.path.realpath(dev))
