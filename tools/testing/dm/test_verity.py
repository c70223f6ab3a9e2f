# SPDX-License-Identifier: GPL-2.0-only
"""verity: volumes made by veritysetup, read through the kernel target.

Every volume is formatted by the real veritysetup, so the on-disk format is
independent of the module under test. Devices stay small: hashing is slow
under TCG.
"""
import ctypes
import os
import re
import select
import subprocess
import time

import pytest

from dmharness import KernelLog
from dmtest import (create, devno, dmsetup, fails, fill, io_errno, pattern,
                    read_at, remove, run, status, table, target_versions,
                    udev_settle, write_at)

SALT = "5a17c0ffee0123456789abcdef"
NBLK = 64                  # data blocks used in most tests


def fmt(data, hashdev, *opts):
    """veritysetup format; returns the root hash."""
    out = run("veritysetup", "format", data, hashdev, *opts)
    m = re.search(r"Root hash:\s+([0-9a-f]+)", out)
    assert m, out
    return m.group(1)


def vtable(data, hashdev, root, nblk=NBLK, bs=4096, hbs=4096, version=1,
           hash_start=1, alg="sha256", salt=SALT, opts=""):
    line = (f"0 {nblk * bs // 512} verity {version} {data} {hashdev} {bs} {hbs} "
            f"{nblk} {hash_start} {alg} {root} {salt}")
    return line + (f" {opts}" if opts else "")


def vremove(name="vy"):
    """Remove after udev is done: a corruption uevent makes udev probe the device."""
    udev_settle()
    remove(name, "--retry")


