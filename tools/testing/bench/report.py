#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turn guest-bench.py's JSON into a table; optionally write the doc page.

  report.py BENCH.json [--doc Documentation/benchmarks.md]
"""
import argparse
import datetime
import json
import platform
import statistics

WORKLOADS = ["randread 4k QD1", "randread 4k QD32", "randwrite 4k QD32",
             "seqwrite 1M QD8"]


def value(rows, backend, target, mset, workload):
    """Mean over rounds: IOPS for 4k workloads, MiB/s for 1M ones."""
    vals = [r["kib_s"] / 1024 if "1M" in workload else r["iops"]
            for r in rows if (r["backend"], r["target"], r["set"], r["workload"]) ==
            (backend, target, mset, workload)]
    return statistics.mean(vals) if vals else None


def fmt(v, workload):
    if v is None:
        return "n/a"
    return f"{v:.1f} MiB/s" if "1M" in workload else f"{v:.0f} IOPS"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def table(data):
    rows = data["results"]
    backends = sorted({r["backend"] for r in rows}, key=["brd", "null_blk"].index)
    head = ["backend", "target", "workload", "raw", "stock", "ours",
            "stock/raw", "ours/stock"]
    lines = []
    for b in backends:
        for t in ("linear", "striped"):
            for w in WORKLOADS:
                raw = value(rows, b, "raw", "raw", w)
                stock = value(rows, b, t, "stock", w)
                ours = value(rows, b, t, "ours", w)
                lines.append([b, t, w, fmt(raw, w), fmt(stock, w), fmt(ours, w),
                              ratio(stock, raw), ratio(ours, stock)])
    return head, lines


def text_table(head, lines):
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def md_table(head, lines):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def host_cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


DOC_HEAD = """# Benchmarks

`make bench` (tools/testing/bench/run) boots one test guest and runs fio
(libaio, direct=1) over the raw device, over Debian's stock dm-linear and
dm-striped, and over ours, swapping dm-mod inside the same boot (rmmod, then
insmod of the stock module or modprobe of ours from updates/). Each workload
runs {runtime} s per round, {rounds} rounds, the module sets alternating which
goes first; the numbers are means over the rounds. `--doc` rewrites this
page with the latest run.

Caveat: the guest is QEMU with TCG (no KVM), two vCPUs, so absolute numbers
are far below real hardware and noisy (a few percent between runs); the
ratios are what to look at. "n/a" for ours means our dm-mod was not built
yet. Striped runs over two devices of the backend with 64 KiB chunks; the
stock/raw ratio compares against one raw device.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--doc")
    args = ap.parse_args()
    with open(args.json) as f:
        data = json.load(f)
    head, lines = table(data)
    print(text_table(head, lines))
    if not data.get("have_ours"):
        print("(our dm-mod was not available in this build: ours = n/a)")
    if args.doc:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = DOC_HEAD.format(runtime=data["runtime"], rounds=data["rounds"])
        body += (f"\n## Latest run: {now}\n\n"
                 f"* Host: {platform.node()}, {host_cpu()}, {__import__('os').cpu_count()} cores\n"
                 f"* Guest: kernel {data['kernel']}, {data['guest_cpus']} vCPUs "
                 f"({data['guest_cpu']}), TCG\n"
                 f"* Rounds: {data['rounds']}, {data['runtime']} s per fio run\n\n"
                 + md_table(head, lines) + "\n")
        with open(args.doc, "w") as f:
            f.write(body)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
