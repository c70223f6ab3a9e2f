# SPDX-License-Identifier: GPL-2.0-only
"""dm core: device names and uuids (limits, bad characters, duplicates,
rename and set-uuid)."""
import errno
import os

from corehelp import (DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_RENAME, DM_DEV_STATUS,
                      DM_UUID_FLAG, events, info, raw_ioctl)
from dmtest import create, dm_names, dmsetup, fails, remove, table

ZERO = "0 8 zero"


def _sysfs(name, attr):
    for d in os.listdir("/sys/block"):
        p = "/sys/block/%s/dm/name" % d
        if d.startswith("dm-") and open(p).read().rstrip("\n") == name:
            with open("/sys/block/%s/dm/%s" % (d, attr)) as f:
                return f.read()
    raise AssertionError("no dm disk named " + name)


def test_name_of_127_bytes():
    name = "n" * 127
    create(name, ZERO)
    assert dm_names() == [name]
    assert info(name)["name"] == name
    assert _sysfs(name, "name") == name + "\n"
    assert os.path.exists("/dev/mapper/" + name)
    remove(name)


def test_name_of_128_bytes_is_refused_by_dmsetup():
    rc, out = fails("dmsetup", "create", "m" * 128, "--table", ZERO)
    assert "too long" in out
    assert dm_names() == []


def test_kernel_truncates_unterminated_name():
    # The kernel forces name[127] = 0: a full 128-byte field is cut to 127.
    err, hdr = raw_ioctl(DM_DEV_CREATE, name=b"t" * 128)
    assert err == 0
    assert hdr["name"] == b"t" * 127
    err, _ = raw_ioctl(DM_DEV_STATUS, name=b"t" * 127)
    assert err == 0
    assert raw_ioctl(DM_DEV_REMOVE, name=b"t" * 127)[0] == 0


def test_uuid_of_128_bytes():
    uuid = "u" * 128
    create("u", ZERO, "-u", uuid)
    assert info("u")["uuid"] == uuid
    assert _sysfs("u", "uuid") == uuid + "\n"
    # Lookup by uuid works for the whole 128 bytes.
    assert dmsetup("info", "-c", "--noheadings", "-o", "name", "-u", uuid).strip() == "u"
    remove("u")


def test_device_without_uuid_has_empty_uuid_attr():
    create("nouuid", ZERO)
    assert _sysfs("nouuid", "uuid") == "\n"
    assert info("nouuid")["uuid"] == ""
    remove("nouuid")


def test_slash_in_name_rejected_by_kernel():
    # dmsetup refuses '/' itself, so talk to the kernel directly.
    err, _ = raw_ioctl(DM_DEV_CREATE, name=b"a/b")
    assert err == errno.EINVAL
    assert dm_names() == []


def test_slash_in_name_rejected_by_dmsetup():
    rc, out = fails("dmsetup", "create", "a/b", "--table", ZERO)
    assert 'contains "/"' in out


def test_rename_to_slash_rejected_by_kernel():
    create("plain", ZERO)
    err, _ = raw_ioctl(DM_DEV_RENAME, name=b"plain", payload=b"x/y")
    assert err == errno.EINVAL
    assert dm_names() == ["plain"]
    remove("plain")


def test_rename_to_128_bytes_rejected_by_kernel():
    create("plain", ZERO)
    err, _ = raw_ioctl(DM_DEV_RENAME, name=b"plain", payload=b"r" * 128)
    assert err == errno.EINVAL
    assert dm_names() == ["plain"]
    remove("plain")


def test_create_with_name_and_uuid_together_in_lookup_is_einval():
    create("both", ZERO, "-u", "BOTH-UUID")
    err, _ = raw_ioctl(DM_DEV_STATUS, name=b"both", uuid=b"BOTH-UUID")
    assert err == errno.EINVAL
    remove("both")


def test_space_in_name_is_mangled_by_libdm():
    # libdm sends the name \x-escaped; the kernel stores those bytes as they
    # are, and dmsetup shows them unescaped again.
    create("a b", ZERO)
    assert dm_names() == ["a\\x20b"]
    assert dmsetup("ls").split("\t")[0] == "a b"
    assert os.path.exists("/dev/mapper/a\\x20b")
    remove("a b")


def test_duplicate_name_is_ebusy():
    create("dup", ZERO)
    rc, out = fails("dmsetup", "create", "dup", "--table", ZERO)
    assert "create ioctl on dup" in out and "Device or resource busy" in out
    assert raw_ioctl(DM_DEV_CREATE, name=b"dup")[0] == errno.EBUSY
    assert dm_names() == ["dup"]
    remove("dup")


def test_duplicate_uuid_is_ebusy():
    create("one", ZERO, "-u", "SAME")
    rc, out = fails("dmsetup", "create", "two", "-u", "SAME", "--table", ZERO)
    assert "Device or resource busy" in out
    assert dm_names() == ["one"]
    err, _ = raw_ioctl(DM_DEV_CREATE, name=b"two", uuid=b"SAME")
    assert err == errno.EBUSY
    remove("one")


def test_rename():
    create("old", ZERO)
    ev = events("old")
    dmsetup("rename", "old", "new")
    assert dm_names() == ["new"]
    assert _sysfs("new", "name") == "new\n"
    assert os.path.exists("/dev/mapper/new")
    assert not os.path.exists("/dev/mapper/old")
    assert table("new") == "0 8 zero "
    assert events("new") == ev + 1
    remove("new")


def test_rename_to_existing_name_is_ebusy():
    create("a", ZERO)
    create("b", ZERO)
    rc, out = fails("dmsetup", "rename", "a", "b")
    assert "Device or resource busy" in out
    assert dm_names() == ["a", "b"]
    remove("a")
    remove("b")


def test_rename_missing_device_is_enxio():
    rc, out = fails("dmsetup", "rename", "ghost", "spirit")
    assert "No such device or address" in out
    err, _ = raw_ioctl(DM_DEV_RENAME, name=b"ghost", payload=b"spirit")
    assert err == errno.ENXIO


def test_rename_keeps_inactive_table():
    create("a", ZERO)
    dmsetup("load", "a", input="0 16 zero\n")
    dmsetup("rename", "a", "b")
    assert info("b")["attr"] == "LI-w"
    assert table("b", "--inactive") == "0 16 zero "
    dmsetup("resume", "b")
    assert table("b") == "0 16 zero "
    remove("b")


def test_setuuid():
    create("s", ZERO)
    ev = events("s")
    dmsetup("rename", "s", "--setuuid", "NEW-UUID")
    assert info("s")["uuid"] == "NEW-UUID"
    assert _sysfs("s", "uuid") == "NEW-UUID\n"
    assert events("s") == ev + 1
    assert os.path.exists("/dev/disk/by-id/dm-uuid-NEW-UUID")
    remove("s")


def test_setuuid_twice_is_einval():
    create("s", ZERO, "-u", "FIRST")
    rc, out = fails("dmsetup", "rename", "s", "--setuuid", "SECOND")
    assert "Invalid argument" in out
    assert info("s")["uuid"] == "FIRST"
    err, _ = raw_ioctl(DM_DEV_RENAME, name=b"s", flags=DM_UUID_FLAG, payload=b"THIRD")
    assert err == errno.EINVAL
    remove("s")


def test_setuuid_to_used_uuid_is_ebusy():
    create("a", ZERO, "-u", "TAKEN")
    create("b", ZERO)
    rc, out = fails("dmsetup", "rename", "b", "--setuuid", "TAKEN")
    assert "Device or resource busy" in out
    assert info("b")["uuid"] == ""
    remove("a")
    remove("b")

