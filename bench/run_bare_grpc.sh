#!/usr/bin/env bash
# Our workloads against bare gRPC (not etcd), interleaved R times (default
# 5): medians and the ratio to the baseline from the same run. A ceiling for
# our own overhead; its throughput frames are batched as our writer's.
# Usage: bench/run_bare_grpc.sh [R]   (from anywhere; builds with -c opt)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-5}
./bazelw build -c opt //bench:transport_bench //bench:micro_bench >/dev/null 2>&1
B=$(./bazelw info -c opt bazel-bin 2>/dev/null)/bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # name, args...
  local name=$1
  shift
  # Order alternates (ABBA...) so neither side always runs right after the
  # other's disk writes; sync starts each run with no foreign dirty pages.
  for i in $(seq "$R"); do
    if ((i % 2)); then
      sync; "$B/transport_bench" "$@" --json >>"$tmp/$name.transport"
      sync; "$B/transport_bench" "$@" --json --baseline >>"$tmp/$name.baseline"
    else
      sync; "$B/transport_bench" "$@" --json --baseline >>"$tmp/$name.baseline"
      sync; "$B/transport_bench" "$@" --json >>"$tmp/$name.transport"
    fi
  done
}
run throughput --mode=throughput --n=1000000 --size=128
run latency --mode=latency --n=20000
run snapshot256 --mode=snapshot --size=256
run snapshot1g --mode=snapshot --size=1024
# The same on tmpfs: disk writeback varies by +-40% between runs and hides
# the transport's own cost; RAM shows it.
TMPDIR=/dev/shm run snapshot1g_tmpfs --mode=snapshot --size=1024
"$B/transport_bench" --mode=peers --peers=200 --json >"$tmp/peers.transport"
"$B/micro_bench" --benchmark_min_time=0.3 --benchmark_format=json >"$tmp/micro.json" 2>/dev/null

/usr/bin/python3 - "$tmp" "$R" <<'PY'
import json, os, platform, statistics, subprocess, sys
tmp, R = sys.argv[1], sys.argv[2]
def load(name, kind):
    with open(os.path.join(tmp, f"{name}.{kind}")) as f:
        return [json.loads(l) for l in f if l.strip()]
def med(rows, key):
    return statistics.median(r[key] for r in rows)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}, loopback. "
      f"Medians of {R} interleaved runs.\n")
print("| workload | metric | transport | bare gRPC | ratio |")
print("|---|---|---|---|---|")
def row(name, label, key, fmt, higher_better=True):
    t, b = med(load(name, "transport"), key), med(load(name, "baseline"), key)
    print(f"| {label} | {key} | {fmt.format(t)} | {fmt.format(b)} | {t / b:.2f}x |")
row("throughput", "MsgApp 128 B, 1M msgs", "msgs_per_sec", "{:,.0f}")
row("throughput", "MsgApp 128 B, 1M msgs", "mb_per_sec", "{:.1f}")
for k in ("p50_us", "p90_us", "p99_us", "max_us"):
    row("latency", "heartbeat ping-pong, 20k", k, "{:.0f}")
row("snapshot256", "snapshot 256 MiB to disk", "mb_per_sec", "{:.0f}")
row("snapshot1g", "snapshot 1 GiB to disk", "mb_per_sec", "{:.0f}")
row("snapshot1g_tmpfs", "snapshot 1 GiB to tmpfs", "mb_per_sec", "{:.0f}")
for side in ("sender_peak_rss_kb", "receiver_peak_rss_kb"):
    t = max(r[side] for r in load("snapshot1g", "transport"))
    b = max(r[side] for r in load("snapshot1g", "baseline"))
    print(f"| snapshot 1 GiB (max of runs) | {side} | {t:,} | {b:,} | - |")
p = load("peers", "transport")[0]
print(f"| 200 idle peers on node 1 | threads added / RSS added (kB) | {p['threads']} / {p['peak_rss_kb']:,} | - | - |")
print("\nMicrobenchmarks (Google Benchmark, ns per op):\n")
print("| benchmark | ns/op | note |")
print("|---|---|---|")
for b in json.load(open(os.path.join(tmp, "micro.json")))["benchmarks"]:
    note = ""
    if "allocs_per_send" in b:
        note = f"heap allocations per send: {b['allocs_per_send']:.3f}"
    elif "items_per_second" in b:
        note = f"{b['items_per_second'] / 1e6:.1f} M items/s"
    print(f"| {b['name']} | {b['real_time']:.1f} | {note} |")
PY
