# SPDX-License-Identifier: GPL-2.0-only
"""dm core: per-device event numbers and dmsetup wait."""
import errno
import subprocess
import time

from corehelp import events
from dmtest import create, dmsetup, read_at, remove, status

ZERO = "0 8 zero"


def test_new_device_starts_at_event_0():
    create("ev", ZERO)
    assert events("ev") == 0
    assert "Event number:      0" in dmsetup("info", "ev")
    remove("ev")


def test_load_suspend_resume_do_not_raise_events():
    create("ev", ZERO)
    dmsetup("load", "ev", input="0 16 zero\n")
    dmsetup("suspend", "ev")
    dmsetup("resume", "ev")
    dmsetup("suspend", "--noflush", "ev")
    dmsetup("resume", "ev")
    dmsetup("clear", "ev")
    dmsetup("message", "ev", "0", "@cancel_deferred_remove")
    assert events("ev") == 0
    remove("ev")


def test_rename_and_setuuid_raise_one_event_each():
    create("ev", ZERO)
    dmsetup("rename", "ev", "ev2")
    assert events("ev2") == 1
    dmsetup("rename", "ev2", "--setuuid", "EV-UUID")
    assert events("ev2") == 2
    dmsetup("rename", "ev2", "ev")
    assert events("ev") == 3
    remove("ev")


def test_wait_returns_at_once_for_a_stale_event_number():
    create("ev", ZERO)
    dmsetup("rename", "ev", "ev2")
    t0 = time.monotonic()
    out = dmsetup("wait", "-v", "ev2", "0")
    assert time.monotonic() - t0 < 5
    assert "Event number:      1" in out
    remove("ev2")


def test_wait_blocks_until_next_event():
    create("ev", ZERO)
    assert events("ev") == 0
    # Waiting for "not 0" on a device at event 0 blocks until the rename.
    w = subprocess.Popen(["dmsetup", "wait", "ev", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        assert w.poll() is None, "dmsetup wait returned without an event"
        dmsetup("rename", "ev", "ev2")
        assert w.wait(timeout=10) == 0
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    remove("ev2")


def test_table_swap_does_not_wake_wait():
    create("ev", ZERO)
    # Without a number dmsetup waits for an event number other than 0.
    w = subprocess.Popen(["dmsetup", "wait", "ev"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        assert w.poll() is None
        dmsetup("load", "ev", input="0 16 zero\n")
        dmsetup("resume", "ev")
        time.sleep(0.5)
        assert w.poll() is None, "a table swap is not an event"
        dmsetup("rename", "ev", "ev1")
        assert w.wait(timeout=10) == 0
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert events("ev1") == 1
    remove("ev1")


def test_target_error_raises_event(brd):
    ram, = brd(1, 16)
    create("bad", "0 2048 error")
    dev = create("st", "0 4096 striped 2 8 %s 0 /dev/mapper/bad 0" % ram)
    before = events("st")
    try:
        read_at(dev, 8 * 512, 4096)
        raise AssertionError("read from the failing stripe succeeded")
    except OSError as e:
        assert e.errno == errno.EIO
    assert events("st") > before
    assert status("st").endswith(" 1 AD")
    remove("st")
    remove("bad")
