#!/usr/bin/env bash
# Under --config=tsan: runs tsan_probe (a deliberate race in each kind of
# reaction) and fails unless TSan reports all three, i.e. unless
# testing/tsan_suppressions.cc still lets races in our reactions through.
# In other builds the probe only has to run.
set -euo pipefail
P=$1
if [[ -z ${TSAN_OPTIONS:-} ]]; then
  "$P"
  echo "not under TSan: the probe ran"
  exit 0
fi
rc=0
out=$(TSAN_OPTIONS="$TSAN_OPTIONS:halt_on_error=0:exitcode=66" "$P" 2>&1) || rc=$?
echo "$out" | grep -E "^WARNING: ThreadSanitizer|#0 .*Probe\(\)|^probe:" | head -40
[[ $rc == 66 ]] || { echo "expected TSan's exit code 66, got $rc" >&2; exit 1; }
for probe in ClientStreamProbe ServerStreamProbe UnaryProbe; do
  grep -q "#0 raftgrpc::(anonymous namespace)::$probe\|#0 $probe" <<<"$out" ||
    { echo "TSan did not report the race in $probe: a suppression hides it" >&2; exit 1; }
done
echo "tsan probe: all three races reported"
