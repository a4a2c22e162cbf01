#!/usr/bin/env bash
# The public/internal line, as a consumer workspace sees it: //transport,
# //peer:raft and //testing build; peer/ and transport/'s subfolders are
# refused by Bazel's visibility check. Run from anywhere; used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
probe=visibility_probe
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe"
cat >"$probe/BUILD.bazel" <<'BUILD'
cc_library(
    name = "public",
    deps = [
        "@raft_grpc_transport//peer:raft",
        "@raft_grpc_transport//testing:cluster",
        "@raft_grpc_transport//transport",
    ],
)
[cc_library(
    name = "internal_" + str(i),
    deps = [dep],
) for i, dep in enumerate([
    "@raft_grpc_transport//peer",
    "@raft_grpc_transport//transport/internal",
    "@raft_grpc_transport//transport/pipeline",
    "@raft_grpc_transport//transport/server",
    "@raft_grpc_transport//transport/snapshot",
    "@raft_grpc_transport//transport/stream",
])]
BUILD
bazel build "//$probe:public"
status=0
for i in 0 1 2 3 4 5; do
  if out=$(bazel build "//$probe:internal_$i" 2>&1); then
    echo "visibility: //$probe:internal_$i built, but its dependency is internal" >&2
    status=1
  elif ! grep -q "is not visible from target" <<<"$out"; then
    echo "visibility: //$probe:internal_$i failed for another reason:" >&2
    echo "$out" | tail -5 >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "visibility: public targets build; 6 internal libraries refused"
exit $status
