# SPDX-License-Identifier: GPL-2.0-only
"""pytest plugin: the harness of the device-mapper suite (inside the test guest).

For every test it:
  * reads the kernel log the test produced and fails the test on any Oops,
    BUG, WARNING, KASAN/UBSAN/lockdep report, hung task or RCU stall;
  * fails the test if it leaves a dm device, loop device or module
    reference behind, then cleans up so the next test starts fresh;
  * records start and end in $DMVM_OUT/progress so that the host can name
    the test that killed the guest and carry on in a new one.
"""
import glob
import json
import os
import re
import select
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import dmtest  # noqa: E402

OUT = os.environ.get("DMVM_OUT")

BAD_KLOG = re.compile(
    r"Oops|BUG:|kernel BUG at|WARNING:|KASAN|UBSAN|general protection fault|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"lockdep|blocked for more than|rcu.*stall|soft lockup|hard LOCKUP|"
    r"list_(add|del) corruption|refcount_t:|unreferenced object|Kernel panic|"
    r"Call Trace:|bufio: leaked buffer")


# ------------------------------------------------------------ kernel log

class KernelLog:
    """The kernel log from the moment this is made. A thread drains
    /dev/kmsg as it fills: a test that logs a lot (a fail-nth sweep dumps
    hundreds of stacks) would otherwise lose records to the ring buffer
    wrapping, and a torn dump is neither whole nor recognisable. lost counts
    the overruns that happened anyway."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.lines = []
        self.lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _read_available(self):
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return
            except BrokenPipeError:      # overwritten before we got there
                self.lost += 1
                continue
            self.lines.append(rec.partition(";")[2].split("\n")[0])

    def _drain(self):
        while not self._stop.is_set():
            self._read_available()
            select.select([self.fd], [], [], 0.1)

    def read(self):
        """Everything logged so far; ends the draining."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self._read_available()
        return self.lines

    def close(self):
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        os.close(self.fd)


# ------------------------------------------------------------ progress

def _record(**kv):
    if not OUT:
        return
    with open(os.path.join(OUT, "progress"), "a") as f:
        f.write(json.dumps(kv) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pytest_collection_modifyitems(config, items):
    skip_file = os.path.join(OUT, "skip") if OUT else None
    if not skip_file or not os.path.exists(skip_file):
        return
    with open(skip_file) as f:
        done = set(line.strip() for line in f if line.strip())
    keep = [i for i in items if i.nodeid not in done]
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid in done])
    items[:] = keep


_outcomes = {}


def pytest_runtest_logstart(nodeid, location):
    _outcomes[nodeid] = {"outcome": "passed", "message": "", "t0": time.monotonic()}
    _record(event="start", test=nodeid)


def pytest_runtest_logreport(report):
    o = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": "",
                                             "t0": time.monotonic()})
    if report.skipped and report.when in ("setup", "call"):
        if o["outcome"] == "passed":
            o["outcome"] = "skipped"
            r = report.longrepr
            o["message"] = r[2] if isinstance(r, tuple) else str(r)
    elif report.failed:
        o["outcome"] = "failed"
        if not o["message"]:
            o["message"] = f"{report.when}: {_short(report)}"


def _short(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return f"{os.path.basename(crash.path)}:{crash.lineno}: {crash.message}"[:600]
    text = str(report.longreprtext or "").strip()
    return text.splitlines()[-1][:600] if text else "failed"


def pytest_runtest_logfinish(nodeid, location):
    o = _outcomes.get(nodeid, {"outcome": "passed", "message": "", "t0": time.monotonic()})
    _record(event="end", test=nodeid, outcome=o["outcome"], message=o["message"],
            duration=round(time.monotonic() - o["t0"], 2))


def pytest_runtest_teardown(item, nextitem):
    """The host asks a run to end early (the debug lane's deadline) with a
    file "stop" in the results share: end after this test, so that the guest
    still unloads the modules and runs its kmemleak scan."""
    if OUT and os.path.exists(os.path.join(OUT, "stop")):
        item.session.shouldstop = "stop requested by the host"


def pytest_sessionfinish(session, exitstatus):
    """The dm modules must unload cleanly once every test is done."""
    if not OUT:
        return
    nodeid = "harness::modules_unload"
    _record(event="start", test=nodeid)
    klog = KernelLog()
    stuck = unload_dm_modules()
    bad = [l for l in klog.read() if BAD_KLOG.search(l)]
    klog.close()
    msg = ""
    if stuck:
        msg = "cannot unload: " + ", ".join(stuck)
    if bad:
        msg += (" " if msg else "") + "kernel log: " + bad[0]
    _record(event="end", test=nodeid, outcome="failed" if msg else "passed",
            message=msg, duration=0)


def unload_dm_modules():
    """Unload every loaded dm module, leaves first. Returns the ones that stay."""
    def loaded():
        mods = {}
        with open("/proc/modules") as f:
            for line in f:
                name, _, refs, users = line.split()[:4]
                if name.startswith("dm_") or name in ("brd", "null_blk", "scsi_debug", "loop",
                                                      "dm_selftest_warn"):
                    mods[name] = int(refs)
        return mods
    for _ in range(10):
        mods = loaded()
        if not mods:
            return []
        progress = False
        for name, refs in mods.items():
            if refs == 0 and subprocess.run(["rmmod", name], capture_output=True).returncode == 0:
                progress = True
        if not progress:
            break
    return sorted(m for m in loaded() if m.startswith("dm_"))


# ------------------------------------------------------------ per test

class Harness:
    """What a test leaves for the harness to check and clean up."""

    def __init__(self):
        self.cleanups = []

    def on_cleanup(self, fn):
        self.cleanups.append(fn)


def _leftover_loops():
    out = subprocess.run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"],
                         capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.strip()]


