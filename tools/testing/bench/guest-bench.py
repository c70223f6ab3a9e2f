#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Runs inside one test guest (DM=ours): fio over raw devices, stock dm and
our dm, swapping dm-mod within the boot, and writes the results as JSON.

  guest-bench.py OUT.json

Environment: BENCH_ROUNDS (default 2), BENCH_RUNTIME seconds per fio run
(default 5), BENCH_BACKENDS (default "brd null_blk").
"""
import glob
import json
import os
import platform
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
RUNTIME = int(os.environ.get("BENCH_RUNTIME", "5"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "brd null_blk").split()
KVER = platform.release()
STOCK_DM_MOD = f"/lib/modules/{KVER}/kernel/drivers/md/dm-mod.ko"
BRD_MB = 256
STRIPE_CHUNK = 128          # sectors: 64 KiB

WORKLOADS = [
    # name, fio rw, block size, iodepth
    ("randread 4k QD1", "randread", "4k", 1),
    ("randread 4k QD32", "randread", "4k", 32),
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


def loaded(mod):
    return os.path.isdir(f"/sys/module/{mod}")


def dm_mod_is_ours():
    try:
        with open("/sys/module/dm_mod/taint") as f:
            return "O" in f.read()
    except FileNotFoundError:
        return False


def unload_dm():
    """Unload every dm module (leaves first) so that dm-mod can be swapped."""
    sh("udevadm", "settle", check=False)
    for _ in range(5):
        mods = [line.split()[0] for line in open("/proc/modules")
                if line.startswith("dm_")]
        if not mods:
            return
        for m in mods:
            if m != "dm_mod":
                sh("rmmod", m, check=False)
        sh("rmmod", "dm_mod", check=False)
    raise RuntimeError("cannot unload dm modules: " + open("/proc/modules").read())


def load_dm(which):
    """Load stock or our dm-mod. Returns False if ours is not available."""
    unload_dm()
    if which == "stock":
        sh("insmod", STOCK_DM_MOD)
        return not dm_mod_is_ours()
    # In this guest our modules sit in updates/ and win for modprobe.
    sh("modprobe", "dm-mod", check=False)
    if not loaded("dm_mod") or not dm_mod_is_ours():
        unload_dm()
        return False
    return True


def backend_devices(kind):
    """Two scratch devices of KIND, freshly loaded."""
    if kind == "brd":
        sh("modprobe", "brd", "rd_nr=2", f"rd_size={BRD_MB * 1024}", "max_part=0")
        devs = ["/dev/ram0", "/dev/ram1"]
    else:
        sh("modprobe", "null_blk", "nr_devices=2", "gb=4", "queue_mode=2")
        devs = ["/dev/nullb0", "/dev/nullb1"]
    for _ in range(100):
        if all(os.path.exists(d) for d in devs):
            break
        time.sleep(0.05)
    if kind == "brd":
        # brd reads unwritten pages as zeros without touching memory: fill.
        for d in devs:
            sh("dd", "if=/dev/zero", f"of={d}", "bs=1M", f"count={BRD_MB}", "oflag=direct",
               "status=none")
    return devs


def unload_backend(kind):
    sh("udevadm", "settle", check=False)
    sh("rmmod", "brd" if kind == "brd" else "null_blk")


def sectors(dev):
    return int(sh("blockdev", "--getsz", dev))


def make_dm(target, devs):
    """Create bench-<target> over DEVS; returns its path."""
    n = min(sectors(d) for d in devs)
    if target == "linear":
        table = f"0 {n} linear {devs[0]} 0"
    else:
        per = n - n % STRIPE_CHUNK
        table = (f"0 {per * len(devs)} striped {len(devs)} {STRIPE_CHUNK} " +
                 " ".join(f"{d} 0" for d in devs))
    name = f"bench-{target}"
    sh("dmsetup", "create", name, "--table", table)
    sh("udevadm", "settle", check=False)
    return f"/dev/mapper/{name}"


def remove_dm(target):
    sh("udevadm", "settle", check=False)
    for _ in range(50):
        if subprocess.run(["dmsetup", "remove", f"bench-{target}"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"cannot remove bench-{target}")


def fio(dev, rw, bs, qd):
    """One fio run; returns (IOPS, KiB/s)."""
    size = min(sectors(dev) * 512, 1 << 30)
    out = sh("fio", "--name=bench", f"--filename={dev}", "--ioengine=libaio",
             "--direct=1", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}",
             f"--runtime={RUNTIME}", "--time_based", f"--size={size}",
             "--norandommap", "--randrepeat=0", "--group_reporting",
             "--output-format=json")
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["write"] if "write" in rw else job["read"]
    return side["iops"], side["bw"]


def measure(results, backend, target, module_set, dev):
    for name, rw, bs, qd in WORKLOADS:
        iops, bw = fio(dev, rw, bs, qd)
        results.append({"backend": backend, "target": target, "set": module_set,
                        "workload": name, "iops": iops, "kib_s": bw})
        log(f"{backend:8} {target:8} {module_set:5} {name:18} "
            f"{iops:10.0f} IOPS {bw / 1024:8.1f} MiB/s")


def main():
    out_path = sys.argv[1]
    results = []
    have_ours = None
    t0 = time.monotonic()
    for rnd in range(ROUNDS):
        for backend in BACKENDS:
            # Alternate which module set goes first to spread drift.
            order = ["stock", "ours"] if rnd % 2 == 0 else ["ours", "stock"]
            devs = backend_devices(backend)
            try:
                measure(results, backend, "raw", "raw", devs[0])
                for module_set in order:
                    if not load_dm(module_set):
                        if module_set == "ours":
                            have_ours = False
                            log("our dm-mod is not available: n/a")
                            continue
                        raise RuntimeError("stock dm-mod did not load")
                    if module_set == "ours":
                        have_ours = True
                    for target in ("linear", "striped"):
                        dev = make_dm(target, devs)
                        try:
                            measure(results, backend, target, module_set, dev)
                        finally:
                            remove_dm(target)
                    unload_dm()
            finally:
                unload_backend(backend)
        log(f"round {rnd + 1}/{ROUNDS} done after {time.monotonic() - t0:.0f} s")

    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    with open(out_path, "w") as f:
        json.dump({"kernel": KVER, "rounds": ROUNDS, "runtime": RUNTIME,
                   "guest_cpu": cpu, "guest_cpus": os.cpu_count(),
                   "have_ours": bool(have_ours), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
