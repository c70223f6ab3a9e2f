# SPDX-License-Identifier: GPL-2.0-only
"""Switch the loaded device-mapper module set inside the test guest.

    with module_set("stock"):
        ...     # Debian's own dm modules, whatever DM= the guest runs
    # back on the guest's own set (DM=ours: ours, DM=stock-core: ...)

The guest boots with /lib/modules/$(uname -r) bind-mounted from the tree
that tools/testing/vm/modtree prepared for its mode. Debian's pristine tree,
depmod output included, lies unpacked in the VM cache, which the guest sees
through the shared host root. Switching to "stock" therefore costs no depmod:
unload every dm module, mount the pristine tree over the mode's tree (so that
the kernel's request_module() for a target finds stock's module too), hide
the mode's modprobe install rules (they force-load stock modules over our
core) and load stock's dm-mod. Leaving undoes all of it in reverse and loads
again the dm modules that were loaded before.

A switch needs no dm device to exist: the data lives on RAM disks (brd)
or loop devices, which stay loaded.
"""
import contextlib
import os
import subprocess
import time

import dmtest

MODE_SET = "ours"           # the guest's own set, whatever its mode
STOCK_SET = "stock"
_MODPROBE_RULES = "/etc/modprobe.d/dmvm.conf"
# modprobe reads only *.conf: a rename in place hides the file
_HIDDEN_RULES = _MODPROBE_RULES + ".modswap-off"

_current = MODE_SET


class SwitchError(RuntimeError):
    pass


def current():
    """The set loaded now: "stock" or "ours" (the mode's own)."""
    return _current


def _kver():
    return os.uname().release


def _modtree():
    return f"/lib/modules/{_kver()}"


def stock_tree():
    """Debian's unmodified module tree for the running kernel, with its
    modules.dep: the VM cache directory is the parent of the run directory
    named on the kernel command line (dmvm.run=)."""
    with open("/proc/cmdline") as f:
        args = dict(a.split("=", 1) for a in f.read().split() if "=" in a)
    run = args.get("dmvm.run")
    if not run:
        raise SwitchError("not in a test guest: no dmvm.run= on the command line")
    tree = os.path.join(os.path.dirname(run.rstrip("/")), f"kernel-{_kver()}",
                        "lib", "modules", _kver())
    for need in ("modules.dep.bin", "kernel/drivers/md"):
        if not os.path.exists(os.path.join(tree, need)):
            raise SwitchError(f"no stock module tree at {tree} (missing {need})")
    return tree


def _loaded():
    """{name: refcount} of every loaded module."""
    mods = {}
    with open("/proc/modules") as f:
        for line in f:
            name, _, refs = line.split()[:3]
            mods[name] = int(refs)
    return mods


def _holders(name):
    try:
        return os.listdir(f"/sys/module/{name}/holders")
    except FileNotFoundError:
        return []


def dm_modules():
    """Every loaded module of the dm family: the dm_* ones and whatever
    holds them (a module that links against dm-mod under another name)."""
    mods = _loaded()
    found = {m for m in mods if m.startswith("dm_")}
    todo = list(found)
    while todo:
        for h in _holders(todo.pop()):
            if h not in found:
                found.add(h)
                todo.append(h)
    return found


def _unload_all():
    """rmmod the dm family, holders first. Raises if something stays."""
    left = dm_modules()
    for _ in range(len(left) + 10):
        if not left:
            return
        leaves = sorted(m for m in left if not set(_holders(m)) & left)
        subprocess.run(["rmmod", *leaves], capture_output=True)
        now = dm_modules()
        if now == left:
            # a reference that udev or an exiting opener drops soon
            dmtest.udev_settle()
            time.sleep(0.1)
        left = now
    if left:
        refs = _loaded()
        raise SwitchError("cannot unload: " +
                          ", ".join(f"{m}({refs.get(m, '?')})" for m in sorted(left)))


def _load(names):
    if names:
        dmtest.run("modprobe", "-a", *sorted(names))


def _check_set(want):
    """Every dm module loaded must come from the set WANT."""
    if want != STOCK_SET:
        return
    ours = sorted(m for m in dm_modules() if dmtest.module_is_ours(m))
    if ours:
        raise SwitchError("stock set has modules built out of tree: " + " ".join(ours))


def _enter_stock(tree):
    subprocess.run(["mount", "--bind", tree, _modtree()], check=True)
    try:
        if os.path.exists(_MODPROBE_RULES):
            os.rename(_MODPROBE_RULES, _HIDDEN_RULES)
    except OSError:
        subprocess.run(["umount", "--lazy", _modtree()], check=True)
        raise


def _leave_stock():
    if os.path.exists(_HIDDEN_RULES):
        os.rename(_HIDDEN_RULES, _MODPROBE_RULES)
    # Lazily: udevd's kmod keeps the index files of the tree mapped.
    subprocess.run(["umount", "--lazy", _modtree()], check=True)


def switch(to, reload=("dm_mod",)):
    """Replace the loaded dm modules by set TO ("stock" or "ours") and load
    RELOAD from it. No dm device may exist."""
    global _current
    if to not in (STOCK_SET, MODE_SET):
        raise ValueError(f"unknown module set {to!r}")
    if to == _current:
        return
    dmtest.udev_settle()
    names = dmtest.dm_names()
    if names:
        raise SwitchError("dm devices still exist: " + " ".join(names))
    tree = stock_tree() if to == STOCK_SET else None
    _unload_all()
    if to == STOCK_SET:
        _enter_stock(tree)
    else:
        _leave_stock()
    _current = to
    _load(reload)
    _check_set(to)


def _drop_devices():
    """After a failure inside the block: remove what it left, so that the
    mode's set can come back for the next test."""
    subprocess.run(["udevadm", "settle", "--timeout=30"], capture_output=True)
    for _ in range(3):
        names = dmtest.dm_names()
        if not names:
            return
        for n in names:
            subprocess.run(["dmsetup", "remove", "--force", "--retry", n],
                           capture_output=True)
        dmtest.udev_settle()


@contextlib.contextmanager
def module_set(name):
    """Run the block on module set NAME ("stock" or "ours", the mode's own),
    then switch back to whatever was loaded before. The block must remove
    its dm devices; if it raises, they are removed for it."""
    before = _current
    was_loaded = dm_modules() or {"dm_mod"}
    if name == before:
        yield
        return
    switch(name)
    ok = False
    try:
        yield
        ok = True
    finally:
        stuck = dmtest.dm_names()
        if stuck:
            _drop_devices()
        try:
            _check_set(name)
        finally:
            switch(before, reload=was_loaded)
        if stuck and ok:
            raise SwitchError("the block left dm devices: " + " ".join(stuck))
