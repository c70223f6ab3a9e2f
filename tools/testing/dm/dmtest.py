# SPDX-License-Identifier: GPL-2.0-only
"""Helpers for the device-mapper suite, used inside the test guest.

Everything here drives real tools (dmsetup, losetup, lvm, ...) on real block
devices; nothing is mocked. Helpers raise on failure so tests stay short.
"""
import ctypes
import errno
import hashlib
import mmap
import os
import re
import subprocess
import time

SECTOR = 512


class CmdError(Exception):
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        super().__init__(f"{' '.join(argv)} -> rc {rc}\n{out}{err}")


def run(*argv, check=True, input=None, env=None):
    """Run a command; return its stdout. Raises CmdError if check and rc != 0."""
    argv = [str(a) for a in argv]
    e = None
    if env:
        e = dict(os.environ)
        e.update(env)
    p = subprocess.run(argv, input=input, capture_output=True, text=True, env=e)
    if check and p.returncode != 0:
        raise CmdError(argv, p.returncode, p.stdout, p.stderr)
    return p.stdout


def fails(*argv, input=None):
    """Run a command that must fail; return (rc, stdout+stderr)."""
    argv = [str(a) for a in argv]
    p = subprocess.run(argv, input=input, capture_output=True, text=True)
    assert p.returncode != 0, f"{' '.join(argv)} unexpectedly succeeded:\n{p.stdout}"
    return p.returncode, p.stdout + p.stderr


def sh(script, check=True):
    """Run a shell snippet (several commands in one process: cheap under TCG)."""
    return run("bash", "-ec", script, check=check)


# ---------------------------------------------------------------- lvm

# No lvmpolld or dmeventd in the guest: LVM polls merges itself and nothing
# monitors pools unless a test starts dmeventd on purpose.
LVM_CONF = "global/use_lvmpolld=0 activation/monitoring=0"


def lvm(*args, check=True, conf=LVM_CONF):
    """Run an lvm command (lvm CMD ARGS...) with the suite's config."""
    return run("lvm", *args[:1], "--config", conf, *args[1:], check=check,
               env={"LVM_SUPPRESS_FD_WARNINGS": "1"})


# ---------------------------------------------------------------- dmsetup

def dmsetup(*args, check=True, input=None):
    return run("dmsetup", *args, check=check, input=input)


def create(name, table, *opts):
    """dmsetup create NAME with TABLE (a string or list of lines)."""
    if isinstance(table, (list, tuple)):
        table = "\n".join(table)
    dmsetup("create", name, *opts, input=table + "\n")
    return f"/dev/mapper/{name}"


def load(name, table, *opts):
    if isinstance(table, (list, tuple)):
        table = "\n".join(table)
    dmsetup("load", name, *opts, input=table + "\n")


def remove(name, *opts):
    """dmsetup remove NAME. Closing a device written to makes udev re-probe
    it (its inotify watch), and the probe holds the device open for a moment:
    a remove right then fails with EBUSY, on stock as on ours. Retry, as LVM
    and `dmsetup remove --retry` do, once udev has settled."""
    for attempt in range(10):
        try:
            dmsetup("remove", *opts, name)
            return
        except CmdError as e:
            if "Device or resource busy" not in e.err or attempt == 9:
                raise
        udev_settle()
        time.sleep(0.3)


def table(name, *opts):
    return dmsetup("table", *opts, name).rstrip("\n")


def status(name, *opts):
    return dmsetup("status", *opts, name).rstrip("\n")


def info(name):
    """dmsetup info -c as a dict of fields."""
    keys = ["name", "uuid", "major", "minor", "attr", "open", "segments",
            "events", "readahead", "blkdevname", "suspended", "readonly",
            "devnos_used", "tables_loaded", "devno"]
    out = dmsetup("info", "-c", "--noheadings", "--separator", "|",
                  "-o", ",".join(keys), name)
    return dict(zip(keys, out.rstrip("\n").split("|")))


def dm_names():
    """Names of every dm device in the kernel, with or without a table.

    Asks the control device (devices without a table have no disk in sysfs),
    but only if dm-mod is loaded: looking must not load it.
    """
    if not os.path.isdir("/sys/module/dm_mod"):
        return []
    out = run("dmsetup", "ls", "--manglename", "none", check=False)
    if "No devices found" in out:
        return []
    return sorted(line.split("\t")[0] for line in out.splitlines() if "\t" in line)


def devno(path):
    st = os.stat(path)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def size_sectors(dev):
    return int(run("blockdev", "--getsz", dev).strip())


