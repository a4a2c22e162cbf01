#!/usr/bin/env bash
# Runs the conformance runner against one implementation's node, started
# with the suite's configuration (proto/CONFORMANCE.md):
#   run_conformance.sh RUNNER cpp|go|py NODE_FILE [RUNNER_FLAGS...]
# cpp: NODE_FILE is the cpp_node binary; go: any file of the Go node's
# package (built here, GOPATH mode, from Debian's Go packages); py:
# py_node.py (stubs generated here from proto/). Fails if any case fails,
# or if the language's toolchain is missing (./bazelw installs it).
set -euo pipefail
runner=$1 lang=$2 node=$3
shift 3
work=${TEST_TMPDIR:-$(mktemp -d)}
config="--listen=127.0.0.1:0 --id=1 --cluster-id=c1 --peer=2=http://{RUNNER} --removed=3 --dir={DIR}"
case $lang in
  cpp)
    cmd="$node $config"
    ;;
  go)
    command -v go >/dev/null || { echo "go not installed: ./bazelw installs golang-go" >&2; exit 1; }
    src=$work/go_node_src
    mkdir -p "$src"
    cp "$(dirname "$node")"/*.go "$src/"
    # GOPATH mode against Debian's /usr/share/gocode: nothing is downloaded.
    (cd "$src" && GO111MODULE=off GOFLAGS= GOPATH=/usr/share/gocode GOCACHE=$work/gocache \
      go build -o "$work/go_node" .)
    cmd="$work/go_node $config"
    ;;
  py)
    py=/usr/bin/python3
    "$py" -c 'import grpc, google.protobuf' ||
      { echo "python3-grpcio not installed: ./bazelw installs it" >&2; exit 1; }
    stubs=$work/py_stubs
    mkdir -p "$stubs"
    root=${TEST_SRCDIR:-.}/raft_grpc_transport
    (cd "$root" && protoc -I. --python_out="$stubs" --grpc_out="$stubs" \
      --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
      proto/raftpb/raft.proto proto/transport.proto)
    cmd="$py $node --stubs=$stubs $config"
    ;;
  *)
    echo "unknown language $lang" >&2
    exit 2
    ;;
esac
exec "$runner" "--exec=$cmd" "$@"
