#!/usr/bin/env bash
# Runs the demo binary and requires a clean exit and its final OK line.
set -uo pipefail
out="${TEST_TMPDIR:-/tmp}/demo.out"
"$1" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[[ $rc -eq 0 && "$(tail -n 1 "$out")" == "OK" ]]