def _held_dm_names():
    """Names of dm devices that another block device is stacked on."""
    held = set()
    for blk in glob.glob("/sys/block/dm-*"):
        try:
            with open(blk + "/dm/name") as f:
                name = f.read().strip()
            if os.listdir(blk + "/holders"):
                held.add(name)
        except OSError:
            pass
    return held


def _remove_all_dm():
    """Remove what a test left, top of each stack first. --force (an error
    table first) only as a last resort: forced onto a device under another,
    such as a thin pool under its thin devices, it leaves the upper device
    stuck (the pool's suspend suspended its thins, and no resume follows)."""
    for force in (False, False, False, True, True):
        names = dmtest.dm_names()
        if not names:
            return
        held = _held_dm_names()
        for n in sorted(names, key=lambda n: n in held):
            subprocess.run(["dmsetup", "remove", "--retry"] +
                           (["--force"] if force else []) + [n],
                           capture_output=True)
        if force:
            subprocess.run(["dmsetup", "remove_all", "--force"],
                           capture_output=True)
        dmtest.udev_settle()


def _drop_stack_dumps(lines, after):
    """LINES without the stack dump (up to its </TASK>) that follows each
    line matching AFTER: the kernel's own dump_stack() where the test makes
    it fail on purpose, such as kmem_cache_create() under fail-nth."""
    out, skipping = [], 0
    for line in lines:
        if skipping:
            skipping -= 1
            if "</TASK>" in line:
                skipping = 0
            continue
        out.append(line)
        if after.search(line):
            skipping = 400
    return out


@pytest.fixture(autouse=True)
def harness(request):
    problems = []
    pre_dm = dmtest.dm_names()
    if pre_dm:
        _remove_all_dm()
    klog = KernelLog()
    h = Harness()
    yield h

    dmtest.udev_settle()
    leaked = dmtest.dm_names()
    if leaked:
        problems.append("left dm devices behind: " + " ".join(leaked))
        subprocess.run(["vgchange", "-an", "--quiet"], capture_output=True)
        _remove_all_dm()
    for fn in reversed(h.cleanups):
        try:
            fn()
        except Exception as e:          # noqa: BLE001 - report, keep cleaning
            problems.append(f"cleanup failed: {e}")
    loops = _leftover_loops()
    if loops:
        problems.append("left loop devices behind: " + " ".join(loops))
        for dev in loops:
            subprocess.run(["losetup", "-d", dev], capture_output=True)

    lines = klog.read()
    klog.close()
    if klog.lost:
        problems.append(f"kernel log overran: {klog.lost} record(s) lost unread")
    mark = request.node.get_closest_marker("stack_dump_ok")
    if mark:
        lines = _drop_stack_dumps(lines, re.compile(mark.args[0]))
    bad = [l for l in lines if BAD_KLOG.search(l)]
    if bad:
        problems.append("kernel log: " + " | ".join(bad[:5]))
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


# ------------------------------------------------------------ scratch devices

def _modprobe(name, *params):
    dmtest.run("modprobe", name, *params)


def _rmmod(name):
    for _ in range(50):
        p = subprocess.run(["rmmod", name], capture_output=True, text=True)
        if p.returncode == 0:
            return
        dmtest.udev_settle()
        time.sleep(0.1)
    raise RuntimeError(f"module {name} still in use after the test: {p.stderr.strip()}")


