# SPDX-License-Identifier: GPL-2.0-only
"""striped target (in dm-mod, 1.6.0): chunk layout, table/status, ctr errors."""
import errno
import os
import re

import pytest

from corehelp import create_fails, events
from dmtest import (create, devno, dmsetup, pattern, read_at, remove, status, table,
                    target_versions, write_at)

SECTOR = 512


def test_striped_version():
    assert target_versions()["striped"] == (1, 6, 0)


def _check_layout(data, chunk, stripes):
    """Chunk i of the striped device lies on stripe i % n, at chunk i // n."""
    csz = chunk * SECTOR
    for i in range(len(data) // csz):
        dev, off = stripes[i % len(stripes)]
        got = read_at(dev, off * SECTOR + (i // len(stripes)) * csz, csz)
        assert got == data[i * csz:(i + 1) * csz], f"chunk {i} misplaced"


def test_striped_two_stripes_layout(brd):
    r0, r1 = brd(2, 16)
    dev = create("st", "0 8192 striped 2 16 %s 0 %s 2048" % (r0, r1))
    data = pattern("st2", 8192 * SECTOR)
    write_at(dev, 0, data)
    _check_layout(data, 16, [(r0, 0), (r1, 2048)])
    assert read_at(dev, 0, len(data)) == data
    remove("st")


def test_striped_non_power_of_two_chunk(brd):
    r0, r1 = brd(2, 16)
    # 3 stripes of 24-sector chunks; a stripe may be named twice.
    length = 3 * 24 * 40
    dev = create("st", "0 %d striped 3 24 %s 0 %s 0 %s 8192" % (length, r0, r1, r1))
    data = pattern("st3", length * SECTOR)
    write_at(dev, 0, data)
    _check_layout(data, 24, [(r0, 0), (r1, 0), (r1, 8192)])
    # An unaligned read that spans several chunks.
    assert read_at(dev, 7 * 4096, 20 * 4096) == data[7 * 4096:27 * 4096]
    remove("st")


def test_striped_table_and_status_lines(brd):
    r0, r1 = brd(2, 16)
    create("st", "0 4096 striped 2 8 %s 0 %s 64" % (r0, devno(r1)))
    d0, d1 = devno(r0), devno(r1)
    assert table("st") == "0 4096 striped 2 8 %s 0 %s 64" % (d0, d1)
    assert status("st") == "0 4096 striped 2 %s %s 1 AA" % (d0, d1)
    out = dmsetup("deps", "st").strip()
    assert out.startswith("2 dependencies\t: ")
    assert sorted(re.findall(r"\((\d+), (\d+)\)", out)) == \
        sorted([tuple(d0.split(":")), tuple(d1.split(":"))])
    remove("st")


def test_striped_io_hints(brd):
    r0, r1 = brd(2, 16)
    dev = create("st", "0 4096 striped 2 16 %s 0 %s 0" % (r0, r1))
    kname = os.path.basename(os.path.realpath(dev))
    with open("/sys/block/%s/queue/minimum_io_size" % kname) as f:
        assert int(f.read()) == 16 * SECTOR
    with open("/sys/block/%s/queue/optimal_io_size" % kname) as f:
        assert int(f.read()) == 2 * 16 * SECTOR
    remove("st")


def test_striped_failing_stripe_shows_d_and_raises_event(brd):
    r0, = brd(1, 16)
    create("bad", "0 2048 error")
    dev = create("st", "0 4096 striped 2 8 %s 0 /dev/mapper/bad 0" % r0)
    ev = events("st")
    # Chunk 1 sits on the failing stripe; chunk 0 on the good one.
    read_at(dev, 0, 4096)
    try:
        read_at(dev, 8 * SECTOR, 4096)
        raise AssertionError("read from the error stripe succeeded")
    except OSError as e:
        assert e.errno == errno.EIO
    assert status("st") == "0 4096 striped 2 %s %s 1 AD" % (devno(r0), devno("/dev/mapper/bad"))
    assert events("st") > ev
    remove("st")
    remove("bad")


# Constructor errors: (length, params, ti->error, errno symbol).
STRIPED_CTR_ERRORS = [
    (128, "1", "Not enough arguments", "EINVAL"),
    (128, "", "Not enough arguments", "EINVAL"),
    (128, "0 8", "Invalid stripe count", "EINVAL"),
    (128, "x 8 {r0} 0 {r1} 0", "Invalid stripe count", "EINVAL"),
    (128, "0 8 {r0} 0", "Invalid stripe count", "EINVAL"),
    (128, "2 0 {r0} 0 {r1} 0", "Invalid chunk_size", "EINVAL"),
    (128, "2 x {r0} 0 {r1} 0", "Invalid chunk_size", "EINVAL"),
    (128, "2 8x {r0} 0 {r1} 0", "Invalid chunk_size", "EINVAL"),
    (128, "2 8 {r0} 0", "Not enough destinations specified", "EINVAL"),
    (128, "2 8 {r0} 0 {r1} 0 x", "Not enough destinations specified", "EINVAL"),
    (127, "2 8 {r0} 0 {r1} 0", "Target length not divisible by number of stripes",
     "EINVAL"),
    (100, "2 8 {r0} 0 {r1} 0", "Target length not divisible by chunk size", "EINVAL"),
    (128, "2 7 {r0} 0 {r1} 0", "Target length not divisible by chunk size", "EINVAL"),
    (128, "2 8 {r0} 0 {r1} x", "Couldn't parse stripe destination", "EINVAL"),
    (128, "2 8 {r0} 0 /dev/no-such-disk 0", "Couldn't parse stripe destination", "ENODEV"),
]


@pytest.mark.parametrize("length,params,msg,err", STRIPED_CTR_ERRORS,
                         ids=["%d:%s" % (e[0], e[1] or "noargs") for e in STRIPED_CTR_ERRORS])
def test_striped_ctr_errors(brd, length, params, msg, err):
    r0, r1 = brd(2, 16)
    line = ("0 %d striped %s" % (length, params.format(r0=r0, r1=r1))).rstrip()
    stderr, klog = create_fails("bad", line)
    # %pe prints the errno by name, or by number on a kernel built without
    # CONFIG_SYMBOLIC_ERRNAME (the debug kernel).
    pat = re.compile(r"device-mapper: table: \d+:\d+: striped: %s \(-(%s|%d)\)$"
                     % (re.escape(msg), err, getattr(errno, err)))
    assert any(pat.search(l) for l in klog), klog
    assert ("No such device" if err == "ENODEV" else "Invalid argument") in stderr
