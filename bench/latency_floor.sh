#!/usr/bin/env bash
# The heartbeat round trip, side by side: etcd 3.4's rafthttp, ours (two
# processes, and --one-process as etcd runs), and bare gRPC on one stream
# with no transport logic (grpc_pingpong: callback API both ends, sync API
# both ends, and the async completion-queue API both ends, each polled by
# the thread that waits, in one process and in two, and in two with each
# polling thread spinning up to 50 µs before it blocks; and the callback
# API with a thread of the client's own polling all the time; and the
# async API in two processes with an idle callback-API server beside the
# client, as a node has; and two processes shaped as two nodes, every call
# on the async API, alone, with an idle callback-API server in each, and
# with a second, idle queue of its own polled in each, grpc_pingpong
# --node). etcd-anchor's latency workload and flags (--mode=latency
# --n=20000), R rounds interleaved (default 5), medians and ratios to etcd.
# Only ratios from one such run count; run nothing else heavy meanwhile.
# PIN=<cpu> runs every binary under taskset on that one CPU: how much of a
# round trip is threads woken on the other CPU (costly on a VM).
# Usage: [PIN=0] bench/latency_floor.sh [R]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-5}
ANCHOR=${ANCHOR:-$(cd ../shared/bench/etcd-anchor && pwd)}
./bazelw build -c opt //bench:transport_bench //bench:grpc_pingpong >/dev/null 2>&1
bin=$(./bazelw info -c opt bazel-bin 2>/dev/null)/bench
E=$("$ANCHOR/build.sh" | tail -1)
out=$(mktemp -d)
echo "date: $(date -u '+%F %R UTC'), rounds: $R, $(nproc) cores, commit $(git rev-parse --short HEAD)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
pin=()
if [[ -n "${PIN:-}" ]]; then
  pin=(taskset -c "$PIN")
  echo "every binary pinned to CPU $PIN"
fi
names=(etcd ours ours_one_process grpc_callback grpc_sync grpc_async grpc_async_fork
  grpc_async_fork_spin50 grpc_callback_fork_assist grpc_async_fork_mixed grpc_async_node
  grpc_async_node_mixed grpc_async_node_idle_queue)
cmds=("$E" "$bin/transport_bench" "$bin/transport_bench --one-process"
  "$bin/grpc_pingpong --server=callback --client=callback"
  "$bin/grpc_pingpong --server=sync --client=sync"
  "$bin/grpc_pingpong --server=async --client=async"
  "$bin/grpc_pingpong --server=async --client=async --fork"
  "$bin/grpc_pingpong --server=async --client=async --fork --spin-us=50"
  "$bin/grpc_pingpong --server=callback --client=callback --fork --assist=client"
  "$bin/grpc_pingpong --server=async --client=async --fork --mixed"
  "$bin/grpc_pingpong --node" "$bin/grpc_pingpong --node --mixed"
  "$bin/grpc_pingpong --node --idle-queue")
for _ in $(seq "$R"); do
  for k in "${!names[@]}"; do
    # shellcheck disable=SC2086
    "${pin[@]}" ${cmds[$k]} --mode=latency --n=20000 --json --label=latency | grep '^{' >>"$out/${names[$k]}.jsonl"
    sleep 1
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "${names[@]}" <<'PY'
import json, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
rows = {}
for n in names:
    rs = [json.loads(l) for l in open("%s/%s.jsonl" % (out, n)) if l.strip()]
    rows[n] = {k: statistics.median(r[k] for r in rs) for k in ("p50_us", "p99_us", "cpu_us_per_msg")}
    rows[n]["range"] = "%.1f-%.1f" % (min(r["p50_us"] for r in rs), max(r["p50_us"] for r in rs))
e = rows[names[0]]
print("| binary | p50 µs (range) | p99 µs | CPU µs per round trip | p50 / etcd | p99 / etcd |")
print("|---|---|---|---|---|---|")
for n in names:
    r = rows[n]
    cpu = "%.1f" % r["cpu_us_per_msg"] if r["cpu_us_per_msg"] > 0 else "-"
    print("| %s | %.1f (%s) | %.1f | %s | %.2fx | %.2fx |" % (
        n, r["p50_us"], r["range"], r["p99_us"], cpu, r["p50_us"] / e["p50_us"], r["p99_us"] / e["p99_us"]))
PY
echo "JSON lines: $out"
