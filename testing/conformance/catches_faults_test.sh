#!/usr/bin/env bash
# The suite can fail: the Python node with four deliberate faults
# (py_node.py --break=...) fails exactly the cases that check them, and a
# control case still passes.
#   catches_faults_test.sh RUN_CONFORMANCE RUNNER PY_NODE
set -uo pipefail
run=$1 runner=$2 node=$3
cases=v3_to_server_every_type,reject_removed_sender,v2_to_server_sequence,snapshot_bad_checksum,probe
out=$(NODE_FLAGS="--break=deliver-link-heartbeats --break=accept-removed --break=v2-stale-index --break=ignore-trailer-crc" \
  "$run" suite "$runner" py "$node" "--cases=$cases")
code=$?
echo "$out"
fail=0
for c in v3_to_server_every_type reject_removed_sender v2_to_server_sequence snapshot_bad_checksum; do
  grep -q "^FAIL $c " <<<"$out" || { echo "MISSED: $c passed against a node broken for it"; fail=1; }
done
grep -q "^PASS probe " <<<"$out" || { echo "the control case (probe) did not pass"; fail=1; }
[[ $code -ne 0 ]] || { echo "the runner exited 0 with failing cases"; fail=1; }
exit $fail
