# SPDX-License-Identifier: GPL-2.0-only
"""The ioctl fuzzer: random and malformed struct dm_ioctl buffers against the
control device. It exits 0 only if every reply was consistent and it left no
device, holder or module reference behind; the harness checks the kernel log.

FUZZ_SECONDS (default 20) sets the run time, FUZZ_SEED the seed (default: a
fixed one, so that a run of the suite is repeatable; FUZZ_SEED=random for a
new one). The seed goes to the kernel log, so a later crash can be replayed.
"""
import os
import random
import subprocess

from dmtest import run

SRC = os.path.join(os.path.dirname(__file__), "..", "fuzz")


def build_fuzzer():
    # The guest root is read-only except /tmp: build there with host gcc.
    run("make", "-s", "-C", SRC, "O=/tmp/dm-fuzz")
    return "/tmp/dm-fuzz/dm-ioctl-fuzz"


def test_ioctl_fuzz(brd):
    fuzzer = build_fuzzer()
    devs = brd(count=3, size_mb=8)
    seconds = os.environ.get("FUZZ_SECONDS", "20")
    seed = os.environ.get("FUZZ_SEED", "20261123")
    if seed == "random":
        seed = str(random.randrange(1 << 32))
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"dm-ioctl-fuzz: seed {seed}, {seconds} s\n")
    p = subprocess.run([fuzzer, "-s", seed, "-t", seconds, *devs],
                       capture_output=True, text=True,
                       timeout=float(seconds) * 3 + 120)
    print(p.stdout + p.stderr)
    assert p.returncode == 0, \
        f"fuzzer failed (seed {seed}, replay with FUZZ_SEED={seed}):\n" + \
        (p.stdout + p.stderr)[-3000:]
