#!/usr/bin/env bash
# Runs the conformance runner (first argument) with the rest of the
# arguments; the test fails if any case does.
set -euo pipefail
exec "$@"
