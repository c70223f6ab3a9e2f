# SPDX-License-Identifier: GPL-2.0-only
"""dm core: IMA critical-data records (table load, resume, remove, table
clear, rename) and the IMA status string (dmsetup measure).

The guest boots with ima_policy=critical_data (tools/testing/vm/run), so
every record dm hands to IMA shows up in the runtime measurement list as an
ima-buf entry. The expected record text is spelled out here byte for byte;
the same assertions pass on Debian's stock dm-mod.

IMA logs a record only once per boot (identical entries are dropped), so
every test names its devices uniquely.
"""
import hashlib
import os
import uuid as uuidlib

import pytest

from corehelp import info
from dmtest import create, dmsetup, load, remove, run, size_sectors

IMA_DIR = "/sys/kernel/security/ima"
MEASUREMENTS = IMA_DIR + "/ascii_runtime_measurements"
VERSION = "dm_version=4.47.0;"


def _ima_ready():
    if not os.path.isdir(IMA_DIR):
        run("mount", "-t", "securityfs", "securityfs", "/sys/kernel/security",
            check=False)
    if not os.path.exists(MEASUREMENTS):
        return "no IMA measurement list in this kernel"
    with open("/proc/cmdline") as f:
        if "ima_policy=critical_data" not in f.read().split():
            return "guest not booted with ima_policy=critical_data"
    return None


class ImaLog:
    """The dm records IMA logged since this object was made."""

    def __init__(self):
        self.start = len(self._lines())

    @staticmethod
    def _lines():
        with open(MEASUREMENTS) as f:
            return f.read().splitlines()

    def records(self, tag):
        """[(event, text)] of new device-mapper records mentioning TAG."""
        out = []
        for line in self._lines()[self.start:]:
            f = line.split()
            if len(f) < 6 or f[2] != "ima-buf" or not f[4].startswith("dm_"):
                continue
            text = bytes.fromhex(f[5]).decode()
            if tag in text:
                out.append((f[4], text))
        return out


@pytest.fixture
def ima():
    why = _ima_ready()
    if why:
        pytest.skip(why)
    return ImaLog()


def _unique(prefix):
    tag = uuidlib.uuid4().hex[:12]
    return f"{prefix}{tag}", f"IMA-{tag}"


def _meta(name, uuid, num_targets, esc_name=None, esc_uuid=None):
    i = info(name)
    return (f"name={esc_name or name},uuid={esc_uuid or uuid},major={i['major']},"
            f"minor={i['minor']},minor_count=1,num_targets={num_targets};")


def _sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _linear_ima(dev, start):
    return (f"target_name=linear,target_version=1.4.0,device_name={dev},"
            f"start={start};")


def test_create_then_remove(brd, ima):
    ram = brd(1, 16)[0]
    name, uuid = _unique("imac")
    create(name, "0 2048 linear %s 8" % ram, "-u", uuid)
    meta = _meta(name, uuid, 1)
    load_rec = (VERSION + meta + "target_index=0,target_begin=0,target_len=2048,"
                + _linear_ima("1:0", 8))
    remove(name)
    assert ima.records(name) == [
        ("dm_table_load", load_rec),
        ("dm_device_resume", f"{VERSION}{meta}active_table_hash={_sha(load_rec)};"
                             "current_device_capacity=2048;"),
        ("dm_device_remove", f"{VERSION}device_active_metadata={meta}"
                             f"active_table_hash={_sha(load_rec)},remove_all=n;"
                             "current_device_capacity=2048;"),
    ]


def test_several_targets_and_a_target_without_ima(brd, ima):
    ram = brd(1, 16)[0]
    name, uuid = _unique("imam")
    create(name, ["0 100 linear %s 0" % ram, "100 28 zero",
                  "128 72 linear %s 500" % ram], "-u", uuid)
    meta = _meta(name, uuid, 3)
    load_rec = (VERSION + meta
                + "target_index=0,target_begin=0,target_len=100," + _linear_ima("1:0", 0)
                + "target_index=1,target_begin=100,target_len=28,"
                + "target_index=2,target_begin=128,target_len=72," + _linear_ima("1:0", 500))
    remove(name)
    assert ima.records(name)[0] == ("dm_table_load", load_rec)


