# SPDX-License-Identifier: GPL-2.0-only
"""dm core seen through dmsetup: info/ls/tree/deps/mknodes, messages,
suspend/resume (I/O held while suspended, noflush, nolockfs) and read-only
devices."""
import errno
import os
import stat
import subprocess
import sys
import time

from corehelp import Kmsg, dm_major, info
from dmtest import create, devno, dmsetup, fails, fill, pattern, read_at, remove, run, write_at

ZERO = "0 8 zero"
HERE = os.path.dirname(os.path.abspath(__file__))


def test_info_of_a_new_device(brd):
    ram, = brd(1, 16)
    create("inf", "0 2048 linear %s 0" % ram, "-u", "INF-UUID")
    i = info("inf")
    assert dmsetup("info", "inf") == (
        "Name:              inf\n"
        "State:             ACTIVE\n"
        "Read Ahead:        256\n"
        "Tables present:    LIVE\n"
        "Open count:        0\n"
        "Event number:      0\n"
        "Major, minor:      %d, %s\n"
        "Number of targets: 1\n"
        "UUID: INF-UUID\n\n" % (dm_major(), i["minor"]))
    assert devno("/dev/mapper/inf") == "%d:%s" % (dm_major(), i["minor"])
    assert i["attr"] == "L--w" and i["segments"] == "1" and i["open"] == "0"
    kname = "dm-" + i["minor"]
    with open("/sys/block/%s/dm/suspended" % kname) as f:
        assert f.read() == "0\n"
    with open("/sys/block/%s/size" % kname) as f:
        assert f.read() == "2048\n"
    remove("inf")


def test_ls_and_tree(brd):
    ram, = brd(1, 16)
    create("lower", "0 2048 linear %s 0" % ram)
    create("upper", "0 1024 linear /dev/mapper/lower 0")
    lo, up = devno("/dev/mapper/lower"), devno("/dev/mapper/upper")
    assert dmsetup("ls") == "lower\t(%s)\nupper\t(%s)\n" % (lo, up)
    assert dmsetup("ls", "--tree", "-o", "ascii") == (
        "upper (%s)\n `-lower (%s)\n    `- (%s)\n" % (up, lo, devno(ram)))
    assert dmsetup("ls", "--tree") == (
        "upper (%s)\n \u2514\u2500lower (%s)\n    \u2514\u2500 (%s)\n" % (up, lo, devno(ram)))
    assert dmsetup("deps", "upper") == "1 dependencies\t: (%s)\n" % lo.replace(":", ", ")
    assert dmsetup("deps", "-o", "devname", "upper") == "1 dependencies\t: (lower)\n"
    assert dmsetup("deps", "-o", "devname", "lower") == "1 dependencies\t: (ram0)\n"
    assert info("lower")["open"] == "1"
    # holders/slaves links in sysfs
    lk, uk = "dm-" + lo.split(":")[1], "dm-" + up.split(":")[1]
    assert os.listdir("/sys/block/%s/holders" % lk) == [uk]
    assert os.listdir("/sys/block/%s/slaves" % uk) == [lk]
    assert os.listdir("/sys/block/ram0/holders") == [lk]
    remove("upper")
    remove("lower")


def test_mknodes_recreates_node():
    create("nod", ZERO)
    dn = devno("/dev/mapper/nod")
    os.unlink("/dev/mapper/nod")
    dmsetup("mknodes", "nod")
    st = os.stat("/dev/mapper/nod")
    assert stat.S_ISBLK(st.st_mode)
    assert "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)) == dn
    remove("nod")
    # mknodes also drops nodes of devices that no longer exist.
    os.mknod("/dev/mapper/stale", stat.S_IFBLK | 0o600, os.makedev(dm_major(), 200))
    dmsetup("mknodes")
    assert not os.path.exists("/dev/mapper/stale")


