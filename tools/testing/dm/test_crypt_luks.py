# SPDX-License-Identifier: GPL-2.0-only
"""crypt through cryptsetup: LUKS1/LUKS2, plain mode, options, suspend, resize.

Every format uses pbkdf2 with 1000 iterations: the guest runs under TCG.
"""
import os

import pytest

from test_crypt import KEY64, P512, cbc_enc, iv_essiv, iv_plain64, xts_enc
from dmtest import (dmsetup, fails, kernel_has_crypto, pattern, read_at, run,
                    size_sectors, write_at)

PBKDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
PBKDF1 = ["--pbkdf-force-iterations", "1000"]


@pytest.fixture
def dev(brd):
    return brd(1, 40)[0]


@pytest.fixture
def keyfile(tmp_path):
    p = tmp_path / "pass"
    p.write_bytes(b"correct horse battery staple")
    return str(p)


def fmt(dev, keyfile, luks="luks2", *extra):
    pb = PBKDF if luks == "luks2" else PBKDF1
    run("cryptsetup", "luksFormat", "-q", "--type", luks, *pb, "--key-file", keyfile,
        *extra, dev)


def opn(dev, keyfile, name="lk", *extra):
    run("cryptsetup", "open", "--key-file", keyfile, *extra, dev, name)
    return f"/dev/mapper/{name}"


def close(name="lk"):
    run("cryptsetup", "close", name)


def fields(name="lk"):
    """The crypt table line split: start len crypt cipher key iv_off dev off [opts]."""
    return dmsetup("table", "--showkeys", name).split()


def roundtrip(mapped, seed, length=1 << 20, at=0):
    data = pattern(seed, length)
    write_at(mapped, at, data)
    return read_at(mapped, at, length) == data


@pytest.mark.parametrize("luks,cipher,ksize", [
    ("luks2", "aes-xts-plain64", 512),
    ("luks2", "serpent-xts-plain64", 512),
    ("luks2", "aes-cbc-essiv:sha256", 256),
    ("luks1", "aes-xts-plain64", 512),
    ("luks1", "serpent-xts-plain64", 256),
    ("luks1", "aes-cbc-essiv:sha256", 256),
])
def test_luks_format_open_close(dev, keyfile, luks, cipher, ksize):
    fmt(dev, keyfile, luks, "--cipher", cipher, "--key-size", str(ksize))
    mapped = opn(dev, keyfile)
    f = fields()
    ok = roundtrip(mapped, cipher)
    close()
    assert ok
    assert f[2] == "crypt" and f[3] == cipher
    if luks == "luks2":
        # LUKS2 passes the volume key through the kernel keyring
        assert f[4].startswith(f":{ksize // 8}:logon:cryptsetup:")
    else:
        assert len(f[4]) == ksize // 4
    # closed and reopened: the data is still there
    mapped = opn(dev, keyfile)
    back = read_at(mapped, 0, 1 << 20)
    close()
    assert back == pattern(cipher, 1 << 20)


@pytest.mark.parametrize("luks,cipher,model", [
    ("luks2", "aes-xts-plain64", lambda k, n, p: xts_enc(k, iv_plain64(n), p)),
    ("luks1", "aes-cbc-essiv:sha256",
     lambda k, n, p: cbc_enc(k[:32], iv_essiv(k[:32], n), p)),
])
def test_luks_ciphertext_matches_model(dev, keyfile, tmp_path, luks, cipher, model):
    vk = KEY64 if "xts" in cipher else KEY64[:32]
    vkf = tmp_path / "vk"
    vkf.write_bytes(vk)
    fmt(dev, keyfile, luks, "--cipher", cipher, "--key-size", str(len(vk) * 8),
        "--volume-key-file", str(vkf), "--sector-size", "512")
    mapped = opn(dev, keyfile)
    f = fields()
    offset = int(f[7]) * 512
    write_at(mapped, 5 * 512, P512)
    raw = read_at(dev, offset + 5 * 512, 512)
    close()
    assert raw == model(vk, 5, P512)


def test_luks2_sector_size_4096(dev, keyfile):
    fmt(dev, keyfile, "luks2", "--sector-size", "4096")
    mapped = opn(dev, keyfile)
    f = fields()
    ss = run("blockdev", "--getss", mapped).strip()
    ok = roundtrip(mapped, "4k")
    close()
    assert ok and ss == "4096"
    # cryptsetup 2.6 keeps 512-byte IVs for LUKS2 (no iv_large_sectors)
    assert f[8:] == ["1", "sector_size:4096"]


def test_luks2_perf_options(dev, keyfile):
    # brd reports 4 KiB physical sectors, which LUKS2 would pick up
    fmt(dev, keyfile, "luks2", "--sector-size", "512")
    mapped = opn(dev, keyfile, "lk", "--perf-no_read_workqueue", "--perf-no_write_workqueue",
                 "--allow-discards")
    f = fields()
    ok = roundtrip(mapped, "perf", 2 << 20)
    close()
    assert ok
    assert f[8:] == ["3", "allow_discards", "no_read_workqueue", "no_write_workqueue"]


