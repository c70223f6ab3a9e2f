# SPDX-License-Identifier: GPL-2.0-only
"""Interop between Debian's stock dm modules and the guest's own set, in one
guest: a volume made and written on one set opens on the other and reads back
byte for byte; the other writes more; the first reads both back.

"ours" below is the set of the guest's mode (DM=ours: all ours, DM=stock-core:
stock dm-mod with our targets, DM=stock: stock again, so stock <-> stock).
Switching sets unloads every dm module (modswap.py); the data lives on brd
RAM disks, which stay. Formats use pbkdf2 with 1000 iterations (TCG is slow).
"""
import errno
import hashlib
import re

import pytest

from dmtest import (create, dmsetup, io_errno, kernel_has_crypto, pattern, read_at, run, sh,
                    size_sectors, status, udev_settle, wait_for, write_at)
from modswap import module_set
from thinhelp import dump_mapped, thin_check

MB = 1 << 20
KB = 1 << 10
PBKDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
PBKDF1 = ["--pbkdf-force-iterations", "1000"]
PASS = b"interop passphrase, not a secret"
DIRECTIONS = [("stock", "ours"), ("ours", "stock")]
DIR_IDS = ["stock-to-ours", "ours-to-stock"]

# Two writes, one by each side; each read back by the other.
FIRST = (0, 256 * KB)
SECOND = (1 * MB, 256 * KB)


def remove(name):
    """udev may still be probing a fresh mapping: settle, then retry."""
    udev_settle()
    dmsetup("remove", "--retry", name)


def ping_pong(first, second, vol, tag):
    """The round trip: FIRST formats and writes, SECOND verifies and writes,
    FIRST verifies both. VOL has format(), open() -> path, close()."""
    d1 = pattern(f"{tag}-1", FIRST[1])
    d2 = pattern(f"{tag}-2", SECOND[1])
    with module_set(first):
        vol.format()
        m = vol.open()
        try:
            write_at(m, FIRST[0], d1)
        finally:
            vol.close()
    with module_set(second):
        m = vol.open()
        try:
            got1 = read_at(m, FIRST[0], FIRST[1])
            write_at(m, SECOND[0], d2)
        finally:
            vol.close()
    with module_set(first):
        m = vol.open()
        try:
            back1 = read_at(m, FIRST[0], FIRST[1])
            back2 = read_at(m, SECOND[0], SECOND[1])
        finally:
            vol.close()
    sha = lambda b: hashlib.sha256(b).hexdigest()[:16]   # noqa: E731
    assert sha(got1) == sha(d1), f"{second} misreads what {first} wrote"
    assert sha(back2) == sha(d2), f"{first} misreads what {second} wrote"
    assert sha(back1) == sha(d1), f"{first} misreads its own data after {second}"


# ------------------------------------------------------------ crypt

class Luks:
    def __init__(self, dev, tmp, luks, cipher, ksize, extra=()):
        self.dev, self.luks, self.cipher, self.ksize = dev, luks, cipher, ksize
        self.extra = list(extra)
        self.kf = tmp / "pass"
        self.kf.write_bytes(PASS)

    def format(self):
        pb = PBKDF if self.luks == "luks2" else PBKDF1
        run("cryptsetup", "luksFormat", "-q", "--type", self.luks, *pb,
            "--key-file", self.kf, "--cipher", self.cipher,
            *(["--key-size", self.ksize] if self.ksize else []), *self.extra, self.dev)

    def open(self):
        run("cryptsetup", "open", "--key-file", self.kf, self.dev, "io")
        return "/dev/mapper/io"

    def close(self):
        udev_settle()
        run("cryptsetup", "close", "io")


