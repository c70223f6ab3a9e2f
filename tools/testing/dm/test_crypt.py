# SPDX-License-Identifier: GPL-2.0-only
"""crypt: known-answer tests for every IV mode, table lines, options, messages.

The expected ciphertext comes from an independent model of the sector
transformation (Python 'cryptography' for the block ciphers, the IV
generators written from the format description). The same tests pass on
stock and on ours, which proves the two write identical bytes.
"""
import ctypes
import os
import hashlib
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dmharness import KernelLog
from dmtest import (create, dmsetup, devno, fails, info, kernel_has_crypto, pattern,
                    read_at, run, status, table, target_versions, udev_settle,
                    write_at)

SIZE = 8192                     # sectors of the test mapping (4 MiB)
KEY32 = bytes(range(32))
KEY64 = bytes(range(64))
P512 = bytes(i & 0xff for i in range(512))
P4K = bytes((7 * i) & 0xff for i in range(4096))


@pytest.fixture
def dev(brd):
    return brd(1, 8)[0]


def remove(name):
    """udev may still be probing a fresh mapping: settle, then retry."""
    udev_settle()
    dmsetup("remove", "--retry", name)


def mk(dev, cipher, key, iv_offset=0, opts="", size=SIZE, name="cr", start=0):
    khex = key if isinstance(key, str) else key.hex()
    line = f"0 {size} crypt {cipher} {khex} {iv_offset} {dev} {start}"
    if opts:
        line += f" {len(opts.split())} {opts}"
    return create(name, line)


# ------------------------------------------------------------ the model

def ecb_enc(key, data):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()


def cbc_enc(key, iv, data):
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def cbc_dec(key, iv, data):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def xts_enc(key, iv, data):
    e = Cipher(algorithms.AES(key), modes.XTS(iv)).encryptor()
    return e.update(data) + e.finalize()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def iv_plain(n):
    return struct.pack("<I", n & 0xffffffff) + bytes(12)


def iv_plain64(n):
    return struct.pack("<Q", n) + bytes(8)


def iv_plain64be(n):
    return bytes(8) + struct.pack(">Q", n)


def iv_benbi(n):
    # AES: 16-byte blocks, so 32 blocks per sector; count starts at 1
    return bytes(8) + struct.pack(">Q", (n << 5) + 1)


def iv_essiv(key, n):
    salt = hashlib.sha256(key).digest()
    return ecb_enc(salt, iv_plain64(n))


def iv_eboiv(key, n, sector_size=512):
    return ecb_enc(key, struct.pack("<Q", n * sector_size) + bytes(8))


def crc32_raw(b):
    """The kernel crc32 shash: register starts at 0, no final inversion."""
    return zlib.crc32(b, 0xffffffff) ^ 0xffffffff


def tcw_encrypt(key, n, p):
    ckey, seed, whit = key[:-32], key[-32:-16], key[-16:]
    iv = xor(seed, struct.pack("<Q", n) * 2)
    c = cbc_enc(ckey, iv, p)
    w = bytearray(xor(whit, struct.pack("<Q", n) * 2))
    for i in range(4):
        w[4 * i:4 * i + 4] = struct.pack("<I", crc32_raw(bytes(w[4 * i:4 * i + 4])))
    w[0:4] = xor(w[0:4], w[12:16])
    w[4:8] = xor(w[4:8], w[8:12])
    return xor(c, bytes(w[:8]) * 64)


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & 0xffffffff if r else x