def test_luks2_refresh(dev, keyfile):
    fmt(dev, keyfile, "luks2", "--sector-size", "512")
    mapped = opn(dev, keyfile)
    data = pattern("refresh", 1 << 20)
    write_at(mapped, 0, data)
    run("cryptsetup", "refresh", "--key-file", keyfile, "--perf-same_cpu_crypt", "lk")
    f = fields()
    back = read_at(mapped, 0, len(data))
    close()
    assert f[8:] == ["1", "same_cpu_crypt"]
    assert back == data


def test_luks2_resize(dev, keyfile):
    fmt(dev, keyfile)
    mapped = opn(dev, keyfile)
    full = size_sectors(mapped)
    data = pattern("resize", 1 << 20)
    write_at(mapped, 0, data)
    run("cryptsetup", "resize", "--key-file", keyfile, "--size", "8192", "lk")
    small = size_sectors(mapped)
    run("cryptsetup", "resize", "--key-file", keyfile, "lk")
    again = size_sectors(mapped)
    back = read_at(mapped, 0, len(data))
    close()
    assert (small, again) == (8192, full)
    assert back == data


@pytest.mark.parametrize("luks", ["luks2", "luks1"])
def test_luks_suspend_resume(dev, keyfile, luks):
    fmt(dev, keyfile, luks)
    mapped = opn(dev, keyfile)
    data = pattern("suspend", 1 << 20)
    write_at(mapped, 0, data)
    run("cryptsetup", "luksSuspend", "lk")
    assert dmsetup("info", "-c", "--noheadings", "-o", "suspended", "lk").strip() == "Suspended"
    # the key was wiped: no key material left in the table
    key = fields()[4]
    assert key.startswith(":") or set(key) == {"0"}
    run("cryptsetup", "luksResume", "--key-file", keyfile, "lk")
    back = read_at(mapped, 0, len(data))
    close()
    assert back == data


def test_plain_mode(dev, tmp_path):
    kf = tmp_path / "plainkey"
    kf.write_bytes(KEY64)
    mapped = opn(dev, str(kf), "pl", "--type", "plain", "--cipher", "aes-xts-plain64",
                 "--key-size", "512", "--size", "4096")
    f = fields("pl")
    write_at(mapped, 512, P512)
    raw = read_at(dev, 512, 512)
    close("pl")
    assert f[3] == "aes-xts-plain64"
    assert raw == xts_enc(bytes.fromhex(f[4]), iv_plain64(1), P512)


def test_plain_mode_default_cipher(dev, tmp_path):
    # a key file is used raw (no hashing): exactly the 256-bit default key
    kf = tmp_path / "plainkey"
    kf.write_bytes(KEY64[32:])
    mapped = opn(dev, str(kf), "pl", "--type", "plain", "--size", "4096")
    f = fields("pl")
    write_at(mapped, 0, P512)
    raw = read_at(dev, 0, 512)
    close("pl")
    key = bytes.fromhex(f[4])
    assert f[3] == "aes-cbc-essiv:sha256" and len(key) == 32
    assert key == KEY64[32:]
    assert raw == cbc_enc(key, iv_essiv(key, 0), P512)


def test_luks2_ext4_fsck(dev, keyfile, tmp_path):
    fmt(dev, keyfile)
    mapped = opn(dev, keyfile)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    data = pattern("file", 3 << 20)
    try:
        run("mkfs.ext4", "-q", "-F", mapped)
        run("mount", mapped, str(mnt))
        try:
            (mnt / "f").write_bytes(data)
            os.sync()
        finally:
            run("umount", str(mnt))
        run("fsck.ext4", "-fn", mapped)
        run("mount", "-o", "ro", mapped, str(mnt))
        try:
            back = (mnt / "f").read_bytes()
        finally:
            run("umount", str(mnt))
    finally:
        close()
    assert back == data


def test_luks2_wrong_passphrase(dev, keyfile, tmp_path):
    fmt(dev, keyfile)
    bad = tmp_path / "bad"
    bad.write_bytes(b"wrong")
    rc, out = fails("cryptsetup", "open", "--key-file", bad, dev, "lk")
    assert rc == 2
    assert "lk" not in dmsetup("ls")


@pytest.mark.parametrize("cipher,integrity,ksize", [
    ("aes-gcm-random", "aead", 256),
    ("chacha20-random", "poly1305", 256),
])
def test_luks2_integrity(dev, keyfile, cipher, integrity, ksize):
    if not kernel_has_crypto(cipher.split("-")[0]):
        pytest.skip(f"kernel without {cipher.split('-')[0]}")
    # dm-integrity below keeps the tags; no wipe, so only written data is read
    fmt(dev, keyfile, "luks2", "--cipher", cipher, "--integrity", integrity,
        "--key-size", str(ksize), "--integrity-no-wipe")
    mapped = opn(dev, keyfile)
    f = fields()
    data = pattern(cipher, 1 << 20)
    write_at(mapped, 0, data)
    back = read_at(mapped, 0, len(data))
    close()
    assert f[3].startswith("capi:")
    assert any(o.startswith("integrity:") for o in f[8:])
    assert back == data
