#!/usr/bin/env bash
# Runs the test binary $1 under the GLIBC_TUNABLES its target sets
# (testing/huge_heap.bzl), after checking that glibc took each value: a
# glibc that ignored them would run the suite on its default heap, and
# the test would pass for one on huge pages.
set -euo pipefail
: "${GLIBC_TUNABLES:?not set (the test target sets it)}"
ldso=$(ldd "$1" 2>/dev/null | awk '/ld-linux/ {print $1; exit}') || true  # none: run as is
if [[ -x "$ldso" ]] && seen=$("$ldso" --list-tunables 2>/dev/null); then  # glibc >= 2.33
  IFS=: read -ra pairs <<<"$GLIBC_TUNABLES"
  for pair in "${pairs[@]}"; do
    name=${pair%%=*}
    value=${pair#*=}
    hex=$(printf '0x%x' "$value")
    line=$(grep "^$name: " <<<"$seen" || true)
    if [[ -z "$line" ]]; then
      echo "note: this glibc has no $name; the rest of the setting applies"
    elif [[ "$line" != "$name: $hex "* && "$line" != "$name: $value "* ]]; then
      echo "glibc did not take $pair: $line" >&2
      exit 1
    else
      echo "$line"
    fi
  done
fi
exec "$@"