def test_reload_clear_and_remove(brd, ima):
    ram = brd(1, 16)[0]
    name, uuid = _unique("imar")
    create(name, "0 1024 linear %s 0" % ram, "-u", uuid)
    meta1 = _meta(name, uuid, 1)
    rec1 = VERSION + meta1 + "target_index=0,target_begin=0,target_len=1024," + \
        _linear_ima("1:0", 0)
    # A staged table, then dropped: its hash is in the clear record.
    load(name, "0 512 linear %s 64" % ram)
    rec2 = VERSION + meta1 + "target_index=0,target_begin=0,target_len=512," + \
        _linear_ima("1:0", 64)
    dmsetup("clear", name)
    remove(name)
    h1, h2 = _sha(rec1), _sha(rec2)
    assert ima.records(name) == [
        ("dm_table_load", rec1),
        ("dm_device_resume", f"{VERSION}{meta1}active_table_hash={h1};"
                             "current_device_capacity=1024;"),
        ("dm_table_load", rec2),
        ("dm_table_clear", f"{VERSION}{meta1}inactive_table_hash={h2};"
                           "current_device_capacity=1024;"),
        # After a clear, the live table is reported as the inactive one too.
        ("dm_device_remove", f"{VERSION}device_active_metadata={meta1}"
                             f"device_inactive_metadata={meta1}"
                             f"active_table_hash={h1},inactive_table_hash={h1},"
                             "remove_all=n;current_device_capacity=1024;"),
    ]


def test_reload_resize_and_remove_all(brd, ima):
    ram = brd(1, 16)[0]
    name, uuid = _unique("imaz")
    create(name, "0 1024 linear %s 0" % ram, "-u", uuid)
    meta = _meta(name, uuid, 1)
    load(name, "0 4096 linear %s 0" % ram)
    dmsetup("resume", name)
    assert size_sectors("/dev/mapper/" + name) == 4096
    rec2 = VERSION + meta + "target_index=0,target_begin=0,target_len=4096," + \
        _linear_ima("1:0", 0)
    dmsetup("remove_all")
    recs = ima.records(name)
    assert [e for e, _ in recs] == ["dm_table_load", "dm_device_resume",
                                    "dm_table_load", "dm_device_resume",
                                    "dm_device_remove"]
    assert recs[3][1] == (f"{VERSION}{meta}active_table_hash={_sha(rec2)};"
                          "current_device_capacity=4096;")
    assert recs[4][1] == (f"{VERSION}device_active_metadata={meta}"
                          f"active_table_hash={_sha(rec2)},remove_all=y;"
                          "current_device_capacity=4096;")


def test_rename_and_separators_are_escaped(brd, ima):
    ram = brd(1, 16)[0]
    base, tag = _unique("iman")
    name, uuid = base + "=a", tag + "=u"
    esc_name, esc_uuid = base + "\\=a", tag + "\\=u"
    create(name, "0 64 linear %s 0" % ram, "-u", uuid)
    meta = _meta(name, uuid, 1, esc_name, esc_uuid)
    new = base + "b"
    dmsetup("rename", name, new)
    new_meta = _meta(new, uuid, 1, new, esc_uuid)
    load_rec = VERSION + meta + "target_index=0,target_begin=0,target_len=64," + \
        _linear_ima("1:0", 0)
    remove(new)
    recs = ima.records(tag)
    assert recs[0] == ("dm_table_load", load_rec)
    assert recs[2] == ("dm_device_rename",
                       f"{VERSION}{meta}new_name={new},new_uuid={esc_uuid};"
                       "current_device_capacity=64;")
    assert recs[3] == ("dm_device_remove",
                       f"{VERSION}device_active_metadata={new_meta}"
                       f"active_table_hash={_sha(load_rec)},remove_all=n;"
                       "current_device_capacity=64;")


def test_devices_without_a_table(ima):
    name, uuid = _unique("iman")
    dmsetup("create", name, "--notable", "-u", uuid)
    dmsetup("clear", name)
    dmsetup("rename", name, name + "x")
    meta = _meta(name + "x", uuid, 0)
    remove(name + "x")
    # A remove record needs the device's name, gone by then, or metadata.
    other, other_uuid = _unique("iman")
    dmsetup("create", other, "--notable", "-u", other_uuid)
    remove(other)
    assert ima.records(uuid) == [
        ("dm_table_clear", f"{VERSION}name={name},uuid={uuid};table_clear=no_data;"
                           "current_device_capacity=0;"),
        # The rename of a device that never had a live table.
        ("dm_device_rename", f"{VERSION}(null)new_name={name}x,new_uuid={uuid};"
                             "current_device_capacity=0;"),
        ("dm_device_remove", f"{VERSION}device_active_metadata={meta}"
                             "remove_all=n;current_device_capacity=0;"),
    ]
    assert ima.records(other_uuid) == []


def test_measure_shows_the_ima_status(brd):
    ram = brd(1, 16)[0]
    create("imas", ["0 100 linear %s 0" % ram, "100 28 zero",
                    "128 64 striped 2 8 %s 0 %s 1024" % (ram, ram)])
    out = dmsetup("measure", "imas")
    remove("imas")
    assert out.splitlines() == [
        "0 100 linear " + _linear_ima("1:0", 0),
        "100 28 zero ",
        "128 64 striped target_name=striped,target_version=1.6.0,stripes=2,"
        "chunk_size=8,stripe_0_device_name=1:0,stripe_0_physical_start=0,"
        "stripe_0_status=A,stripe_1_device_name=1:0,stripe_1_physical_start=1024,"
        "stripe_1_status=A;",
    ]
