#!/usr/bin/env bash
# Fails unless README ($2) recommends exactly the tunables the huge-heap
# twins run under ($1, HUGE_HEAP_TUNABLES): a drift on either side would
# leave the suites testing a setting README does not give.
set -euo pipefail
if ! grep -qF "GLIBC_TUNABLES=$1\`" "$2"; then
  echo "README does not give GLIBC_TUNABLES=$1 (testing/huge_heap.bzl)" >&2
  exit 1
fi
echo "README gives GLIBC_TUNABLES=$1"
