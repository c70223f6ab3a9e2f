# SPDX-License-Identifier: GPL-2.0-only
"""ext4 on dm devices: mkfs, mount, write, umount, fsck clean, remount and
verify checksums."""
import hashlib
import os

import pytest

from dmtest import create, pattern, remove, run

MNT = "/tmp/dmtest-ext4"
FILES = {"small": 1000, "page": 4096, "odd": 123457, "big": 3 << 20, "dir/nested": 65536}


def _write_files():
    sums = {}
    for name, size in FILES.items():
        path = os.path.join(MNT, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = pattern(name, size)
        with open(path, "wb") as f:
            f.write(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    return sums


def _read_sums():
    out = {}
    for name in FILES:
        with open(os.path.join(MNT, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _fs_cycle(dev):
    run("mkfs.ext4", "-q", "-F", dev)
    os.makedirs(MNT, exist_ok=True)
    run("mount", dev, MNT)
    try:
        sums = _write_files()
    finally:
        run("umount", MNT)
    # -f: check even though clean; -n: read-only. Exit status 0 means clean.
    run("fsck.ext4", "-fn", dev)
    run("mount", dev, MNT)
    try:
        assert _read_sums() == sums
    finally:
        run("umount", MNT)
    # And once more with the page cache gone: a fresh table swap path.
    run("mount", "-o", "ro", dev, MNT)
    try:
        assert _read_sums() == sums
    finally:
        run("umount", MNT)


@pytest.mark.parametrize("layout", ["linear-concat", "striped"])
def test_ext4_on_dm(brd, layout):
    r0, r1 = brd(2, 32)
    if layout == "linear-concat":
        table = ["0 40960 linear %s 8192" % r0, "40960 40960 linear %s 0" % r1]
    else:
        table = ["0 98304 striped 2 128 %s 0 %s 0" % (r0, r1)]
    dev = create("fs", table)
    _fs_cycle(dev)
    remove("fs")


def test_ext4_on_4k_sector_device(loopdev):
    loop = loopdev(48, 4096)
    dev = create("fs4k", ["0 90112 linear %s 0" % loop])
    assert run("blockdev", "--getss", dev).strip() == "4096"
    _fs_cycle(dev)
    remove("fs4k")