# ---------------------------------------------------------------- data

def pattern(seed, length):
    """Deterministic, incompressible bytes for SEED."""
    out = bytearray()
    counter = 0
    seed = str(seed).encode()
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(8, "little")).digest() * 64
        counter += 1
    return bytes(out[:length])


def _aligned(length):
    return mmap.mmap(-1, max(length, mmap.PAGESIZE))


def write_at(dev, offset, data, direct=True):
    """Write DATA at byte OFFSET of DEV, bypassing the page cache by default."""
    flags = os.O_WRONLY | (os.O_DIRECT if direct else 0)
    fd = os.open(dev, flags)
    try:
        if direct:
            buf = _aligned(len(data))
            buf.write(data)
            view = memoryview(buf)[:len(data)]
        else:
            view = data
        done = 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], offset + done)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_at(dev, offset, length, direct=True):
    """Read LENGTH bytes at byte OFFSET of DEV, bypassing the page cache."""
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    fd = os.open(dev, flags)
    try:
        buf = _aligned(length)
        done = 0
        while done < length:
            n = os.preadv(fd, [memoryview(buf)[done:length]], offset + done)
            if n == 0:
                break
            done += n
        return bytes(buf[:done])
    finally:
        os.close(fd)


def io_errno(dev, offset, length, write=False):
    """Do one direct I/O and return 0 or the errno it failed with."""
    try:
        if write:
            write_at(dev, offset, b"\0" * length)
        else:
            read_at(dev, offset, length)
        return 0
    except OSError as e:
        return e.errno


def digest(dev, offset=0, length=None):
    """sha256 of a byte range of DEV, read directly."""
    if length is None:
        length = size_sectors(dev) * SECTOR - offset
    h = hashlib.sha256()
    step = 1 << 20
    pos = 0
    while pos < length:
        n = min(step, length - pos)
        h.update(read_at(dev, offset + pos, n))
        pos += n
    return h.hexdigest()


def fill(dev, seed, offset=0, length=None):
    """Fill a range of DEV with pattern(seed) and return it."""
    if length is None:
        length = size_sectors(dev) * SECTOR - offset
    data = pattern(seed, length)
    write_at(dev, offset, data)
    return data


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def udev_settle():
    run("udevadm", "settle", "--timeout=30", check=False)


# ---------------------------------------------------------------- modules

def module_loaded(name):
    return os.path.isdir(f"/sys/module/{name.replace('-', '_')}")


def _symbolic_errname():
    """Whether %pe prints errno names: the kernel has errname() (the
    CONFIG_SYMBOLIC_ERRNAME table, as Debian's kernel does)."""
    with open("/proc/kallsyms") as f:
        return any(line.rstrip("\n").endswith(" errname") for line in f)


def kerr(name):
    """A regex for errno NAME as the kernel's %pe prints it: "-EINVAL", or
    "-22" on a kernel built without CONFIG_SYMBOLIC_ERRNAME."""
    global _ERRNAME
    if _ERRNAME is None:
        _ERRNAME = _symbolic_errname()
    return "-" + (name if _ERRNAME else str(getattr(errno, name)))


_ERRNAME = None


def kernel_has_crypto(alg):
    """True if the running kernel has crypto algorithm ALG, loaded or as a
    module it can load (Debian's kernel has them all; the debug-kernel lane's
    small config lacks a few, such as md5 and chacha20)."""
    with open("/proc/crypto") as f:
        if any(line.split() == ["name", ":", alg] for line in f):
            return True
    return subprocess.run(["modprobe", "-n", "-q", f"crypto-{alg}"]).returncode == 0


def module_is_ours(name):
    """True if module NAME was loaded from out of tree (taint flag O)."""
    try:
        with open(f"/sys/module/{name.replace('-', '_')}/taint") as f:
            return "O" in f.read()
    except FileNotFoundError:
        return False


def dm_mode():
    """The module set the guest runs: ours, stock, stock-core or ours-core."""
    return os.environ.get("DM", "ours")


def target_versions():
    """{target: (major, minor, patch)} from dmsetup targets."""
    out = {}
    for line in dmsetup("targets").splitlines():
        m = re.match(r"(\S+)\s+v(\d+)\.(\d+)\.(\d+)", line)
        if m:
            out[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4))
    return out


def has_target(name):
    """True if target NAME exists or can be auto-loaded."""
    if name in target_versions():
        return True
    run("modprobe", f"dm-{name}", check=False)
    return name in target_versions()
