#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Runs inside one test guest (DM=ours): fio over stock dm and our dm,
swapping the whole dm module set within the boot, and writes the results
as JSON.

  guest-bench.py OUT.json

Groups (each its own table, each with its own baseline):
  core       linear and striped over brd and null_blk; baseline: raw device
  crypt      aes-xts-plain64, default and no_{read,write}_workqueue
  verity     4k random reads, fresh table (cold) and warm hash cache
  integrity  journal (J), bitmap (B) and direct (D) modes, crc32c
  snapshot   origin writes with 0, 1 and 4 snapshots, snapshot reads, merge
  thin       provisioning, overwrite and breaking sharing (only if ours)
Baseline for every group but core: dm-linear over the same device.

Environment: BENCH_ROUNDS (default 2), BENCH_RUNTIME seconds per timed fio
run (default 3), BENCH_BACKENDS for core (default "brd null_blk"),
BENCH_GROUPS (default: every group).
"""
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dm"))
import dmtest   # noqa: E402

ALL_GROUPS = ["core", "crypt", "verity", "integrity", "snapshot", "thin"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
RUNTIME = int(os.environ.get("BENCH_RUNTIME", "3"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "brd null_blk").split()
GROUPS = os.environ.get("BENCH_GROUPS", " ".join(ALL_GROUPS)).split()
KVER = platform.release()
STRIPE_CHUNK = 128          # sectors: 64 KiB
MB = 1 << 20

# A fixed 512-bit key: aes-xts with two 256-bit AES keys.
CRYPT_KEY = "0123456789abcdeffedcba9876543210" * 4
SNAP_CHUNK = 16             # sectors: 8 KiB
SNAP_ORIGIN_MB = 128
SNAP_COW_MB = 160           # room for every origin chunk plus metadata
SNAP_MERGE_MB = 32
THIN_BLOCK = 128            # sectors: 64 KiB

# name, fio rw, block size, iodepth
CORE_WORKLOADS = [
    ("randread 4k QD1", "randread", "4k", 1),
    ("randread 4k QD32", "randread", "4k", 32),
    ("randwrite 4k QD32", "randwrite", "4k", 32),
    ("seqwrite 1M QD8", "write", "1M", 8),
]
CRYPT_WORKLOADS = [
    ("randread 4k QD32", "randread", "4k", 32),
    ("randwrite 4k QD32", "randwrite", "4k", 32),
    ("seqwrite 1M QD8", "write", "1M", 8),
    ("seqread 1M QD8", "read", "1M", 8),
]
INTEGRITY_WORKLOADS = [
    ("randwrite 4k QD32", "randwrite", "4k", 32),
    ("seqwrite 1M QD8", "write", "1M", 8),
]


def sh(*argv, check=True):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: rc {p.returncode}\n"
                           f"{p.stdout}{p.stderr}")
    return p.stdout


def log(msg):
    print(f"bench: {msg}", flush=True)


def sectors(dev):
    return int(sh("blockdev", "--getsz", dev))


# ------------------------------------------------------------ module sets

# The guest's module tree is Debian's plus ours in updates/dm, which wins for
# modprobe. Stock modules are loaded by path (insmod, dependencies first), so
# nothing of the mode's modprobe rules gets in the way.
MODTREE = f"/lib/modules/{KVER}"
STOCK_MD = f"{MODTREE}/kernel/drivers/md"
OURS_DIR = f"{MODTREE}/updates/dm"
OURS_FILES = set()
if os.path.isdir(OURS_DIR):
    OURS_FILES = {f.split(".ko")[0] for f in os.listdir(OURS_DIR)}


def modname(m):
    return m.replace("-", "_")


def stock_path(m):
    for d in (STOCK_MD, f"{STOCK_MD}/persistent-data"):
        for ext in (".ko", ".ko.xz"):
            p = f"{d}/{m.replace('_', '-')}{ext}"
            if os.path.exists(p):
                return p
    return None


def load_stock(m):
    if dmtest.module_loaded(m):
        return
    path = stock_path(m)
    deps = sh("modinfo", "-F", "depends", path).strip()
    for d in filter(None, deps.split(",")):
        if stock_path(d):
            load_stock(d)
        else:
            sh("modprobe", d)      # a library both sets share (libcrc32c, ...)
    sh("insmod", path)


def dm_modules():
    """Loaded modules of the dm family: dm_* and whatever holds them."""
    mods = {line.split()[0] for line in open("/proc/modules")}
    found = {m for m in mods if m.startswith("dm_")}
    todo = list(found)
    while todo:
        for h in os.listdir(f"/sys/module/{todo.pop()}/holders"):
            if h not in found:
                found.add(h)
                todo.append(h)
    return found


def unload_dm():
    """rmmod the whole dm family, holders first."""
    dmtest.udev_settle()
    left = dm_modules()
    for _ in range(len(left) + 10):
        if not left:
            return
        leaves = [m for m in left
                  if not set(os.listdir(f"/sys/module/{m}/holders")) & left]
        subprocess.run(["rmmod", *leaves], capture_output=True)
        now = dm_modules()
        if now == left:
            time.sleep(0.1)
        left = now
    raise RuntimeError("cannot unload dm modules: " + " ".join(sorted(left)))


_current = [None, ()]


def use_set(mset, mods=()):
    """Load module set MSET ("stock" or "ours") with target modules MODS,
    dropping whatever dm modules were loaded before. Returns False when
    ours lacks one of them (its rows show n/a)."""
    if mset == "ours" and any(m not in OURS_FILES for m in mods):
        return False
    if _current != [mset, tuple(mods)]:
        unload_dm()
        if mset == "stock":
            for m in ("dm-mod", *mods):
                load_stock(m)
        else:
            sh("modprobe", "-a", "dm-mod", *mods)
        _current[:] = [mset, tuple(mods)]
    for m in ("dm-mod", *mods):
        if dmtest.module_is_ours(m) != (mset == "ours"):
            raise RuntimeError(f"{m} is not from the {mset} set")
    return True


def drop_dm():
    """Remove every dm device (stacked ones first, by retrying)."""
    dmtest.udev_settle()
    for _ in range(20):
        names = dmtest.dm_names()
        if not names:
            return
        for n in names:
            subprocess.run(["dmsetup", "remove", n], capture_output=True)
        time.sleep(0.05)
    raise RuntimeError("cannot remove dm devices: " + " ".join(dmtest.dm_names()))


def create(name, table, *opts):
    dmtest.create(name, table, *opts)
    return f"/dev/mapper/{name}"


# ------------------------------------------------------------ backends

def brd(count, size_mb):
    """COUNT RAM disks of SIZE_MB, written once so that reads touch memory
    (brd reads unwritten pages as zeros without touching any)."""
    sh("modprobe", "brd", f"rd_nr={count}", f"rd_size={size_mb * 1024}", "max_part=0")
    devs = [f"/dev/ram{i}" for i in range(count)]
    dmtest.wait_for(lambda: all(os.path.exists(d) for d in devs), 5, "brd")
    for d in devs:
        sh("dd", "if=/dev/zero", f"of={d}", "bs=1M", f"count={size_mb}",
           "oflag=direct", "status=none")
    return devs


def null_blk(count):
    sh("modprobe", "null_blk", f"nr_devices={count}", "gb=4", "queue_mode=2")
    devs = [f"/dev/nullb{i}" for i in range(count)]
    dmtest.wait_for(lambda: all(os.path.exists(d) for d in devs), 5, "null_blk")
    return devs


def unload_backends():
    dmtest.udev_settle()
    for m in ("brd", "null_blk"):
        if dmtest.module_loaded(m):
            sh("rmmod", m)


def zero(dev, mb=1):
    sh("dd", "if=/dev/zero", f"of={dev}", "bs=1M", f"count={mb}", "oflag=direct",
       "status=none")


# ------------------------------------------------------------ fio

def fio(dev, rw, bs, qd, size=None, io_size=None, align=None):
    """One fio run; returns IOPS for 4k blocks, MiB/s for larger ones.
    Without IO_SIZE the run is timed (RUNTIME s); with it, it does exactly
    that much I/O (first writes that must each land on fresh space)."""
    size = size or min(sectors(dev) * 512, 1 << 30)
    argv = ["fio", "--name=bench", f"--filename={dev}", "--ioengine=libaio",
            "--direct=1", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}",
            f"--size={size}", "--randrepeat=0", "--group_reporting",
            "--output-format=json"]
    if io_size:
        # the random map makes every offset distinct
        argv.append(f"--io_size={io_size}")
    else:
        argv += [f"--runtime={RUNTIME}", "--time_based", "--norandommap"]
    if align:
        argv.append(f"--blockalign={align}")
    out = sh(*argv)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["write"] if "write" in rw else job["read"]
    if side["io_bytes"] == 0:
        raise RuntimeError(f"fio {rw} {bs} on {dev} did no I/O")
    return side["iops"] if bs == "4k" else side["bw"] / 1024


class Results:
    def __init__(self):
        self.rows = []
        self.errors = []
        self.na = set()

    def add(self, group, backend, config, mset, workload, value, unit):
        self.rows.append({"group": group, "backend": backend, "config": config,
                          "set": mset, "workload": workload, "value": value,
                          "unit": unit})
        log(f"{group:9} {backend:8} {config:26} {mset:5} {workload:20} "
            f"{value:10.1f} {unit}")

    def run(self, group, backend, config, mset, workload, dev, rw, bs, qd, **kw):
        v = fio(dev, rw, bs, qd, **kw)
        self.add(group, backend, config, mset, workload, v,
                 "IOPS" if bs == "4k" else "MiB/s")
        return v


def linear(name, dev, length=None):
    return create(name, f"0 {length or sectors(dev)} linear {dev} 0")


# ------------------------------------------------------------ groups

def group_core(res, order):
    for backend in BACKENDS:
        devs = brd(2, 256) if backend == "brd" else null_blk(2)
        try:
            for name, rw, bs, qd in CORE_WORKLOADS:
                res.run("core", backend, "raw", "base", name, devs[0], rw, bs, qd)
            for mset in order:
                use_set(mset)
                n = min(sectors(d) for d in devs)
                per = n - n % STRIPE_CHUNK
                tables = {
                    "linear": f"0 {n} linear {devs[0]} 0",
                    "striped": f"0 {per * 2} striped 2 {STRIPE_CHUNK} "
                               f"{devs[0]} 0 {devs[1]} 0",
                }
                for target, t in tables.items():
                    dev = create(f"bench-{target}", t)
                    try:
                        for name, rw, bs, qd in CORE_WORKLOADS:
                            res.run("core", backend, target, mset, name, dev, rw, bs, qd)
                    finally:
                        drop_dm()
        finally:
            drop_dm()
            unload_backends()


def group_crypt(res, order):
    dev = brd(1, 256)[0]
    n = sectors(dev)
    configs = [("aes-xts default", ""),
               ("aes-xts no_workqueue", " 2 no_read_workqueue no_write_workqueue")]
    for mset in order:
        if not use_set(mset, ["dm-crypt"]):
            res.na.add(("crypt", mset))
            continue
        if mset == "stock":
            lin = linear("bench-linear", dev)
            for w in CRYPT_WORKLOADS:
                res.run("crypt", "brd", "linear", "base", w[0], lin, *w[1:])
            drop_dm()
        for config, opts in configs:
            d = create("bench-crypt",
                       f"0 {n} crypt aes-xts-plain64 {CRYPT_KEY} 0 {dev} 0{opts}")
            for w in CRYPT_WORKLOADS:
                res.run("crypt", "brd", config, mset, w[0], d, *w[1:])
            drop_dm()


VERITY_DATA_MB = 128
VERITY_COLD_IO = "8M"


def group_verity(res, order):
    data, hashdev = brd(2, VERITY_DATA_MB)
    out = sh("veritysetup", "format", "--data-block-size=4096",
             "--hash-block-size=4096", data, hashdev)
    root = re.search(r"Root hash:\s*([0-9a-f]+)", out).group(1)
    salt = re.search(r"Salt:\s*([0-9a-f]+)", out).group(1)
    n = sectors(data)
    # hash block 0 holds veritysetup's superblock
    table = (f"0 {n} verity 1 {data} {hashdev} 4096 4096 {n // 8} 1 sha256 "
             f"{root} {salt}")
    cold = ("randread 4k QD32 cold", "randread", "4k", 32)
    warm = ("randread 4k QD32 warm", "randread", "4k", 32)
    for mset in order:
        if not use_set(mset, ["dm-verity"]):
            res.na.add(("verity", mset))
            continue
        if mset == "stock":
            lin = linear("bench-linear", data)
            res.run("verity", "brd", "linear", "base", cold[0], lin, *cold[1:],
                    io_size=VERITY_COLD_IO)
            res.run("verity", "brd", "linear", "base", warm[0], lin, *warm[1:])
            drop_dm()
        # cold: a fresh table has an empty hash-block cache
        sh("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
        d = create("bench-verity", table, "--readonly")
        res.run("verity", "brd", "sha256 4k", mset, cold[0], d, *cold[1:],
                io_size=VERITY_COLD_IO)
        # warm: one full read brings in every hash block
        sh("dd", f"if={d}", "of=/dev/null", "bs=1M", "iflag=direct", "status=none")
        res.run("verity", "brd", "sha256 4k", mset, warm[0], d, *warm[1:])
        if "C" in dmtest.status("bench-verity").split()[3:]:
            raise RuntimeError("verity reports corruption: " + dmtest.status("bench-verity"))
        drop_dm()


def group_integrity(res, order):
    dev = brd(1, 256)[0]
    for mset in order:
        if not use_set(mset, ["dm-integrity"]):
            res.na.add(("integrity", mset))
            continue
        if mset == "stock":
            lin = linear("bench-linear", dev)
            for w in INTEGRITY_WORKLOADS:
                res.run("integrity", "brd", "linear", "base", w[0], lin, *w[1:])
            drop_dm()
        for mode in ("J", "B", "D"):
            args = f"integrity {dev} 0 4 {mode} 2 internal_hash:crc32c block_size:4096"
            # an all-zero superblock makes the target format the device
            zero(dev)
            create("bench-integrity", f"0 8 {args}")
            provided = int(dmtest.status("bench-integrity").split()[4])
            drop_dm()
            d = create("bench-integrity", f"0 {provided} {args}")
            for w in INTEGRITY_WORKLOADS:
                res.run("integrity", "brd", f"crc32c 4k {mode}", mset, w[0], d, *w[1:])
            drop_dm()


def snapshot_usage(name):
    """(allocated, metadata) sectors from a snapshot(-merge) status line."""
    f = dmtest.status(name).split()
    return int(f[3].split("/")[0]), int(f[4])


def group_snapshot(res, order):
    devs = brd(5, SNAP_COW_MB)
    n = SNAP_ORIGIN_MB * MB // 512
    rw4k = ("randwrite 4k QD32", "randwrite", "4k", 32)
    rr4k = ("randread 4k QD32", "randread", "4k", 32)
    for mset in order:
        if not use_set(mset, ["dm-snapshot"]):
            res.na.add(("snapshot", mset))
            continue
        base = linear("bench-snapbase", devs[0], n)
        if mset == "stock":
            res.run("snapshot", "brd", "linear", "base", rw4k[0], base, *rw4k[1:])
            res.run("snapshot", "brd", "linear", "base", rr4k[0], base, *rr4k[1:])
        for k in (0, 1, 4):
            for i in range(k):
                zero(devs[1 + i])
                create(f"bench-snap{i}",
                       f"0 {n} snapshot {base} {devs[1 + i]} P {SNAP_CHUNK}")
            origin = create("bench-origin", f"0 {n} snapshot-origin {base}")
            res.run("snapshot", "brd", f"origin, {k} snapshots", mset, rw4k[0],
                    origin, *rw4k[1:])
            if k == 1:
                res.run("snapshot", "brd", "snapshot of written origin", mset,
                        rr4k[0], "/dev/mapper/bench-snap0", *rr4k[1:])
            for i in range(k):
                if dmtest.status(f"bench-snap{i}").split()[3] in ("Invalid", "Overflow"):
                    raise RuntimeError(f"snapshot {i} invalidated")
            dmtest.remove("bench-origin")
            for i in range(k):
                dmtest.remove(f"bench-snap{i}")
        # merge: SNAP_MERGE_MB of origin chunks saved in the COW go back
        cow = devs[1]
        zero(cow)
        create("bench-snap0", f"0 {n} snapshot {base} {cow} P {SNAP_CHUNK}")
        origin = create("bench-origin", f"0 {n} snapshot-origin {base}")
        fio(origin, "write", "1M", 8, io_size=f"{SNAP_MERGE_MB}M")
        dmtest.remove("bench-origin")
        dmtest.remove("bench-snap0")
        t0 = time.monotonic()
        create("bench-merge", f"0 {n} snapshot-merge {base} {cow} P {SNAP_CHUNK}")
        while True:
            a, meta = snapshot_usage("bench-merge")
            if a == meta:
                break
            if time.monotonic() - t0 > 300:
                raise RuntimeError("merge did not finish in 300 s")
            time.sleep(0.05)
        res.add("snapshot", "brd", f"merge {SNAP_MERGE_MB} MiB", mset, "merge",
                SNAP_MERGE_MB / (time.monotonic() - t0), "MiB/s")
        drop_dm()


THIN_FIRST_4K_IO = "8M"     # 2048 writes, each on its own 64 KiB block
THIN_SHARED_IO = "4M"       # 1024 writes, each breaking one shared block
THIN_SEQ_MB = 128


def thin_pool(meta, data):
    zero(meta)
    nd = sectors(data)
    pool = create("bench-pool", f"0 {nd} thin-pool {meta} {data} {THIN_BLOCK} 0")
    dmtest.dmsetup("message", "bench-pool", "0", "create_thin 0")
    return create("bench-thin", f"0 {nd} thin {pool} 0")


def thin_jobs(res, mset, config_of, fresh):
    """The four thin workloads; FRESH() gives an empty volume (or linear)."""
    seq = f"{THIN_SEQ_MB}M"
    d = fresh()
    res.run("thin", "brd", config_of("first write"), mset, "randwrite 4k QD32", d,
            "randwrite", "4k", 32, io_size=THIN_FIRST_4K_IO, align="64k")
    drop_dm()
    d = fresh()
    res.run("thin", "brd", config_of("first write"), mset, "seqwrite 1M QD8", d,
            "write", "1M", 8, size=seq, io_size=seq)
    res.run("thin", "brd", config_of("overwrite"), mset, "randwrite 4k QD32", d,
            "randwrite", "4k", 32, size=seq)
    if d.endswith("bench-thin"):
        dmtest.dmsetup("suspend", "bench-thin")
        dmtest.dmsetup("message", "bench-pool", "0", "create_snap 1 0")
        dmtest.dmsetup("resume", "bench-thin")
    res.run("thin", "brd", config_of("shared with snapshot"), mset, "randwrite 4k QD32",
            d, "randwrite", "4k", 32, size=seq, io_size=THIN_SHARED_IO, align="64k")
    drop_dm()


def group_thin(res, order):
    data, meta = brd(2, 256)
    for mset in order:
        if not use_set(mset, ["dm-thin-pool"]):
            res.na.add(("thin", mset))
            log("thin-pool is not ours yet: n/a")
            continue
        if mset == "stock":
            thin_jobs(res, "base", lambda c: c,
                      lambda: linear("bench-linear", data))
        thin_jobs(res, mset, lambda c: c, lambda: thin_pool(meta, data))


GROUP_FUNCS = {"core": group_core, "crypt": group_crypt, "verity": group_verity,
               "integrity": group_integrity, "snapshot": group_snapshot,
               "thin": group_thin}


def main():
    out_path = sys.argv[1]
    unknown = [g for g in GROUPS if g not in GROUP_FUNCS]
    if unknown:
        sys.exit(f"unknown BENCH_GROUPS {unknown}; known: {' '.join(ALL_GROUPS)}")
    res = Results()
    times = {}
    t0 = time.monotonic()
    for rnd in range(ROUNDS):
        # Alternate which module set goes first to spread drift.
        order = ["stock", "ours"] if rnd % 2 == 0 else ["ours", "stock"]
        for g in GROUPS:
            tg = time.monotonic()
            try:
                GROUP_FUNCS[g](res, order)
            except Exception as e:  # one broken group must not sink the rest
                log(f"group {g} failed: {e}")
                res.errors.append(f"round {rnd + 1}, {g}: {str(e)[:400]}")
            try:
                # each group loads its own RAM disks, sized for it
                drop_dm()
                unload_backends()
            except Exception as e:
                log(f"cleanup after {g} failed: {e}")
                res.errors.append(f"round {rnd + 1}, cleanup after {g}: {str(e)[:400]}")
            times[g] = times.get(g, 0) + time.monotonic() - tg
            log(f"round {rnd + 1}/{ROUNDS} {g} done after {time.monotonic() - t0:.0f} s")
    unload_dm()

    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    with open(out_path, "w") as f:
        json.dump({"kernel": KVER, "rounds": ROUNDS, "runtime": RUNTIME,
                   "groups": GROUPS, "backends": BACKENDS,
                   "guest_cpu": cpu, "guest_cpus": os.cpu_count(),
                   "seconds": round(time.monotonic() - t0),
                   "group_seconds": {g: round(t) for g, t in times.items()},
                   "na": sorted(list(x) for x in res.na),
                   "errors": res.errors, "results": res.rows}, f, indent=1)


if __name__ == "__main__":
    main()