class Plain:
    """cryptsetup --type plain: the key file is the key itself."""

    def __init__(self, dev, tmp, cipher, ksize, extra=()):
        self.dev, self.cipher, self.ksize, self.extra = dev, cipher, ksize, list(extra)
        self.kf = tmp / "key"
        self.kf.write_bytes(pattern("plain-key", ksize // 8))

    def format(self):
        pass

    def open(self):
        run("cryptsetup", "open", "--type", "plain", "-q", "--cipher", self.cipher,
            "--key-size", self.ksize, "--key-file", self.kf, "--keyfile-size",
            self.ksize // 8, "--size", 16384, *self.extra, self.dev, "io")
        return "/dev/mapper/io"

    def close(self):
        udev_settle()
        run("cryptsetup", "close", "io")


class Table:
    """A mapping cryptsetup cannot make: a dmsetup table line."""

    def __init__(self, dev, line):
        self.line = line.format(dev=dev)

    def format(self):
        pass

    def open(self):
        return create("io", self.line)

    def close(self):
        remove("io")


# lmk: 64 keys of 16 bytes and the v3 seed; tcw: key, IV seed, whitening.
LMK_KEY = b"".join(hashlib.sha256(bytes([i])).digest()[:16] for i in range(65)).hex()
TCW_KEY = (bytes(range(16)) + bytes(range(100, 132))).hex()

CRYPT = {
    "luks2-aes-xts": lambda d, t: Luks(d, t, "luks2", "aes-xts-plain64", 512),
    "luks1-aes-cbc-essiv": lambda d, t: Luks(d, t, "luks1", "aes-cbc-essiv:sha256", 256),
    "luks2-serpent-xts": lambda d, t: Luks(d, t, "luks2", "serpent-xts-plain64", 512),
    "luks1-serpent-xts": lambda d, t: Luks(d, t, "luks1", "serpent-xts-plain64", 256),
    "luks2-4k": lambda d, t: Luks(d, t, "luks2", "aes-xts-plain64", 512,
                                  ["--sector-size", "4096"]),
    "plain-plain": lambda d, t: Plain(d, t, "aes-cbc-plain", 256),
    "plain-plain64": lambda d, t: Plain(d, t, "aes-cbc-plain64", 256),
    "plain-plain64be": lambda d, t: Plain(d, t, "aes-cbc-plain64be", 128),
    "plain-benbi": lambda d, t: Plain(d, t, "aes-cbc-benbi", 256),
    "plain-null": lambda d, t: Plain(d, t, "aes-cbc-null", 256),
    "plain-essiv": lambda d, t: Plain(d, t, "aes-cbc-essiv:sha256", 256),
    "plain-eboiv": lambda d, t: Plain(d, t, "aes-cbc-eboiv", 256),
    "plain-xts-4k-large": lambda d, t: Plain(d, t, "aes-xts-plain64", 512,
                                             ["--sector-size", "4096", "--iv-large-sectors"]),
    "table-lmk": lambda d, t: Table(d, f"0 16384 crypt aes:64-cbc-lmk {LMK_KEY} 0 {{dev}} 0"),
    "table-tcw": lambda d, t: Table(d, f"0 16384 crypt aes-cbc-tcw {TCW_KEY} 0 {{dev}} 0"),
}


@pytest.mark.parametrize("first,second", DIRECTIONS, ids=DIR_IDS)
@pytest.mark.parametrize("case", list(CRYPT))
def test_crypt(brd, tmp_path, case, first, second):
    if case == "table-lmk" and not kernel_has_crypto("md5"):
        pytest.skip("kernel without md5 (lmk's IV hash)")
    (dev,) = brd(1, 24)
    ping_pong(first, second, CRYPT[case](dev, tmp_path), case)


# ------------------------------------------------------------ integrity

class Integrity:
    def __init__(self, dev, alg, bitmap):
        self.dev = dev
        self.opts = ["--integrity", alg] + (["--integrity-bitmap-mode"] if bitmap else [])

    def format(self):
        run("integritysetup", "--batch-mode", "format", "--no-wipe", *self.opts, self.dev)

    def open(self):
        run("integritysetup", "--batch-mode", "open", *self.opts, self.dev, "io")
        return "/dev/mapper/io"

    def close(self):
        udev_settle()
        run("integritysetup", "close", "io")


INTEGRITY = {
    "crc32c-journal": lambda d, t: Integrity(d, "crc32c", False),
    "crc32c-bitmap": lambda d, t: Integrity(d, "crc32c", True),
    "sha256-journal": lambda d, t: Integrity(d, "sha256", False),
    "sha256-bitmap": lambda d, t: Integrity(d, "sha256", True),
    # dm-crypt over dm-integrity; cryptsetup adds the hmac key to the xts one
    "luks2-hmac-sha256": lambda d, t: Luks(d, t, "luks2", "aes-xts-plain64", None,
                                           ["--integrity", "hmac-sha256",
                                            "--integrity-no-wipe", "--sector-size", "512"]),
}


@pytest.mark.parametrize("first,second", DIRECTIONS, ids=DIR_IDS)
@pytest.mark.parametrize("case", list(INTEGRITY))
def test_integrity(brd, tmp_path, case, first, second):
    (dev,) = brd(1, 40)
    ping_pong(first, second, INTEGRITY[case](dev, tmp_path), case)


def test_integrity_corruption_seen_by_both(brd):
    """A data sector changed under a closed volume fails on either set."""
    (dev,) = brd(1, 24)
    vol = Integrity(dev, "crc32c", True)
    data = pattern("icorrupt", 256 * KB)
    bad = 400                   # away from what blkid probes at open
    with module_set("stock"):
        vol.format()
        m = vol.open()
        write_at(m, 0, data)
        vol.close()
    # The data area follows the metadata; find the sector by its contents.
    sect = data[bad * 512:(bad + 1) * 512]
    raw = read_at(dev, 0, 4 * MB)
    at = raw.find(sect)
    assert at > 0 and at % 512 == 0
    write_at(dev, at, bytes(b ^ 0x5a for b in sect))
    results = {}
    for side in ("stock", "ours"):
        with module_set(side):
            m = vol.open()
            try:
                results[side] = (io_errno(m, bad * 512, 512),
                                 read_at(m, 0, bad * 512) == data[:bad * 512])
            finally:
                vol.close()
    assert results["stock"][0] in (errno.EILSEQ, errno.EIO), results
    assert results == {"stock": results["stock"], "ours": results["stock"]}
    assert results["stock"][1]


# ------------------------------------------------------------ verity

def verity_format(data, hashdev, *opts):
    out = run("veritysetup", "format", "--data-blocks", 256, data, hashdev, *opts)
    m = re.search(r"Root hash:\s+([0-9a-f]+)", out)
    assert m, out
    return m.group(1)


def verity_read(data, hashdev, root, *opts):
    """Open, read block by block: (digest of good blocks, errno per block
    that failed), close."""
    run("veritysetup", "open", data, "vy", hashdev, root, *opts)
    try:
        h = hashlib.sha256()
        bad = {}
        for blk in range(256):
            e = io_errno("/dev/mapper/vy", blk * 4096, 4096)
            if e:
                bad[blk] = e
            else:
                h.update(read_at("/dev/mapper/vy", blk * 4096, 4096))
    finally:
        udev_settle()
        run("veritysetup", "close", "vy")
    return h.hexdigest(), bad


@pytest.mark.parametrize("fec", [False, True], ids=["plain", "fec"])
def test_verity_both_sets(brd, fec):
    """One volume, one corrupted block: both sets read the same good data and
    fail the same block with EIO (FEC: both repair it)."""
    data, hashdev, fecdev = brd(3, 8)
    content = pattern("verity-interop", MB)
    write_at(data, 0, content)
    fopts = [f"--fec-device={fecdev}", "--fec-roots=2"] if fec else []
    root = verity_format(data, hashdev, *fopts)
    raw = bytearray(read_at(data, 10 * 4096, 4096))
    raw[123] ^= 0x01
    write_at(data, 10 * 4096, bytes(raw))
    results = {}
    for side in ("stock", "ours"):
        with module_set(side):
            results[side] = verity_read(data, hashdev, root, *fopts)
    expect_bad = {} if fec else {10: errno.EIO}
    good = content if fec else content[:10 * 4096] + content[11 * 4096:]
    assert results["stock"] == (hashlib.sha256(good).hexdigest(), expect_bad)
    assert results["ours"] == results["stock"]


# ------------------------------------------------------------ snapshot

SNAP, ORIG = "io-snap", "io-origin"


def snap_up(origin, cow, n, chunk=16):
    sh(f"dmsetup create {SNAP} --table '0 {n} snapshot {origin} {cow} P {chunk}'\n"
       f"dmsetup create {ORIG} --table '0 {n} snapshot-origin {origin}'\n")
    return f"/dev/mapper/{SNAP}", f"/dev/mapper/{ORIG}"


def snap_down():
    udev_settle()
    sh(f"dmsetup remove --retry {ORIG}; dmsetup remove --retry {SNAP}")


def snap_usage(name):
    f = status(name).split()
    a, t = f[3].split("/")
    return int(a), int(f[4])


@pytest.mark.parametrize("first,second", DIRECTIONS, ids=DIR_IDS)
def test_snapshot_cow(brd, first, second):
    """Exceptions in a persistent COW made by one set are found by the
    other, which adds its own; the first then sees all of them."""
    origin, cow = brd(2, 16)
    n = size_sectors(origin)
    old = pattern("snap-old", 4 * MB)
    write_at(origin, 0, old)
    snap_exp = bytearray(old)
    orig_exp = bytearray(old)

    def put(buf, at, data):
        buf[at:at + len(data)] = data

    w = [(ORIG, 64 * KB + 4096, pattern("o1", 300 * KB)),
         (SNAP, 2 * MB, pattern("s1", 72 * KB)),
         (ORIG, 1 * MB + 512, pattern("o2", 200 * KB)),
         (SNAP, 3 * MB + 8192, pattern("s2", 64 * KB))]

    def write(i):
        name, at, data = w[i]
        write_at(f"/dev/mapper/{name}", at, data)
        put(orig_exp if name == ORIG else snap_exp, at, data)

    with module_set(first):
        snap_up(origin, cow, n)
        try:
            write(0)
            write(1)
        finally:
            snap_down()
    got = {}
    with module_set(second):
        s, o = snap_up(origin, cow, n)
        try:
            got["second"] = (read_at(s, 0, 4 * MB) == bytes(snap_exp),
                             read_at(o, 0, 4 * MB) == bytes(orig_exp))
            write(2)
            write(3)
        finally:
            snap_down()
    with module_set(first):
        s, o = snap_up(origin, cow, n)
        try:
            got["first"] = (read_at(s, 0, 4 * MB) == bytes(snap_exp),
                            read_at(o, 0, 4 * MB) == bytes(orig_exp))
        finally:
            snap_down()
    assert got == {"second": (True, True), "first": (True, True)}


@pytest.mark.parametrize("first,second", DIRECTIONS, ids=DIR_IDS)
def test_snapshot_merge_handover(brd, first, second):
    """A merge started on one set and stopped half way finishes on the other:
    the origin ends up holding the snapshot's content."""
    raw, cow = brd(2, 16)
    n = size_sectors(raw)
    old = pattern("merge-old", MB)
    write_at(raw, 0, old)
    want = bytearray(old)
    # The merge runs over an origin that delays each write by 200 ms, one
    # write per non-adjacent chunk: it is still going when it is stopped.
    slow_line = f"0 {n} delay {raw} 0 0 {raw} 0 200"
    with module_set(first):
        snap_up(raw, cow, n, chunk=8)
        try:
            for i in range(0, 64, 2):
                write_at(f"/dev/mapper/{ORIG}", i * 4096, b"n" * 4096)
            snapdata = pattern("merge-snap", 16 * KB)
            write_at(f"/dev/mapper/{SNAP}", 512 * KB, snapdata)
            want[512 * KB:512 * KB + len(snapdata)] = snapdata
        finally:
            snap_down()
        slow = create("io-slow", slow_line)
        try:
            create("io-merge", f"0 {n} snapshot-merge {slow} {cow} P 8")
            sh("sleep 0.3; dmsetup suspend io-merge")
            left_first = snap_usage("io-merge")
            remove("io-merge")
        finally:
            remove("io-slow")
    with module_set(second):
        create("io-merge", f"0 {n} snapshot-merge {raw} {cow} P 8")
        try:
            def done():
                a, meta = snap_usage("io-merge")
                return a == meta
            wait_for(done, 60, "merge to finish")
            merged = read_at("/dev/mapper/io-merge", 0, MB)
        finally:
            remove("io-merge")
    assert left_first[0] > left_first[1], "the merge finished before the switch"
    assert merged == bytes(want)
    assert read_at(raw, 0, MB) == bytes(want)


# ------------------------------------------------------------ thin

TPOOL, TTHIN = "io-tpool", "io-thin"
TBS = 128                       # data block size, sectors
TBLOCK = TBS * 512
TDATA = 256                     # data blocks: 16 MiB
TBYTES = 2 * MB                 # each thin device: 32 blocks


class ThinPool:
    """A pool on two RAM disks and what each thin device in it must hold:
    its bytes and the set of its blocks that are mapped."""

    def __init__(self, meta, data):
        self.meta, self.data = meta, data
        self.model = {}             # dev_id -> bytearray
        self.mapped = {}            # dev_id -> set of virtual blocks

    def up(self):
        create(TPOOL, f"0 {TDATA * TBS} thin-pool {self.meta} {self.data} {TBS} 0")

    def down(self):
        remove(TPOOL)

    def msg(self, *words):
        dmsetup("message", TPOOL, "0", " ".join(str(w) for w in words))

    def held(self):
        """The pool status' held metadata root ("-" when none)."""
        return status(TPOOL).split()[6]

    def thin_up(self, dev_id, name=TTHIN):
        return create(name, f"0 {TBYTES // 512} thin /dev/mapper/{TPOOL} {dev_id}")

    def create_thin(self, dev_id):
        self.msg("create_thin", dev_id)
        self.model[dev_id] = bytearray(TBYTES)
        self.mapped[dev_id] = set()

    def snap(self, new, of, active=None):
        """create_snap; ACTIVE names the origin's device if it is active."""
        if active:
            dmsetup("suspend", active)
        try:
            self.msg("create_snap", new, of)
        finally:
            if active:
                dmsetup("resume", active)
        self.model[new] = bytearray(self.model[of])
        self.mapped[new] = set(self.mapped[of])

    def delete(self, dev_id):
        self.msg("delete", dev_id)
        del self.model[dev_id]
        del self.mapped[dev_id]

    def write(self, dev, dev_id, off, size, tag):
        data = pattern(tag, size)
        write_at(dev, off, data)
        self.model[dev_id][off:off + size] = data
        self.mapped[dev_id].update(range(off // TBLOCK, (off + size - 1) // TBLOCK + 1))

    def write_new(self, dev_id, writes, tag):
        dev = self.thin_up(dev_id)
        try:
            for i, (off, size) in enumerate(writes):
                self.write(dev, dev_id, off, size, f"{tag}-{i}")
        finally:
            remove(TTHIN)

    def verify(self):
        """{dev_id: reads back its model} for every thin device."""
        sha = lambda b: hashlib.sha256(b).hexdigest()   # noqa: E731
        got = {}
        for dev_id, want in sorted(self.model.items()):
            dev = self.thin_up(dev_id)
            try:
                got[dev_id] = sha(read_at(dev, 0, TBYTES)) == sha(bytes(want))
            finally:
                remove(TTHIN)
        return got

    def counts(self):
        return {k: len(v) for k, v in self.mapped.items()}


@pytest.mark.parametrize("first,second", DIRECTIONS, ids=DIR_IDS)
def test_thin_pool_handover(brd, first, second):
    """A pool with a thin device, a snapshot of it and a snapshot of that
    snapshot, made and written by one set, with a metadata snapshot reserved,
    opens on the other: the held root and every device read back; the other
    writes, snapshots, deletes and reserves anew; the first reads it all back.
    thin_check passes and thin_dump -m shows the reserved state at each
    hand-over."""
    meta, data = brd(2, 16)
    p = ThinPool(meta, data)
    seen = {}

    with module_set(first):
        p.up()
        try:
            p.create_thin(1)
            origin = p.thin_up(1, "io-origin")
            try:
                p.write(origin, 1, 0, 3 * TBLOCK, "t1-a")
                p.write(origin, 1, 10 * TBLOCK + 4096, 8192, "t1-b")
                p.snap(2, 1, active="io-origin")
                # Breaks sharing of block 0 only.
                p.write(origin, 1, 4096, 4096, "t1-c")
            finally:
                remove("io-origin")
            p.snap(3, 2)
            p.write_new(3, [(20 * TBLOCK, TBLOCK), (TBLOCK, 4096)], "t3-a")
            p.msg("reserve_metadata_snap")
            at_reserve = p.counts()
            # After the reserve: in the live metadata, not in the snapshot.
            p.write_new(1, [(30 * TBLOCK, 4096)], "t1-d")
            held1 = p.held()
            after1 = p.counts()
        finally:
            p.down()
    check1 = thin_check(meta)
    snap1 = dump_mapped(run("thin_dump", "-m", meta))
    live1 = dump_mapped(run("thin_dump", meta))

    with module_set(second):
        p.up()
        try:
            seen["held-second"] = p.held()
            seen["second"] = p.verify()
            p.write_new(1, [(5 * TBLOCK, 2 * TBLOCK)], "t1-e")
            p.write_new(3, [(0, 4096), (25 * TBLOCK, TBLOCK)], "t3-b")
            origin = p.thin_up(1, "io-origin")
            try:
                p.snap(4, 1, active="io-origin")
                p.write(origin, 1, 5 * TBLOCK, 4096, "t1-f")
            finally:
                remove("io-origin")
            p.delete(2)
            p.msg("release_metadata_snap")
            p.msg("reserve_metadata_snap")
            at_reserve2 = p.counts()
            p.write_new(4, [(31 * TBLOCK, 4096)], "t4-a")
            held2 = p.held()
        finally:
            p.down()
    check2 = thin_check(meta)
    snap2 = dump_mapped(run("thin_dump", "-m", meta))
    live2 = dump_mapped(run("thin_dump", meta))

    with module_set(first):
        p.up()
        try:
            seen["held-first"] = p.held()
            seen["first"] = p.verify()
            p.msg("release_metadata_snap")
            seen["released"] = p.held()
        finally:
            p.down()
    check3 = thin_check(meta)

    assert held1 != "-" and held2 != "-"
    assert (check1, check2, check3) == ([], [], [])
    assert snap1 == at_reserve and live1 == after1
    assert seen["held-second"] == held1
    assert seen["second"] == {1: True, 2: True, 3: True}
    assert snap2 == at_reserve2 and live2 == p.counts()
    assert seen["held-first"] == held2
    assert seen["first"] == {1: True, 3: True, 4: True}
    assert seen["released"] == "-"
