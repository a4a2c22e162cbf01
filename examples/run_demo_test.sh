#!/usr/bin/env bash
# Runs the demo binary and requires a clean exit and its final OK line.
set -euo pipefail
out=$("$1")
echo "$out"
[[ "$(tail -n 1 <<<"$out")" == "OK" ]]
