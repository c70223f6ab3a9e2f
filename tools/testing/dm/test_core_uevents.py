# SPDX-License-Identifier: GPL-2.0-only
"""dm core: the kernel uevents of dm disks (add on the first table load,
change on resume and rename, remove, RESIZE=1, the DM_COOKIE of the ioctl)
and the path events multipath sends through dm_path_uevent.

Events are read from a kernel uevent netlink socket (what `udevadm monitor
--kernel --property` shows). Device ioctls go out raw, so that the cookie
is a known number; it carries only a udev flag and no semaphore, so udev's
`dmsetup udevcomplete` for it does nothing. (The verity corruption event is
in test_verity.py.)
"""
import fcntl
import os
import socket
import struct
import time

import pytest

from dmtest import dmsetup, has_target, remove, udev_settle

NETLINK_KOBJECT_UEVENT = 15
COOKIE = 0x40 << 16         # DM_UDEV_PRIMARY_SOURCE_FLAG, no semaphore

DM_HDR = 312
DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_RENAME, DM_DEV_SUSPEND = 3, 4, 5, 6
DM_TABLE_LOAD = 9
DM_UUID_FLAG = 1 << 14


def _ioctl(nr, name, event_nr=0, flags=0, payload=b"", target_count=0,
           uuid=b""):
    size = DM_HDR + len(payload) + 8
    buf = bytearray(size)
    struct.pack_into("=3IIIIiIIIQ", buf, 0, 4, 0, 0, size, DM_HDR,
                     target_count, 0, flags, event_nr, 0, 0)
    buf[48:48 + len(name)] = name.encode()
    buf[176:176 + len(uuid)] = uuid
    buf[DM_HDR:DM_HDR + len(payload)] = payload
    fd = os.open("/dev/mapper/control", os.O_RDWR)
    try:
        fcntl.ioctl(fd, (3 << 30) | (DM_HDR << 16) | (0xfd << 8) | nr, buf, True)
    finally:
        os.close(fd)
    return struct.unpack_from("=Q", buf, 40)[0]        # dev


def _load(name, lines):
    """Load a table of (start, len, type, params) without udev flags."""
    payload = b""
    for i, (start, length, ttype, params) in enumerate(lines):
        p = params.encode() + b"\0"
        p += b"\0" * (-(40 + len(p)) % 8)
        nxt = 40 + len(p) if i + 1 < len(lines) else 0
        payload += struct.pack("=QQiI16s", start, length, 0, nxt, ttype.encode()) + p
    _ioctl(DM_TABLE_LOAD, name, payload=payload, target_count=len(lines))


class Uevents:
    """Kernel uevents of one block device, from the moment this was made."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  NETLINK_KOBJECT_UEVENT)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 1))
        self.sock.settimeout(0.5)

    def read(self, devname, quiet=0.5):
        """Events of DEVNAME (dicts) until nothing arrives for QUIET s."""
        out = []
        self.sock.settimeout(quiet)
        while True:
            try:
                msg = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            fields = msg.split(b"\0")
            env = dict(f.decode(errors="replace").split("=", 1)
                       for f in fields[1:] if b"=" in f)
            if env.get("SUBSYSTEM") == "block" and env.get("DEVNAME") == devname:
                out.append(env)
        return out

    def close(self):
        self.sock.close()


@pytest.fixture
def uevents():
    dmsetup("version")          # dm-mod loaded before listening
    ue = Uevents()
    yield ue
    ue.close()


def _dm_keys(env):
    keep = ("ACTION", "DM_COOKIE", "RESIZE", "DM_TARGET", "DM_ACTION",
            "DM_SEQNUM", "DM_PATH", "DM_NR_VALID_PATHS", "DM_NAME", "DM_UUID",
            "DM_VERITY_ERR_BLOCK_NR")
    return {k: v for k, v in env.items() if k in keep}


def test_lifecycle_events(brd, uevents):
    ram = brd(1, 16)[0]
    _ioctl(DM_DEV_CREATE, "uev", uuid=b"UEV-1")
    _load("uev", [(0, 1024, "linear", ram + " 0")])
    dev = _ioctl(DM_DEV_SUSPEND, "uev", event_nr=COOKIE)
    devname = "dm-%d" % (dev & 0xff | (dev >> 12) & ~0xff)
    _load("uev", [(0, 2048, "linear", ram + " 0")])
    _ioctl(DM_DEV_SUSPEND, "uev", event_nr=COOKIE + 1)
    _ioctl(DM_DEV_RENAME, "uev", event_nr=COOKIE + 2, payload=b"uev2\0")
    udev_settle()
    _ioctl(DM_DEV_REMOVE, "uev2", event_nr=COOKIE + 3)
    got = [_dm_keys(e) for e in uevents.read(devname)]
    c = str(COOKIE)
    assert got == [
        {"ACTION": "add"},
        {"ACTION": "change", "DM_COOKIE": c},
        {"ACTION": "change", "DM_COOKIE": str(COOKIE + 1), "RESIZE": "1"},
        {"ACTION": "change", "DM_COOKIE": str(COOKIE + 2)},
        {"ACTION": "remove", "DM_COOKIE": str(COOKIE + 3)},
        {"ACTION": "remove"},
    ]


def test_resume_of_running_device_sends_nothing(brd, uevents):
    ram = brd(1, 16)[0]
    _ioctl(DM_DEV_CREATE, "uev")
    _load("uev", [(0, 64, "linear", ram + " 0")])
    dev = _ioctl(DM_DEV_SUSPEND, "uev", event_nr=COOKIE)
    devname = "dm-%d" % (dev & 0xff | (dev >> 12) & ~0xff)
    udev_settle()
    uevents.read(devname)
    # Not suspended: nothing to resume, no event.
    _ioctl(DM_DEV_SUSPEND, "uev", event_nr=COOKIE + 7)
    # A same-size table swap: change, but no RESIZE.
    _load("uev", [(0, 64, "linear", ram + " 8")])
    _ioctl(DM_DEV_SUSPEND, "uev", event_nr=COOKIE + 8)
    got = [_dm_keys(e) for e in uevents.read(devname)]
    udev_settle()
    remove("uev")
    assert got == [{"ACTION": "change", "DM_COOKIE": str(COOKIE + 8)}]


def test_multipath_path_events(brd, uevents):
    if not has_target("multipath"):
        pytest.skip("no multipath target")
    rams = brd(2, 16)
    # bio-based: request-based multipath cannot stack on brd.
    table = ("0 2048 multipath 2 queue_mode bio 0 1 1 round-robin 0 2 1 %s 1000 %s 1000"
             % (rams[0], rams[1]))
    dmsetup("create", "mp", "-u", "UEV-MP", input=table + "\n")
    devname = os.path.basename(os.path.realpath("/dev/mapper/mp"))
    udev_settle()
    uevents.read(devname)
    dmsetup("message", "mp", "0", "fail_path", "1:0")
    dmsetup("message", "mp", "0", "reinstate_path", "1:0")
    time.sleep(0.3)
    got = [_dm_keys(e) for e in uevents.read(devname)]
    udev_settle()
    remove("mp")
    common = {"ACTION": "change", "DM_TARGET": "multipath", "DM_PATH": "1:0",
              "DM_NAME": "mp", "DM_UUID": "UEV-MP"}
    assert got == [
        dict(common, DM_ACTION="PATH_FAILED", DM_SEQNUM="1", DM_NR_VALID_PATHS="1"),
        dict(common, DM_ACTION="PATH_REINSTATED", DM_SEQNUM="2",
             DM_NR_VALID_PATHS="2"),
    ]
