# SPDX-License-Identifier: GPL-2.0-only
"""error target (in dm-mod, 1.5.0): every I/O fails, any arguments accepted."""
import errno

from dmtest import (create, dmsetup, fill, io_errno, read_at, remove, status,
                    table, target_versions)


def test_error_version():
    assert target_versions()["error"] == (1, 5, 0)


def test_error_reads_and_writes_fail_with_eio():
    dev = create("e", "0 2048 error")
    assert io_errno(dev, 0, 4096) == errno.EIO
    assert io_errno(dev, 512 * 1024, 4096, write=True) == errno.EIO
    remove("e")


def test_error_accepts_and_drops_arguments():
    create("e", "0 2048 error whatever 1 2 3")
    # The table line has no parameters: the target does not keep them.
    assert table("e") == "0 2048 error "
    assert status("e") == "0 2048 error "
    remove("e")


def test_error_replaces_live_linear(brd):
    ram, = brd(1, 16)
    dev = create("e", "0 2048 linear %s 0" % ram)
    data = fill(dev, "before", 0, 1 << 20)
    dmsetup("load", "e", input="0 2048 error\n")
    dmsetup("resume", "e")
    assert io_errno(dev, 0, 4096) == errno.EIO
    assert read_at(ram, 0, len(data)) == data
    remove("e")
