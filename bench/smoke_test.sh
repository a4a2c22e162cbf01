#!/usr/bin/env bash
# Smoke test: every transport_bench mode, and grpc_pingpong's shapes, run
# and print their JSON keys. It asserts nothing about speed (performance
# is measured, not tested).
set -euo pipefail
B=$1
check() {  # keys..., then -- and the command
  local keys=()
  while [[ $1 != -- ]]; do keys+=("$1"); shift; done
  shift
  out=$("$@" --json)
  echo "$out"
  for k in mode n seconds "${keys[@]}"; do
    grep -q "\"$k\":" <<<"$out" || { echo "missing $k in: $out" >&2; exit 1; }
  done
}
check msgs_per_sec mb_per_sec cpu_us_per_msg dropped max_rss_mib -- "$B" --mode=throughput --n=20000 --size=128 --warmup=1000
check msgs_per_sec -- "$B" --mode=throughput --n=20000 --size=128 --baseline
check p50_us p99_us max_us -- "$B" --mode=latency --n=300
check p50_us p99_us -- "$B" --mode=latency --n=300 --baseline
check mb_per_sec peak_rss_kb -- "$B" --mode=snapshot --size=4
check p50_us p99_us p999_us max_us -- "$B" --mode=hbload --load=0 --hb=100 --label=idle
check p99_us flood_msgs_per_sec snap_mb_per_sec -- "$B" --mode=hbload --load=1 --hb=100 --snap-mib=4
check mb_per_sec -- "$B" --mode=snapshot --size=4 --baseline
check threads peak_rss_kb -- "$B" --mode=peers --peers=5
# The node's heap setting is applied (mallopt accepted it) and reported.
# Under ASan or TSan the heap is the sanitizer's, which refuses mallopt:
# the tool must say so (exit 3), and only there.
for heap in kept huge; do
  rc=0
  out=$("$B" --mode=throughput --n=20000 --size=128 --warmup=1000 --glibc-heap=$heap --json) || rc=$?
  if [[ $rc == 3 && -n ${ASAN_OPTIONS:-}${TSAN_OPTIONS:-} ]]; then
    echo "--glibc-heap=$heap: not glibc's heap under a sanitizer, as expected"
  elif [[ $rc != 0 ]]; then
    echo "--glibc-heap=$heap failed with $rc" >&2
    exit 1
  else
    grep -q "\"glibc_heap\":\"$heap\"" <<<"$out" || { echo "--glibc-heap=$heap not reported: $out" >&2; exit 1; }
    if [[ $heap == huge ]]; then
      grep -q '"thp":"' <<<"$out" || { echo "--glibc-heap=huge: no THP mode in: $out" >&2; exit 1; }
    fi
  fi
done
# Snapshot results say how the receiver wrote: adaptive by default.
out=$("$B" --mode=snapshot --size=4 --json)
grep -q '"snapshot_io":"adaptive"' <<<"$out" || { echo "default not adaptive: $out" >&2; exit 1; }
out=$("$B" --mode=snapshot --size=4 --adaptive-io=0 --json)
grep -q '"snapshot_io":"buffered"' <<<"$out" || { echo "--adaptive-io=0 not buffered: $out" >&2; exit 1; }
out=$("$B" --mode=snapshot --size=4 --direct-io=1 --json)
grep -q '"snapshot_io":"direct"' <<<"$out" || { echo "--direct-io=1 not direct: $out" >&2; exit 1; }
if "$B" --mode=throughput --n=10 --glibc-heap=other --json 2>/dev/null; then
  echo "--glibc-heap=other was accepted" >&2
  exit 1
fi
# grpc_pingpong (bench/latency_floor.sh's bare-gRPC rows): each shape runs
# and prints the keys latency_floor.sh reads.
P=$2
for shape in "--server=callback --client=callback" "--server=sync --client=sync --fork" \
  "--server=async --client=async --fork --mixed" "--node" "--node --mixed --spin-us=20" "--node --idle-queue"; do
  # shellcheck disable=SC2086
  out=$(timeout 120 "$P" $shape --n=300 --warmup=30 --mode=latency --json)
  echo "$out"
  for k in p50_us p99_us cpu_us_per_msg; do
    grep -q "\"$k\":" <<<"$out" || { echo "grpc_pingpong $shape: missing $k in: $out" >&2; exit 1; }
  done
done
echo "smoke: ok"
