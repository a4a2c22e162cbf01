#!/usr/bin/python3
"""A Raft peer in Python that speaks raft-grpc-transport's protocol.

Two modes, both using only python3-grpcio and stubs generated from proto/
(--stubs):

The conformance node (proto/CONFORMANCE.md), with --listen: serves both
stream kinds, the pipeline, snapshots and probes, dials its peers' streams
as their reader, and echoes every Raft message back to its sender.
  --listen=HOST:PORT --id=1 --cluster-id=c1 --peer=2=http://HOST:PORT
  --removed=3 --dir=DIR --stubs=DIR
Prints "PORT <n>" once serving; stops when stdin closes.

The interop scenario (without --listen), driven by
testing/interop/interop_test.cc over stdin/stdout, one line each:
  -> "PORT <n>"       our server is up (the C++ node may add us as a peer)
  <- "GO"             the C++ node added us; it sends once our stream is up
  -> "RESULT ok" | "RESULT fail: <why>"
Files in --workdir (4-byte big-endian length + serialized raftpb.Message):
  cpp_to_py.bin   what the C++ node sends us (we compare byte for byte)
  py_to_cpp.bin   what we send it (it compares), py_snapshot.data our snapshot
"""
import argparse
import os
import queue
import struct
import sys
import threading
import time
from concurrent import futures

LOCAL_ID = 2
REMOTE_ID = 1
DEADLINE_S = 20


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--stubs", required=True)
    # The interop scenario.
    p.add_argument("--cpp-port", type=int)
    p.add_argument("--cluster-id", type=lambda s: int(s, 16), default=0xC1)
    p.add_argument("--workdir")
    # The conformance node.
    p.add_argument("--listen")
    p.add_argument("--id", type=lambda s: int(s, 16), default=1)
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--removed", action="append", default=[], type=lambda s: int(s, 16))
    p.add_argument("--dir")
    p.add_argument("--vectors", help="check the vectors in this directory and exit")
    # Deliberate faults, so that a test can show the runner catches them.
    p.add_argument("--break", dest="breaks", action="append", default=[],
                   choices=["deliver-link-heartbeats", "accept-removed", "v2-stale-index",
                            "ignore-trailer-crc"])
    return p.parse_args()


args = parse_args()
sys.path.insert(0, args.stubs)
import grpc  # noqa: E402
from proto.raftpb import raft_pb2 as raftpb  # noqa: E402
from proto import transport_pb2 as tpb  # noqa: E402
from proto import transport_pb2_grpc as tgrpc  # noqa: E402


