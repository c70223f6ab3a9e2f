# SPDX-License-Identifier: GPL-2.0-only
"""unstriped: each member of a striped set taken apart, checked on data."""
import pytest

from dmharness import KernelLog
from dmtest import (create, devno, digest, fails, fill, read_at, remove,
                    status, table, target_versions, write_at, pattern)

CHUNK = 128                      # sectors
PER = 8192                       # sectors per member


@pytest.fixture
def members(brd):
    return brd(3, 8)


def striped(members, n):
    devs = " ".join(f"{m} 0" for m in members[:n])
    return create("st", f"0 {PER * n} striped {n} {CHUNK} {devs}")


@pytest.mark.parametrize("n", [2, 3])
def test_members_match_underlying_devices(members, n):
    st = striped(members, n)
    fill(st, "striped-data")
    for i in range(n):
        u = create(f"un{i}", f"0 {PER} unstriped {n} {CHUNK} {i} {st} 0")
        assert digest(u) == digest(members[i], 0, PER * 512)
    for i in range(n):
        remove(f"un{i}")
    remove("st")


def test_write_through_member(members):
    st = striped(members, 2)
    u = create("un1", f"0 {PER} unstriped 2 {CHUNK} 1 {st} 0")
    data = pattern("m1", CHUNK * 512 * 2)
    write_at(u, 0, data)
    # member 1's chunks 0 and 1 are chunks 1 and 3 of the striped device
    c = CHUNK * 512
    assert read_at(st, c, c) == data[:c]
    assert read_at(st, 3 * c, c) == data[c:]
    assert read_at(members[1], 0, 2 * c) == data
    remove("un1")
    remove("st")


def test_table_status_version(members):
    create("un", f"0 {PER} unstriped 2 {CHUNK} 1 {members[0]} 256")
    assert target_versions()["unstriped"] == (1, 1, 0)
    assert table("un") == f"0 {PER} unstriped 2 {CHUNK} 1 {devno(members[0])} 256"
    assert status("un") == f"0 {PER} unstriped "
    remove("un")


@pytest.mark.parametrize("args,err", [
    ("2 128 0 {0}", "Invalid number of arguments"),
    ("x 128 0 {0} 0", "Invalid stripe count"),
    ("2 x 0 {0} 0", "Invalid chunk_size"),
    ("2 128 x {0} 0", "Invalid stripe number"),
    # stock lets index == #stripes through; one more is refused
    ("2 128 3 {0} 0", "Please provide stripe between [0, # of stripes]"),
    ("2 128 0 {0} x", "Invalid striped device offset"),
    ("2 100 0 {0} 0", "Target length not divisible by chunk size"),
    ("2 128 0 /dev/nonexistent 0", "Couldn't get striped device"),
])
def test_ctr_errors(members, args, err):
    klog = KernelLog()
    fails("dmsetup", "create", "un", "--table",
          f"0 {PER} unstriped " + args.format(*members))
    lines = klog.read()
    klog.close()
    assert any(f"unstriped: {err}" in line for line in lines), lines


def test_index_equal_to_stripes_is_accepted(members):
    """Stock's range check is off by one: index == #stripes loads."""
    create("un", f"0 {PER} unstriped 2 {CHUNK} 2 {members[0]} 0")
    assert table("un") == f"0 {PER} unstriped 2 {CHUNK} 2 {devno(members[0])} 0"
    remove("un")
