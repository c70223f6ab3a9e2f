# SPDX-License-Identifier: GPL-2.0-only
"""dmsetup version and targets: the interface and built-in target versions."""
import re

from dmtest import dmsetup, target_versions


def test_driver_version_is_4_47():
    out = dmsetup("version")
    assert re.search(r"^Driver version:\s+4\.47\.0$", out, re.M), out


def test_builtin_targets_and_versions():
    t = target_versions()
    assert t["linear"] == (1, 4, 0)
    assert t["striped"] == (1, 6, 0)
    assert t["error"] == (1, 5, 0)
