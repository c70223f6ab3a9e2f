#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turn guest-bench.py's JSON into one table per group; optionally write
the doc page.

  report.py BENCH.json [MORE.json...] [--doc Documentation/benchmarks.md]

With several files, the groups of a later file replace those of the earlier
ones (a group re-run on its own after a fix).
"""
import argparse
import datetime
import json
import os
import platform
import statistics

GROUP_ORDER = ["core", "crypt", "verity", "integrity", "snapshot", "thin"]

GROUP_TEXT = {
    "core": "dm-linear and dm-striped (2 devices, 64 KiB chunks) over brd "
            "(256 MiB, pre-filled) and null_blk (4 GiB, queue_mode=2, not "
            "memory-backed). Baseline: one raw device.",
    "crypt": "dm-crypt aes-xts-plain64 with a fixed 512-bit hex key (no "
             "cryptsetup), iv_offset 0, over one 256 MiB brd; default options and "
             "`2 no_read_workqueue no_write_workqueue`. Baseline: stock dm-linear "
             "over the same brd.",
    "verity": "dm-verity sha256, 4 KiB data and hash blocks, data 128 MiB on one "
              "brd and the tree (made once per round by `veritysetup format`) on "
              "another. cold: a fresh table right after drop_caches, exactly 8 MiB "
              "of random reads (2048 I/Os, so most of the 256 level-0 hash blocks "
              "are read from the device during the run); warm: after one full "
              "sequential read of the device, a timed run. Baseline: stock "
              "dm-linear over the data brd, same jobs.",
    "integrity": "dm-integrity `4 <mode> 2 internal_hash:crc32c block_size:4096` "
                 "(tag size 4) on one 256 MiB brd, freshly formatted by the target "
                 "for every mode (zeroed superblock). J = journal, B = bitmap, "
                 "D = direct (no journal: not crash-safe). Baseline: stock dm-linear "
                 "over the same brd.",
    "snapshot": "Persistent snapshots (P), chunk 8 KiB, origin 128 MiB (a linear "
                "slice of one brd), each COW on its own 160 MiB brd, zeroed before "
                "each table. Origin 4k random writes are timed runs with 0, 1 or 4 "
                "snapshots created just before (so a run mixes first writes, which "
                "copy a chunk to every snapshot, and rewrites). The snapshot read "
                "runs on the 1-snapshot case after its origin writes. merge: 32 MiB "
                "written sequentially to the origin (4096 chunks saved in the COW), "
                "origin and snapshot removed, snapshot-merge created; MiB/s is "
                "32 MiB over the time from create until allocated == metadata "
                "sectors (status polled every 50 ms). Baseline: stock dm-linear "
                "over the origin slice; none for the merge.",
    "thin": "thin-pool with 64 KiB blocks, low water mark 0, block zeroing on "
            "(default), 256 MiB data brd, metadata on a second brd; one thin "
            "volume as large as the pool. first write 4k: 2048 random 4 KiB "
            "writes aligned to 64 KiB (each provisions one new block); first "
            "write 1M: 128 MiB written sequentially once; overwrite: a timed 4k "
            "random write run over those provisioned 128 MiB; shared with "
            "snapshot: `create_snap 1 0`, then 1024 random 4 KiB writes aligned "
            "to 64 KiB inside the 128 MiB (each breaks sharing of one block). "
            "Baseline: stock dm-linear over the data brd, same jobs. Rows appear "
            "for ours only once dm-thin-pool is ours (n/a before).",
}


def value(rows, group, backend, config, mset, workload):
    """Mean over rounds, or None."""
    vals = [r["value"] for r in rows
            if (r["group"], r["backend"], r["config"], r["set"], r["workload"]) ==
            (group, backend, config, mset, workload)]
    return statistics.mean(vals) if vals else None


def per_round(rows, group, backend, config, workload):
    """ours/stock of each round, in run order: is a gap there every time?"""
    def vals(mset):
        return [r["value"] for r in rows
                if (r["group"], r["backend"], r["config"], r["set"], r["workload"]) ==
                (group, backend, config, mset, workload)]
    pairs = list(zip(vals("ours"), vals("stock")))
    return " ".join(f"{o / st:.2f}" for o, st in pairs if st) or "n/a"


def fmt(v, unit):
    if v is None:
        return "n/a"
    return f"{v:.0f} IOPS" if unit == "IOPS" else f"{v:.1f} {unit}"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def keys_in_order(rows):
    seen = []
    for r in rows:
        k = (r["backend"], r["config"], r["workload"], r["unit"])
        if r["set"] != "base" and k not in seen:
            seen.append(k)
    return seen


def group_table(data, group):
    rows = [r for r in data["results"] if r["group"] == group]
    base_name = "raw" if group == "core" else "linear"
    head = ["config", "workload", base_name, "stock", "ours",
            f"stock/{base_name}", "ours/stock", "per round"]
    if group == "core":
        head = ["backend"] + head
    lines = []
    for backend, config, workload, unit in keys_in_order(rows):
        # a baseline row under the same config name (thin's jobs) wins
        base = value(rows, group, backend, config, "base", workload)
        if base is None:
            base = value(rows, group, backend, base_name, "base", workload)
        stock = value(rows, group, backend, config, "stock", workload)
        ours = value(rows, group, backend, config, "ours", workload)
        line = [config, workload, fmt(base, unit), fmt(stock, unit), fmt(ours, unit),
                ratio(stock, base), ratio(ours, stock),
                per_round(rows, group, backend, config, workload)]
        lines.append(([backend] if group == "core" else []) + line)
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

`make bench` (tools/testing/bench/run) boots one test guest (DM=ours) and
runs fio (libaio, direct=1) over Debian's stock dm modules and over ours,
swapping the whole dm module set inside the same boot: every dm module is
unloaded (holders first), then stock's are insmod-ed from
kernel/drivers/md/ (dependencies first) or ours modprobe-d from updates/dm/.
Each group is its own table with its own baseline. Timed fio runs last
BENCH_RUNTIME seconds (default 3); some runs instead do a fixed amount of
I/O (first writes that must land on fresh space, cold reads), as the group
notes say. There are BENCH_ROUNDS rounds (default 2), the module sets
alternating which goes first; numbers are means over the rounds.
4k rows are IOPS, 1M rows and merges MiB/s; higher is better everywhere.
With the defaults a run of every group takes about 25 minutes in the guest
(core 4, crypt 2.3, integrity 2.3, snapshot 1.9, verity 1.3, thin 0.9).

    make bench                                   # every group, defaults
    BENCH_GROUPS="crypt verity" make bench       # a subset
    tools/testing/bench/run --doc                # also rewrite this page

Groups: core, crypt, verity, integrity, snapshot, thin. BENCH_BACKENDS
(default "brd null_blk") applies to core only; the target groups use brd.

Caveat: the guest is QEMU with TCG (no KVM), two vCPUs, so absolute numbers
are far below real hardware (AES-NI and crc32c are emulated: crypt and
integrity look far slower against linear than on real hardware) and noisy:
5-10 % between runs on an idle host, but with another guest sharing the
host's two cores the ours/stock ratio of one row can move by a factor of two
between rounds. Look at rows that are off in every round, not at one mean.
"n/a" for ours means that module of ours is not built (its rows are then not
measured). The per-round values are in the JSON (`results`).
"""