def elephant_encrypt(key, n, p, sector_size=512):
    k1, k2 = key[:len(key) // 2], key[len(key) // 2:]
    b = struct.pack("<Q", n * sector_size) + bytes(8)
    ks = ecb_enc(k2, b) + ecb_enc(k2, b[:15] + b"\x80")
    x = xor(p, ks * (len(p) // 32))
    d = list(struct.unpack(f"<{len(x) // 4}I", x))
    w = len(d)
    for _ in range(5):              # A_enc
        for i in range(w - 1, -1, -1):
            d[i] = (d[i] - (d[(i - 2) % w] ^ _rotl(d[(i - 5) % w], (9, 0, 13, 0)[i % 4]))) \
                & 0xffffffff
    for _ in range(3):              # B_enc
        for i in range(w - 1, -1, -1):
            d[i] = (d[i] - (d[(i + 2) % w] ^ _rotl(d[(i + 5) % w], (0, 10, 0, 25)[i % 4]))) \
                & 0xffffffff
    x = struct.pack(f"<{w}I", *d)
    return cbc_enc(k1, iv_eboiv(k1, n, sector_size), x)


# MD5 compression without finalisation, for lmk's IV.
_MD5_S = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_MD5_K = [int(abs(__import__("math").sin(i + 1)) * 2 ** 32) & 0xffffffff for i in range(64)]


def md5_state(data):
    assert len(data) % 64 == 0
    h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]
    for off in range(0, len(data), 64):
        m = struct.unpack("<16I", data[off:off + 64])
        a, b, c, d = h
        for i in range(64):
            if i < 16:
                f, g = (b & c) | (~b & d), i
            elif i < 32:
                f, g = (d & b) | (~d & c), (5 * i + 1) % 16
            elif i < 48:
                f, g = b ^ c ^ d, (3 * i + 5) % 16
            else:
                f, g = c ^ (b | (~d & 0xffffffff)), (7 * i) % 16
            f = (f + a + _MD5_K[i] + m[g]) & 0xffffffff
            a, d, c = d, c, b
            b = (b + _rotl(f, _MD5_S[i])) & 0xffffffff
        h = [(x + y) & 0xffffffff for x, y in zip(h, (a, b, c, d))]
    return struct.pack("<4I", *h)


def lmk_encrypt(keys, seed, n, p):
    tail = struct.pack("<4I", n & 0xffffffff, ((n >> 32) & 0x00ffffff) | 0x80000000, 4024, 0)
    pre = (seed[:16] + bytes(48)) if seed else b""
    iv = md5_state(pre + p[16:] + tail)
    return cbc_enc(keys[n % len(keys)], iv, p)


# ------------------------------------------------------------ helpers

def kat(dev, cipher, key, expect, iv_offset=0, opts="", plain=P512, at=0, unit=512):
    """Write plain at byte `at` of a fresh mapping; raw bytes must be `expect`."""
    mk(dev, cipher, key, iv_offset, opts)
    write_at("/dev/mapper/cr", at, plain)
    raw = read_at(dev, at, len(plain))
    back = read_at("/dev/mapper/cr", at, len(plain))
    remove("cr")
    assert raw == expect
    assert back == plain


def ctr_error(dev, line):
    klog = KernelLog()
    rc, out = fails("dmsetup", "create", "cr", "--table", line)
    lines = klog.read()
    klog.close()
    return [ln for ln in lines if "crypt" in ln or "table" in ln]


# ------------------------------------------------------------ tests

def test_target_version(dev):
    mk(dev, "aes-xts-plain64", KEY64)
    assert target_versions()["crypt"] == (1, 24, 0)
    remove("cr")


@pytest.mark.parametrize("n,first32,sha", [
    (0, "dc8c665b97cbc0246d4f1639a9678a3e2a2dcf4a3fbf1342ebbb771234f1a1c3",
     "a53d4b3da1fb62790761c71f13185869d39106ced357a3ba2b83e7bdeb9dce46"),
    (1, "0976f139b289f2dd570e3b8caa596f98f86a162f8768ffbd7ad06c74d403f32a",
     "401a78406605a19b0d8679e876f34c69f7e354341bbd0fc870232d4c49e98e8a"),
    (0x123456789, "dbe0e0e854a3505aa1430b2304c01c5cb71dbac84f8ced797a8712edc7b3e30b",
     "928d51552c15f3ad63778cf86fd35927a591778f6ea27efeda4f2e6e6dce6a00"),
])
def test_kat_xts_plain64_spec_vectors(dev, n, first32, sha):
    # sector n through iv_offset, so the unit sits at the device start
    mk(dev, "aes-xts-plain64", KEY64, iv_offset=n)
    write_at("/dev/mapper/cr", 0, P512)
    raw = read_at(dev, 0, 512)
    remove("cr")
    assert raw[:32].hex() == first32
    assert hashlib.sha256(raw).hexdigest() == sha
    assert raw == xts_enc(KEY64, iv_plain64(n), P512)


@pytest.mark.parametrize("n,first32,sha", [
    (0, "06c5a8be287fd6971791889950eccfb26334d4e1d30e345c664f4c320efc9c84",
     "d57090a1447210fb14e578ff881653049440df41c91d8e3eb5baab3a0ceef36b"),
    (1, "604e9628aef2fcc39d3b4e1c6a27defcf087e6e80edae20f6996a32b5a573816",
     "af44f42835c15b7f4be1d3ebd369e5ed3c0dac230a52ebca66e7f82006a4edba"),
    (0x123456789, "787248bb2400bb779efc7e911681e4a55f11b7cc69e71917ff2aaef4b4f9fc54",
     "a61625776a1d434bb2c9e3773e442cd6014be154059f56e26d71df47101dbe7c"),
])
def test_kat_cbc_essiv_spec_vectors(dev, n, first32, sha):
    mk(dev, "aes-cbc-essiv:sha256", KEY32, iv_offset=n)
    write_at("/dev/mapper/cr", 0, P512)
    raw = read_at(dev, 0, 512)
    remove("cr")
    assert raw[:32].hex() == first32
    assert hashlib.sha256(raw).hexdigest() == sha
    assert raw == cbc_enc(KEY32, iv_essiv(KEY32, n), P512)


def test_kat_sector_size_4096(dev):
    # unit at target sector 8: IV 8 without iv_large_sectors
    exp = xts_enc(KEY64, iv_plain64(8), P4K)
    assert exp[:32].hex() == "c0392c4b216842464b9dfaebf89fd16c7a2c210b82064e7c0b39d768ded64743"
    kat(dev, "aes-xts-plain64", KEY64, exp, opts="sector_size:4096", plain=P4K, at=4096)


def test_kat_iv_large_sectors(dev):
    exp = xts_enc(KEY64, iv_plain64(1), P4K)
    assert hashlib.sha256(exp).hexdigest() == \
        "be23a9f0fe89a27154a9339908e1a46e5eb6aaded9512fc092d50e916e1c8e69"
    kat(dev, "aes-xts-plain64", KEY64, exp, opts="sector_size:4096 iv_large_sectors",
        plain=P4K, at=4096)


N = 0x1234567  # a sector number with more than 16 bits, through iv_offset


@pytest.mark.parametrize("cipher,ivf", [
    ("aes-cbc-plain", iv_plain),
    ("aes", iv_plain),                  # historic: cbc with plain IVs
    ("aes-plain", iv_plain),
    ("aes-cbc-plain64", iv_plain64),
    ("aes-cbc-plain64be", iv_plain64be),
    ("aes-cbc-null", lambda n: bytes(16)),
    ("aes-cbc-benbi", iv_benbi),
    ("aes-cbc-essiv:sha256", lambda n: iv_essiv(KEY32, n)),
    ("aes-cbc-eboiv", lambda n: iv_eboiv(KEY32, n)),
    ("capi:cbc(aes)-plain64", iv_plain64),
    ("capi:cbc(aes)-essiv:sha256", lambda n: iv_essiv(KEY32, n)),
])
def test_kat_cbc_iv_modes(dev, cipher, ivf):
    # two units: target sectors 0 and 1, IV sectors N and N+1
    exp = cbc_enc(KEY32, ivf(N), P512) + cbc_enc(KEY32, ivf(N + 1), P512[::-1])
    kat(dev, cipher, KEY32, exp, iv_offset=N, plain=P512 + P512[::-1])


def test_kat_plain_wraps_32bit(dev):
    n = 0x1_0000_0005
    kat(dev, "aes-cbc-plain", KEY32, cbc_enc(KEY32, iv_plain(n), P512), iv_offset=n)


def test_kat_ecb_no_iv(dev):
    kat(dev, "aes-ecb", KEY32, ecb_enc(KEY32, P512))


def test_kat_xts_plain64_capi(dev):
    kat(dev, "capi:xts(aes)-plain64", KEY64, xts_enc(KEY64, iv_plain64(7), P512), iv_offset=7)


def test_kat_keycount(dev):
    # 4 keys of 32 bytes: unit at cc_sector s uses key s mod 4
    keys = [bytes(range(32 * i, 32 * i + 32)) for i in range(4)]
    plain = pattern("keycount", 512 * 6)
    exp = b"".join(cbc_enc(keys[(5 + i) % 4], iv_plain64(5 + i), plain[512 * i:512 * i + 512])
                   for i in range(6))
    kat(dev, "aes:4-cbc-plain64", b"".join(keys), exp, iv_offset=5, plain=plain)


def test_kat_keycount_essiv_salt_per_key(dev):
    keys = [bytes(range(32 * i, 32 * i + 32)) for i in range(2)]
    plain = pattern("essiv2", 1024)
    exp = b"".join(cbc_enc(keys[i], iv_essiv(keys[i], i), plain[512 * i:512 * i + 512])
                   for i in range(2))
    kat(dev, "aes:2-cbc-essiv:sha256", b"".join(keys), exp, plain=plain)


def test_kat_eboiv_4096(dev):
    plain = pattern("eboiv4k", 8192)
    exp = b"".join(cbc_enc(KEY32, iv_eboiv(KEY32, i, 4096), plain[4096 * i:4096 * i + 4096])
                   for i in range(2))
    kat(dev, "aes-cbc-eboiv", KEY32, exp, opts="sector_size:4096 iv_large_sectors",
        plain=plain)


@pytest.mark.parametrize("key", [KEY32, KEY64], ids=["aes128", "aes256"])
def test_kat_elephant(dev, key):
    plain = pattern("elephant", 1024)
    exp = b"".join(elephant_encrypt(key, N + i, plain[512 * i:512 * i + 512]) for i in range(2))
    kat(dev, "aes-cbc-elephant", key, exp, iv_offset=N, plain=plain)


def test_kat_elephant_4096(dev):
    plain = pattern("elephant4k", 4096)
    exp = elephant_encrypt(KEY64, 3, plain, 4096)
    kat(dev, "aes-cbc-elephant", KEY64, exp, iv_offset=24,
        opts="sector_size:4096 iv_large_sectors", plain=plain)


def test_kat_tcw(dev):
    key = bytes(range(16)) + bytes(range(100, 132))   # aes-128 key, seed, whitening
    plain = pattern("tcw", 1024)
    exp = b"".join(tcw_encrypt(key, N + i, plain[512 * i:512 * i + 512]) for i in range(2))
    kat(dev, "aes-cbc-tcw", key, exp, iv_offset=N, plain=plain)


@pytest.mark.parametrize("v3", [False, True], ids=["v2", "v3"])
def test_kat_lmk(dev, v3):
    if not kernel_has_crypto("md5"):
        pytest.skip("kernel without md5 (lmk's IV hash)")
    keys = [hashlib.sha256(bytes([i])).digest()[:16] for i in range(64)]
    seed = hashlib.sha256(b"seed").digest()[:16] if v3 else None
    key = b"".join(keys) + (seed or b"")
    plain = pattern("lmk", 1024)
    exp = b"".join(lmk_encrypt(keys, seed, N + i, plain[512 * i:512 * i + 512])
                   for i in range(2))
    kat(dev, "aes:64-cbc-lmk", key, exp, iv_offset=N, plain=plain)


def test_kat_start_offset(dev):
    # the unit at target sector 3 is stored at device sector start+3; IV is 3
    mk(dev, "aes-xts-plain64", KEY64, start=100, size=1024)
    write_at("/dev/mapper/cr", 3 * 512, P512)
    raw = read_at(dev, (100 + 3) * 512, 512)
    remove("cr")
    assert raw == xts_enc(KEY64, iv_plain64(3), P512)


def test_null_cipher_empty_key(dev):
    mk(dev, "cipher_null-ecb", "-")
    assert table("cr", "--showkeys") == f"0 {SIZE} crypt cipher_null-ecb - 0 {devno(dev)} 0"
    write_at("/dev/mapper/cr", 0, P512)
    assert read_at(dev, 0, 512) == P512
    remove("cr")


def test_roundtrip_large_io(dev):
    data = pattern("big", 3 << 20)
    mk(dev, "aes-xts-plain64", KEY64)
    write_at("/dev/mapper/cr", 4096, data)
    back = read_at("/dev/mapper/cr", 4096, len(data))
    raw = read_at(dev, 4096, 4096)
    remove("cr")
    assert back == data
    assert raw == xts_enc(KEY64, iv_plain64(8), data[:512]) + \
        b"".join(xts_enc(KEY64, iv_plain64(8 + i), data[512 * i:512 * i + 512])
                 for i in range(1, 8))


def test_buffered_io_and_fsync(dev):
    data = pattern("buffered", 1 << 20)
    mk(dev, "aes-cbc-essiv:sha256", KEY32)
    write_at("/dev/mapper/cr", 0, data, direct=False)
    run("blockdev", "--flushbufs", "/dev/mapper/cr")
    back = read_at("/dev/mapper/cr", 0, len(data))
    remove("cr")
    assert back == data
    assert read_at(dev, 0, 512) == cbc_enc(KEY32, iv_essiv(KEY32, 0), data[:512])


# ------------------------------------------------------------ table lines

@pytest.mark.parametrize("opts,shown", [
    ("", ""),
    ("allow_discards", " 1 allow_discards"),
    ("SAME_CPU_CRYPT", " 1 same_cpu_crypt"),
    ("iv_large_sectors sector_size:4096 no_write_workqueue no_read_workqueue "
     "submit_from_crypt_cpus same_cpu_crypt allow_discards",
     " 7 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue "
     "no_write_workqueue sector_size:4096 iv_large_sectors"),
    ("sector_size:512", ""),
    ("sector_size:1024", " 1 sector_size:1024"),
])
def test_table_line(dev, opts, shown):
    mk(dev, "aes-xts-plain64", KEY64, 16, opts)
    assert table("cr", "--showkeys") == f"0 {SIZE} crypt aes-xts-plain64 {KEY64.hex()} 16 {devno(dev)} 0{shown}"
    assert status("cr") == f"0 {SIZE} crypt "
    remove("cr")


def test_table_cipher_string_verbatim(dev):
    mk(dev, "capi:cbc(aes)-essiv:sha256", KEY32)
    assert table("cr", "--showkeys").split()[3] == "capi:cbc(aes)-essiv:sha256"
    remove("cr")


def test_io_hints_sector_size(dev):
    mk(dev, "aes-xts-plain64", KEY64, opts="sector_size:4096")
    out = run("blockdev", "--getss", "--getpbsz", "--getiomin", "/dev/mapper/cr").split()
    remove("cr")
    assert out == ["4096", "4096", "4096"]


def test_discard_passthrough(loopdev):
    dev = loopdev(8)
    mk(dev, "aes-xts-plain64", KEY64, opts="allow_discards")
    write_at("/dev/mapper/cr", 0, pattern("d", 1 << 20))
    run("blkdiscard", "-o", 0, "-l", 1 << 20, "/dev/mapper/cr")
    raw = read_at(dev, 0, 1 << 20)
    remove("cr")
    assert raw == bytes(1 << 20)


def test_no_discard_by_default(loopdev):
    dev = loopdev(8)
    mk(dev, "aes-xts-plain64", KEY64)
    p = __import__("subprocess").run(["blkdiscard", "/dev/mapper/cr"], capture_output=True)
    remove("cr")
    assert p.returncode != 0


@pytest.mark.parametrize("opts", [
    "no_read_workqueue no_write_workqueue",
    "same_cpu_crypt submit_from_crypt_cpus",
])
def test_workqueue_options_data(dev, opts):
    data = pattern(opts, 2 << 20)
    mk(dev, "aes-xts-plain64", KEY64, opts=opts)
    write_at("/dev/mapper/cr", 0, data)
    back = read_at("/dev/mapper/cr", 0, len(data))
    raw = read_at(dev, 512, 512)
    remove("cr")
    assert back == data
    assert raw == xts_enc(KEY64, iv_plain64(1), data[512:1024])


def _kthreads(prefix):
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(prefix):
            out.append(comm)
    return out


@pytest.mark.parametrize("opts", ["", "submit_from_crypt_cpus", "no_write_workqueue"])
def test_write_thread_concurrent_writes(dev, opts):
    """Each device has its dmcrypt_write thread (whatever the options, as
    stock); concurrent writes, submitted sorted or not, land encrypted where
    they belong."""
    before = len(_kthreads("dmcrypt_write"))
    cr = mk(dev, "aes-xts-plain64", KEY64, opts=opts)
    assert len(_kthreads("dmcrypt_write")) == before + 1
    data = pattern("wt" + opts, SIZE * 512)
    chunk = 64 * 1024
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: write_at(cr, i * chunk, data[i * chunk:(i + 1) * chunk]),
                    reversed(range(len(data) // chunk))))
    back = read_at(cr, 0, len(data))
    remove("cr")
    assert back == data
    for s in (0, 1001, SIZE - 1):
        assert read_at(dev, s * 512, 512) == \
            xts_enc(KEY64, iv_plain64(s), data[s * 512:(s + 1) * 512])
    assert len(_kthreads("dmcrypt_write")) == before


# ------------------------------------------------------------ constructor errors

@pytest.mark.parametrize("args,msg", [
    ("aes-xts-plain64 {k} 0 {d}", "Not enough arguments"),
    ("aes-xts-plain64 :x:logon:a 0 {d} 0", "Cannot parse key size"),
    ("aes-xts-plain64 :64logon:a 0 {d} 0", "Cannot parse key size"),
    ("aes-xts-plain64 {k} 0 {d} 0 9", "Invalid number of feature args"),
    ("aes-xts-plain64 {k} 0 {d} 0 2 allow_discards", "Invalid number of feature args"),
    ("aes-xts-plain64 {k} 0 {d} 0 1 bogus", "Invalid feature arguments"),
    ("aes-xts-plain64 {k} 0 {d} 0 1 sector_size:768", "Invalid feature value for sector_size"),
    ("aes-xts-plain64 {k} 0 {d} 0 1 sector_size:8192", "Invalid feature value for sector_size"),
    ("aes-xts-plain64 {k} 0 {d} 0 1 integrity:0:aead", "Invalid integrity arguments"),
    ("aes-xts-plain64 {k} 0 {d} 0 1 integrity:28:foo", "Unknown integrity profile"),
    ("cbc(aes)-plain64 {k} 0 {d} 0", "Bad cipher specification"),
    ("aes:3-cbc-plain64 {k} 0 {d} 0", "Bad cipher key count specification"),
    ("aes-cbc {k} 0 {d} 0", "IV mechanism required"),
    ("aes-cbc-essiv {k} 0 {d} 0", "Digest algorithm missing for ESSIV mode"),
    ("capi:cbc(aes)-essiv {k} 0 {d} 0", "Digest algorithm missing for ESSIV mode"),
    ("nosuch-xts-plain64 {k} 0 {d} 0", "Error allocating crypto tfm"),
    ("aes-xts-bogus {k} 0 {d} 0", "Invalid IV mode"),
    ("aes-xts-plain64 {k}zz 0 {d} 0", "Error decoding and setting key"),
    ("aes-xts-plain64 0011 0 {d} 0", "Error decoding and setting key"),
    ("aes-xts-plain64 :64:logon:no-such-key 0 {d} 0", "Error decoding and setting key"),
    ("aes-xts-plain64 :64:trusted:x 0 {d} 0", "Error decoding and setting key"),
    ("aes-xts-plain64 :64:logon: 0 {d} 0", "Error decoding and setting key"),
    ("aes-xts-plain64 {k} x {d} 0", "Invalid iv_offset sector"),
    ("aes-xts-plain64 {k} 1 {d} 0 1 sector_size:4096", "Invalid iv_offset sector"),
    ("aes-xts-plain64 {k} 0 /dev/nonexistent 0", "Device lookup failed"),
    ("aes-xts-plain64 {k} 0 {d} x", "Invalid device sector"),
    ("aes-cbc-lmk {k32} 0 {d} 0 1 sector_size:4096", "Error creating IV"),
    ("aes-cbc-tcw {k32} 0 {d} 0", "Error decoding and setting key"),
    ("aes-cbc-random {k32} 0 {d} 0", "Integrity profile not supported."),
    ("capi:gcm(aes)-random {k32} 0 {d} 0 1 integrity:28:aead",
     "Integrity profile not supported."),
    ("aes-xts-plain64 {k} 0 {d} 0 1 integrity:28:aead", "Bad cipher specification"),
])
def test_ctr_errors(dev, args, msg):
    args = args.format(k=KEY64.hex(), k32=KEY32.hex(), d=dev)
    lines = ctr_error(dev, f"0 {SIZE} crypt {args}")
    assert any(f"crypt: {msg}" in ln for ln in lines), lines


def test_ctr_error_size_not_multiple(dev):
    lines = ctr_error(dev, f"0 {SIZE + 1} crypt aes-xts-plain64 {KEY64.hex()} 0 {dev} 0 "
                           f"1 sector_size:4096")
    assert any("Device size is not multiple of sector_size feature" in ln for ln in lines)


def test_ctr_key_never_logged(dev):
    klog = KernelLog()
    fails("dmsetup", "create", "cr", "--table",
          f"0 {SIZE} crypt aes-xts-bogus {KEY64.hex()} 0 {dev} 0")
    lines = klog.read()
    klog.close()
    assert not any(KEY64.hex()[:16] in ln for ln in lines)


# ------------------------------------------------------------ messages, keys

def test_message_needs_suspend(dev):
    mk(dev, "aes-xts-plain64", KEY64)
    klog = KernelLog()
    rc, out = fails("dmsetup", "message", "cr", "0", "key", "wipe")
    lines = klog.read()
    klog.close()
    remove("cr")
    assert any("not suspended during key manipulation" in ln for ln in lines)


@pytest.mark.parametrize("msg", ["key", "key bogus", "foo bar", "key set", "key wipe now"])
def test_message_unrecognised(dev, msg):
    mk(dev, "aes-xts-plain64", KEY64)
    dmsetup("suspend", "cr")
    klog = KernelLog()
    fails("dmsetup", "message", "cr", "0", *msg.split())
    lines = klog.read()
    klog.close()
    dmsetup("resume", "cr")
    remove("cr")
    assert any("unrecognised message received" in ln for ln in lines)


def test_key_wipe_blocks_resume_then_key_set(dev):
    data = pattern("wipe", 65536)
    mk(dev, "aes-xts-plain64", KEY64)
    write_at("/dev/mapper/cr", 0, data)
    dmsetup("suspend", "cr")
    dmsetup("message", "cr", "0", "key", "wipe")
    # the key is gone from the table line too
    assert table("cr", "--showkeys").split()[4] == "0" * 128
    klog = KernelLog()
    fails("dmsetup", "resume", "cr")
    lines = klog.read()
    klog.close()
    assert any("aborting resume - crypt key is not set." in ln for ln in lines)
    # wrong size, then the right key
    fails("dmsetup", "message", "cr", "0", "key", "set", KEY32.hex())
    dmsetup("message", "cr", "0", "key", "set", KEY64.hex())
    dmsetup("resume", "cr")
    back = read_at("/dev/mapper/cr", 0, len(data))
    assert table("cr", "--showkeys").split()[4] == KEY64.hex()
    remove("cr")
    assert back == data


def test_key_set_other_key_changes_view(dev):
    data = pattern("rekey", 4096)
    mk(dev, "aes-xts-plain64", KEY64)
    write_at("/dev/mapper/cr", 0, data)
    other = bytes(reversed(KEY64))
    dmsetup("suspend", "cr")
    dmsetup("message", "cr", "0", "key", "set", other.hex())
    dmsetup("resume", "cr")
    back = read_at("/dev/mapper/cr", 0, 4096)
    remove("cr")
    assert back != data


_libc = ctypes.CDLL(None, use_errno=True)
SYS_ADD_KEY, SYS_KEYCTL = 248, 250          # x86-64
KEY_SPEC_USER_KEYRING, KEYCTL_UNLINK = -4, 9


def _add_key(ktype, desc, payload):
    """add_key(2) into the user keyring (no keyutils in the guest); returns the id."""
    kid = _libc.syscall(SYS_ADD_KEY, ktype.encode(), desc.encode(), payload,
                        ctypes.c_size_t(len(payload)), KEY_SPEC_USER_KEYRING)
    assert kid > 0, f"add_key: errno {ctypes.get_errno()}"
    return kid


def _unlink_key(kid):
    _libc.syscall(SYS_KEYCTL, KEYCTL_UNLINK, kid, KEY_SPEC_USER_KEYRING)


@pytest.mark.parametrize("ktype", ["logon", "user"])
def test_keyring_key(dev, ktype):
    desc = f"dmtest:{ktype}" if ktype == "logon" else "dmtestuser"
    kid = _add_key(ktype, desc, KEY64)
    try:
        mk(dev, "aes-xts-plain64", f":64:{ktype}:{desc}")
        assert table("cr", "--showkeys") == f"0 {SIZE} crypt aes-xts-plain64 :64:{ktype}:{desc} 0 {devno(dev)} 0"
        write_at("/dev/mapper/cr", 0, P512)
        raw = read_at(dev, 0, 512)
        remove("cr")
    finally:
        _unlink_key(kid)
    assert raw == xts_enc(KEY64, iv_plain64(0), P512)


def test_keyring_key_wrong_size(dev):
    kid = _add_key("logon", "dmtest:short", KEY32)
    try:
        lines = ctr_error(dev, f"0 {SIZE} crypt aes-xts-plain64 :64:logon:dmtest:short 0 {dev} 0")
    finally:
        _unlink_key(kid)
    assert any("Error decoding and setting key" in ln for ln in lines)


def test_keyring_key_set_message(dev):
    kid = _add_key("logon", "dmtest:msg", KEY64)
    try:
        mk(dev, "aes-xts-plain64", KEY64)
        write_at("/dev/mapper/cr", 0, P512)
        dmsetup("suspend", "cr")
        dmsetup("message", "cr", "0", "key", "wipe")
        dmsetup("message", "cr", "0", "key", "set", ":64:logon:dmtest:msg")
        dmsetup("resume", "cr")
        line = table("cr", "--showkeys")
        back = read_at("/dev/mapper/cr", 0, 512)
        remove("cr")
    finally:
        _unlink_key(kid)
    assert line.split()[4] == ":64:logon:dmtest:msg"
    assert back == P512


def test_suspend_resume_keeps_key(dev):
    mk(dev, "aes-xts-plain64", KEY64)
    write_at("/dev/mapper/cr", 0, P512)
    dmsetup("suspend", "cr")
    dmsetup("resume", "cr")
    back = read_at("/dev/mapper/cr", 0, 512)
    assert info("cr")["suspended"] == "Active"
    remove("cr")
    assert back == P512


@pytest.mark.parametrize("opts", ["", "no_read_workqueue no_write_workqueue",
                                  "sector_size:4096"])
def test_fio_verify_concurrent(dev, opts):
    # many bios in flight at once: request/page pools and completion order
    mk(dev, "aes-xts-plain64", KEY64, opts=opts)
    run("fio", "--name=v", "--filename=/dev/mapper/cr", "--direct=1", "--ioengine=libaio",
        "--rw=randwrite", "--bsrange=4k-256k", "--iodepth=16", "--numjobs=1",
        "--size=3m", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
        "--randrepeat=1", "--output=/dev/null")
    remove("cr")


def test_keyring_encrypted_key(dev):
    # an encrypted key sealed by a user master key; its plaintext is random
    kmk = _add_key("user", "dmtest-kmk", bytes(range(32)))
    enc = _add_key("encrypted", "dmtest:enc", b"new default user:dmtest-kmk 64")
    data = pattern("encrypted-key", 65536)
    try:
        mk(dev, "aes-xts-plain64", ":64:encrypted:dmtest:enc")
        line = table("cr", "--showkeys")
        write_at("/dev/mapper/cr", 0, data)
        back = read_at("/dev/mapper/cr", 0, len(data))
        raw = read_at(dev, 0, len(data))
        remove("cr")
    finally:
        _unlink_key(enc)
        _unlink_key(kmk)
    assert line.split()[4] == ":64:encrypted:dmtest:enc"
    assert back == data and raw != data