@pytest.fixture
def brd(harness):
    """brd(count=1, size_mb=64) -> list of fresh /dev/ramN (RAM disks)."""
    def make(count=1, size_mb=64):
        assert not dmtest.module_loaded("brd"), "brd fixture used twice"
        _modprobe("brd", f"rd_nr={count}", f"rd_size={size_mb * 1024}", "max_part=0")
        harness.on_cleanup(lambda: _rmmod("brd"))
        devs = [f"/dev/ram{i}" for i in range(count)]
        dmtest.wait_for(lambda: all(os.path.exists(d) for d in devs), what="brd nodes")
        return devs
    return make


@pytest.fixture
def vg(brd):
    """vg(name, size_mb=64) -> NAME: a volume group (1 MiB extents) on a fresh
    RAM disk. Removed with its LVs after the test."""
    made = []

    def make(name, size_mb=64):
        (pv,) = brd(1, size_mb)
        dmtest.lvm("pvcreate", "-q", "-y", pv)
        dmtest.lvm("vgcreate", "-q", "-s", "1m", name, pv)
        made.append((name, pv))
        return name
    yield make
    for name, pv in made:
        dmtest.lvm("vgremove", "-q", "-y", "-f", name, check=False)
        dmtest.lvm("pvremove", "-q", "-y", pv, check=False)
        dmtest.udev_settle()


@pytest.fixture
def loopdev(harness):
    """loopdev(size_mb=32, sector_size=512) -> /dev/loopN over a tmpfs file."""
    def make(size_mb=32, sector_size=512):
        fd, path = __import__("tempfile").mkstemp(dir="/tmp", prefix="dmtest-loop-")
        os.ftruncate(fd, size_mb << 20)
        os.close(fd)
        dev = dmtest.run("losetup", "-f", "--show", "--sector-size", sector_size,
                         "--direct-io=off", path).strip()

        def cleanup():
            dmtest.run("losetup", "-d", dev)
            os.unlink(path)
        harness.on_cleanup(cleanup)
        return dev
    return make


@pytest.fixture
def null_blk(harness):
    """null_blk(count=1, size_gb=1, **params) -> list of /dev/nullbN."""
    def make(count=1, size_gb=1, **params):
        assert not dmtest.module_loaded("null_blk"), "null_blk fixture used twice"
        extra = [f"{k}={v}" for k, v in params.items()]
        _modprobe("null_blk", f"nr_devices={count}", f"gb={size_gb}", *extra)
        harness.on_cleanup(lambda: _rmmod("null_blk"))
        devs = [f"/dev/nullb{i}" for i in range(count)]
        dmtest.wait_for(lambda: all(os.path.exists(d) for d in devs), what="null_blk nodes")
        return devs
    return make


@pytest.fixture
def scsi_debug(harness):
    """scsi_debug(size_mb=64, sector_size=512, **params) -> /dev/sdX."""
    def make(size_mb=64, sector_size=512, **params):
        assert not dmtest.module_loaded("scsi_debug"), "scsi_debug fixture used twice"
        extra = [f"{k}={v}" for k, v in params.items()]
        _modprobe("scsi_debug", f"dev_size_mb={size_mb}", f"sector_size={sector_size}", *extra)
        harness.on_cleanup(lambda: _rmmod("scsi_debug"))
        base = "/sys/bus/pseudo/drivers/scsi_debug"
        found = []

        def probe():
            found.clear()
            for root, dirs, _ in os.walk(base, followlinks=False):
                pass
            out = subprocess.run(["bash", "-c", f"ls -d {base}/adapter*/host*/target*/*/block/* 2>/dev/null"],
                                 capture_output=True, text=True).stdout.split()
            found.extend(out)
            return bool(found)
        dmtest.wait_for(probe, what="scsi_debug disk")
        dev = "/dev/" + os.path.basename(found[0])
        dmtest.wait_for(lambda: os.path.exists(dev), what=dev)
        dmtest.udev_settle()
        return dev
    return make


@pytest.fixture
def mode():
    """The module set under test: ours, stock, stock-core or ours-core."""
    return dmtest.dm_mode()


def pytest_configure(config):
    config.addinivalue_line("markers", "stack_dump_ok(regex): the kernel's stack dump right after "
                            "a log line matching regex is expected, not a failure")
    config.addinivalue_line("markers", "ours_only(reason, core=False): feature that stock Debian lacks "
                            "(core=True: one of dm-mod's own)")


def pytest_runtest_setup(item):
    m = item.get_closest_marker("ours_only")
    # ours-core runs stock's targets over our core: it lacks them too. A
    # feature of dm-mod itself (core=True) is missing where dm-mod is stock's.
    lacking = ("stock", "stock-core") if m and m.kwargs.get("core") else \
        ("stock", "ours-core")
    if m and dmtest.dm_mode() in lacking:
        pytest.skip("stock Debian lacks this: " + (m.args[0] if m.args else ""))
