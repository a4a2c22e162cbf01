"""The conformance node in Python (proto/CONFORMANCE.md): run through
py_node.py --listen=... (which parses the flags and loads the stubs).

A complete peer of raft-grpc-transport: it serves both stream kinds (as
their writer), the pipeline, snapshots and probes; it dials its peers'
streams (as their reader); it sends as etcd's pick does (MsgApp on the v2
stream, the rest on the v3 stream, the pipeline when no stream is up).
Its Raft echoes every message back to the sender.
"""
import os
import queue
import sys
import tempfile
import threading
import time
from concurrent import futures

SERVER_VERSION = "3.5.0"
MIN_VERSION = "3.0.0"
READ_TIMEOUT_S = 5.0
HEARTBEAT_S = READ_TIMEOUT_S / 3
MAX_MESSAGE = 2 * 1024 * 1024 + 400 * 1024
FAIL_CONTEXT = b"conformance-fail"

class Abort(Exception):
    def __init__(self, code, msg, trailer=None):
        super().__init__(msg)
        self.code, self.msg, self.trailer = code, msg, trailer


def parse_id(s):
    """1 to 16 hex digits, as etcd writes IDs; no sign, prefix or spaces."""
    if not s or len(s) > 16 or any(c not in "0123456789abcdefABCDEF" for c in s):
        return None
    return int(s, 16)


def parse_version(s):
    """major * 1000 + minor of "X.Y[.anything]", each 1 to 3 digits; a
    missing version is 2.0.0, as etcd assumes. None when malformed."""
    if not s:
        return 2000
    p = s.split(".", 2)
    if len(p) < 2 or not all(1 <= len(x) <= 3 and all(c in "0123456789" for c in x) for x in p[:2]):
        return None
    return int(p[0]) * 1000 + int(p[1])


def validate_md(md, cluster, codes):
    """Versions, cluster ID, sender, in etcd's order: the sender, or Abort."""
    sv = parse_version(md.get("x-server-version", ""))
    mv = parse_version(md.get("x-min-cluster-version", ""))
    if sv is None or mv is None:
        raise Abort(codes.INVALID_ARGUMENT, "malformed version")
    if sv < parse_version(MIN_VERSION) or mv > parse_version(SERVER_VERSION):
        raise Abort(codes.FAILED_PRECONDITION, "incompatible version")
    if parse_id(md.get("x-etcd-cluster-id", "")) != cluster:
        raise Abort(codes.FAILED_PRECONDITION, "cluster ID mismatch")
    frm = parse_id(md.get("x-server-from", ""))
    if not frm:
        raise Abort(codes.INVALID_ARGUMENT, "invalid from")
    if md.get("x-raft-to") and parse_id(md["x-raft-to"]) is None:
        raise Abort(codes.INVALID_ARGUMENT, "invalid to")
    return frm


def check_body(m, frm, local, codes):
    """A member speaks only for itself, to us."""
    if getattr(m, "from") != frm:
        raise Abort(codes.PERMISSION_DENIED,
                    "message from %x in a request from %x" % (getattr(m, "from"), frm))
    if m.to != local:
        raise Abort(codes.PERMISSION_DENIED, "message to %x sent to member %x" % (m.to, local))


def is_link_heartbeat(raftpb, m):
    return m.type == raftpb.MsgHeartbeat and m.to == 0 and getattr(m, "from") == 0


class V2Encoder:
    """etcd's msgappv2 encoder state: (term, index), zero at stream start."""

    def __init__(self):
        self.term = self.index = 0

    def encode(self, raftpb, m, r):
        """Fills the MsgAppV2Record r for message m."""
        if is_link_heartbeat(raftpb, m):
            r.link_heartbeat.SetInParent()
        elif m.index == self.index and m.logTerm == self.term and m.logTerm == m.term:
            r.app_entries.entries.extend(m.entries)
            r.app_entries.commit = m.commit
            self.index += len(m.entries)
        else:
            r.app.CopyFrom(m)
            self.term = m.term
            self.index = m.entries[-1].Index if m.entries else m.index


class V2Decoder:
    """The reader's side: rebuilds what app_entries leaves out."""

    def __init__(self, frm, to, stale_index=False):
        self.frm, self.to, self.term, self.index = frm, to, 0, 0
        self.stale_index = stale_index  # a deliberate fault (--break)

    def decode(self, raftpb, r):
        k = r.WhichOneof("kind")
        if k == "link_heartbeat":
            return raftpb.Message(type=raftpb.MsgHeartbeat)
        if k == "app_entries":
            m = raftpb.Message(type=raftpb.MsgApp, to=self.to, term=self.term, logTerm=self.term,
                               index=self.index, commit=r.app_entries.commit)
            setattr(m, "from", self.frm)
            m.entries.extend(r.app_entries.entries)
            if not self.stale_index:
                self.index += len(r.app_entries.entries)
            return m
        if k == "app" and r.app.type == raftpb.MsgApp:
            self.term = r.app.term
            self.index = r.app.entries[-1].Index if r.app.entries else r.app.index
            return r.app
        raise ValueError("v2 record %s is not a MsgApp" % k)


