# SPDX-License-Identifier: GPL-2.0-only
"""thin-pool crash consistency: power cut at every flush of a workload with
frequent snapshots.

One log-writes device on a RAM disk holds both the pool's metadata and its
data (two linear slices of it), so every write the pool makes is in one
ordered log. The workload writes known patterns through an origin and its
snapshots (each write fsync'ed), takes snapshots of the suspended origin and
of snapshots, deletes snapshots, and puts a mark in the log after each step.

The log is then replayed onto a second RAM disk, sliced the same way:
  * after every FLUSH entry in the log, thin_check must pass on the metadata
    slice (a power cut at any flush leaves consistent metadata);
  * at every mark, the pool opens read-only on the copy and each thin device
    that existed then reads back exactly what had been written and flushed.
"""
import hashlib
import os
import random
import subprocess

import pytest

from dmtest import (create, dmsetup, load, pattern, read_at, remove, run,
                    write_at)
from thinhelp import assert_clean, remove_leftovers, thin_check

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_SRC = os.path.join(HERE, "..", "..", "log-writes")
TOOL_DIR = "/tmp/cc-tool"
REPLAY = TOOL_DIR + "/replay-log"

KB = 1 << 10
MB = 1 << 20
BS = 128                        # data block size, sectors
BLOCK = BS * 512
META_SECTORS = 4 * MB // 512
DATA_SECTORS = 16 * MB // 512   # 256 data blocks
THIN_BYTES = 2 * MB             # each thin device: 32 blocks
LW = "cc-lw"
POOL, ORIGIN, SNAP = "cc-pool", "cc-origin", "cc-snap"

# The workload, one mark after each step.
STEPS = ["write", "snap", "write", "write-snap", "write", "snap", "snap-of-snap",
         "write-snap", "write", "delete", "write", "snap", "write-snap", "delete",
         "write"]


@pytest.fixture(scope="module")
def replay_tool():
    os.makedirs(TOOL_DIR, exist_ok=True)
    run("make", "-s", "-C", TOOL_SRC, f"O={TOOL_DIR}")
    return REPLAY


@pytest.fixture
def devs(brd):
    """(stack, log, copy): the log-writes data device, its log, and the
    device the log is replayed onto."""
    d = brd(3, 64)
    yield d
    remove_leftovers("cc-")
    remove_leftovers("rp-")


def slices(dev, prefix):
    """Metadata and data linear slices of DEV."""
    m = create(f"{prefix}-meta", f"0 {META_SECTORS} linear {dev} 0")
    d = create(f"{prefix}-data", f"0 {DATA_SECTORS} linear {dev} {META_SECTORS}")
    return m, d


def pool_line(meta, data, features=""):
    return f"0 {DATA_SECTORS} thin-pool {meta} {data} {BS} 0" + \
        (f" {features}" if features else "")


def thin_line(pool, dev_id):
    return f"0 {THIN_BYTES // 512} thin /dev/mapper/{pool} {dev_id}"


