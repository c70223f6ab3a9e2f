# SPDX-License-Identifier: GPL-2.0-only
"""dm-init from the kernel command line: a guest booted with dm_mod.create=
gets the device when dm-mod loads (modprobe hands the module the dm_mod.*
words of /proc/cmdline, as an initramfs would).

Only a guest booted with BOOT_APPEND can run this: the ordinary suite guests
skip it, and run-suite boots one more guest (DM=ours) with that command line
for the tests of this file that the selection kept.
"""
import re

import pytest

from corehelp import reload_dm
from dmtest import dm_names, dmsetup, pattern, read_at, remove, run, table, \
    write_at

pytestmark = pytest.mark.ours_only("dm-init needs dm-mod built in on stock",
                                   core=True)

# Read by run-suite, which boots the extra guest with it. 1:0 is /dev/ram0,
# created by the test before dm-mod loads.
BOOT_APPEND = 'dm_mod.create="bootdev,BOOT-UUID-1,,ro,0 4096 linear 1:0 2048"'


@pytest.fixture
def boot_guest():
    with open("/proc/cmdline") as f:
        words = f.read()
    if BOOT_APPEND not in words:
        pytest.skip("needs a guest booted with dm_mod.create= (run-suite boots one)")


def test_device_from_kernel_command_line(boot_guest, brd):
    ram, = brd(1, 16)
    data = pattern("boot", 64 << 10)
    write_at(ram, 2048 * 512, data)
    log = reload_dm()
    assert any("device-mapper: init: bootdev is ready" in l for l in log), log
    assert table("bootdev") == "0 4096 linear 1:0 2048"
    info = dmsetup("info", "bootdev")
    assert re.search(r"State: +ACTIVE \(READ-ONLY\)", info), info
    assert "UUID: BOOT-UUID-1" in info, info
    assert run("blockdev", "--getro", "/dev/mapper/bootdev").strip() == "1"
    assert read_at("/dev/mapper/bootdev", 0, len(data)) == data
    remove("bootdev")


def test_malformed_string_overrides_and_makes_nothing(boot_guest, brd):
    brd(1, 16)
    # An explicit parameter comes after the command line's, so it wins.
    log = reload_dm(create='bootbad,,,rx,0 4096 linear 1:0 0')
    assert any("device bootbad: invalid flags 'rx'" in l for l in log), log
    assert any("invalid dm_mod.create: no device created" in l for l in log), log
    assert dm_names() == []