def _message_fails(name, sector, *words):
    k = Kmsg()
    rc, out = fails("dmsetup", "message", name, str(sector), *words)
    klog = k.lines()
    k.close()
    return out, klog


def test_message_errors(brd):
    ram, = brd(1, 16)
    create("msg", "0 2048 linear %s 0" % ram)
    out, klog = _message_fails("msg", 0, "hello")
    assert "message ioctl on msg" in out and "Invalid argument" in out
    assert "device-mapper: ioctl: Target type does not support messages" in klog
    out, klog = _message_fails("msg", 2048, "hello")
    assert "Invalid argument" in out
    assert "device-mapper: ioctl: Target message sector outside device." in klog
    out, klog = _message_fails("msg", 0, "@nonsense")
    assert "Invalid argument" in out
    assert "device-mapper: ioctl: Unsupported message sent to DM core: @nonsense" in klog
    remove("msg")
    dmsetup("create", "notab", "--notable")
    out, klog = _message_fails("notab", 0, "hello")
    assert "Invalid argument" in out
    assert "device-mapper: ioctl: The device has no table." in klog
    remove("notab")


def test_suspend_resume_state():
    create("sus", ZERO)
    kname = "dm-" + info("sus")["minor"]
    dmsetup("suspend", "sus")
    assert info("sus")["attr"] == "L-sw"
    assert info("sus")["suspended"] == "Suspended"
    assert "State:             SUSPENDED\n" in dmsetup("info", "sus")
    with open("/sys/block/%s/dm/suspended" % kname) as f:
        assert f.read() == "1\n"
    dmsetup("resume", "sus")
    assert info("sus")["attr"] == "L--w"
    with open("/sys/block/%s/dm/suspended" % kname) as f:
        assert f.read() == "0\n"
    remove("sus")


# A helper process doing one O_DIRECT write or read, so that the test can
# watch it block while the device is suspended.
IO_SCRIPT = """
import sys
sys.path.insert(0, %r)
import dmtest
dev, op, off, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
if op == "w":
    dmtest.write_at(dev, off, dmtest.pattern(seed, n))
else:
    ok = dmtest.read_at(dev, off, n) == dmtest.pattern(seed, n)
    sys.exit(0 if ok else 3)
""" % HERE


