#!/usr/bin/env python3
"""Chosen etcd-anchor workloads, interleaved across several binaries that
take its flags and print its JSON keys (etcd-peer-bench, transport_bench,
grpc_pingpong for latency): every run of every binary, round by round, so
drift hits all alike. Prints medians, ranges and ratios to the first
binary, with the date, the commit and the load average. The order rotates
each round (compare.sh keeps it fixed, which on disk workloads charges the
second binary for the first one's writeback). compare.sh does the
same for all nine workloads; this runs a subset, and more than two binaries
(e.g. ours before and after a change).

  bench/side_by_side.py -r 5 \\
    -w 'snap64-tmpfs=--mode=snapshot --size=64 --snap-dir=/dev/shm' \\
    -b etcd=/tmp/etcd-anchor/etcd-peer-bench -b ours=bazel-bin/bench/transport_bench
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import tempfile
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-r", "--runs", type=int, default=5)
    p.add_argument("-w", "--workload", action="append", required=True, help="NAME=ARGS")
    p.add_argument("-b", "--bin", action="append", required=True, help="NAME=COMMAND")
    p.add_argument("-k", "--key", action="append",
                   help="JSON key to report (repeatable); default: the mode's main one")
    a = p.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    loads = lambda: open("/proc/loadavg").read().split()[:3]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print("date: %s UTC, runs: %d, %d cores, commit %s" % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime()), a.runs, os.cpu_count(), commit))
    print("load average before: %s" % " ".join(loads()))
    # Every JSON line, kept: a table can be drawn again from them.
    keep = tempfile.NamedTemporaryFile("w", prefix="side_by_side.", suffix=".jsonl", delete=False)
    res = {}
    for w in a.workload:
        wname, wargs = w.split("=", 1)
        for i in range(a.runs):
            # Rotated each round: whoever runs right after another's disk
            # writes pays for their writeback, so no binary keeps one place.
            for bname, cmd in bins[i % len(bins):] + bins[:i % len(bins)]:
                out = subprocess.run(shlex.split(cmd) + shlex.split(wargs) + ["--json", "--label=" + wname],
                                     capture_output=True, text=True, check=True).stdout
                line = [l for l in out.splitlines() if l.startswith("{")][-1]
                r = json.loads(line)
                res.setdefault((wname, bname), []).append(r)
                keep.write(json.dumps({"binary": bname, **r}) + "\n")
                keep.flush()
                time.sleep(1)
    print("load average after: %s" % " ".join(loads()))
    print("JSON lines of this run: %s" % keep.name)
    print("| workload | binary | median | range | CPU s (median) | ratio to %s |" % bins[0][0])
    print("|---|---|---|---|---|---|")
    for w in a.workload:
        wname = w.split("=", 1)[0]
        mode = res[(wname, bins[0][0])][0]["mode"]
        keys = a.key or [{"throughput": "msgs_per_sec", "latency": "p50_us",
                          "snapshot": "mb_per_sec", "hbload": "p99_us"}[mode]]
        for key in keys:
            first = None
            if any(key not in r for bname, _ in bins for r in res[(wname, bname)]):
                continue  # not a key of this workload's mode
            for bname, _ in bins:
                rs = res[(wname, bname)]
                vals = [r[key] for r in rs]
                med = statistics.median(vals)
                first = med if first is None else first
                cpu = statistics.median(r.get("cpu_seconds", 0) for r in rs)
                ratio = "%.2fx" % (med / first) if first else "-"
                print("| %s | %s | %.1f %s | %.1f-%.1f | %.3f | %s |" % (
                    wname, bname, med, key, min(vals), max(vals), cpu, ratio))


if __name__ == "__main__":
    main()
