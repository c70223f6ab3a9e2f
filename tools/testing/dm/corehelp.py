# SPDX-License-Identifier: GPL-2.0-only
"""Helpers shared by the dm core tests (test_core_*, the built-in targets,
LVM and filesystem tests). Runs inside the test guest.

  * kernel log capture around one step, to check a constructor's ti->error;
  * a raw DM ioctl, for what dmsetup refuses to send (it checks names
    itself, so the kernel's own checks are only reachable this way);
  * dmsetup info with the field names dmsetup really knows;
  * reloading dm-mod with parameters (dm-init), waiting for it to finish.
"""
import errno
import fcntl
import os
import struct
import subprocess
import time

import dmtest


# ------------------------------------------------------- reloading dm-mod


def unload_dm():
    """Unload dm-mod and everything that uses it."""
    for _ in range(20):
        with open("/proc/modules") as f:
            mods = [line.split()[0] for line in f if line.startswith("dm_")]
        if not mods:
            return
        for m in mods:
            subprocess.run(["rmmod", m], capture_output=True)
    raise AssertionError("cannot unload the dm modules: %s" % mods)


def reload_dm(**params):
    """Reload dm-mod with module parameters (modprobe adds the kernel
    command line's dm_mod.* words first, so these win); return the kernel
    log once dm-init has said its last word."""
    unload_dm()
    k = Kmsg()
    lines = []

    def done():
        lines.extend(k.lines())
        return any("device-mapper: init:" in line and
                   ("ready" in line or "no device" in line or
                    "failed" in line or "too long" in line)
                   for line in lines)
    try:
        dmtest.run("modprobe", "dm_mod",
                   *['%s="%s"' % kv for kv in params.items()])
        dmtest.wait_for(done, what="dm-init to finish")
        time.sleep(0.2)
        lines.extend(k.lines())
    finally:
        k.close()
    dmtest.run("udevadm", "settle")
    return lines

# ------------------------------------------------------------ kernel log


class Kmsg:
    """Collects the kernel log lines written after it was created."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def lines(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            out.append(rec.partition(";")[2].split("\n")[0])
        return out

    def close(self):
        os.close(self.fd)


def create_fails(name, table, *opts):
    """dmsetup create that must fail. Returns (stderr, kernel log lines).

    libdm creates the device, the table load fails, then libdm removes the
    device again: nothing may be left behind.
    """
    if isinstance(table, (list, tuple)):
        table = "\n".join(table)
    k = Kmsg()
    try:
        p = subprocess.run(["dmsetup", "create", name, *opts], input=table + "\n",
                           capture_output=True, text=True)
        klog = k.lines()
    finally:
        k.close()
    assert p.returncode != 0, f"create {name} with {table!r} unexpectedly succeeded"
    assert name not in dmtest.dm_names(), f"{name} left behind after a failed create"
    return p.stderr, klog


def load_fails(name, table, *opts):
    """dmsetup load that must fail. Returns (stderr, kernel log lines)."""
    if isinstance(table, (list, tuple)):
        table = "\n".join(table)
    k = Kmsg()
    try:
        p = subprocess.run(["dmsetup", "load", name, *opts], input=table + "\n",
                           capture_output=True, text=True)
        klog = k.lines()
    finally:
        k.close()
    assert p.returncode != 0, f"load {name} with {table!r} unexpectedly succeeded"
    return p.stderr, klog


def ctr_error(dev_name, target, message, errname):
    """The kernel line stock prints for a failed constructor: the ti->error
    string, then the errno symbol. DEV_NAME is 'major:minor' of the dm device."""
    return f"device-mapper: table: {dev_name}: {target}: {message} (-{errname})"


def next_dm_devno():
    """major:minor the next dmsetup create will get (lowest free minor)."""
    major = dm_major()
    used = set()
    for d in os.listdir("/sys/block"):
        if d.startswith("dm-"):
            used.add(int(d[3:]))
    minor = 0
    while minor in used:
        minor += 1
    return f"{major}:{minor}"


def dm_major():
    with open("/proc/devices") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1] == "device-mapper":
                return int(parts[0])
    dmtest.dmsetup("version")           # loads dm-mod through the control node
    return dm_major()


# ------------------------------------------------------------ dmsetup info

INFO_FIELDS = ["name", "uuid", "major", "minor", "attr", "open", "segments",
               "events", "suspended", "readonly", "tables_loaded"]


def info(name):
    """dmsetup info -c for NAME as a dict (only fields dmsetup knows)."""
    out = dmtest.dmsetup("info", "-c", "--noheadings", "--separator", "|",
                         "-o", ",".join(INFO_FIELDS), name)
    vals = [v.strip() for v in out.rstrip("\n").split("|")]
    return dict(zip(INFO_FIELDS, vals))


def events(name):
    return int(info(name)["events"])


# ------------------------------------------------------------ raw ioctl

DM_HDR_SIZE = 312
DM_DATA_START = 312
DM_NAME_LEN = 128
DM_UUID_LEN = 129

DM_VERSION = 0
DM_DEV_CREATE = 3
DM_DEV_REMOVE = 4
DM_DEV_RENAME = 5
DM_DEV_STATUS = 7

DM_UUID_FLAG = 1 << 14
DM_EXISTS_FLAG = 1 << 2


def _iowr(nr):
    return (3 << 30) | (DM_HDR_SIZE << 16) | (0xfd << 8) | nr


def raw_ioctl(nr, name=b"", uuid=b"", flags=0, payload=b"", capacity=16384):
    """Issue one DM ioctl on /dev/mapper/control.

    Returns (errno, header dict). errno is 0 on success; on failure the
    header is the one sent (the kernel copies nothing back but version).
    """
    size = DM_HDR_SIZE + max(len(payload) + 1, capacity)
    buf = bytearray(size)
    struct.pack_into("=3IIIIiIIIQ", buf, 0, 4, 0, 0, size, DM_DATA_START, 0, 0,
                     flags, 0, 0, 0)
    buf[48:48 + len(name)] = name
    buf[176:176 + len(uuid)] = uuid
    buf[DM_DATA_START:DM_DATA_START + len(payload)] = payload
    fd = os.open("/dev/mapper/control", os.O_RDWR)
    try:
        try:
            fcntl.ioctl(fd, _iowr(nr), buf, True)
            err = 0
        except OSError as e:
            err = e.errno
    finally:
        os.close(fd)
    v = struct.unpack_from("=3IIIIiIIIQ", buf, 0)
    hdr = {"version": v[0:3], "data_size": v[3], "target_count": v[5],
           "open_count": v[6], "flags": v[7], "event_nr": v[8], "dev": v[10],
           "name": bytes(buf[48:176]).split(b"\0")[0],
           "uuid": bytes(buf[176:305]).split(b"\0")[0]}
    return err, hdr


def errname(code):
    return errno.errorcode.get(code, str(code)) if code else "0"
