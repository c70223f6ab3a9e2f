# SPDX-License-Identifier: GPL-2.0-only
"""dm-bufio: module parameters, bounded cache, shrinker, through its users.

dm-bufio has no device of its own: it is driven through ebs (every I/O of
ebs goes through the cache; ebs is not in Debian) and verity.
"""
import pytest

from dmtest import (create, fill, pattern, read_at, remove, run, wait_for,
                    write_at)

PARAMS = "/sys/module/dm_bufio/parameters/"
SECTORS = 16384              # 8 MiB


def param(name):
    with open(PARAMS + name) as f:
        return int(f.read().strip())


def set_param(name, value):
    with open(PARAMS + name, "w") as f:
        f.write(str(value))


@pytest.fixture
def bufio():
    run("modprobe", "dm-bufio")
    saved = {n: param(n) for n in ("max_cache_size_bytes", "retain_bytes", "max_age_seconds")}
    yield
    for n, v in saved.items():
        set_param(n, v)


def test_parameters(bufio):
    # 0 means "2% of RAM", and the parameter then shows the size in use.
    assert param("max_cache_size_bytes") > 0
    assert param("max_age_seconds") == 300
    assert param("retain_bytes") == 262144
    for name in ("peak_allocated_bytes", "allocated_kmem_cache_bytes",
                 "allocated_get_free_pages_bytes", "allocated_vmalloc_bytes",
                 "current_allocated_bytes"):
        assert param(name) >= 0
    set_param("max_age_seconds", 60)
    assert param("max_age_seconds") == 60


@pytest.fixture
def ebs4k(loopdev, bufio):
    dev = loopdev(16, 4096)
    return dev


@pytest.mark.ours_only("CONFIG_DM_EBS is not set in Debian")
def test_cache_grows_and_is_accounted(ebs4k):
    base = fill(ebs4k, "bufio", 0, SECTORS * 512)
    before = param("current_allocated_bytes")
    eb = create("eb", f"0 {SECTORS} ebs {ebs4k} 0 1")
    # One 512-byte read in each of 200 underlying 4K blocks: 200 cached buffers.
    for i in range(200):
        assert read_at(eb, i * 4096 + 512, 512) == base[i * 4096 + 512:i * 4096 + 1024]
    assert param("current_allocated_bytes") >= before + 150 * 4096
    assert param("peak_allocated_bytes") >= param("current_allocated_bytes")
    assert param("allocated_get_free_pages_bytes") + param("allocated_kmem_cache_bytes") + \
        param("allocated_vmalloc_bytes") == param("current_allocated_bytes")
    remove("eb")
    # A destroyed client gives all of its memory back.
    assert param("current_allocated_bytes") == before


@pytest.mark.ours_only("CONFIG_DM_EBS is not set in Debian")
def test_small_cache_stays_bounded(ebs4k):
    """A 64 KiB cache: partial writes all over the device land, memory stays small."""
    fill(ebs4k, "under", 0, SECTORS * 512)
    model = bytearray(pattern("under", SECTORS * 512))
    set_param("max_cache_size_bytes", 65536)
    eb = create("eb", f"0 {SECTORS} ebs {ebs4k} 0 1")
    high = 0
    for i in range(0, 2048, 5):
        data = pattern(f"w{i}", 512)
        write_at(eb, i * 4096 + 1024, data)
        model[i * 4096 + 1024:i * 4096 + 1536] = data
        if i % 50 == 0:
            high = max(high, param("current_allocated_bytes"))
    assert high <= 64 * 4096, high
    assert read_at(eb, 0, SECTORS * 512) == bytes(model)
    remove("eb")
    assert read_at(ebs4k, 0, SECTORS * 512) == bytes(model)


@pytest.mark.ours_only("CONFIG_DM_EBS is not set in Debian")
def test_shrinker_returns_memory(ebs4k):
    fill(ebs4k, "shrink", 0, SECTORS * 512)
    set_param("retain_bytes", 65536)
    eb = create("eb", f"0 {SECTORS} ebs {ebs4k} 0 1")
    for i in range(0, 1024):
        read_at(eb, i * 4096, 512)
    assert param("current_allocated_bytes") >= 512 * 4096
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2")
    # Clean buffers beyond retain_bytes go back (stock frees them from a work item).
    wait_for(lambda: param("current_allocated_bytes") <= 256 * 1024,
             what="the shrinker to free buffers")
    assert read_at(eb, 4096 * 7, 4096) == pattern("shrink", 8 * 4096)[7 * 4096:]
    remove("eb")
