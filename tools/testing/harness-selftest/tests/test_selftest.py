# SPDX-License-Identifier: GPL-2.0-only
"""Deliberately broken tests: the harness must report each the right way.

Run by tools/testing/harness-selftest/run, never by the main suite.
"""
import os

from dmtest import create, run

MODULE = os.path.join(os.path.dirname(__file__), "..", "module", "dmtest_warn.ko")


def test_a_passes():
    assert run("dmsetup", "version")


def test_b_kernel_warning():
    run("insmod", MODULE)
    run("rmmod", "dmtest_warn")


def test_c_panics_the_guest():
    with open("/proc/sysrq-trigger", "w") as f:
        f.write("c")


def test_d_runs_after_the_panic():
    assert os.path.exists("/dev/mapper/control")


def test_e_leaks_a_device():
    create("selftest-leak", "0 8 zero")
