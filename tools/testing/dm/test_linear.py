# SPDX-License-Identifier: GPL-2.0-only
"""linear target (in dm-mod, 1.4.0): mapping, table/status lines, ctr errors."""
import errno
import re

import pytest

from corehelp import create_fails
from dmtest import (create, devno, dmsetup, pattern, read_at, remove, status, table,
                    target_versions, write_at)

SECTOR = 512


def test_linear_version():
    assert target_versions()["linear"] == (1, 4, 0)


def test_linear_maps_at_offset(brd):
    ram, = brd(1, 16)
    below = pattern("below", 512 << 10)
    write_at(ram, 0, below)
    dev = create("lin", "0 4096 linear %s 1024" % ram)
    data = pattern("lin", 4096 * SECTOR)
    write_at(dev, 0, data)
    # Sector 0 of the target is sector 1024 of the lower device.
    assert read_at(ram, 1024 * SECTOR, len(data)) == data
    assert read_at(dev, 0, len(data)) == data
    assert read_at(ram, 0, len(below)) == below, "write escaped below the offset"
    remove("lin")


def test_linear_table_and_status_lines(brd):
    ram, = brd(1, 16)
    create("lin", "0 2048 linear %s 8" % ram)
    assert table("lin") == "0 2048 linear %s 8" % devno(ram)
    assert status("lin") == "0 2048 linear "
    remove("lin")


def test_linear_accepts_major_minor(brd):
    ram, = brd(1, 16)
    create("lin", "0 2048 linear %s 0" % devno(ram))
    assert table("lin") == "0 2048 linear %s 0" % devno(ram)
    assert dmsetup("deps", "lin").strip() == "1 dependencies\t: (%s)" % \
        devno(ram).replace(":", ", ")
    remove("lin")


def test_linear_size_and_remap_after_reload(brd):
    ram, = brd(1, 16)
    data = pattern("reload", 1 << 20)
    write_at(ram, 8192 * SECTOR, data)
    create("lin", "0 2048 linear %s 0" % ram)
    dmsetup("load", "lin", input="0 2048 linear %s 8192\n" % ram)
    dmsetup("resume", "lin")
    assert read_at("/dev/mapper/lin", 0, len(data)) == data
    remove("lin")


# Constructor errors: (params, ti->error, errno symbol, dmsetup's strerror).
LINEAR_CTR_ERRORS = [
    ("", "Invalid argument count", "EINVAL", "Invalid argument"),
    ("{ram}", "Invalid argument count", "EINVAL", "Invalid argument"),
    ("{ram} 0 0", "Invalid argument count", "EINVAL", "Invalid argument"),
    ("{ram} abc", "Invalid device sector", "EINVAL", "Invalid argument"),
    ("{ram} 1x", "Invalid device sector", "EINVAL", "Invalid argument"),
    ("{ram} -1", "Invalid device sector", "EINVAL", "Invalid argument"),
    ("/dev/no-such-disk 0", "Device lookup failed", "ENODEV", "No such device"),
    ("250:250 0", "Device lookup failed", "ENXIO", "No such device or address"),
]


@pytest.mark.parametrize("params,msg,err,strerr", LINEAR_CTR_ERRORS,
                         ids=[e[0] or "noargs" for e in LINEAR_CTR_ERRORS])
def test_linear_ctr_errors(brd, params, msg, err, strerr):
    ram, = brd(1, 16)
    line = "0 2048 linear " + params.format(ram=ram)
    stderr, klog = create_fails("bad", line.rstrip())
    assert strerr in stderr
    # %pe prints the errno by name, or by number on a kernel built without
    # CONFIG_SYMBOLIC_ERRNAME (the debug kernel).
    pat = re.compile(r"device-mapper: table: \d+:\d+: linear: %s \(-(%s|%d)\)$"
                     % (re.escape(msg), err, getattr(errno, err)))
    assert any(pat.search(line) for line in klog), klog
    assert "device-mapper: ioctl: error adding target to table" in klog


def test_linear_beyond_device_end(brd):
    ram, = brd(1, 16)              # 32768 sectors
    stderr, klog = create_fails("bad", "0 100 linear %s 32700" % ram)
    assert "Invalid argument" in stderr
    assert any(re.search(r"device-mapper: table: \d+:\d+: ram0 too small for target: "
                         r"start=32700, len=100, dev_size=32768$", l) for l in klog), klog
