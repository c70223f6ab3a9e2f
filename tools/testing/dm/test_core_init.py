# SPDX-License-Identifier: GPL-2.0-only
"""dm-init: devices described by dm_mod.create= (and dm_mod.waitfor=).

Stock Debian's dm-mod is a module without dm-init, so it ignores these
parameters. Ours takes them as module parameters, which modprobe also reads
from the kernel command line: here dm-mod is reloaded with them.
"""
import re

import pytest

from corehelp import reload_dm
from dmtest import (devno, dm_names, dmsetup, pattern, read_at, remove,
                    table, wait_for, write_at)

pytestmark = pytest.mark.ours_only("dm-init needs dm-mod built in on stock",
                                   core=True)


def test_creates_read_only_device_with_minor(brd):
    ram, = brd(1, 8)
    data = pattern("init", 64 << 10)
    write_at(ram, 4096 * 512, data)
    log = reload_dm(create=f"boot0,uuid-boot0,77,ro,0 4096 linear {ram} 4096")
    assert any("device-mapper: init: boot0 is ready" in l for l in log), log
    assert table("boot0") == f"0 4096 linear {devno(ram)} 4096"
    info = dmsetup("info", "boot0")
    assert re.search(r"State: +ACTIVE \(READ-ONLY\)", info), info
    assert "UUID: uuid-boot0" in info, info
    assert ", 77\n" in info, info           # Major, minor: <dm major>, 77
    assert read_at("/dev/mapper/boot0", 0, len(data)) == data
    remove("boot0")


def test_creates_several_devices_and_targets(brd):
    a, b = brd(2, 8)
    spec = (f"two,,,rw,0 2048 linear {a} 0,2048 2048 linear {b} 0;"
            f"stripe,,,rw,0 4096 striped 2 16 {a} 2048 {b} 2048")
    reload_dm(create=spec)
    wait_for(lambda: {"two", "stripe"} <= set(dm_names()), what="both devices")
    assert table("two") == (f"0 2048 linear {devno(a)} 0\n"
                            f"2048 2048 linear {devno(b)} 0")
    assert table("stripe") == \
        f"0 4096 striped 2 16 {devno(a)} 2048 {devno(b)} 2048"
    data = pattern("rw", 1 << 20)
    write_at("/dev/mapper/two", 0, data)
    assert read_at(a, 0, 1 << 20) == data[:1 << 20]
    remove("two")
    remove("stripe")


def test_waitfor_present_device(brd):
    ram, = brd(1, 8)
    log = reload_dm(create=f"w,,,rw,0 2048 linear {ram} 0", waitfor=ram)
    assert any(f"waiting for device {ram}" in l for l in log), log
    assert any("all devices available" in l for l in log), log
    assert "w" in dm_names()
    remove("w")


@pytest.mark.parametrize("spec,msg", [
    ("bad,,,rx,0 2048 linear {ram} 0", "invalid flags 'rx'"),
    ("bad,,,rw,0 2048 zero", "target type 'zero' is not allowed"),
    ("bad,,,rw,x 2048 linear {ram} 0", "invalid start sector 'x'"),
    ("bad,,,rw,0 0 linear {ram} 0", "invalid number of sectors '0'"),
    ("bad,,99999999,rw,0 2048 linear {ram} 0", "invalid minor"),
    ("bad,,,rw", "needs <name>,<uuid>,<minor>,<flags>,<table>"),
    ("bad,,,rw,0 2048", "needs <start> <length> <type> <args>"),
])
def test_malformed_create_makes_no_device(brd, spec, msg):
    ram, = brd(1, 8)
    log = reload_dm(create=spec.format(ram=ram))
    assert any(msg in l for l in log), log
    assert any("no device created" in l for l in log), log
    assert dm_names() == []


def test_bad_table_leaves_nothing(brd):
    ram, = brd(1, 8)
    # Parses, but the device is too small for the table.
    log = reload_dm(create=f"big,,,rw,0 99999999 linear {ram} 0")
    assert any("big: table load or resume failed" in l for l in log), log
    assert dm_names() == []
