#!/usr/bin/env bash
# The monorepo case, end to end: builds and runs the node against this
# workspace's own gRPC, protobuf and abseil, then proves with bazel query
# that raft_grpc_transport resolves to them and that none of its dependency
# stand-ins exists here. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
bazel run //:node

status=0
# 1. Each canonical repository is the monorepo's own (third_party/).
for repo in com_google_protobuf com_github_grpc_grpc com_google_absl com_google_googletest \
            com_github_google_benchmark; do
  def=$(bazel query --output=build "//external:$repo" 2>/dev/null)
  if ! grep -q 'path = "third_party/' <<<"$def"; then
    echo "monorepo: @$repo is not the monorepo's own:" >&2
    echo "$def" >&2
    status=1
  fi
done
# 2. raft_grpc_transport_deps() defined none of its dependency stand-ins.
if bazel query --output=label_kind '//external:*' 2>/dev/null |
     grep -E '^_(protobuf|grpc|absl|flags)_repo rule'; then
  echo "monorepo: a raft_grpc_transport stand-in repository is in the graph" >&2
  status=1
fi
# 3. What the library's graph reaches, for the log; gRPC must be among it.
repos=$(bazel query 'deps(@raft_grpc_transport//transport)' --output=package 2>/dev/null |
          sed -n 's|^@\([^/]*\)//.*|\1|p' | sort -u)
echo "monorepo: @raft_grpc_transport//transport depends on repositories:" $repos
grep -qx com_github_grpc_grpc <<<"$repos" || { echo "monorepo: no gRPC in the graph?" >&2; status=1; }
[[ $status -eq 0 ]] && echo "monorepo: every dependency resolves to the monorepo's own repositories"
exit $status
