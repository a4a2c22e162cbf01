"""The language-neutral vectors (proto/testdata), checked against the
Python stubs and this node's codec and validation:
py_node.py --stubs=DIR --vectors=proto/testdata."""
import json
import os

import conformance_node as cn


def _fields(m):
    """The fields the vectors describe, in their JSON form."""
    md = m.snapshot.metadata
    return {
        "type": m.type, "to": str(m.to), "from": str(getattr(m, "from")), "term": str(m.term),
        "logTerm": str(m.logTerm), "index": str(m.index), "commit": str(m.commit),
        "reject": m.reject, "rejectHint": str(m.rejectHint),
        "context": m.context.hex() if m.HasField("context") else None,
        "vote": str(m.vote), "responses": len(m.responses),
        "entries": [{"Type": e.Type, "Term": str(e.Term), "Index": str(e.Index), "Data": e.Data.hex()}
                    for e in m.entries],
        "snapshot": {"index": str(md.index), "term": str(md.term),
                     "voters": [str(v) for v in md.conf_state.voters],
                     "learners": [str(v) for v in md.conf_state.learners]},
    }


def _same(a, b):
    """Field equality, unset equal to default (what a rebuilt message has)."""
    fa, fb = _fields(a), _fields(b)
    fa["context"] = fa["context"] or ""
    fb["context"] = fb["context"] or ""
    return fa == fb


def check(directory, raftpb, tpb):
    def load(name):
        with open(os.path.join(directory, name)) as f:
            return json.load(f)

    msgs = load("raftpb_messages.json")["messages"]
    for v in msgs:
        m = raftpb.Message.FromString(bytes.fromhex(v["hex"]))
        want = dict(v["fields"])
        want.pop("type_name")
        if _fields(m) != want:
            raise SystemExit("message %s: fields %s, want %s" % (v["name"], _fields(m), want))
        if m.SerializeToString().hex() != v["hex"]:
            raise SystemExit("message %s: re-encoded differently" % v["name"])

    seqs = load("msgappv2.json")["sequences"]
    for s in seqs:
        frm, to = int(s["from"]), int(s["to"])
        frame = tpb.MsgAppV2Frame.FromString(bytes.fromhex(s["frame"]))
        dec = cn.V2Decoder(frm, to)
        decoded = [raftpb.Message.FromString(bytes.fromhex(h)) for h in s["decoded"]]
        if len(frame.records) != len(decoded):
            raise SystemExit("sequence %s: %d records" % (s["name"], len(frame.records)))
        for i, r in enumerate(frame.records):
            if not _same(dec.decode(raftpb, r), decoded[i]):
                raise SystemExit("sequence %s record %d: decoded differently" % (s["name"], i))
        enc, dec2, mine = cn.V2Encoder(), cn.V2Decoder(frm, to), tpb.MsgAppV2Frame()
        for i, h in enumerate(s["input"]):
            r = mine.records.add()
            enc.encode(raftpb, raftpb.Message.FromString(bytes.fromhex(h)), r)
            if r.WhichOneof("kind") != s["record_kinds"][i]:
                raise SystemExit("sequence %s input %d: encoded as %s, want %s"
                                 % (s["name"], i, r.WhichOneof("kind"), s["record_kinds"][i]))
        mine = tpb.MsgAppV2Frame.FromString(mine.SerializeToString())
        for i, r in enumerate(mine.records):
            if not _same(dec2.decode(raftpb, r), decoded[i]):
                raise SystemExit("sequence %s input %d: our encoding decodes differently"
                                 % (s["name"], i))

    import grpc  # noqa: E402
    md = load("metadata.json")
    cluster = cn.parse_id(md["server"]["cluster_id"])
    local = cn.parse_id(md["server"]["id"])
    for c in md["cases"]:
        try:
            cn.validate_md(c["metadata"], cluster, grpc.StatusCode)
            got = "OK"
        except cn.Abort as a:
            got = a.code.name
        if got != c["want"]:
            raise SystemExit("metadata %s: %s, want %s" % (c["name"], got, c["want"]))
    for b in md["bodies"]:
        m = raftpb.Message(type=raftpb.MsgHeartbeat, to=int(b["to"]))
        setattr(m, "from", int(b["from"]))
        try:
            cn.check_body(m, int(b["caller"]), local, grpc.StatusCode)
            got = "OK"
        except cn.Abort as a:
            got = a.code.name
        if got != b["want"]:
            raise SystemExit("body %s: %s, want %s" % (b["name"], got, b["want"]))
    print("vectors: %d messages, %d v2 sequences, %d metadata cases, %d bodies"
          % (len(msgs), len(seqs), len(md["cases"]), len(md["bodies"])))
    print("vectors ok")
    return 0
