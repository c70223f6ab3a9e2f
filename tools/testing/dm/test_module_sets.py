# SPDX-License-Identifier: GPL-2.0-only
"""The guest runs the module set it was asked for, and target modules
auto-load on first use as on a real system (request_module -> modprobe)."""
from dmtest import create, devno, dm_mode, module_is_ours, module_loaded, remove, run, table


def test_dm_mod_comes_from_the_requested_set():
    run("dmsetup", "version")           # opens /dev/mapper/control: autoloads dm-mod
    assert module_loaded("dm_mod")
    assert module_is_ours("dm_mod") == (dm_mode() in ("ours", "ours-core"))


def test_target_module_autoloads_on_first_create(brd):
    """unstriped is not built into dm-mod: the first table that names it
    makes the kernel ask modprobe for dm-unstriped."""
    (dev,) = brd(1, 16)
    run("modprobe", "-r", "dm-unstripe", check=False)
    assert not module_loaded("dm_unstripe")
    create("autoload", f"0 8192 unstriped 2 128 1 {dev} 0")
    try:
        assert module_loaded("dm_unstripe")
        assert table("autoload") == f"0 8192 unstriped 2 128 1 {devno(dev)} 0"
        ours = dm_mode() in ("ours", "stock-core")
        assert module_is_ours("dm_unstripe") == ours
    finally:
        remove("autoload")
