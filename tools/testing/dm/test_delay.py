# SPDX-License-Identifier: GPL-2.0-only
"""delay: per-class devices and delays, held bios released in order and on suspend."""
import subprocess
import time

import pytest

from dmharness import KernelLog
from dmtest import (create, devno, dmsetup, fails, fill, pattern, read_at,
                    remove, status, table, target_versions, udev_settle,
                    wait_for, write_at)

MB = 1 << 20


@pytest.fixture
def devs(brd):
    return brd(3, 16)


def test_version(devs):
    create("dl", f"0 8192 delay {devs[0]} 0 0")
    assert target_versions()["delay"] == (1, 3, 0)
    remove("dl")


def test_table_three_classes(devs):
    a, b, c = (devno(d) for d in devs)
    create("d3", f"0 8192 delay {devs[0]} 0 10")
    create("d6", f"0 8192 delay {devs[0]} 8 10 {devs[1]} 16 20")
    create("d9", f"0 8192 delay {devs[0]} 8 10 {devs[1]} 16 20 {devs[2]} 24 30")
    assert table("d3") == f"0 8192 delay {a} 0 10"
    assert table("d6") == f"0 8192 delay {a} 8 10 {b} 16 20"
    assert table("d9") == f"0 8192 delay {a} 8 10 {b} 16 20 {c} 24 30"
    assert status("d9") == "0 8192 delay 0 0 0"
    for n in ("d3", "d6", "d9"):
        remove(n)


@pytest.mark.parametrize("args,msg", [
    ("{0} 0", "Requires exactly 3, 6 or 9 arguments"),
    ("{0} 0 1 {1} 0", "Requires exactly 3, 6 or 9 arguments"),
    ("{0} x 1", "Invalid device sector"),
    ("{0} 0 x", "Invalid delay"),
    ("{0} 0 -1", "Invalid delay"),
    ("/dev/nonexistent 0 1", "Device lookup failed"),
    ("{0} 0 1 {1} 0 1x", "Invalid delay"),
    ("{0} 0 1 {1} 0 1 /dev/nonexistent 0 1", "Device lookup failed"),
])
def test_ctr_errors(devs, args, msg):
    klog = KernelLog()
    _, out = fails("dmsetup", "create", "dl", "--table",
                   "0 8192 delay " + args.format(*devs))
    lines = klog.read()
    klog.close()
    assert "Invalid argument" in out or "No such" in out
    assert any(f"delay: {msg}" in line for line in lines), lines


def timed(fn, *a):
    t0 = time.monotonic()
    r = fn(*a)
    return r, time.monotonic() - t0


def test_reads_and_writes_delayed_separately(devs):
    """Reads from dev0 after 200 ms; writes go to dev1 undelayed."""
    data = fill(devs[0], "r", 0, MB)
    dl = create("dl", f"0 8192 delay {devs[0]} 0 200 {devs[1]} 0 0")
    got, dt = timed(read_at, dl, 0, 65536)
    assert got == data[:65536]
    assert dt >= 0.18
    new = pattern("w", 65536)
    _, dt = timed(write_at, dl, 0, new)
    assert dt < 0.5
    assert read_at(devs[1], 0, 65536) == new
    # INFO counts bios held right now: none once everything (udev too) is done
    udev_settle()
    wait_for(lambda: status("dl") == "0 8192 delay 0 0 0", what="no held bios")
    remove("dl", "--retry")


def test_write_and_flush_classes(devs):
    """Writes go to the write class device, flushes to the flush class."""
    dl = create("dl", f"0 8192 delay {devs[0]} 0 0 {devs[1]} 0 50 {devs[2]} 0 50")
    new = pattern("w", 4096)
    write_at(dl, 4096, new)       # one write, then an fsync flush
    assert read_at(devs[1], 4096, 4096) == new
    assert read_at(devs[0], 4096, 4096) == bytes(4096)
    remove("dl", "--retry")


def test_data_order_preserved(devs):
    """Many delayed overlapping writes land in submission order."""
    dl = create("dl", f"0 8192 delay {devs[0]} 0 0 {devs[0]} 0 100")
    for i in range(8):
        write_at(dl, 0, pattern(f"v{i}", 8192))
    assert read_at(devs[0], 0, 8192) == pattern("v7", 8192)
    remove("dl", "--retry")


def test_suspend_releases_held_io(devs):
    """A write held for 20 s completes as soon as the device is suspended."""
    # reads undelayed: udev probes every new device
    dl = create("dl", f"0 8192 delay {devs[0]} 0 0 {devs[0]} 0 20000")
    new = pattern("held", 4096)
    with open("/tmp/dl-data", "wb") as f:
        f.write(new)
    p = subprocess.Popen(["dd", "if=/tmp/dl-data", f"of={dl}", "bs=4096",
                          "oflag=direct", "status=none"])
    time.sleep(0.5)
    assert p.poll() is None
    assert status("dl") == "0 8192 delay 0 1 0"
    t0 = time.monotonic()
    dmsetup("suspend", "dl")
    assert p.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 10
    assert read_at(devs[0], 0, 4096) == new
    dmsetup("resume", "dl")
    # delaying starts again after resume (a new table with a short delay)
    dmsetup("load", "dl", "--table", f"0 8192 delay {devs[0]} 0 0 {devs[0]} 0 300")
    dmsetup("resume", "dl")
    _, dt = timed(write_at, dl, 0, new)
    assert dt > 0.25
    remove("dl", "--retry")


def test_discard_passes_to_write_class(loopdev):
    """Discards are writes: they take the write class and reach its device."""
    a, b = loopdev(8), loopdev(8)
    fill(a, "a", 0, MB)
    fill(b, "b", 0, MB)
    dl = create("dl", f"0 8192 delay {a} 0 0 {b} 0 10")
    subprocess.run(["blkdiscard", "-o", "0", "-l", str(MB), dl], check=True)
    assert read_at(b, 0, MB) == bytes(MB)
    assert read_at(a, 0, MB) == pattern("a", MB)
    remove("dl", "--retry")