def msg(name, *words):
    dmsetup("message", name, "0", " ".join(str(w) for w in words))


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Workload:
    """Runs the steps on a live pool and keeps what each thin device must
    hold: {dev_id: bytearray}, captured at every mark."""

    def __init__(self, rng, on_mark=None):
        self.rng = rng
        self.on_mark = on_mark
        self.model = {}
        self.snaps = []             # snapshot ids in creation order
        self.next_id = 1
        self.at_mark = []           # [(mark, {dev_id: sha256})]

    def write(self, dev, dev_id, tag, count):
        for k in range(count):
            size = self.rng.choice([4 * KB, 12 * KB, BLOCK, 2 * BLOCK])
            off = self.rng.randrange(0, (THIN_BYTES - size) // (4 * KB) + 1) * 4 * KB
            data = pattern(f"{tag}-{k}", size)
            write_at(dev, off, data)          # O_DIRECT, then fsync
            self.model[dev_id][off:off + size] = data

    def snapshot(self, of):
        new = self.next_id
        self.next_id += 1
        if of == 0:
            # The admin guide: an active origin is suspended around it.
            dmsetup("suspend", ORIGIN)
            try:
                msg(POOL, "create_snap", new, 0)
            finally:
                dmsetup("resume", ORIGIN)
        else:
            msg(POOL, "create_snap", new, of)
        self.model[new] = bytearray(self.model[of])
        self.snaps.append(new)

    def step(self, i, kind):
        tag = f"s{i}"
        if kind == "write":
            self.write("/dev/mapper/" + ORIGIN, 0, tag, 3)
        elif kind == "snap":
            self.snapshot(0)
        elif kind == "snap-of-snap":
            self.snapshot(self.snaps[-1])
        elif kind == "write-snap":
            sid = self.snaps[-1]
            dev = create(SNAP, thin_line(POOL, sid))
            try:
                self.write(dev, sid, tag, 2)
            finally:
                remove(SNAP)
        elif kind == "delete":
            sid = self.snaps.pop(0)
            msg(POOL, "delete", sid)
            del self.model[sid]
        self.mark(f"m{i}")

    def mark(self, name):
        if self.on_mark:
            self.on_mark(name)
        self.at_mark.append((name, {k: sha(v) for k, v in self.model.items()}))


def run_workload(stack):
    lw_dev = create(LW, f"0 {META_SECTORS + DATA_SECTORS} log-writes {stack[0]} {stack[1]}")
    meta, data = slices(lw_dev, "cc")
    w = Workload(random.Random(20261124), lambda name: msg(LW, "mark", name))
    create(POOL, pool_line(meta, data))
    w.mark("formatted")
    msg(POOL, "create_thin", 0)
    w.model[0] = bytearray(THIN_BYTES)
    create(ORIGIN, thin_line(POOL, 0))
    w.mark("created")
    try:
        for i, kind in enumerate(STEPS):
            w.step(i, kind)
    finally:
        remove(ORIGIN)
        dmsetup("remove", SNAP, check=False)
        remove(POOL)
    # The pool's last commit, at its removal.
    w.mark("end")
    assert_clean(meta)
    for n in ("cc-meta", "cc-data", LW):
        remove(n)
    return w


def verify_copy(meta, data, expect):
    """Open the pool read-only on the copy; every device in EXPECT must read
    back its content. Returns {dev_id: matches}."""
    create("rp-pool", pool_line(meta, data, "1 read_only"))
    got = {}
    try:
        for dev_id, want in sorted(expect.items()):
            dev = create("rp-thin", thin_line("rp-pool", dev_id))
            try:
                got[dev_id] = sha(read_at(dev, 0, THIN_BYTES)) == want
            finally:
                remove("rp-thin")
    finally:
        remove("rp-pool")
    return got


def test_power_cut_at_every_flush(devs, replay_tool, tmp_path):
    stack, log, copy = devs
    w = run_workload((stack, log))

    meta, data = slices(copy, "rp")
    check = tmp_path / "check.sh"
    # Before the pool's first commit block 0 is still zero: nothing to check.
    check.write_text(f"# SPDX-License-Identifier: GPL-2.0-only\n"
                     f"blockdev --flushbufs {meta}\n"
                     f"cmp -s -n 4096 {meta} /dev/zero && exit 0\n"
                     f"thin_check -q {meta}\n")
    bad = []
    prev = None
    checks = 0
    for mark, expect in w.at_mark:
        p = subprocess.run([replay_tool, "--log", log, "--replay", copy, "-v",
                            *(["--start-mark", prev] if prev else []), "--end-mark", mark,
                            "--check", "flush", "--fsck", f"sh {check}"],
                           capture_output=True, text=True)
        if p.returncode:
            fails = [l for l in p.stderr.splitlines() if "replay-log" in l]
            pytest.fail(f"replay to {mark}: {' '.join(fails)}; thin_check: "
                        + " | ".join(thin_check(meta)[:8]), pytrace=False)
        checks += p.stderr.count("check passed after entry")
        assert_clean(meta)
        got = verify_copy(meta, data, expect)
        wrong = sorted(k for k, ok in got.items() if not ok)
        if wrong:
            bad.append(f"at {mark}: thin {wrong} differ")
        prev = mark
    assert not bad, "; ".join(bad)
    # Each fsync'ed write commits the pool: many more flushes than steps.
    assert checks > 2 * len(STEPS), checks


# ------------------------------------------------------------ flakey

def lower(dev, sectors, drop):
    """A slice of DEV that passes writes through, or drops them all."""
    return f"0 {sectors} " + (f"flakey {dev} 0 0 1 1 drop_writes" if drop
                              else f"linear {dev} 0")


@pytest.mark.parametrize("cut", [2, 7, 12])
def test_writes_dropped_after_a_random_step(brd, cut):
    """The cheaper variant: metadata and data sit on two devices that start
    dropping every write (flakey drop_writes, up 0 s, down 1 s) after step
    CUT of the workload, as a power cut would; the workload goes on, the
    pool is removed. Then thin_check passes on what reached the disk and the
    pool there holds exactly what was flushed up to the cut."""
    meta_raw, data_raw = brd(2, 32)
    meta = create("cf-meta", lower(meta_raw, META_SECTORS, False))
    data = create("cf-data", lower(data_raw, DATA_SECTORS, False))
    w = Workload(random.Random(cut))
    try:
        create(POOL, pool_line(meta, data))
        msg(POOL, "create_thin", 0)
        w.model[0] = bytearray(THIN_BYTES)
        create(ORIGIN, thin_line(POOL, 0))
        try:
            for i, kind in enumerate(STEPS):
                w.step(i, kind)
                if i == cut:
                    at_cut = w.at_mark[-1][1]
                    # Both devices stop together: suspend both, then swap.
                    for n in ("cf-meta", "cf-data"):
                        dmsetup("suspend", "--nolockfs", "--noflush", n)
                    for n, dev, sz in (("cf-meta", meta_raw, META_SECTORS),
                                       ("cf-data", data_raw, DATA_SECTORS)):
                        load(n, lower(dev, sz, True))
                    for n in ("cf-meta", "cf-data"):
                        dmsetup("resume", n)
        finally:
            remove(ORIGIN)
            dmsetup("remove", SNAP, check=False)
            remove(POOL)
    finally:
        remove("cf-meta")
        remove("cf-data")
    complaints = thin_check(meta_raw)
    got = verify_copy(meta_raw, data_raw, at_cut)
    assert complaints == []
    assert got == {k: True for k in at_cut}
