#!/usr/bin/env bash
# Side by side with etcd's own transport: builds transport_bench (-c opt)
# and ../shared/bench/etcd-anchor (etcd 3.4's rafthttp, Go), then runs
# every etcd-anchor workload R times (default 5) through its compare.sh,
# which interleaves the binaries (etcd; ours with glibc's defaults; ours
# with each heap setting README gives for a node, --glibc-heap=kept and
# --glibc-heap=huge; and huge with --one-callback-thread=1, README's
# latency setting) and prints medians with ratios.
# Prints the date and load average around the run: only ratios from one
# such run count (the machines drift 2x from day to day). Run nothing else
# heavy meanwhile.
# Then draws bench/compare.png (bench/plot_compare.py; gnuplot-nox):
# etcd, glibc's defaults, and the heap on huge pages with one callback
# thread.
# Usage: bench/run_all.sh [R]   (needs golang-go, golang-etcd-server-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-5}
ANCHOR=${ANCHOR:-$(cd ../shared/bench/etcd-anchor && pwd)}
./bazelw build -c opt //bench:transport_bench >/dev/null 2>&1
B=$(./bazelw info -c opt bazel-bin 2>/dev/null)/bench/transport_bench
E=$("$ANCHOR/build.sh" | tail -1)
echo "date: $(date -u '+%F %R UTC'), runs per workload: $R, $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$(mktemp -d)
# Ours four times: with glibc's defaults, with each heap setting README
# gives for a node (--glibc-heap=kept, and =huge, its first choice), and
# with huge and one callback thread (transport/callback_threads.h);
# compare.sh names each by its file, and passes all the same flags, hence
# the wrappers.
mkdir -p "$results/bin"
wrap() {  # name, flags
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$B" "$2" >"$results/bin/transport_bench-$1"
  chmod +x "$results/bin/transport_bench-$1"
}
wrap heap-kept --glibc-heap=kept
wrap heap-huge --glibc-heap=huge
wrap heap-huge-one-thread "--glibc-heap=huge --one-callback-thread=1"
RESULTS=$results "$ANCHOR/compare.sh" -r "$R" "$E" "$B" \
  "$results"/bin/transport_bench-heap-{kept,huge,huge-one-thread}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if command -v gnuplot >/dev/null; then
  python3 bench/plot_compare.py "$results" bench/compare.png etcd-peer-bench transport_bench \
    transport_bench-heap-huge-one-thread "heap on huge pages, one callback thread"
else
  echo "no gnuplot (Debian's gnuplot-nox): bench/compare.png not drawn"
fi
echo "JSON lines of this run: $results"
