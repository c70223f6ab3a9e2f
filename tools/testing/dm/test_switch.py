# SPDX-License-Identifier: GPL-2.0-only
"""switch: region table (round-robin default, set_region_mappings incl. R<n>,<m>)."""
import pytest

from dmharness import KernelLog
from dmtest import (create, devno, dmsetup, fails, fill, pattern, read_at,
                    remove, status, table, target_versions, write_at)

REGION = 64                  # sectors
RB = REGION * 512            # bytes per region
NREG = 32
SIZE = NREG * REGION


@pytest.fixture
def paths(brd):
    devs = brd(3, 4)
    for i, d in enumerate(devs):
        fill(d, f"path{i}", 0, SIZE * 512)
    return devs


def sw(paths, n=2):
    args = " ".join(f"{p} 0" for p in paths[:n])
    return create("sw", f"0 {SIZE} switch {n} {REGION} 0 {args}")


def region_paths(dev, nreg=NREG):
    """Which path each region of DEV reads from (by comparing with patterns)."""
    out = []
    for r in range(nreg):
        got = read_at(dev, r * RB, RB)
        for i in range(3):
            if got == pattern(f"path{i}", SIZE * 512)[r * RB:(r + 1) * RB]:
                out.append(i)
                break
        else:
            out.append(None)
    return out


def msg(*words):
    dmsetup("message", "sw", "0", *words)


def test_version_table_status(paths):
    sw(paths, 3)
    assert target_versions()["switch"] == (1, 1, 0)
    want = " ".join(f"{devno(p)} 0" for p in paths)
    assert table("sw") == f"0 {SIZE} switch 3 {REGION} 0 {want}"
    assert status("sw") == f"0 {SIZE} switch "
    remove("sw")


def test_default_round_robin(paths):
    dev = sw(paths, 3)
    assert region_paths(dev) == [r % 3 for r in range(NREG)]
    remove("sw")


def test_set_region_mappings_explicit_and_implicit(paths):
    dev = sw(paths, 3)
    msg("set_region_mappings", "0:2", ":2", ":1", "a:0", "B:0", "1f:2")
    want = [r % 3 for r in range(NREG)]
    want[0:3] = [2, 2, 1]
    want[10] = want[11] = 0
    want[31] = 2
    assert region_paths(dev) == want
    remove("sw")


def test_repeat_form(paths):
    dev = sw(paths, 3)
    msg("set_region_mappings", "0:2", ":0", ":0", "R3,6", "r1,3")
    want = [r % 3 for r in range(NREG)]
    want[0:12] = [2, 0, 0] * 3 + [0, 0, 0]
    assert region_paths(dev) == want
    remove("sw")


def test_writes_follow_mapping(paths):
    dev = sw(paths, 2)
    msg("set_region_mappings", "5:0")
    data = pattern("new", RB)
    write_at(dev, 5 * RB, data)
    assert read_at(paths[0], 5 * RB, RB) == data
    assert read_at(paths[1], 5 * RB, RB) == pattern("path1", SIZE * 512)[5 * RB:6 * RB]
    remove("sw")


@pytest.mark.parametrize("words,log", [
    (["bogus"], "Unrecognised message received."),
    (["set_region_mappings", "0:3"], "invalid set_region_mappings device: 3 >= 2"),
    (["set_region_mappings", "20:1"], "invalid set_region_mappings region number: 32 >= 32"),
    (["set_region_mappings", "0:"], "invalid set_region_mappings argument: '0:'"),
    (["set_region_mappings", "x:1"], "invalid set_region_mappings argument: 'x:1'"),
    (["set_region_mappings", "0:1z"], "invalid set_region_mappings argument: '0:1z'"),
    (["set_region_mappings", "R,1"], "invalid set_region_mappings argument: 'R,1'"),
    (["set_region_mappings", "R1"], "invalid set_region_mappings argument: 'R1'"),
    (["set_region_mappings", "R1,"], "invalid set_region_mappings argument: 'R1,'"),
    (["set_region_mappings", "R2,1"], "invalid set_region_mappings cycle length: 1 > 0"),
    (["set_region_mappings", "R0,1"], "invalid set_region_mappings cycle length"),
    (["set_region_mappings", "1f:0", "R1,1"],
     "invalid set_region_mappings region number: 31 + 1 >= 32"),
])
def test_message_errors(paths, words, log):
    sw(paths, 2)
    klog = KernelLog()
    fails("dmsetup", "message", "sw", "0", *words)
    lines = klog.read()
    klog.close()
    assert any(f"switch: {log}" in line for line in lines), lines
    remove("sw")


def test_bad_message_keeps_earlier_mappings(paths):
    dev = sw(paths, 2)
    fails("dmsetup", "message", "sw", "0", "set_region_mappings", "0:1", "1:7")
    assert region_paths(dev, 2) == [1, 1]
    remove("sw")


@pytest.mark.parametrize("args,err", [
    ("0 64 0", "Invalid number of paths"),
    ("2 0 0 {0} 0 {1} 0", "Invalid region size"),
    ("1 64 1 x {0} 0", "Invalid number of optional args"),
    ("2 64 0 {0} 0", "Incorrect number of path arguments"),
    ("1 64 0 /dev/nonexistent 0", "Device lookup failed"),
    ("1 64 0 {0} x", "Invalid device starting offset"),
    ("1", "Invalid region size"),
])
def test_ctr_errors(paths, args, err):
    klog = KernelLog()
    fails("dmsetup", "create", "sw", "--table",
          f"0 {SIZE} switch " + args.format(*paths))
    lines = klog.read()
    klog.close()
    assert any(f"switch: {err}" in line for line in lines), lines


def test_discard_follows_regions(loopdev):
    a, b = loopdev(4), loopdev(4)
    for d in (a, b):
        fill(d, "x", 0, SIZE * 512)
    create("sw", f"0 {SIZE} switch 2 {REGION} 0 {a} 0 {b} 0")
    msg("set_region_mappings", "0:1", "1:1")
    from dmtest import run
    run("blkdiscard", "-o", 0, "-l", 2 * RB, "/dev/mapper/sw")
    assert read_at(b, 0, 2 * RB) == bytes(2 * RB)
    assert read_at(a, 0, 2 * RB) == pattern("x", SIZE * 512)[:2 * RB]
    remove("sw")
