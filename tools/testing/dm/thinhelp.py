# SPDX-License-Identifier: GPL-2.0-only
"""Helpers shared by the thin-pool tests (test_thin*.py, test_interop.py):
thin_check with its output read strictly, and the after-test check that every
pool's metadata is left clean.

thin_check (thin-provisioning-tools 0.9) prints its progress ("examining
superblock", "checking space map counts", ...), a summary
(TRANSACTION_ID=, METADATA_FREE_BLOCKS=) and, on damage, indented complaint
lines. Some complaints (leaked blocks) are "non-fatal", so the exit
status alone is not enough: any line that is not progress is a complaint.
"""
import re
import subprocess

import pytest

import dmtest

# Progress, and the summary Debian's build prints (TRANSACTION_ID=...).
_PROGRESS = re.compile(r"^((examining|checking) [a-z ]+|[A-Z_]+=\d+)$")


def thin_check(meta):
    """Run thin_check on META; return the complaints (empty when clean)."""
    # A copy made under the page cache would be stale for O_DIRECT readers.
    subprocess.run(["blockdev", "--flushbufs", meta], capture_output=True)
    p = subprocess.run(["thin_check", meta], capture_output=True, text=True)
    lines = [l.rstrip() for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    bad = [l for l in lines if not _PROGRESS.match(l.strip())]
    if p.returncode != 0:
        bad.insert(0, f"thin_check exit status {p.returncode}")
    return bad


def assert_clean(meta):
    bad = thin_check(meta)
    assert not bad, f"thin_check {meta}: " + " | ".join(bad[:8])


def never_formatted(meta):
    """True if block 0 of META is zero: no pool ever wrote a superblock."""
    return dmtest.read_at(meta, 0, 4096) == bytes(4096)


def skip_thin_check(reason):
    """Decorator: the test leaves the metadata damaged on purpose (say why)."""
    def mark(fn):
        fn.no_thin_check = reason
        return fn
    return mark


def _target(name):
    line = dmtest.dmsetup("table", name, check=False).split("\n")[0].split()
    return line[2] if len(line) > 2 else ""


def remove_leftovers(prefix):
    """Remove dm devices named PREFIX*: thin devices before pools, pools
    before the devices under them. Returns the names found."""
    names = [n for n in dmtest.dm_names() if n.startswith(prefix)]
    if not names:
        return []
    dmtest.udev_settle()
    order = {"thin": 0, "thin-pool": 1}
    for n in sorted(names, key=lambda n: order.get(_target(n), 2)):
        subprocess.run(["dmsetup", "remove", "--retry", n], capture_output=True)
    for n in names:
        if n in dmtest.dm_names():
            subprocess.run(["dmsetup", "remove", "--force", n], capture_output=True)
    return names


def after_test(request, meta, prefix):
    """The end of every thin test: no pool or thin device may be left, and
    the metadata on META must pass thin_check (unless the test opted out
    with skip_thin_check, or never got as far as formatting it)."""
    left = remove_leftovers(prefix)
    problems = []
    if left:
        problems.append("left devices behind: " + " ".join(left))
    if getattr(request.function, "no_thin_check", None) is None and not never_formatted(meta):
        bad = thin_check(meta)
        if bad:
            problems.append(f"thin_check {meta}: " + " | ".join(bad[:8]))
    if problems:
        pytest.fail("after the test: " + "; ".join(problems), pytrace=False)


def dump_mapped(xml_text):
    """{dev_id: mapped_blocks} of a thin_dump."""
    import xml.etree.ElementTree as ET
    return {int(d.get("dev_id")): int(d.get("mapped_blocks"))
            for d in ET.fromstring(xml_text).iter("device")}
