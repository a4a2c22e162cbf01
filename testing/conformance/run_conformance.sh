#!/usr/bin/env bash
# One implementation's node against the conformance suite, or against the
# vectors:
#   run_conformance.sh suite RUNNER cpp|go|py NODE_FILE [RUNNER_FLAGS...]
#   run_conformance.sh vectors VECTOR_FILE go|py NODE_FILE
# The node is started with the suite's configuration (proto/CONFORMANCE.md).
# cpp: NODE_FILE is the cpp_node binary; go: any file of the Go node's
# package (built here, GOPATH mode, from Debian's Go packages); py:
# py_node.py (stubs generated here from proto/). Fails if any case fails,
# or if the language's toolchain is missing (./bazelw installs it).
# NODE_FLAGS (environment) adds flags to the node's command line.
set -euo pipefail
mode=$1 tool=$2 lang=$3 node=$4
shift 4
work=${TEST_TMPDIR:-$(mktemp -d)}
case $lang in
  cpp)
    cmd=("$node")
    ;;
  go)
    command -v go >/dev/null || { echo "go not installed: ./bazelw installs golang-go" >&2; exit 1; }
    src=$work/go_node_src
    mkdir -p "$src"
    cp "$(dirname "$node")"/*.go "$src/"
    # GOPATH mode against Debian's /usr/share/gocode: nothing is downloaded.
    (cd "$src" && GO111MODULE=off GOFLAGS= GOPATH=/usr/share/gocode GOCACHE=$work/gocache \
      go build -o "$work/go_node" .)
    cmd=("$work/go_node")
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
    cmd=("$py" "$node" "--stubs=$stubs")
    ;;
  *)
    echo "unknown language $lang" >&2
    exit 2
    ;;
esac
case $mode in
  suite)
    exec "$tool" "--exec=${cmd[*]} ${NODE_FLAGS:-} --listen=127.0.0.1:0 --id=1 --cluster-id=c1 --peer=2=http://{RUNNER} --removed=3 --dir={DIR}" "$@"
    ;;
  vectors)
    exec "${cmd[@]}" "--vectors=$(dirname "$tool")"
    ;;
esac
echo "unknown mode $mode" >&2
exit 2
