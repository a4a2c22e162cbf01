#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (--config=fuzz, own output base so
# the gcc build stays cached) and runs each for SECONDS (default 60) on a
# scratch copy of its committed seed corpus, two targets at a time
# (FUZZ_JOBS). Fails if any target crashes;
# the crashing input is kept under $OUT (default /tmp/raftgrpc-fuzz).
# Usage: testing/fuzz/run_fuzzers.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=${OUT:-/tmp/raftgrpc-fuzz}
targets=(stream_frame_fuzz metadata_fuzz pipeline_fuzz snapshot_fuzz chunk_frame_fuzz)
base="$HOME/.cache/raft-grpc-transport/fuzz-output-base"

# clang and its sanitizer/libFuzzer runtime are not on a fresh machine.
export BAZELW_EXTRA_PKGS="clang libclang-rt-14-dev"
./bazelw --output_base="$base" build --config=fuzz "${targets[@]/#/\/\/testing\/fuzz:}"
bin=$(./bazelw --output_base="$base" info --config=fuzz bazel-bin 2>/dev/null)

rm -rf "$out"
# One target's run; only a clean one writes $out/$t/verdict (printed below).
fuzz_one() {
  local t=$1
  mkdir -p "$out/$t/corpus" "$out/$t/artifacts"
  cp testing/fuzz/corpus/"$t"/* "$out/$t/corpus/"
  # Leak checking is off: gRPC's process-lifetime singletons look like leaks.
  if ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
     "$bin/testing/fuzz/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$out/$t/artifacts/" "$out/$t/corpus" \
       >"$out/$t/log" 2>&1; then
    { grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$out/$t/log" | tr '\n' ' '
      echo "-> ok, corpus $(ls "$out/$t/corpus" | wc -l) inputs"; } >"$out/$t/verdict"
  fi
}
# Two at a time: each libFuzzer run is one thread, and a one-at-a-time
# run left one of CI's two cores idle for the whole phase.
parallel=${FUZZ_JOBS:-2}
for t in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= parallel )); do wait -n || true; done
  echo "::: fuzzing $t for ${secs}s"
  fuzz_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
  if [[ -s "$out/$t/verdict" ]]; then
    echo "$t: $(cat "$out/$t/verdict")"
  else
    status=1
    echo "-> CRASH in $t; input and log under $out/$t" >&2
    tail -40 "$out/$t/log" >&2 || true
  fi
done
# The fuzz Bazel server is not needed after this; free its memory.
./bazelw --output_base="$base" shutdown
exit $status