def add_user_key(desc, payload):
    """add_key(2) of a "user" key into the session keyring; returns its id."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    kid = libc.syscall(248, b"user", desc.encode(), payload, len(payload), -3)
    assert kid > 0, os.strerror(ctypes.get_errno())
    return kid


def drop_key(kid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(250, 21, kid)        # keyctl(KEYCTL_INVALIDATE, id)


def flip(dev, offset):
    """Invert one byte of DEV at OFFSET (written directly)."""
    blk = offset & ~4095
    buf = bytearray(read_at(dev, blk, 4096))
    buf[offset - blk] ^= 0xff
    write_at(dev, blk, bytes(buf))


@pytest.fixture
def devs(brd):
    """data, hash, fec: three 4 MiB RAM disks; data holds a pattern."""
    d = brd(3, 4)
    fill(d[0], "verity-data", 0, NBLK * 4096)
    return d


def std_format(devs, *extra):
    return fmt(devs[0], devs[1], f"--data-blocks={NBLK}", f"--salt={SALT}", *extra)


def test_version(devs):
    root = std_format(devs)
    create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert target_versions()["verity"] == (1, 9, 0)
    vremove()


def test_table_and_status_lines(devs):
    root = std_format(devs)
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    d, h = devno(devs[0]), devno(devs[1])
    assert table("vy") == (f"0 {NBLK * 8} verity 1 {d} {h} 4096 4096 {NBLK} 1 sha256 "
                           f"{root} {SALT}")
    assert status("vy") == f"0 {NBLK * 8} verity V"
    assert read_at(vy, 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    assert status("vy") == f"0 {NBLK * 8} verity V"
    vremove()


def test_options_in_table_line(devs):
    root = std_format(devs)
    opts = "4 ignore_corruption ignore_zero_blocks check_at_most_once try_verify_in_tasklet"
    create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    assert table("vy").endswith(f"{root} {SALT} {opts}")
    vremove()
    opts = "2 Restart_On_Corruption IGNORE_ZERO_BLOCKS"
    create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    assert table("vy").endswith(f"{SALT} 2 restart_on_corruption ignore_zero_blocks")
    vremove()


@pytest.mark.parametrize("version,bs,hbs,alg,salt", [
    (1, 4096, 4096, "sha256", SALT),
    (0, 4096, 4096, "sha256", SALT),
    (1, 512, 512, "sha256", "-"),
    (0, 1024, 2048, "sha1", "00ff"),
    (1, 2048, 1024, "sha512", SALT),
])
def test_formats_verify(devs, version, bs, hbs, alg, salt):
    nblk = NBLK * 4096 // bs
    root = fmt(devs[0], devs[1], f"--data-blocks={nblk}", f"--format={version}",
               f"--data-block-size={bs}", f"--hash-block-size={hbs}", f"--hash={alg}",
               f"--salt={salt}")
    vy = create("vy", vtable(devs[0], devs[1], root, nblk, bs, hbs, version,
                             hash_start=1, alg=alg, salt=salt), "--readonly")
    assert read_at(vy, 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    assert status("vy").endswith(" V")
    vremove()


def test_wrong_root_fails(devs):
    root = std_format(devs)
    bad = ("0" if root[0] != "0" else "1") + root[1:]
    klog = KernelLog()
    vy = create("vy", vtable(devs[0], devs[1], bad), "--readonly")
    assert io_errno(vy, 0, 4096) == 5
    assert status("vy").endswith(" C")
    lines = klog.read()
    klog.close()
    assert any(f"{devno(devs[0])}: metadata block 1 is corrupted" in l for l in lines), lines
    vremove()


def test_veritysetup_open_close(devs):
    """veritysetup open/verify/status/close, v1 and v0, hash on the same device."""
    root = std_format(devs)
    run("veritysetup", "verify", devs[0], devs[1], root)
    run("veritysetup", "open", devs[0], "vs", devs[1], root)
    assert read_at("/dev/mapper/vs", 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    out = run("veritysetup", "status", "vs")
    assert "status:      verified" in out, out
    run("veritysetup", "close", "vs")

    # Hash tree after the data on the same device, v0, no superblock.
    off = NBLK * 4096
    root = fmt(devs[0], devs[0], f"--data-blocks={NBLK}", f"--hash-offset={off}",
               "--format=0", "--no-superblock", "--salt=abcd")
    vy = create("vy", vtable(devs[0], devs[0], root, version=0, hash_start=NBLK,
                             salt="abcd"), "--readonly")
    assert read_at(vy, 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    vremove()
    run("veritysetup", "open", devs[0], "vs", devs[0], root, f"--hash-offset={off}",
        "--no-superblock", "--format=0", f"--data-blocks={NBLK}", "--salt=abcd")
    assert read_at("/dev/mapper/vs", 4096, 4096) == pattern("verity-data", 8192)[4096:]
    run("veritysetup", "close", "vs")


def test_data_corruption_gives_eio(devs):
    root = std_format(devs)
    flip(devs[0], 5 * 4096 + 100)
    # The corruption line is rate limited (10 per 5 s per call site), and
    # earlier tests may have used the window up: let it pass.
    time.sleep(5.5)
    klog = KernelLog()
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 5 * 4096, 4096) == 5
    assert io_errno(vy, 0, 5 * 4096) == 0
    assert read_at(vy, 6 * 4096, 4096) == pattern("verity-data", 7 * 4096)[6 * 4096:]
    assert status("vy").endswith(" C")
    lines = klog.read()
    klog.close()
    assert any(f"verity: {devno(devs[0])}: data block 5 is corrupted" in l for l in lines), lines
    vremove()


def test_hash_corruption_gives_eio(devs):
    root = std_format(devs)
    # 64 blocks: one level; level 0 is hash block 1, right after the superblock.
    flip(devs[1], 4096 + 3)
    klog = KernelLog()
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 0, 4096) == 5
    assert status("vy").endswith(" C")
    lines = klog.read()
    klog.close()
    assert any(f"{devno(devs[0])}: metadata block 1 is corrupted" in l for l in lines), lines
    vremove()


def read_until(proc, text, timeout):
    """What PROC prints until TEXT appears in it or TIMEOUT seconds pass."""
    out = ""
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while text not in out and time.monotonic() < end:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk.decode(errors="replace")
    return out


def test_corruption_uevent(devs):
    root = std_format(devs)
    flip(devs[0], 9 * 4096)
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    mon = subprocess.Popen(["udevadm", "monitor", "--kernel", "--property",
                            "--subsystem-match=block"], stdout=subprocess.PIPE)
    try:
        # udevadm names its sources once it listens; the uevent comes from a
        # work item. Wait for both rather than for a fixed time: a slow guest
        # (the debug-kernel lane) takes seconds for each.
        out = read_until(mon, "KERNEL - the kernel uevent", 15)
        assert io_errno(vy, 9 * 4096, 4096) == 5
        out += read_until(mon, "DM_VERITY_ERR_BLOCK_NR=0,9", 30)
    finally:
        mon.terminate()
        mon.wait(timeout=10)
    assert "DM_VERITY_ERR_BLOCK_NR=0,9" in out, out
    vremove()


def test_writes_rejected(devs):
    root = std_format(devs)
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 0, 4096) == 0
    rc, out = fails("dd", "if=/dev/zero", f"of={vy}", "bs=4096", "count=1", "oflag=direct")
    vremove()
    assert read_at(devs[0], 0, 4096) == pattern("verity-data", 4096)


def test_ignore_corruption_logs(devs):
    root = std_format(devs)
    flip(devs[0], 2 * 4096 + 7)
    want = bytearray(pattern("verity-data", 3 * 4096)[2 * 4096:])
    want[7] ^= 0xff
    klog = KernelLog()
    vy = create("vy", vtable(devs[0], devs[1], root, opts="1 ignore_corruption"),
                "--readonly")
    assert read_at(vy, 2 * 4096, 4096) == bytes(want)
    assert status("vy").endswith(" C")
    lines = klog.read()
    klog.close()
    assert any(f"{devno(devs[0])}: data block 2 is corrupted" in l for l in lines), lines
    vremove()


def test_ignore_zero_blocks(devs):
    write_at(devs[0], 3 * 4096, b"\0" * 4096)
    root = std_format(devs)
    write_at(devs[0], 3 * 4096, pattern("junk", 4096))
    vy = create("vy", vtable(devs[0], devs[1], root, opts="1 ignore_zero_blocks"),
                "--readonly")
    # The expected digest is that of a zero block: zeroes come back unread.
    assert read_at(vy, 3 * 4096, 4096) == b"\0" * 4096
    assert status("vy").endswith(" V")
    vremove()
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 3 * 4096, 4096) == 5
    vremove()


def test_check_at_most_once(devs):
    root = std_format(devs)
    vy = create("vy", vtable(devs[0], devs[1], root, opts="1 check_at_most_once"),
                "--readonly")
    assert read_at(vy, 4 * 4096, 4096) == pattern("verity-data", 5 * 4096)[4 * 4096:]
    flip(devs[0], 4 * 4096)
    # Verified once: the changed block is not checked again.
    assert io_errno(vy, 4 * 4096, 4096) == 0
    assert status("vy").endswith(" V")
    vremove()
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 4 * 4096, 4096) == 5
    vremove()


def test_unaligned_and_out_of_range(devs):
    root = std_format(devs)
    # The device is one block shorter than the data: the last block is out of range.
    line = vtable(devs[0], devs[1], root).replace(f"0 {NBLK * 8} ", f"0 {NBLK * 8 + 8} ")
    rc, out = fails("dmsetup", "create", "vy", "--readonly", "--table", line)
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert run("blockdev", "--getss", vy).strip() == "4096"
    vremove()


def fec_format(devs, roots=2):
    return std_format(devs, f"--fec-device={devs[2]}", f"--fec-roots={roots}")


def fec_opts(devs, roots=2):
    # veritysetup covers the whole hash device after the superblock.
    blocks = NBLK + (4 << 20) // 4096 - 1
    return (f"8 use_fec_from_device {devs[2]} fec_roots {roots} fec_blocks {blocks} "
            f"fec_start 0"), blocks


@pytest.mark.parametrize("roots", [2, 7])
def test_fec_repairs_data(devs, roots):
    root = fec_format(devs, roots)
    # Two wrong bytes in one codeword column... one wrong byte per codeword.
    flip(devs[0], 10 * 4096 + 1)
    flip(devs[0], 10 * 4096 + 2000)
    opts, blocks = fec_opts(devs, roots)
    vy = create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    d, f = devno(devs[0]), devno(devs[2])
    assert table("vy").endswith(f" 8 use_fec_from_device {f} fec_blocks {blocks} "
                                f"fec_start 0 fec_roots {roots}"), table("vy")
    assert read_at(vy, 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    assert status("vy").endswith(" V")
    vremove()


def test_fec_repairs_hash_block(devs):
    root = fec_format(devs)
    flip(devs[1], 4096 + 40)
    opts, _ = fec_opts(devs)
    vy = create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    assert read_at(vy, 0, NBLK * 4096) == pattern("verity-data", NBLK * 4096)
    vremove()


def test_fec_with_veritysetup_open(devs):
    root = fec_format(devs)
    flip(devs[0], 33 * 4096 + 4000)
    run("veritysetup", "open", devs[0], "vs", devs[1], root, f"--fec-device={devs[2]}",
        "--fec-roots=2")
    assert read_at("/dev/mapper/vs", 33 * 4096, 4096) == \
        pattern("verity-data", 34 * 4096)[33 * 4096:]
    run("veritysetup", "close", "vs")


def test_fec_uses_erasures(devs):
    """Two whole blocks of one RS group rewritten: 2 roots repair them as erasures."""
    root = fec_format(devs)
    # rounds = ceil(1087 / 253) = 5: blocks 12 and 17 share their codewords.
    write_at(devs[0], 12 * 4096, pattern("other", 4096))
    write_at(devs[0], 17 * 4096, pattern("other2", 4096))
    opts, _ = fec_opts(devs)
    vy = create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    assert read_at(vy, 12 * 4096, 4096) == pattern("verity-data", 13 * 4096)[12 * 4096:]
    assert read_at(vy, 17 * 4096, 4096) == pattern("verity-data", 18 * 4096)[17 * 4096:]
    vremove()


def test_fec_uncorrectable_gives_eio(devs):
    root = fec_format(devs)
    # Three blocks of one group: more than 2 roots can repair.
    for i, b in enumerate((12, 17, 22)):
        write_at(devs[0], b * 4096, pattern(f"other{i}", 4096))
    opts, _ = fec_opts(devs)
    klog = KernelLog()
    vy = create("vy", vtable(devs[0], devs[1], root, opts=opts), "--readonly")
    assert io_errno(vy, 12 * 4096, 4096) == 5
    assert io_errno(vy, 0, 4096) == 0
    assert status("vy").endswith(" C")
    lines = klog.read()
    klog.close()
    # Group 2 of 5: named by its first codeword, byte 2 * 4096.
    assert any(f"verity-fec: {devno(devs[0])}: FEC 8192: failed to correct" in l
               for l in lines), lines
    assert any(f"verity: {devno(devs[0])}: data block 12 is corrupted" in l
               for l in lines), lines
    vremove()


CTR_ERRORS = [
    ("rw", None, "Device must be readonly"),
    ("args", lambda t: " ".join(t.split()[:12]), "Not enough arguments"),
    ("version", lambda t: t.replace(" verity 1 ", " verity 2 "), "Invalid version"),
    ("data_bs", lambda t: t.replace(" 4096 4096 ", " 3000 4096 "),
     "Invalid data device block size"),
    ("data_bs_big", lambda t: t.replace(" 4096 4096 ", " 8192 4096 "),
     "Invalid data device block size"),
    ("hash_bs", lambda t: t.replace(" 4096 4096 ", " 4096 100 "),
     "Invalid hash device block size"),
    ("blocks", lambda t: t.replace(f" {NBLK} 1 sha256", " x 1 sha256"), "Invalid data blocks"),
    ("small", lambda t: t.replace(f" {NBLK} 1 sha256", f" {NBLK - 1} 1 sha256"),
     "Data device is too small"),
    ("start", lambda t: t.replace(f" {NBLK} 1 sha256", f" {NBLK} -1 sha256"),
     "Invalid hash start"),
    ("alg", lambda t: t.replace(" sha256 ", " nosuchhash "), "Cannot initialize hash function"),
    ("digest", lambda t: t.replace(" sha256 ", " sha256 ab"), "Invalid root digest"),
    ("salt", lambda t: t.replace(SALT, "xyz"), "Invalid salt"),
    ("count", lambda t: t + " 15 " + " ".join(["ignore_zero_blocks"] * 15),
     "Invalid number of feature args"),
    ("conflict", lambda t: t + " 2 ignore_corruption restart_on_corruption",
     "Conflicting error handling parameters"),
    ("twice", lambda t: t + " 2 ignore_corruption ignore_corruption",
     "Conflicting error handling parameters"),
    ("unknown", lambda t: t + " 1 frobnicate", "Unrecognized verity feature request"),
    ("fec_value", lambda t: t + " 1 fec_roots", "FEC feature arguments require a value"),
    ("fec_roots", lambda t: t + " 2 fec_roots 30", "Invalid fec_roots"),
    ("hash_small", lambda t: t.replace(f" {NBLK} 1 sha256", f" {NBLK} 1024 sha256"),
     "Hash device is too small"),
]


@pytest.mark.parametrize("name,edit,message", CTR_ERRORS, ids=[c[0] for c in CTR_ERRORS])
def test_constructor_errors(devs, name, edit, message):
    root = std_format(devs)
    line = vtable(devs[0], devs[1], root)
    opts = ["--readonly"]
    if edit:
        line = edit(line)
    else:
        opts = []
    klog = KernelLog()
    fails("dmsetup", "create", "vy", *opts, "--table", line)
    lines = klog.read()
    klog.close()
    assert any(f"verity: {message}" in l for l in lines), lines


def test_fec_constructor_errors(devs):
    root = fec_format(devs)
    base = vtable(devs[0], devs[1], root)
    _, blocks = fec_opts(devs)
    cases = [
        (f" 4 use_fec_from_device {devs[2]} fec_blocks {blocks}", "Missing fec_roots"),
        (f" 4 use_fec_from_device {devs[2]} fec_roots 2", "Missing fec_blocks"),
        (f" 6 use_fec_from_device {devs[2]} fec_roots 2 fec_blocks 10", "Invalid fec_blocks"),
        (" 2 use_fec_from_device /dev/nonexistent", "FEC device lookup failed"),
    ]
    for extra, message in cases:
        klog = KernelLog()
        fails("dmsetup", "create", "vy", "--readonly", "--table", base + extra)
        lines = klog.read()
        klog.close()
        assert any(f"verity: {message}" in l for l in lines), (extra, lines)


def test_signature_key_errors(devs):
    root = std_format(devs)
    base = vtable(devs[0], devs[1], root)
    klog = KernelLog()
    fails("dmsetup", "create", "vy", "--readonly", "--table",
          base + " 2 root_hash_sig_key_desc dmtest:nosuchkey")
    # A key that is not a valid PKCS#7 signature.
    kid = add_user_key("dmtest:badsig", b"not a signature")
    try:
        fails("dmsetup", "create", "vy", "--readonly", "--table",
              base + " 2 root_hash_sig_key_desc dmtest:badsig")
    finally:
        drop_key(kid)
    lines = klog.read()
    klog.close()
    assert any("verity: DM Verity Sig Verification Invalid key specified" in l
               for l in lines), lines
    assert any("verity: Root hash verification failed" in l for l in lines), lines


def test_parameters(devs):
    root = std_format(devs)
    create("vy", vtable(devs[0], devs[1], root), "--readonly")
    with open("/sys/module/dm_verity/parameters/prefetch_cluster") as f:
        assert f.read().strip() == "262144"
    with open("/sys/module/dm_verity/parameters/require_signatures") as f:
        assert f.read().strip() == "N"
    vremove()


def test_suspend_resume_rereads_hash(devs):
    root = std_format(devs)
    vy = create("vy", vtable(devs[0], devs[1], root), "--readonly")
    assert io_errno(vy, 0, NBLK * 4096) == 0
    flip(devs[1], 4096 + 64)
    # Cached and verified: still fine until a suspend drops the cache.
    assert io_errno(vy, 0, 4096) == 0
    dmsetup("suspend", "vy")
    dmsetup("resume", "vy")
    assert io_errno(vy, 0, 4096) == 5
    vremove()
