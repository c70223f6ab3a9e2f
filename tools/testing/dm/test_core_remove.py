# SPDX-License-Identifier: GPL-2.0-only
"""dm core: remove (open devices, deferred remove, remove_all, missing
devices, stacked devices)."""
import errno
import os
import subprocess

from corehelp import DM_DEV_REMOVE, Kmsg, info, raw_ioctl
from dmtest import create, dm_names, dmsetup, fails, remove, udev_settle, wait_for

ZERO = "0 8 zero"


def _remove_nowait(name, *opts):
    # --retry would ride out the EBUSY for 5 s: these tests want it at once.
    return subprocess.run(["dmsetup", "remove", *opts, name], capture_output=True, text=True)


def test_remove_of_open_device_is_ebusy():
    dev = create("busy", ZERO)
    fd = os.open(dev, os.O_RDONLY)
    try:
        assert info("busy")["open"] == "1"
        p = _remove_nowait("busy")
        assert p.returncode != 0
        assert "remove ioctl on busy" in p.stderr and "Device or resource busy" in p.stderr
        err, _ = raw_ioctl(DM_DEV_REMOVE, name=b"busy")
        assert err == errno.EBUSY
        assert dm_names() == ["busy"]
    finally:
        os.close(fd)
    udev_settle()
    remove("busy")
    assert dm_names() == []
    assert not os.path.exists(dev)


def test_deferred_remove_waits_for_last_close():
    dev = create("later", ZERO)
    fd = os.open(dev, os.O_RDONLY)
    fd2 = os.open(dev, os.O_RDONLY)
    try:
        dmsetup("remove", "--deferred", "later")
        assert dm_names() == ["later"]
        out = dmsetup("info", "later")
        assert "State:             ACTIVE (DEFERRED REMOVE)" in out
        assert "Open count:        2" in out
        os.close(fd2)
        fd2 = None
        udev_settle()
        assert dm_names() == ["later"]      # still open once
    finally:
        if fd2 is not None:
            os.close(fd2)
        os.close(fd)
    wait_for(lambda: not _exists("later"), what="deferred remove")
    udev_settle()
    assert not os.path.exists(dev)


def _exists(name):
    p = subprocess.run(["dmsetup", "info", "-c", "--noheadings", "-o", "name", name],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip() == name


def test_deferred_remove_of_closed_device_is_immediate():
    create("now", ZERO)
    dmsetup("remove", "--deferred", "now")
    assert dm_names() == []


def test_cancel_deferred_remove():
    dev = create("keep", ZERO)
    fd = os.open(dev, os.O_RDONLY)
    try:
        dmsetup("remove", "--deferred", "keep")
        dmsetup("message", "keep", "0", "@cancel_deferred_remove")
        assert "State:             ACTIVE\n" in dmsetup("info", "keep")
    finally:
        os.close(fd)
    udev_settle()
    assert dm_names() == ["keep"]
    # Cancelling when nothing is pending is fine; arguments are not.
    dmsetup("message", "keep", "0", "@cancel_deferred_remove")
    k = Kmsg()
    rc, out = fails("dmsetup", "message", "keep", "0", "@cancel_deferred_remove", "now")
    klog = k.lines()
    k.close()
    assert "Invalid argument" in out
    assert "device-mapper: ioctl: Invalid arguments for @cancel_deferred_remove" in klog
    remove("keep")


def test_remove_missing_device_is_enxio():
    rc, out = fails("dmsetup", "remove", "ghost")
    assert "remove ioctl on ghost" in out and "No such device or address" in out
    assert raw_ioctl(DM_DEV_REMOVE, name=b"ghost")[0] == errno.ENXIO


def test_remove_device_in_use_by_another_dm_device(brd):
    ram, = brd(1, 16)
    create("lower", "0 2048 linear %s 0" % ram)
    create("upper", "0 2048 linear /dev/mapper/lower 0")
    assert info("lower")["open"] == "1"
    p = _remove_nowait("lower")
    assert p.returncode != 0 and "Device or resource busy" in p.stderr
    remove("upper")
    assert info("lower")["open"] == "0"
    remove("lower")


def test_remove_all_skips_open_devices():
    dev = create("open1", ZERO)
    create("closed1", ZERO)
    create("closed2", ZERO)
    fd = os.open(dev, os.O_RDONLY)
    try:
        dmsetup("remove_all")
        assert dm_names() == ["open1"]
    finally:
        os.close(fd)
    udev_settle()
    dmsetup("remove_all")
    assert dm_names() == []
    assert dmsetup("ls").strip() == "No devices found"


def test_remove_device_without_table():
    dmsetup("create", "bare", "--notable")
    remove("bare")
    assert dm_names() == []
    assert "bare" not in dmsetup("ls")


def test_remove_frees_minor_for_reuse():
    create("a", ZERO)
    devno_a = info("a")["minor"]
    remove("a")
    create("b", ZERO)
    assert info("b")["minor"] == devno_a
    remove("b")
