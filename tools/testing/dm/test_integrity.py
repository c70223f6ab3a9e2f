# SPDX-License-Identifier: GPL-2.0-only
"""integrity: real integritysetup volumes, the table grammar, and the on-disk
layout (superblock, tags, journal) read back from the raw device."""
import errno
import os
import struct
import time

import pytest

from dmharness import KernelLog
from dmtest import (create, devno, fails, has_target, io_errno, pattern, read_at, remove, run,
                    status, table, target_versions, udev_settle, wait_for, write_at)

SB_FLAGS = {"journal_mac": 0x1, "recalculating": 0x2, "dirty_bitmap": 0x4,
            "fixed_padding": 0x8, "fixed_hmac": 0x10}
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


# --------------------------------------------------------------- helpers

def _crc32c_table():
    poly = 0x82F63B78
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        tab.append(c)
    return tab


_CRC_TAB = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    tab = _CRC_TAB
    for b in data:
        crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def tag_crc32c(sector, data, salt=b""):
    return struct.pack("<I", crc32c(salt + struct.pack("<Q", sector) + data))


class Geometry:
    """Superblock and layout of an interleaved volume (formats/integrity.md)."""

    def __init__(self, dev, start=0):
        raw = read_at(dev, start * 512, 4096)
        (magic, self.version, self.log2_il, self.tag_size, self.sections,
         self.provided, self.flags, self.log2_spb, self.log2_bpb, _, self.recalc,
         _, self.salt) = struct.unpack("<8sBBHIQIBBHQ8s16s", raw[:64])
        assert magic == b"integrt\0", raw[:16]
        self.start = start
        self.spb = 1 << self.log2_spb
        mac = 8 if self.flags & SB_FLAGS["journal_mac"] else 0
        self.entry_size = (8 + 8 * self.spb + self.tag_size + 7) // 8 * 8
        self.section_entries = (504 - mac) // self.entry_size * 8
        self.section_sectors = self.section_entries * self.spb + 8
        self.initial = 8 + self.sections * self.section_sectors
        pad = 4096 if self.flags & SB_FLAGS["fixed_padding"] else 131072
        run_bytes = self.tag_size << (self.log2_il - self.log2_spb)
        self.metadata_run = (run_bytes + pad - 1) // pad * pad // 512
        self.salt_used = self.salt if self.flags & SB_FLAGS["fixed_hmac"] else b""

    def area_base(self, s):
        area = s >> self.log2_il
        return self.start + self.initial + area * ((1 << self.log2_il) + self.metadata_run)

    def data_sector(self, s):
        return self.area_base(s) + self.metadata_run + (s & ((1 << self.log2_il) - 1))

    def tag_offset(self, s):
        off = s & ((1 << self.log2_il) - 1)
        return self.area_base(s) * 512 + (off >> self.log2_spb) * self.tag_size

    def journal_sectors_used(self, journal):
        """Sector fields of the used entries in a raw journal image."""
        out = []
        for sec in range(self.sections):
            base = sec * self.section_sectors * 512
            for e in range(self.section_entries):
                off = base + (e % 8) * 512 + (e // 8) * self.entry_size
                lo, hi = struct.unpack("<II", journal[off:off + 8])
                if hi != 0xFFFFFFFF:
                    out.append(lo | hi << 32)
        return out

    def tag(self, dev, s):
        return read_at(dev, self.tag_offset(s) // 512 * 512, 4096)[
            self.tag_offset(s) % 512:][:self.tag_size]


def isetup(*args):
    return run("integritysetup", "--batch-mode", *args)


def fmt_open(dev, name="iv", fmt=(), opn=()):
    isetup("format", *fmt, dev)
    isetup("open", *opn, dev, name)
    return f"/dev/mapper/{name}"


def close(name="iv"):
    isetup("close", name)


def dump(dev):
    """integritysetup dump as {key: value} ("key value" lines)."""
    out = {}
    for line in isetup("dump", dev).splitlines()[1:]:
        k, _, v = line.strip().partition(" ")
        out[k] = v.strip()
    return out


def info_fields(name):
    return status(name).split()[3:]


@pytest.fixture
def dev(loopdev):
    return loopdev(16)


@pytest.fixture
def keyfile(tmp_path):
    p = tmp_path / "key"
    p.write_bytes(bytes.fromhex(KEY_HEX))
    return str(p)


# ------------------------------------------------------------------ tests

def test_version():
    assert has_target("integrity")
    assert target_versions()["integrity"] == (1, 10, 0)


def test_tag_vectors():
    """The spec's test vectors, as a check of the helper used below."""
    assert tag_crc32c(0, bytes(512)) == bytes.fromhex("c740e882")
    seq = bytes(i & 0xFF for i in range(512))
    assert tag_crc32c(1, seq) == bytes.fromhex("412681ee")
    assert tag_crc32c(1, seq, bytes(range(16))) == bytes.fromhex("a097f13b")


def test_format_open_crc32c(dev):
    iv = fmt_open(dev)
    d = dump(dev)
    assert d["integrity_tag_size"] == "4" and d["sector_size"] == "512"
    assert "fix_padding" in d["flags"] and "fix_hmac" in d["flags"]
    g = Geometry(dev)
    assert g.version == 5 and g.tag_size == 4
    assert g.flags & SB_FLAGS["fixed_padding"] and g.flags & SB_FLAGS["fixed_hmac"]
    assert g.salt != bytes(16)
    sz = int(run("blockdev", "--getsz", iv))
    assert sz == g.provided
    data = pattern("crc", 1 << 20)
    write_at(iv, 4096, data)
    assert read_at(iv, 4096, len(data)) == data
    assert read_at(iv, 0, 4096) == bytes(4096)      # wiped at format
    assert info_fields("iv") == ["0", str(g.provided), "-"]
    close()
    isetup("open", dev, "iv")
    assert read_at(iv, 4096, len(data)) == data
    close()


def test_table_line(dev):
    """Format by the kernel on a zeroed device; the table line lists defaults."""
    create("iv", f"0 8 integrity {dev} 0 4 J 1 internal_hash:crc32c")
    g = Geometry(dev)
    jsec = g.sections * g.section_sectors
    assert table("iv") == (
        f"0 8 integrity {devno(dev)} 0 4 J 6 journal_sectors:{jsec} "
        "interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 "
        "commit_time:10000 internal_hash:crc32c")
    # udev probes the unwiped device: the mismatch count is not ours to fix
    assert status("iv").split()[4:] == [str(g.provided), "-"]
    assert g.version == 1 and g.flags == 0
    remove("iv")


def test_table_line_options(dev):
    create("iv", f"0 8 integrity {dev} 0 4 B 6 block_size:4096 sectors_per_bit:8192 "
           "bitmap_flush_interval:500 fix_padding allow_discards internal_hash:crc32c")
    g = Geometry(dev)
    jsec = g.sections * g.section_sectors
    assert table("iv") == (
        f"0 8 integrity {devno(dev)} 0 4 B 9 block_size:4096 allow_discards "
        f"journal_sectors:{jsec} interleave_sectors:32768 buffer_sectors:32 "
        "sectors_per_bit:8192 bitmap_flush_interval:500 fix_padding internal_hash:crc32c")
    assert g.version == 4 and g.log2_spb == 3
    assert g.flags == SB_FLAGS["fixed_padding"] | SB_FLAGS["dirty_bitmap"]
    remove("iv")
    assert Geometry(dev).flags == SB_FLAGS["fixed_padding"]


@pytest.mark.parametrize("args, msg", [
    ("0 4 X 0", "Invalid mode (expecting J, B, D, R)"),
    ("0 0 J 0", "Invalid tag size"),
    ("x 4 J 0", "Invalid starting offset"),
    ("0 - J 0", "Unknown tag size"),
    ("0 4 B 0", "Bitmap mode can be only used with internal hash"),
    ("0 4 J 1 allow_discards", "Discard can be only used with internal hash"),
    ("0 4 J 1 bogus", "Invalid argument"),
    ("0 4 J 1 block_size:1000", "Invalid block_size argument"),
    ("0 4 J 1 internal_hash:nosuchhash", "Invalid internal hash"),
    ("0 4 J 1 internal_hash:hmac(sha256)", "Error setting internal hash key"),
    ("0 4 J 1 internal_hash:crc32c:abc", "Invalid internal_hash argument"),
    ("0 300 J 0", "Too big tag size"),
    ("0 4 J 2 recalculate", "Invalid number of feature args"),
    ("0 4 J 1 recalculate", "Recalculate can only be specified with internal_hash"),
    ("0 4 J 1 journal_crypt:nosuchcipher", "Invalid journal cipher"),
    ("0 4 J 1 journal_crypt:ctr(aes):0011", "Error setting encryption key"),
])
def test_ctr_errors(dev, args, msg):
    klog = KernelLog()
    fails("dmsetup", "create", "iv", "--table", f"0 8 integrity {dev} {args}")
    lines = klog.read()
    klog.close()
    assert any(f"integrity: {msg}" in line for line in lines), lines


def test_not_initialized_and_mismatch(dev):
    write_at(dev, 0, pattern("junk", 4096))
    klog = KernelLog()
    fails("dmsetup", "create", "iv", "--table", f"0 8 integrity {dev} 0 4 J 0")
    write_at(dev, 0, bytes(4096))
    create("iv", f"0 8 integrity {dev} 0 4 J 1 internal_hash:crc32c")
    remove("iv")
    fails("dmsetup", "create", "iv", "--table", f"0 8 integrity {dev} 0 8 J 0")
    fails("dmsetup", "create", "iv", "--table",
          f"0 8 integrity {dev} 0 4 J 2 block_size:4096 internal_hash:crc32c")
    fails("dmsetup", "create", "iv", "--table",
          f"0 99999999 integrity {dev} 0 4 J 1 internal_hash:crc32c")
    lines = klog.read()
    klog.close()
    for msg in ["The device is not initialized",
                "Tag size doesn't match the information in superblock",
                "Block size doesn't match the information in superblock",
                "Not enough provided sectors for requested mapping size"]:
        assert any(f"integrity: {msg}" in line for line in lines), (msg, lines)


@pytest.mark.parametrize("mode", ["J", "D", "B"])
def test_raw_tags_match_spec(dev, mode):
    """Data written through the target lands where the spec says, with
    crc32c(salt, sector, data) tags (the format is shared with stock)."""
    opts = {"J": [], "D": ["--integrity-no-journal"], "B": ["--integrity-bitmap-mode"]}[mode]
    iv = fmt_open(dev, fmt=["--no-wipe"] + opts, opn=opts)
    blocks = {7: pattern("a", 512), 100: pattern("b", 512), 2047: pattern("c", 512)}
    for s, data in blocks.items():
        write_at(iv, s * 512, data)
    close()
    g = Geometry(dev)
    for s, data in blocks.items():
        assert read_at(dev, g.data_sector(s) * 512, 512) == data
        assert g.tag(dev, s) == tag_crc32c(s, data, g.salt_used), s
    if mode == "B":
        assert not g.flags & SB_FLAGS["dirty_bitmap"]


def test_corrupt_sector_fails_alone(dev):
    # bitmap mode: the journal area holds no copy that replay could restore
    bm = ["--integrity-bitmap-mode"]
    iv = fmt_open(dev, fmt=["--no-wipe"] + bm, opn=bm)
    data = pattern("cor", 64 * 512)
    write_at(iv, 0, data)
    close()
    g = Geometry(dev)
    raw = bytearray(read_at(dev, g.data_sector(10) * 512, 512))
    raw[100] ^= 0x40
    write_at(dev, g.data_sector(10) * 512, bytes(raw))
    isetup("open", *bm, dev, "iv")
    # udev's probe reads never-written sectors, and their checksum lines
    # can use up the 5-second printk rate limit: let that window pass.
    udev_settle()
    time.sleep(5.5)
    klog = KernelLog()
    with pytest.raises(OSError) as e:
        read_at(iv, 10 * 512, 512)
    assert e.value.errno in (errno.EILSEQ, errno.EIO)
    assert read_at(iv, 9 * 512, 512) == data[9 * 512:10 * 512]
    assert read_at(iv, 11 * 512, 512) == data[11 * 512:12 * 512]
    assert int(info_fields("iv")[0]) >= 1
    lines = klog.read()
    klog.close()
    assert any("0xa" in line and "integrity" in line for line in lines), lines
    # rewriting the sector heals it
    write_at(iv, 10 * 512, data[10 * 512:11 * 512])
    assert read_at(iv, 0, len(data)) == data
    close()


def test_corrupt_tag_fails(dev):
    iv = fmt_open(dev, fmt=["--no-wipe", "--integrity-no-journal"],
                  opn=["--integrity-no-journal"])
    write_at(iv, 0, pattern("t", 8 * 512))
    close()
    g = Geometry(dev)
    off = g.tag_offset(3)
    blk = bytearray(read_at(dev, off // 512 * 512, 512))
    blk[off % 512] ^= 1
    write_at(dev, off // 512 * 512, bytes(blk))
    isetup("open", "--integrity-no-journal", dev, "iv")
    assert read_at(iv, 2 * 512, 512) == pattern("t", 8 * 512)[1024:1536]
    with pytest.raises(OSError):
        read_at(iv, 3 * 512, 512)
    close()


def audit_enable(on):
    """Turn kernel audit on or off (AUDIT_SET over netlink, as auditctl -e):
    without auditd the records go to the kernel log."""
    import socket
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)   # NETLINK_AUDIT
    try:
        sock.bind((0, 0))
        body = struct.pack("=10I", 1, int(on), *([0] * 8))     # mask ENABLED
        sock.send(struct.pack("=IHHII", 16 + len(body), 1001, 5, 1, 0) + body)
        ack = sock.recv(4096)
        assert struct.unpack("=H", ack[4:6])[0] == 2 and \
            struct.unpack("=i", ack[16:20])[0] == 0, ack[:20]
        sock.send(struct.pack("=IHHII", 16, 1000, 1, 2, 0))     # AUDIT_GET
        got = sock.recv(4096)
        assert struct.unpack("=I", got[20:24])[0] == int(on), got[:40]
    finally:
        sock.close()


def test_audit_checksum_failure(dev):
    """A checksum failure is an audit event (op=integrity-checksum with the
    logical sector)."""
    iv = fmt_open(dev, fmt=["--no-wipe", "--integrity-no-journal"],
                  opn=["--integrity-no-journal"])
    write_at(iv, 0, pattern("au", 8 * 512))
    close()
    g = Geometry(dev)
    off = g.tag_offset(3)
    blk = bytearray(read_at(dev, off // 512 * 512, 512))
    blk[off % 512] ^= 1
    write_at(dev, off // 512 * 512, bytes(blk))
    isetup("open", "--integrity-no-journal", dev, "iv")
    # kauditd prints under printk_ratelimit() (10 records per 5 s): switch
    # audit on only around the read so that the syscall records of the
    # setup do not use the budget up.
    klog = KernelLog()
    audit_enable(True)
    try:
        assert io_errno(iv, 3 * 512, 512) in (errno.EILSEQ, errno.EIO)
        lines = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and \
                not any("op=integrity-checksum" in x for x in lines):
            time.sleep(0.2)
            lines.extend(klog.read())
    finally:
        audit_enable(False)
        klog.close()
    close()
    rec = [x for x in lines if "module=integrity op=integrity-checksum" in x]
    assert rec, [x for x in lines if "audit" in x.lower()]
    assert "type=1339 " in rec[0] and " sector=3 " in rec[0] and \
        rec[0].endswith(" res=0"), rec


def test_sha256(dev):
    iv = fmt_open(dev, fmt=["--integrity", "sha256"], opn=["--integrity", "sha256"])
    assert dump(dev)["integrity_tag_size"] == "32"
    assert "internal_hash:sha256" in table("iv")
    data = pattern("sha", 256 * 1024)
    write_at(iv, 8192, data)
    close()
    isetup("open", "--integrity", "sha256", dev, "iv")
    assert read_at(iv, 8192, len(data)) == data
    close()
    g = Geometry(dev)
    import hashlib
    s = 16
    want = hashlib.sha256(g.salt_used + struct.pack("<Q", s) + data[:512]).digest()
    assert g.tag(dev, s) == want


def test_hmac_sha256(dev, keyfile):
    args = ["--integrity", "hmac-sha256", "--integrity-key-file", keyfile,
            "--integrity-key-size", "32"]
    iv = fmt_open(dev, fmt=args, opn=args)
    assert f"internal_hash:hmac(sha256):{KEY_HEX}" in table("iv", "--showkeys")
    data = pattern("hmac", 64 * 1024)
    write_at(iv, 0, data)
    close()
    g = Geometry(dev)
    import hmac
    want = hmac.new(bytes.fromhex(KEY_HEX), g.salt_used + struct.pack("<Q", 5) +
                    data[5 * 512:6 * 512], "sha256").digest()
    assert g.tag(dev, 5) == want
    isetup("open", *args, dev, "iv")
    assert read_at(iv, 0, len(data)) == data
    close()


def test_block_size_4096(dev):
    iv = fmt_open(dev, fmt=["--sector-size", "4096"])
    assert run("blockdev", "--getss", iv).strip() == "4096"
    data = pattern("4k", 128 * 1024)
    write_at(iv, 40960, data)
    close()
    g = Geometry(dev)
    assert g.log2_spb == 3
    assert read_at(dev, g.data_sector(80) * 512, 4096) == data[:4096]
    assert g.tag(dev, 80) == tag_crc32c(80, data[:4096], g.salt_used)
    isetup("open", dev, "iv")
    assert read_at(iv, 40960, len(data)) == data
    close()


def test_bitmap_mode(dev):
    iv = fmt_open(dev, fmt=["--integrity-bitmap-mode"], opn=["--integrity-bitmap-mode"])
    assert Geometry(dev).flags & SB_FLAGS["dirty_bitmap"]
    assert " B " in table("iv")
    data = pattern("bm", 512 * 1024)
    write_at(iv, 1 << 20, data)
    assert read_at(iv, 1 << 20, len(data)) == data
    close()
    assert not Geometry(dev).flags & SB_FLAGS["dirty_bitmap"]
    isetup("open", "--integrity-bitmap-mode", dev, "iv")
    assert read_at(iv, 1 << 20, len(data)) == data
    close()


def test_recalculate(dev):
    """--no-wipe leaves garbage tags; recalculate makes every block readable."""
    iv = fmt_open(dev, fmt=["--no-wipe"], opn=["--integrity-recalculate"])
    provided = info_fields("iv")[1]
    wait_for(lambda: info_fields("iv")[2] in ("-", provided), timeout=60,
             what="recalculation")
    size = int(provided) * 512
    assert len(read_at(iv, 0, size)) == size
    assert info_fields("iv")[0] == "0"
    close()
    g = Geometry(dev)
    s = 1234
    data = read_at(dev, g.data_sector(s) * 512, 512)
    assert g.tag(dev, s) == tag_crc32c(s, data, g.salt_used)


def test_journal_replay(dev):
    """Power cut after a journal commit, before the write-back: the journal
    image at that moment plus stale data and tags must replay to the data."""
    iv = fmt_open(dev, fmt=["--no-wipe"])
    g = Geometry(dev)
    data = pattern("jr", 16 * 512)
    write_at(iv, 64 * 512, data)      # fsync: the commit is on disk
    journal = read_at(dev, 8 * 512, (g.initial - 8) * 512)
    assert sorted(set(g.journal_sectors_used(journal))) == list(range(64, 80))
    close()
    write_at(dev, 8 * 512, journal)
    for s in range(64, 80):
        write_at(dev, g.data_sector(s) * 512, pattern(f"g{s}", 512))
    off = g.tag_offset(64)
    blk = bytearray(read_at(dev, off // 512 * 512, 512))
    blk[off % 512:off % 512 + 16 * 4] = bytes(64)
    write_at(dev, off // 512 * 512, bytes(blk))
    isetup("open", dev, "iv")
    assert read_at(iv, 64 * 512, len(data)) == data
    close()
    for s in range(64, 80):
        assert read_at(dev, g.data_sector(s) * 512, 512) == data[(s - 64) * 512:][:512]
        assert g.tag(dev, s) == tag_crc32c(s, data[(s - 64) * 512:][:512], g.salt_used)


def test_journal_pending_then_flush(dev):
    """Reads see data still in the journal; a flush makes it durable."""
    create("iv", f"0 8 integrity {dev} 0 4 J 2 commit_time:60000 internal_hash:crc32c")
    provided = int(status("iv").split()[4])
    remove("iv")
    iv = create("iv", f"0 {provided} integrity {dev} 0 4 J 2 commit_time:60000 "
                "internal_hash:crc32c")
    fd = os.open(iv, os.O_RDWR | os.O_DIRECT)
    try:
        import mmap
        buf = mmap.mmap(-1, 4096)
        buf.write(pattern("pend", 4096))
        os.pwrite(fd, buf, 8192)
        back = mmap.mmap(-1, 4096)
        os.preadv(fd, [back], 8192)
        assert bytes(back) == pattern("pend", 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
    remove("iv")
    g = Geometry(dev)
    assert read_at(dev, g.data_sector(16) * 512, 4096) == pattern("pend", 4096)


def test_recovery_mode_read_only(dev):
    fmt_open(dev, fmt=["--no-wipe"])
    close()
    g = Geometry(dev)
    iv = create("iv", f"0 {g.provided} integrity {dev} 0 4 R 3 fix_padding fix_hmac "
                "internal_hash:crc32c")
    assert len(read_at(iv, 0, 65536)) == 65536   # garbage tags not checked
    with pytest.raises(OSError):
        write_at(iv, 0, bytes(512))
    remove("iv")


def test_meta_device(loopdev):
    data_dev, meta_dev = loopdev(16), loopdev(4)
    isetup("format", "--data-device", data_dev, meta_dev)
    isetup("open", "--data-device", data_dev, meta_dev, "iv")
    t = table("iv")
    assert f"meta_device:{devno(meta_dev)}" in t and "interleave_sectors:1 " in t
    data = pattern("meta", 64 * 1024)
    write_at("/dev/mapper/iv", 0, data)
    close()
    g = Geometry(meta_dev)
    assert g.log2_il == 0 and g.version == 5
    assert read_at(data_dev, 0, len(data)) == data   # 1:1 on the data device
    off = (g.initial) * 512 + 3 * 4
    assert read_at(meta_dev, off // 512 * 512, 512)[off % 512:][:4] == \
        tag_crc32c(3, data[1536:2048], g.salt_used)


@pytest.mark.parametrize("mode", ["J", "D", "B"])
def test_discard(dev, mode):
    """allow_discards: the discarded blocks get filler tags (0xf6) and the
    discard goes down to the data device, so they read back as the device
    returns them (zeros on loop), unchecked and without errors."""
    opts = {"J": [], "D": ["--integrity-no-journal"], "B": ["--integrity-bitmap-mode"]}[mode]
    iv = fmt_open(dev, fmt=opts, opn=["--allow-discards"] + opts)
    data = pattern("d", 65536)
    write_at(iv, 0, data)
    run("blkdiscard", "-o", "4096", "-l", "8192", iv)
    back = read_at(iv, 0, 65536)
    assert back[:4096] == data[:4096]
    assert back[4096:12288] == bytes(8192)
    assert back[12288:] == data[12288:]
    assert info_fields("iv")[0] == "0"
    write_at(iv, 8192, data[8192:12288])       # a discarded block is writable
    assert read_at(iv, 0, 65536)[8192:12288] == data[8192:12288]
    close()
    g = Geometry(dev)
    for s in (8, 15):
        assert g.tag(dev, s) == b"\xf6" * 4
        assert read_at(dev, g.data_sector(s) * 512, 512) == bytes(512)
    assert g.tag(dev, 16) == tag_crc32c(16, data[8192:8704], g.salt_used)
    assert g.tag(dev, 7) == tag_crc32c(7, data[3584:4096], g.salt_used)


# ------------------------------------------------------- journal_crypt

JC_CAPI = {"ctr-aes": "ctr(aes)", "cbc-aes": "cbc(aes)"}


def jc_args(keyfile, alg):
    return ["--journal-crypt", alg, "--journal-crypt-key-file", keyfile,
            "--journal-crypt-key-size", "32"]


def journal_decrypt(g, raw, alg):
    """Plaintext journal and commit ids of an encrypted journal image
    (formats/integrity.md 4.4)."""
    ciphers = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    aes = ciphers.algorithms.AES(bytes.fromhex(KEY_HEX))
    ids = [0x1111111111111111 * (k + 1) for k in range(4)]
    if alg == "ctr-aes":
        ks = ciphers.Cipher(aes, ciphers.modes.CTR(bytes(16))).encryptor().update(
            bytes(len(raw) + 32))
        plain = bytes(a ^ b for a, b in zip(raw, ks))
        packed = struct.pack("<4Q", *ids)
        ids = list(struct.unpack("<4Q", bytes(a ^ b for a, b in zip(packed, ks[len(raw):]))))
        return plain, ids
    plain = b""
    size = g.section_sectors * 512
    for i in range(g.sections):
        iv = ciphers.Cipher(aes, ciphers.modes.ECB()).encryptor().update(
            struct.pack("<I", i) + bytes(12))
        plain += ciphers.Cipher(aes, ciphers.modes.CBC(iv)).decryptor().update(
            raw[i * size:(i + 1) * size])
    return plain, ids


def commit_seqs(g, plain, ids):
    """The commit sequence of every journal sector (None: no valid id)."""
    out = []
    for i in range(g.sections):
        for j in range(g.section_sectors):
            off = (i * g.section_sectors + j) * 512 + 504
            cid = struct.unpack("<Q", plain[off:off + 8])[0]
            k = [k for k in range(4) if ids[k] ^ (i << 32) ^ j == cid]
            out.append(k[0] if k else None)
    return out


@pytest.mark.parametrize("alg", ["ctr-aes", "cbc-aes"])
def test_journal_crypt_format(dev, keyfile, alg):
    """An encrypted journal decrypts as the spec says: valid commit ids in
    every sector, and the entries of a committed write."""
    jc = jc_args(keyfile, alg)
    iv = fmt_open(dev, fmt=["--no-wipe"] + jc, opn=jc)
    assert f" journal_crypt:{JC_CAPI[alg]}:{KEY_HEX}" in table("iv", "--showkeys")
    g = Geometry(dev)
    data = pattern("jc", 16 * 512)
    write_at(iv, 64 * 512, data)      # fsync: the commit is on disk
    raw = read_at(dev, 8 * 512, (g.initial - 8) * 512)
    assert read_at(iv, 64 * 512, len(data)) == data
    close()
    assert sorted(set(g.journal_sectors_used(raw))) != list(range(64, 80))
    plain, ids = journal_decrypt(g, raw, alg)
    assert None not in commit_seqs(g, plain, ids)
    assert sorted(set(g.journal_sectors_used(plain))) == list(range(64, 80))


@pytest.mark.parametrize("alg, mac", [("ctr-aes", False), ("cbc-aes", False),
                                      ("ctr-aes", True), ("cbc-aes", True)])
def test_journal_crypt_replay(dev, keyfile, alg, mac):
    """Power cut after the commit of an encrypted journal, before the
    write-back: the next open decrypts and replays it (with a journal MAC
    too: it covers the plaintext)."""
    jc = jc_args(keyfile, alg)
    if mac:
        jc += ["--journal-integrity", "hmac-sha256", "--journal-integrity-key-file",
               keyfile, "--journal-integrity-key-size", "32"]
    iv = fmt_open(dev, fmt=["--no-wipe"] + jc, opn=jc)
    g = Geometry(dev)
    data = pattern("jcr", 16 * 512)
    write_at(iv, 64 * 512, data)
    journal = read_at(dev, 8 * 512, (g.initial - 8) * 512)
    close()
    write_at(dev, 8 * 512, journal)
    for s in range(64, 80):
        write_at(dev, g.data_sector(s) * 512, pattern(f"g{s}", 512))
    isetup("open", *jc, dev, "iv")
    assert read_at(iv, 64 * 512, len(data)) == data
    close()
    for s in range(64, 80):
        assert read_at(dev, g.data_sector(s) * 512, 512) == data[(s - 64) * 512:][:512]
        assert g.tag(dev, s) == tag_crc32c(s, data[(s - 64) * 512:][:512], g.salt_used)


def test_journal_crypt_wrong_key(dev, keyfile, tmp_path):
    """A journal that does not decrypt to valid commit ids fails the device
    (EIO, as stock) and is left alone: the right key opens it again."""
    jc = jc_args(keyfile, "ctr-aes")
    iv = fmt_open(dev, fmt=jc, opn=jc)
    data = pattern("wk", 8192)
    write_at(iv, 0, data)
    close()
    other = tmp_path / "other"
    other.write_bytes(bytes(32))
    klog = KernelLog()
    isetup("open", *jc_args(str(other), "ctr-aes"), dev, "iv")
    assert io_errno(iv, 0, 4096) == errno.EIO
    lines = klog.read()
    klog.close()
    close()
    assert any("integrity: Error on journal commit id" in x for x in lines), lines
    isetup("open", *jc, dev, "iv")
    assert read_at(iv, 0, len(data)) == data
    close()


def test_journal_crypt_fs(dev, keyfile):
    """A filesystem on a volume with an encrypted journal (many commits,
    journal wrap-around) checks clean after a reopen."""
    jc = jc_args(keyfile, "ctr-aes")
    iv = fmt_open(dev, fmt=["-j", str(1 << 20)] + jc, opn=jc)
    run("mkfs.ext4", "-q", "-F", iv)
    mnt = "/tmp/dmtest-integ-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", iv, mnt)
    try:
        with open(f"{mnt}/f", "wb") as f:
            f.write(pattern("jfs", 3 << 20))
    finally:
        run("umount", mnt)
    close()
    isetup("open", *jc, dev, "iv")
    run("fsck.ext4", "-fn", iv)
    run("mount", "-o", "ro", iv, mnt)
    try:
        with open(f"{mnt}/f", "rb") as f:
            assert f.read() == pattern("jfs", 3 << 20)
    finally:
        run("umount", mnt)
    close()


def test_ext4_fsck(dev):
    iv = fmt_open(dev)
    run("mkfs.ext4", "-q", "-F", iv)
    mnt = "/tmp/dmtest-integ-mnt"
    os.makedirs(mnt, exist_ok=True)
    run("mount", iv, mnt)
    try:
        with open(f"{mnt}/f", "wb") as f:
            f.write(pattern("fs", 1 << 20))
    finally:
        run("umount", mnt)
    run("fsck.ext4", "-fn", iv)
    close()
    time.sleep(0)