def render(data, markdown):
    out = []
    for g in [g for g in GROUP_ORDER if g in data.get("groups", GROUP_ORDER)]:
        head, lines = group_table(data, g)
        if not lines:
            continue
        secs = data.get("group_seconds", {}).get(g)
        if markdown:
            out.append(f"### {g}\n\n{GROUP_TEXT[g]}" +
                       (f" ({secs} s for all rounds.)" if secs else "") + "\n\n" +
                       md_table(head, lines) + "\n")
        else:
            out.append(f"== {g}" + (f" ({secs} s)" if secs else "") + "\n" +
                       text_table(head, lines) + "\n")
    return "\n".join(out)


def merge(runs):
    """One run from several: later runs' groups replace earlier ones."""
    data = runs[0]
    data["runs"] = [{k: r.get(k) for k in ("groups", "rounds", "runtime", "seconds")}
                    for r in runs]
    for r in runs[1:]:
        redo = set(r["groups"])
        data["results"] = [x for x in data["results"] if x["group"] not in redo]
        data["results"] += r["results"]
        data["errors"] = [e for e in data.get("errors", [])
                          if not any(f", {g}:" in e for g in redo)] + r.get("errors", [])
        data["na"] = [x for x in data.get("na", []) if x[0] not in redo] + r.get("na", [])
        data.setdefault("group_seconds", {}).update(r.get("group_seconds", {}))
        data["groups"] += [g for g in r["groups"] if g not in data["groups"]]
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+")
    ap.add_argument("--doc")
    args = ap.parse_args()
    data = merge([json.load(open(p)) for p in args.json])
    print(render(data, False))
    for g, mset in data.get("na", []):
        print(f"n/a: {g} for {mset} (module not built)")
    for e in data.get("errors", []):
        print(f"ERROR: {e}")
    if "seconds" in data:
        print(f"guest run: {data['seconds']} s")
    if args.doc:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = DOC_HEAD
        body += (f"\n## Latest run: {now}\n\n"
                 f"* Host: {host_cpu()}, {os.cpu_count()} cores\n"
                 f"* Guest: kernel {data['kernel']}, {data['guest_cpus']} vCPUs "
                 f"({data['guest_cpu']}), TCG\n"
                 f"* Rounds: {data['rounds']}, {data['runtime']} s per timed fio run; "
                 f"groups: {' '.join(data.get('groups', []))}; "
                 f"{data.get('seconds', '?')} s in the guest\n")
        for r in data["runs"][1:]:
            body += (f"* Re-run of {' '.join(r['groups'])} on its own: rounds "
                     f"{r['rounds']}, {r['runtime']} s, {r['seconds']} s in the guest\n")
        for e in data.get("errors", []):
            body += f"* Error: {e}\n"
        body += "\n" + render(data, True)
        with open(args.doc, "w") as f:
            f.write(body)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