def metadata(cluster_id=None, frm=LOCAL_ID):
    """etcd's headers as gRPC metadata: hex IDs, versions, our URL."""
    return (
        ("x-server-from", format(frm, "x")),
        ("x-raft-to", format(REMOTE_ID, "x")),
        ("x-etcd-cluster-id", format(args.cluster_id if cluster_id is None else cluster_id, "x")),
        ("x-server-version", "3.5.0"),
        ("x-min-cluster-version", "3.0.0"),
    )


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), reflected, as the snapshot trailer wants."""
    table = crc32c.table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    crc32c.table.append(c)


def write_records(path, blobs):
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack(">I", len(b)) + b)


def read_records(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def is_link_heartbeat(m):
    return m.type == raftpb.MsgHeartbeat and m.to == 0 and getattr(m, "from") == 0


class Servicer(tgrpc.RaftTransportServicer):
    """What the C++ node calls on us: its readers' streams, probes, and
    (for MsgSnap without data) the pipeline."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Condition()
        self.probes = 0
        self.pipeline = []  # serialized messages received

    def _check(self, context):
        md = dict(context.invocation_metadata())
        if md.get("x-etcd-cluster-id") != format(args.cluster_id, "x"):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "cluster ID mismatch")
        if md.get("x-server-from") != format(REMOTE_ID, "x"):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown sender")

    def MessageStream(self, request_iterator, context):
        # The C++ node receives from us here; we have nothing to send but
        # link heartbeats, which keep its idle timer satisfied.
        self._check(context)
        hb = raftpb.Message(type=raftpb.MsgHeartbeat)
        while context.is_active() and not self.stop.wait(1.0):
            yield tpb.MessageFrame(messages=[hb])

    def MsgAppV2Stream(self, request_iterator, context):
        self._check(context)
        rec = tpb.MsgAppV2Record(link_heartbeat=tpb.LinkHeartbeat())
        while context.is_active() and not self.stop.wait(1.0):
            yield tpb.MsgAppV2Frame(records=[rec])

    def Pipeline(self, request, context):
        self._check(context)
        with self.lock:
            self.pipeline.append(request.message.SerializeToString())
            self.lock.notify_all()
        return tpb.PipelineResponse()

    def Snapshot(self, request_iterator, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this peer takes no snapshots")

    def Probe(self, request, context):
        with self.lock:
            self.probes += 1
            self.lock.notify_all()
        return tpb.ProbeResponse(ok=True, now_unix_nanos=time.time_ns())

    def wait(self, pred):
        with self.lock:
            return self.lock.wait_for(pred, timeout=DEADLINE_S)


def messages_to_send():
    """Every type the pipeline carries, with many fields set."""
    out = []
    for i, t in enumerate([raftpb.MsgHup, raftpb.MsgBeat, raftpb.MsgProp, raftpb.MsgApp,
                           raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp,
                           raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp, raftpb.MsgUnreachable,
                           raftpb.MsgSnapStatus, raftpb.MsgCheckQuorum, raftpb.MsgTransferLeader,
                           raftpb.MsgTimeoutNow, raftpb.MsgReadIndex, raftpb.MsgReadIndexResp,
                           raftpb.MsgPreVote, raftpb.MsgPreVoteResp]):
        m = raftpb.Message(type=t, to=REMOTE_ID, term=7 + i, logTerm=6, index=100 + i,
                           commit=90 + i, reject=(i % 2 == 1), rejectHint=i, context=b"py-%d" % i)
        setattr(m, "from", LOCAL_ID)
        if t in (raftpb.MsgApp, raftpb.MsgProp):
            m.entries.add(Type=raftpb.EntryNormal, Term=7, Index=101 + i, Data=b"\x00\xffpython")
            m.entries.add(Type=raftpb.EntryConfChange, Term=7, Index=102 + i, Data=b"cc")
        out.append(m)
    return out


def main():
    servicer = Servicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    tgrpc.add_RaftTransportServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT %d" % port, flush=True)
    if sys.stdin.readline().strip() != "GO":
        return "no GO from the C++ node"

    channel = grpc.insecure_channel("127.0.0.1:%d" % args.cpp_port)
    stub = tgrpc.RaftTransportStub(channel)
    errors = []

    # 1. C++ -> Python: open the v3 stream (the receiver dials) and read.
    expected = read_records(os.path.join(args.workdir, "cpp_to_py.bin"))
    want_stream = [b for b in expected if raftpb.Message.FromString(b).type != raftpb.MsgSnap]
    want_pipeline = [b for b in expected if raftpb.Message.FromString(b).type == raftpb.MsgSnap]
    got = []
    done = threading.Event()

    def hold_open():
        # Half-closing would end the stream: the sender treats our side
        # closing as the reader going away. Send nothing until done.
        done.wait()
        return
        yield  # a generator

    call = stub.MessageStream(hold_open(), metadata=metadata(), timeout=DEADLINE_S)
    try:
        for frame in call:
            for m in frame.messages:
                if not is_link_heartbeat(m):
                    got.append(m.SerializeToString())
            if len(got) >= len(want_stream):
                break
    finally:
        done.set()
        call.cancel()
    if got != want_stream:
        errors.append("stream: got %d messages, want %d; first mismatch at %s" % (
            len(got), len(want_stream),
            next((i for i, (a, b) in enumerate(zip(got, want_stream)) if a != b), "length")))
    if not servicer.wait(lambda: len(servicer.pipeline) >= len(want_pipeline)):
        errors.append("pipeline: %d of %d messages" % (len(servicer.pipeline), len(want_pipeline)))
    elif sorted(servicer.pipeline) != sorted(want_pipeline):
        errors.append("pipeline: bytes differ")

    # 2. Python -> C++ over the pipeline, one call per message.
    sent = []
    for m in messages_to_send():
        stub.Pipeline(tpb.PipelineRequest(message=m), metadata=metadata(), timeout=DEADLINE_S)
        sent.append(m.SerializeToString())

    # 3. A snapshot over the client stream: header, chunks, CRC-32C trailer.
    data = bytes((i * 131 + (i >> 8)) & 0xFF for i in range(300 * 1024 + 7))
    snap = raftpb.Message(type=raftpb.MsgSnap, to=REMOTE_ID, term=9)
    setattr(snap, "from", LOCAL_ID)
    snap.snapshot.metadata.index = 42
    snap.snapshot.metadata.term = 9
    snap.snapshot.metadata.conf_state.voters.extend([1, 2, 3])

    def frames():
        yield tpb.SnapshotFrame(header=tpb.SnapshotHeader(message=snap, data_size=len(data)))
        for off in range(0, len(data), 64 * 1024):
            yield tpb.SnapshotFrame(chunk=data[off:off + 64 * 1024])
        yield tpb.SnapshotFrame(trailer=tpb.SnapshotTrailer(crc32c=crc32c(data)))

    stub.Snapshot(frames(), metadata=metadata(), timeout=DEADLINE_S)
    sent.append(snap.SerializeToString())
    write_records(os.path.join(args.workdir, "py_to_cpp.bin"), sent)
    with open(os.path.join(args.workdir, "py_snapshot.data"), "wb") as f:
        f.write(data)

    # 4. A wrong cluster ID is refused with FAILED_PRECONDITION, on every RPC kind.
    try:
        stub.Pipeline(tpb.PipelineRequest(message=messages_to_send()[0]),
                      metadata=metadata(cluster_id=0xdead), timeout=DEADLINE_S)
        errors.append("wrong cluster ID accepted on the pipeline")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
            errors.append("wrong cluster ID on the pipeline: %s" % e.code())
    try:
        for _ in stub.MessageStream(iter(()), metadata=metadata(cluster_id=0xdead),
                                    timeout=DEADLINE_S):
            pass
        errors.append("wrong cluster ID accepted on the stream")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
            errors.append("wrong cluster ID on the stream: %s" % e.code())
    # An unknown sender gets NOT_FOUND on the stream, as etcd answers 404.
    try:
        for _ in stub.MessageStream(iter(()), metadata=metadata(frm=0x99), timeout=DEADLINE_S):
            pass
        errors.append("unknown sender accepted on the stream")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            errors.append("unknown sender on the stream: %s" % e.code())

    # 5. The C++ node probes us.
    if not servicer.wait(lambda: servicer.probes >= 2):
        errors.append("no probes from the C++ node")

    servicer.stop.set()
    server.stop(grace=None)
    channel.close()
    return "; ".join(errors)


if __name__ == "__main__" and (args.listen or args.vectors):
    import conformance_node  # noqa: E402  (beside this file)
    sys.exit(conformance_node.run(args, grpc, raftpb, tpb, tgrpc, crc32c))
if __name__ == "__main__":
    try:
        failure = main()
    except Exception as e:  # report, never hang the driver
        failure = "%s: %s" % (type(e).__name__, e)
    print("RESULT ok" if not failure else "RESULT fail: " + failure, flush=True)
    sys.exit(0 if not failure else 1)