def run(args, grpc, raftpb, tpb, tgrpc, crc32c):
    if args.vectors:
        import vectors  # noqa: E402  (beside this file)
        return vectors.check(args.vectors, raftpb, tpb)

    peers = {}
    for p in args.peer:
        pid, url = p.split("=", 1)
        peers[int(pid, 16)] = url.split("://", 1)[-1]
    removed = set(args.removed)
    local = args.id

    class Writer:
        def __init__(self):
            self.q = queue.Queue(maxsize=4096)
            self.done = threading.Event()

    lock = threading.Lock()
    outgoing = {p: {} for p in peers}  # peer -> "v3"/"v2" -> Writer
    receiving = {}  # sender -> its open snapshot's "replaced" event
    partials = {}  # sender -> its kept snapshot prefix: key (index, term, size), offset, path
    pipeq = {p: queue.Queue(maxsize=4096) for p in peers}
    channels = {p: grpc.insecure_channel(a, options=[("grpc.max_receive_message_length", 16 << 20)])
                for p, a in peers.items()}
    stubs = {p: tgrpc.RaftTransportStub(c) for p, c in channels.items()}
    stopping = threading.Event()

    def out_md(to):
        return (("x-server-from", format(local, "x")), ("x-raft-to", format(to, "x")),
                ("x-etcd-cluster-id", format(args.cluster_id, "x")),
                ("x-server-version", SERVER_VERSION), ("x-min-cluster-version", "3.0.0"))

    # ---- sending: etcd's pick ----
    def send(m):
        to = m.to
        if to not in peers:
            return  # not a peer: dropped
        with lock:
            ws = outgoing[to]
            w = ws.get("v2") if m.type == raftpb.MsgApp else None
            if w is None and m.type != raftpb.MsgSnap:
                w = ws.get("v3")
        try:
            if w is not None and not w.done.is_set():
                w.q.put_nowait(m)
            else:
                pipeq[to].put_nowait(m)
        except queue.Full:
            print("py_node: queue to %x full: dropped (unreachable)" % to, file=sys.stderr)

    def pipeline_worker(peer):
        while not stopping.is_set():
            try:
                m = pipeq[peer].get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                stubs[peer].Pipeline(tpb.PipelineRequest(message=m), metadata=out_md(peer), timeout=5)
            except grpc.RpcError as e:
                print("py_node: pipeline to %x: %s" % (peer, e.code()), file=sys.stderr)

    # ---- the echo Raft ----
    def process(m):
        if m.context == FAIL_CONTEXT:
            raise RuntimeError("conformance: Process fails")
        echo = raftpb.Message()
        echo.CopyFrom(m)
        sender = getattr(m, "from")
        setattr(echo, "from", local)
        if sender == 0:  # a link heartbeat must never get here: tell every peer
            for p in peers:
                echo.to = p
                send(echo)
            return
        echo.to = sender
        send(echo)

    # ---- identity checks, in etcd's order ----
    breaks = set(args.breaks)

    def validate(context):
        md = dict(context.invocation_metadata())
        frm = validate_md(md, args.cluster_id, grpc.StatusCode)
        if frm in removed and "accept-removed" not in breaks:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED,
                        "the member has been permanently removed from the cluster",
                        (("raft-error", "removed-member"),))
        return frm, md

    def abort(context, a):
        if a.trailer:
            context.set_trailing_metadata(a.trailer)
        context.abort(a.code, a.msg)

    class Servicer(tgrpc.RaftTransportServicer):
        def _stream(self, request_iterator, context, kind):
            try:
                frm, md = validate(context)
                if frm not in peers:
                    raise Abort(grpc.StatusCode.NOT_FOUND, "error sender not found")
                if md.get("x-raft-to") != format(local, "x"):
                    raise Abort(grpc.StatusCode.FAILED_PRECONDITION, "to field mismatch")
            except Abort as a:
                abort(context, a)
            context.send_initial_metadata((("x-server-version", SERVER_VERSION),))
            w = Writer()
            with lock:
                old = outgoing[frm].get(kind)
                if old is not None:
                    old.done.set()  # a new call replaces the old one
                outgoing[frm][kind] = w

            def drain_client():  # half-close or cancel ends the stream
                try:
                    for _ in request_iterator:
                        pass
                except Exception:
                    pass
                w.done.set()
            threading.Thread(target=drain_client, daemon=True).start()
            context.add_callback(w.done.set)
            enc = V2Encoder()
            try:
                while not w.done.is_set() and not stopping.is_set():
                    batch = []
                    try:
                        batch.append(w.q.get(timeout=HEARTBEAT_S))
                        while len(batch) < 1024:
                            batch.append(w.q.get_nowait())
                    except queue.Empty:
                        pass
                    if not batch:
                        batch = [raftpb.Message(type=raftpb.MsgHeartbeat)]  # link heartbeat
                    if w.done.is_set():
                        break
                    if kind == "v3":
                        yield tpb.MessageFrame(messages=batch)
                        continue
                    f = tpb.MsgAppV2Frame()
                    for m in batch:
                        enc.encode(raftpb, m, f.records.add())
                    yield f
            finally:
                with lock:
                    if outgoing[frm].get(kind) is w:
                        del outgoing[frm][kind]
                w.done.set()

        def MessageStream(self, request_iterator, context):
            yield from self._stream(request_iterator, context, "v3")

        def MsgAppV2Stream(self, request_iterator, context):
            yield from self._stream(request_iterator, context, "v2")

        def Pipeline(self, request, context):
            try:
                frm, _ = validate(context)
                check_body(request.message, frm, local, grpc.StatusCode)
            except Abort as a:
                abort(context, a)
            try:
                process(request.message)
            except RuntimeError as e:
                context.abort(grpc.StatusCode.INTERNAL, str(e))
            return tpb.PipelineResponse()

        def Snapshot(self, request_iterator, context):
            try:
                return self._snapshot(request_iterator, context)
            except Abort as a:
                abort(context, a)

        def _snapshot(self, request_iterator, context):
            frm, _ = validate(context)
            it = iter(request_iterator)
            first = next(it, None)
            if first is None:
                raise Abort(grpc.StatusCode.DATA_LOSS, "no snapshot header")
            if first.WhichOneof("kind") != "header":
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "the first snapshot frame must be the header")
            m, size, offset = first.header.message, first.header.data_size, first.header.offset
            if m.type != raftpb.MsgSnap:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong raft message type")
            check_body(m, frm, local, grpc.StatusCode)
            replaced = threading.Event()  # one transfer per sender: replace any open
            with lock:
                if frm in receiving:
                    receiving[frm].set()
                receiving[frm] = replaced
                prev = partials.pop(frm, None)  # resumed now, or gone
            try:
                return self._receive(it, context, frm, m, size, offset, prev, replaced)
            finally:
                with lock:
                    if receiving.get(frm) is replaced:
                        del receiving[frm]

        def _receive(self, it, context, frm, m, size, offset, prev, replaced):
            md = m.snapshot.metadata
            key = (md.index, md.term, size)
            written, crc, trailer = 0, 0, None
            if offset:
                if prev is None or prev["key"] != key or offset > prev["offset"]:
                    if prev is not None:
                        os.unlink(prev["path"])
                    raise Abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "no kept prefix of %d bytes of this snapshot" % offset)
                tmp = prev["path"]
                out = open(tmp, "r+b")
                out.truncate(offset)
                # The trailer covers the prefix too: checksum it as it is on disk.
                crc = crc32c(out.read(offset))
                written = offset
                print("py_node: resuming database snapshot from %x at offset %d of %d"
                      % (frm, offset, size), file=sys.stderr)
            else:
                if prev is not None:
                    os.unlink(prev["path"])
                fd, tmp = tempfile.mkstemp(dir=args.dir, suffix=".tmp")
                out = os.fdopen(fd, "wb")
            kept, all_checked = False, True
            try:
                with out:
                    try:
                        for f in it:
                            if replaced.is_set():
                                raise Abort(grpc.StatusCode.ABORTED,
                                            "replaced by a newer snapshot transfer from the same peer")
                            kind = f.WhichOneof("kind")
                            if kind == "trailer":
                                trailer = f.trailer.crc32c
                                break
                            if kind != "chunk":
                                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "a second snapshot header")
                            if f.HasField("chunk_crc32c") and crc32c(f.chunk) != f.chunk_crc32c:
                                raise Abort(grpc.StatusCode.DATA_LOSS,
                                            "snapshot chunk checksum mismatch at offset %d" % written)
                            all_checked = all_checked and f.HasField("chunk_crc32c")
                            if written + len(f.chunk) > size:
                                raise Abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                            "snapshot data beyond its declared %d bytes" % size)
                            out.write(f.chunk)
                            written += len(f.chunk)
                            crc = crc32c(f.chunk, crc)
                    except Abort:
                        raise
                    except Exception:  # the link broke (the client cancelled)
                        trailer = None
                    if trailer is None:
                        # The link, not the data, failed: keep the verified prefix.
                        if all_checked and 0 < written < size:
                            out.flush()
                            os.fsync(out.fileno())
                            with lock:
                                partials[frm] = {"key": key, "offset": written, "path": tmp}
                            kept = True
                        raise Abort(grpc.StatusCode.DATA_LOSS, "snapshot ended without a trailer")
                    if written != size:
                        raise Abort(grpc.StatusCode.DATA_LOSS,
                                    "snapshot truncated: %d of %d bytes" % (written, size))
                    if crc != trailer and "ignore-trailer-crc" not in breaks:
                        raise Abort(grpc.StatusCode.DATA_LOSS, "snapshot checksum mismatch")
                    out.flush()
                    os.fsync(out.fileno())
                os.rename(tmp, os.path.join(args.dir, "%016x.snap.db" % md.index))
                tmp = None
            finally:
                if tmp is not None and not kept:
                    os.unlink(tmp)
            # Raft's ProcessSnapshot: the echo node acknowledges what it stored.
            ack = raftpb.Message(type=raftpb.MsgAppResp, to=frm, term=m.term, index=md.index,
                                 context=b"snapshot %08x %d" % (crc, size))
            setattr(ack, "from", local)
            send(ack)
            return tpb.SnapshotResponse()

        def SnapshotOffset(self, request, context):
            """How much of this very snapshot the sender's broken attempt left
            here; a question about another snapshot drops the prefix."""
            try:
                frm, _ = validate(context)
                m = request.message
                if m.type != raftpb.MsgSnap:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong raft message type")
                check_body(m, frm, local, grpc.StatusCode)
            except Abort as a:
                abort(context, a)
            key = (m.snapshot.metadata.index, m.snapshot.metadata.term, request.data_size)
            with lock:
                p = partials.get(frm)
                if p is not None and p["key"] != key:
                    os.unlink(p["path"])
                    del partials[frm]
                    p = None
            return tpb.SnapshotOffsetResponse(offset=p["offset"] if p else 0)

        def Probe(self, request, context):
            return tpb.ProbeResponse(ok=True, now_unix_nanos=time.time_ns())

    # ---- reading our peers' streams (we dial) ----
    def read(peer, kind):
        while not stopping.is_set():
            done = threading.Event()

            def hold():  # never half-close: that would end the stream
                done.wait()
                return
                yield

            stub = stubs[peer]
            call = (stub.MessageStream if kind == "v3" else stub.MsgAppV2Stream)(
                hold(), metadata=out_md(peer))
            last = [time.monotonic()]

            def watchdog():  # no frame for the read timeout: the stream is dead
                while not done.wait(0.2):
                    if time.monotonic() - last[0] > READ_TIMEOUT_S:
                        call.cancel()
                        return
            threading.Thread(target=watchdog, daemon=True).start()
            dec = V2Decoder(peer, local, stale_index="v2-stale-index" in breaks)
            try:
                for frame in call:
                    last[0] = time.monotonic()
                    msgs = []
                    if kind == "v3":
                        msgs = list(frame.messages)
                    else:
                        msgs = [dec.decode(raftpb, r) for r in frame.records]
                    for m in msgs:
                        if is_link_heartbeat(raftpb, m) and "deliver-link-heartbeats" not in breaks:
                            continue
                        if getattr(m, "from") != peer and not is_link_heartbeat(raftpb, m):
                            raise ValueError("stream of %x carried a message from %x"
                                             % (peer, getattr(m, "from")))
                        try:
                            process(m)
                        except RuntimeError:
                            pass
            except grpc.RpcError:
                pass
            except ValueError as e:
                print("py_node: %s: dropped the stream" % e, file=sys.stderr)
            finally:
                done.set()
                call.cancel()
            stopping.wait(0.1)  # redial backoff, as etcd's 100 ms

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
    tgrpc.add_RaftTransportServicer_to_server(Servicer(), server)
    port = server.add_insecure_port(args.listen)
    server.start()
    for p in peers:
        threading.Thread(target=pipeline_worker, args=(p,), daemon=True).start()
        for kind in ("v3", "v2"):
            threading.Thread(target=read, args=(p, kind), daemon=True).start()
    print("PORT %d" % port, flush=True)
    sys.stdin.read()  # the runner closes stdin to stop us
    stopping.set()
    server.stop(grace=None)
    for c in channels.values():
        c.close()
    return 0