def _io(dev, op, off, seed, n):
    return subprocess.Popen([sys.executable, "-c", IO_SCRIPT, dev, op, str(off), seed, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _held_io(flags, brd):
    ram, = brd(1, 16)
    dev = create("held", "0 8192 linear %s 0" % ram)
    fill(dev, "old", 0, 1 << 20)
    dmsetup("suspend", *flags, "held")
    w = _io(dev, "w", 1 << 20, "held-w", 1 << 20)
    r = _io(dev, "r", 0, "old", 1 << 20)
    try:
        time.sleep(1.5)
        assert w.poll() is None, "write completed on a suspended device"
        assert r.poll() is None, "read completed on a suspended device"
        assert read_at(ram, 1 << 20, 1 << 20) != pattern("held-w", 1 << 20)
        dmsetup("resume", "held")
        assert w.wait(timeout=30) == 0, w.stderr.read()
        assert r.wait(timeout=30) == 0, r.stderr.read()
    finally:
        for p in (w, r):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert read_at(ram, 1 << 20, 1 << 20) == pattern("held-w", 1 << 20)
    assert read_at(dev, 1 << 20, 1 << 20) == pattern("held-w", 1 << 20)
    remove("held")


def test_io_held_while_suspended(brd):
    _held_io([], brd)


def test_io_held_while_suspended_noflush(brd):
    _held_io(["--noflush"], brd)


def test_io_held_while_suspended_nolockfs(brd):
    _held_io(["--nolockfs"], brd)


def test_suspend_twice_and_resume_twice():
    create("sus", ZERO)
    dmsetup("suspend", "sus")
    dmsetup("suspend", "sus")
    assert info("sus")["attr"] == "L-sw"
    dmsetup("resume", "sus")
    dmsetup("resume", "sus")
    assert info("sus")["attr"] == "L--w"
    remove("sus")


def _suspend_with_dirty_file(suspend_flags, brd):
    """Write a file on a mounted ext4 without syncing, suspend the dm device
    and look for the file's bytes on the lower device while suspended.
    Returns (found on disk, file creation blocked while suspended)."""
    ram, = brd(1, 64)
    dev = create("fs", "0 65536 linear %s 0" % ram)
    run("mkfs.ext4", "-q", "-F", dev)
    mnt = "/tmp/dmtest-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", dev, mnt)
    data = pattern("dirty", 64 << 10)
    try:
        with open(mnt + "/dirty", "wb") as f:
            f.write(data)
        dmsetup("suspend", *suspend_flags, "fs")
        p = subprocess.Popen(["sh", "-c", "echo hi > %s/new" % mnt])
        try:
            time.sleep(1.5)
            blocked = p.poll() is None
            with open(ram, "rb") as f:
                on_disk = data in f.read()
            dmsetup("resume", "fs")
            assert p.wait(timeout=30) == 0
        finally:
            if p.poll() is None:
                dmsetup("resume", "fs")
                p.wait()
        with open(mnt + "/dirty", "rb") as f:
            assert f.read() == data
    finally:
        run("umount", mnt)
    remove("fs")
    return on_disk, blocked


def test_suspend_freezes_mounted_filesystem(brd):
    on_disk, blocked = _suspend_with_dirty_file([], brd)
    assert on_disk, "suspend did not flush the filesystem (no freeze)"
    assert blocked, "file creation went through while the filesystem should be frozen"


def test_suspend_nolockfs_does_not_freeze(brd):
    on_disk, blocked = _suspend_with_dirty_file(["--nolockfs"], brd)
    assert not on_disk, "--nolockfs suspend wrote back the filesystem's dirty data"


def test_readonly_device(brd):
    ram, = brd(1, 16)
    data = fill(ram, "ro", 0, 1 << 20)
    dev = create("ro", "0 2048 linear %s 0" % ram, "--readonly")
    assert info("ro")["attr"] == "L--r"
    assert info("ro")["readonly"] == "Read-only"
    assert "State:             ACTIVE (READ-ONLY)\n" in dmsetup("info", "ro")
    assert run("blockdev", "--getro", dev).strip() == "1"
    with open("/sys/block/dm-%s/ro" % info("ro")["minor"]) as f:
        assert f.read() == "1\n"
    assert read_at(dev, 0, len(data)) == data
    try:
        write_at(dev, 0, b"x" * 4096)
        raise AssertionError("direct write to a read-only device succeeded")
    except OSError as e:
        assert e.errno == errno.EPERM
    try:
        write_at(dev, 0, b"x" * 4096, direct=False)
        raise AssertionError("buffered write to a read-only device succeeded")
    except OSError as e:
        assert e.errno == errno.EPERM
    assert read_at(ram, 0, len(data)) == data
    # A read-write table makes it writable at resume.
    dmsetup("load", "ro", input="0 2048 linear %s 0\n" % ram)
    assert info("ro")["attr"] == "LI-r"
    dmsetup("resume", "ro")
    assert info("ro")["attr"] == "L--w"
    assert run("blockdev", "--getro", dev).strip() == "0"
    write_at(dev, 0, pattern("rw", 4096))
    assert read_at(ram, 0, 4096) == pattern("rw", 4096)
    remove("ro")


def test_readonly_reload_makes_device_readonly(brd):
    ram, = brd(1, 16)
    dev = create("ro", "0 2048 linear %s 0" % ram)
    dmsetup("load", "--readonly", "ro", input="0 2048 linear %s 0\n" % ram)
    dmsetup("resume", "ro")
    assert info("ro")["attr"] == "L--r"
    assert run("blockdev", "--getro", dev).strip() == "1"
    remove("ro")
