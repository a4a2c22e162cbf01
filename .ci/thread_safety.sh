#!/usr/bin/env bash
# Builds every library of peer/ and transport/ with clang and
# -Werror=thread-safety (.bazelrc's --config=thread_safety), in its own
# output base so that the gcc build stays cached. Fails on any lock
# annotation violation (a guarded field touched without its mutex, a
# *Locked function called without it, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
base="$HOME/.cache/raft-grpc-transport/thread-safety-output-base"
export BAZELW_EXTRA_PKGS="clang"
targets=$(./bazelw --output_base="$base" query 'kind(cc_library, //peer/... + //transport/...)' 2>/dev/null)
status=0
./bazelw --output_base="$base" build --keep_going --config=thread_safety $targets || status=$?
./bazelw --output_base="$base" shutdown
exit $status
