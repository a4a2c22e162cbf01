// A Go node on etcd 3.4's raftpb types that speaks raft-grpc-transport's
// protocol (proto/README.md), for the conformance suite
// (proto/CONFORMANCE.md): it serves both stream kinds, the pipeline,
// snapshots and probes, dials its peers' streams as their reader, and
// echoes every Raft message it receives back to the sender, as the suite's
// node under test must.
//
// Flags (IDs in hex): --listen=HOST:PORT --id=1 --cluster-id=c1
// --peer=2=http://HOST:PORT --removed=3 --dir=DIR. Prints "PORT <n>" once
// serving; stops when stdin closes. Build: GOPATH mode, from Debian's
// golang-go, golang-google-grpc-dev and golang-etcd-server-dev (see
// run_go_node.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"io/ioutil"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	service        = "raftgrpc.v1.RaftTransport"
	serverVersion  = "3.5.0"
	minVersion     = "3.0.0"
	readTimeout    = 5 * time.Second
	heartbeatEvery = readTimeout / 3
	maxMessage     = 2*1024*1024 + 400*1024 // 2 MiB plus framing margin
	failContext    = "conformance-fail"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type node struct {
	id, cluster uint64
	peers       map[uint64]string // member -> host:port
	removed     map[uint64]bool
	dir         string
	conns       map[uint64]*grpc.ClientConn

	mu        sync.Mutex
	outgoing  map[uint64]map[string]*writer // peer -> "v3"/"v2" -> attached stream
	receiving map[uint64]*int32             // sender -> its open snapshot's "replaced" flag
	partials  map[uint64]*partial           // sender -> its kept snapshot prefix
	pipeq     map[uint64]chan raftpb.Message
}

// ---- identity checks, in etcd's order ----

func hex(v uint64) string { return strconv.FormatUint(v, 16) }

// parseID: 1 to 16 hex digits, as FormatUint(id, 16) writes (upper case
// accepted); no sign, prefix or spaces (the vectors in metadata.json).
func parseID(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// parseVersion: major.minor of "X.Y[.anything]", each 1 to 3 digits; a
// missing version is 2.0.0, as etcd assumes.
func parseVersion(s string) (int, error) {
	if s == "" {
		return 2000, nil
	}
	p := strings.SplitN(s, ".", 3)
	if len(p) < 2 {
		return 0, fmt.Errorf("malformed version %q", s)
	}
	v := 0
	for _, part := range p[:2] {
		if len(part) == 0 || len(part) > 3 {
			return 0, fmt.Errorf("malformed version %q", s)
		}
		n := 0
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("malformed version %q", s)
			}
			n = n*10 + int(c-'0')
		}
		v = v*1000 + n
	}
	return v, nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// validateMD: versions, cluster ID, sender, in etcd's order. Returns the
// sender. Pure, so the vectors can check it.
func validateMD(md metadata.MD, cluster uint64) (uint64, error) {
	sv, err := parseVersion(first(md, "x-server-version"))
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, "malformed x-server-version")
	}
	mv, err := parseVersion(first(md, "x-min-cluster-version"))
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, "malformed x-min-cluster-version")
	}
	own, _ := parseVersion(serverVersion)
	min, _ := parseVersion(minVersion)
	if sv < min || mv > own {
		return 0, status.Error(codes.FailedPrecondition, "incompatible version")
	}
	if c, ok := parseID(first(md, "x-etcd-cluster-id")); !ok || c != cluster {
		return 0, status.Error(codes.FailedPrecondition, "cluster ID mismatch")
	}
	from, ok := parseID(first(md, "x-server-from"))
	if !ok || from == 0 {
		return 0, status.Error(codes.InvalidArgument, "invalid from")
	}
	if to := first(md, "x-raft-to"); to != "" {
		if _, ok := parseID(to); !ok {
			return 0, status.Error(codes.InvalidArgument, "invalid to")
		}
	}
	return from, nil
}

// validate checks a call's identity metadata and refuses a removed sender
// (PERMISSION_DENIED with the removed-member trailer); it returns the sender.
func (n *node) validate(ctx context.Context) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	from, err := validateMD(md, n.cluster)
	if err == nil && n.removed[from] {
		return 0, n.removedStatus(ctx)
	}
	return from, err
}

func (n *node) removedStatus(ctx context.Context) error {
	grpc.SetTrailer(ctx, metadata.Pairs("raft-error", "removed-member"))
	return status.Error(codes.PermissionDenied, "the member has been permanently removed from the cluster")
}

// checkBody: a member speaks only for itself, to us.
func (n *node) checkBody(m *raftpb.Message, from uint64) error { return checkBody(m, from, n.id) }

func checkBody(m *raftpb.Message, from, local uint64) error {
	if m.From != from {
		return status.Errorf(codes.PermissionDenied, "message from %x in a request from %x", m.From, from)
	}
	if m.To != local {
		return status.Errorf(codes.PermissionDenied, "message to %x sent to member %x", m.To, local)
	}
	return nil
}

// v2Encoder is etcd's msgappv2 encoder state: (term, index) of the last
// MsgApp sent on this stream, zero at its start.
type v2Encoder struct{ term, index uint64 }

func (e *v2Encoder) encode(m raftpb.Message) MsgAppV2Record {
	switch {
	case m.Type == raftpb.MsgHeartbeat && m.From == 0 && m.To == 0:
		return MsgAppV2Record{Kind: 1}
	case m.Index == e.index && m.LogTerm == e.term && m.LogTerm == m.Term:
		e.index += uint64(len(m.Entries))
		return MsgAppV2Record{Kind: 2, Entries: m.Entries, Commit: m.Commit}
	}
	e.term, e.index = m.Term, m.Index
	if len(m.Entries) > 0 {
		e.index = m.Entries[len(m.Entries)-1].Index
	}
	return MsgAppV2Record{Kind: 3, App: m}
}

// v2Decoder is the reader's side: it rebuilds what app_entries leaves out.
type v2Decoder struct{ from, to, term, index uint64 }

func (d *v2Decoder) decode(r MsgAppV2Record) (raftpb.Message, error) {
	switch r.Kind {
	case 1:
		return raftpb.Message{Type: raftpb.MsgHeartbeat}, nil
	case 2:
		m := raftpb.Message{Type: raftpb.MsgApp, From: d.from, To: d.to, Term: d.term,
			LogTerm: d.term, Index: d.index, Entries: r.Entries, Commit: r.Commit}
		d.index += uint64(len(r.Entries))
		return m, nil
	case 3:
		if r.App.Type != raftpb.MsgApp {
			return raftpb.Message{}, fmt.Errorf("%v is not a MsgApp", r.App.Type)
		}
		d.term, d.index = r.App.Term, r.App.Index
		if len(r.App.Entries) > 0 {
			d.index = r.App.Entries[len(r.App.Entries)-1].Index
		}
		return r.App, nil
	}
	return raftpb.Message{}, fmt.Errorf("empty record")
}

// ---- the echo Raft ----

func (n *node) process(m raftpb.Message) error {
	if string(m.Context) == failContext {
		return fmt.Errorf("conformance: Process fails")
	}
	echo := m
	echo.From = n.id
	if m.From == 0 {
		// A link heartbeat must never get here: tell every peer if one did.
		for p := range n.peers {
			echo.To = p
			n.send(echo)
		}
		return nil
	}
	echo.To = m.From
	n.send(echo)
	return nil
}

// ---- sending: etcd's pick ----

type writer struct {
	q    chan raftpb.Message
	done chan struct{}
	once sync.Once
}

func (w *writer) close() { w.once.Do(func() { close(w.done) }) }

func (n *node) send(m raftpb.Message) {
	if _, ok := n.peers[m.To]; !ok {
		return // not a peer: dropped, as etcd's transport does
	}
	n.mu.Lock()
	ws := n.outgoing[m.To]
	var w *writer
	if m.Type == raftpb.MsgApp && ws["v2"] != nil {
		w = ws["v2"]
	} else if ws["v3"] != nil && m.Type != raftpb.MsgSnap {
		w = ws["v3"]
	}
	n.mu.Unlock()
	if w != nil {
		select {
		case w.q <- m:
			return
		case <-w.done:
		default:
			log.Printf("stream to %x full: dropped (unreachable)", m.To)
			return
		}
	}
	select {
	case n.pipeq[m.To] <- m:
	default:
		log.Printf("pipeline to %x full: dropped (unreachable)", m.To)
	}
}

func (n *node) outgoingMD(to uint64) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(),
		"x-server-from", hex(n.id), "x-raft-to", hex(to), "x-etcd-cluster-id", hex(n.cluster),
		"x-server-version", serverVersion, "x-min-cluster-version", minVersion)
}

// pipeline: one worker per peer, in order.
func (n *node) pipeline(peer uint64) {
	for m := range n.pipeq[peer] {
		ctx, cancel := context.WithTimeout(n.outgoingMD(peer), 5*time.Second)
		err := n.conns[peer].Invoke(ctx, "/"+service+"/Pipeline", &PipelineRequest{Message: m}, &empty{})
		cancel()
		if err != nil {
			log.Printf("pipeline to %x: %v", peer, err)
		}
	}
}

// ---- serving streams (we are the writer) ----

func (n *node) serveStream(srv interface{}, stream grpc.ServerStream, kind string) error {
	from, err := n.validate(stream.Context())
	if err != nil {
		return err
	}
	md, _ := metadata.FromIncomingContext(stream.Context())
	if _, ok := n.peers[from]; !ok {
		return status.Error(codes.NotFound, "error sender not found")
	}
	if first(md, "x-raft-to") != hex(n.id) {
		return status.Error(codes.FailedPrecondition, "to field mismatch")
	}
	if err := stream.SendHeader(metadata.Pairs("x-server-version", serverVersion)); err != nil {
		return err
	}
	w := &writer{q: make(chan raftpb.Message, 4096), done: make(chan struct{})}
	n.mu.Lock()
	if old := n.outgoing[from][kind]; old != nil {
		old.close() // a new call replaces the old one
	}
	n.outgoing[from][kind] = w
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.outgoing[from][kind] == w {
			delete(n.outgoing[from], kind)
		}
		n.mu.Unlock()
		w.close()
	}()
	// The reader sends nothing but stream heartbeats; its half ending
	// (half-close or cancel) ends the stream.
	go func() {
		var c empty
		for stream.RecvMsg(&c) == nil {
		}
		w.close()
	}()
	var enc v2Encoder
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for {
		var batch []raftpb.Message
		select {
		case <-w.done:
			return nil
		case <-stream.Context().Done():
			return nil
		case m := <-w.q:
			batch = append(batch, m)
		drain:
			for len(batch) < 1024 {
				select {
				case m := <-w.q:
					batch = append(batch, m)
				default:
					break drain
				}
			}
		case <-tick.C:
			batch = append(batch, raftpb.Message{Type: raftpb.MsgHeartbeat}) // link heartbeat
		}
		var frame interface{}
		if kind == "v3" {
			frame = &MessageFrame{Messages: batch}
		} else {
			f := &MsgAppV2Frame{}
			for _, m := range batch {
				f.Records = append(f.Records, enc.encode(m))
			}
			frame = f
		}
		if err := stream.SendMsg(frame); err != nil {
			return nil
		}
	}
}

// ---- reading our peers' streams (we dial) ----

func (n *node) read(peer uint64, kind string) {
	method, desc := "/"+service+"/MessageStream", &serviceDesc.Streams[0]
	if kind == "v2" {
		method, desc = "/"+service+"/MsgAppV2Stream", &serviceDesc.Streams[1]
	}
	for {
		n.readOnce(peer, kind, method, desc)
		time.Sleep(100 * time.Millisecond) // redial backoff, as etcd's 100 ms
	}
}

func (n *node) readOnce(peer uint64, kind, method string, desc *grpc.StreamDesc) {
	ctx, cancel := context.WithCancel(n.outgoingMD(peer))
	defer cancel()
	stream, err := n.conns[peer].NewStream(ctx, desc, method)
	if err != nil {
		return
	}
	if _, err := stream.Header(); err != nil {
		return
	}
	// No frame (not even a link heartbeat) for the read timeout: dead.
	timer := time.AfterFunc(readTimeout, cancel)
	defer timer.Stop()
	dec := v2Decoder{from: peer, to: n.id}
	for {
		var msgs []raftpb.Message
		if kind == "v3" {
			var f MessageFrame
			if stream.RecvMsg(&f) != nil {
				return
			}
			msgs = f.Messages
		} else {
			var f MsgAppV2Frame
			if stream.RecvMsg(&f) != nil {
				return
			}
			for _, r := range f.Records {
				m, err := dec.decode(r)
				if err != nil {
					log.Printf("v2 stream from %x: %v: dropped the stream", peer, err)
					return
				}
				msgs = append(msgs, m)
			}
		}
		timer.Reset(readTimeout)
		for _, m := range msgs {
			if m.Type == raftpb.MsgHeartbeat && m.From == 0 && m.To == 0 {
				continue // link heartbeat: never delivered
			}
			if m.From != peer {
				log.Printf("stream of %x carried a message from %x: dropped the stream", peer, m.From)
				return
			}
			n.process(m)
		}
	}
}

// ---- unary and client-streaming handlers ----

func (n *node) Pipeline(ctx context.Context, req *PipelineRequest) (*empty, error) {
	from, err := n.validate(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.checkBody(&req.Message, from); err != nil {
		return nil, err
	}
	if err := n.process(req.Message); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &empty{}, nil
}

// partial is a prefix of a snapshot kept from a transfer the link broke:
// every chunk carried a matching chunk_crc32c and the file was synced, so a
// retry of the same snapshot (index, term, size) may resume from offset.
type partial struct {
	index, term, size, offset uint64
	path                      string
}

func (p *partial) matches(m *raftpb.Message, size uint64) bool {
	return p != nil && p.index == m.Snapshot.Metadata.Index && p.term == m.Snapshot.Metadata.Term && p.size == size
}

// takePartial removes and returns the sender's kept prefix (nil if none).
func (n *node) takePartial(from uint64) *partial {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.partials[from]
	delete(n.partials, from)
	return p
}

// SnapshotOffset: how much of this very snapshot the sender's broken
// attempt left here. A question about another snapshot drops the prefix.
func (n *node) SnapshotOffset(ctx context.Context, req *SnapshotOffsetRequest) (*SnapshotOffsetResponse, error) {
	from, err := n.validate(ctx)
	if err != nil {
		return nil, err
	}
	if req.Message.Type != raftpb.MsgSnap {
		return nil, status.Error(codes.InvalidArgument, "wrong raft message type")
	}
	if err := n.checkBody(&req.Message, from); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.partials[from]
	if p == nil {
		return &SnapshotOffsetResponse{}, nil
	}
	if !p.matches(&req.Message, req.DataSize) {
		os.Remove(p.path)
		delete(n.partials, from)
		return &SnapshotOffsetResponse{}, nil
	}
	return &SnapshotOffsetResponse{Offset: p.offset}, nil
}

func (n *node) Snapshot(stream grpc.ServerStream) error {
	from, err := n.validate(stream.Context())
	if err != nil {
		return err
	}
	var f SnapshotFrame
	if err := stream.RecvMsg(&f); err != nil {
		return status.Error(codes.DataLoss, "no snapshot header")
	}
	if f.Kind != 1 {
		return status.Error(codes.InvalidArgument, "the first snapshot frame must be the header")
	}
	m, size, offset := f.Message, f.DataSize, f.Offset
	if m.Type != raftpb.MsgSnap {
		return status.Error(codes.InvalidArgument, "wrong raft message type")
	}
	if err := n.checkBody(&m, from); err != nil {
		return err
	}
	// One transfer per sender: this one replaces any still open.
	replaced := new(int32)
	n.mu.Lock()
	if old := n.receiving[from]; old != nil {
		atomic.StoreInt32(old, 1)
	}
	n.receiving[from] = replaced
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.receiving[from] == replaced {
			delete(n.receiving, from)
		}
		n.mu.Unlock()
	}()
	// The sender's kept prefix: this transfer resumes it, or it goes.
	prev := n.takePartial(from)
	var tmp *os.File
	var written uint64
	var crc uint32
	if offset > 0 {
		if !prev.matches(&m, size) || offset > prev.offset {
			if prev != nil {
				os.Remove(prev.path)
			}
			return status.Errorf(codes.FailedPrecondition, "no kept prefix of %d bytes of this snapshot", offset)
		}
		if tmp, err = os.OpenFile(prev.path, os.O_RDWR, 0); err == nil {
			err = tmp.Truncate(int64(offset))
		}
		if err == nil {
			// The trailer covers the prefix too: checksum it as it is on disk.
			h := crc32.New(castagnoli)
			_, err = io.Copy(h, io.NewSectionReader(tmp, 0, int64(offset)))
			crc = h.Sum32()
		}
		if err == nil {
			_, err = tmp.Seek(int64(offset), io.SeekStart)
		}
		if err != nil {
			os.Remove(prev.path)
			return status.Error(codes.Internal, err.Error())
		}
		written = offset
		log.Printf("resuming database snapshot from %x at offset %d of %d", from, offset, size)
	} else {
		if prev != nil {
			os.Remove(prev.path)
		}
		if tmp, err = ioutil.TempFile(n.dir, "receiving-*.tmp"); err != nil {
			return status.Error(codes.Internal, err.Error())
		}
	}
	kept := false
	defer func() {
		tmp.Close()
		if !kept {
			os.Remove(tmp.Name()) // a no-op after the rename
		}
	}()
	allChecked := true
	// keep records the verified prefix when the link, not the data, failed.
	keep := func() {
		if allChecked && written > 0 && written < size && tmp.Sync() == nil {
			kept = true
			n.mu.Lock()
			n.partials[from] = &partial{index: m.Snapshot.Metadata.Index, term: m.Snapshot.Metadata.Term,
				size: size, offset: written, path: tmp.Name()}
			n.mu.Unlock()
		}
	}
	for {
		if err := stream.RecvMsg(&f); err != nil {
			keep()
			if err == io.EOF {
				return status.Error(codes.DataLoss, "snapshot ended without a trailer")
			}
			return err
		}
		if atomic.LoadInt32(replaced) != 0 {
			return status.Error(codes.Aborted, "replaced by a newer snapshot transfer from the same peer")
		}
		if f.Kind == 3 {
			break
		}
		if f.Kind != 2 {
			return status.Error(codes.InvalidArgument, "a second snapshot header")
		}
		if f.HasChunkCrc && crc32.Checksum(f.Chunk, castagnoli) != f.ChunkCrc {
			return status.Errorf(codes.DataLoss, "snapshot chunk checksum mismatch at offset %d", written)
		}
		allChecked = allChecked && f.HasChunkCrc
		if written+uint64(len(f.Chunk)) > size {
			return status.Errorf(codes.ResourceExhausted, "snapshot data beyond its declared %d bytes", size)
		}
		if _, err := tmp.Write(f.Chunk); err != nil {
			return status.Error(codes.ResourceExhausted, err.Error())
		}
		written += uint64(len(f.Chunk))
		crc = crc32.Update(crc, castagnoli, f.Chunk)
	}
	if written != size {
		return status.Errorf(codes.DataLoss, "snapshot truncated: %d of %d bytes", written, size)
	}
	if crc != f.Crc32c {
		return status.Error(codes.DataLoss, "snapshot checksum mismatch")
	}
	if err := tmp.Sync(); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	final := filepath.Join(n.dir, fmt.Sprintf("%016x.snap.db", m.Snapshot.Metadata.Index))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	// Raft's ProcessSnapshot: the echo node acknowledges what it stored.
	n.send(raftpb.Message{Type: raftpb.MsgAppResp, From: n.id, To: m.From, Term: m.Term,
		Index: m.Snapshot.Metadata.Index, Context: []byte(fmt.Sprintf("snapshot %08x %d", crc, size))})
	return stream.SendMsg(&empty{})
}

func (n *node) Probe(ctx context.Context, _ *empty) (*ProbeResponse, error) {
	return &ProbeResponse{Ok: true, NowUnixNanos: time.Now().UnixNano()}, nil
}

// serviceDesc is what protoc-gen-go-grpc would generate for transport.proto.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: service,
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Pipeline", Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			in := &PipelineRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*node).Pipeline(ctx, in)
		}},
		{MethodName: "Probe", Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			in := &empty{}
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*node).Probe(ctx, in)
		}},
		// SnapshotOffset is optional: a node without resume leaves it out
		// (answering UNIMPLEMENTED).
		{MethodName: "SnapshotOffset", Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			in := &SnapshotOffsetRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*node).SnapshotOffset(ctx, in)
		}},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "MessageStream", ServerStreams: true, ClientStreams: true,
			Handler: func(srv interface{}, s grpc.ServerStream) error { return srv.(*node).serveStream(srv, s, "v3") }},
		{StreamName: "MsgAppV2Stream", ServerStreams: true, ClientStreams: true,
			Handler: func(srv interface{}, s grpc.ServerStream) error { return srv.(*node).serveStream(srv, s, "v2") }},
		{StreamName: "Snapshot", ClientStreams: true,
			Handler: func(srv interface{}, s grpc.ServerStream) error { return srv.(*node).Snapshot(s) }},
	},
}

type peerFlags map[uint64]string

func (p peerFlags) String() string { return fmt.Sprint(map[uint64]string(p)) }
func (p peerFlags) Set(s string) error {
	kv := strings.SplitN(s, "=", 2)
	id, err := strconv.ParseUint(kv[0], 16, 64)
	if err != nil || len(kv) != 2 {
		return fmt.Errorf("want ID=URL, got %q", s)
	}
	p[id] = strings.TrimPrefix(strings.TrimPrefix(kv[1], "http://"), "https://")
	return nil
}

type idFlags map[uint64]bool

func (r idFlags) String() string { return fmt.Sprint(map[uint64]bool(r)) }
func (r idFlags) Set(s string) error {
	id, err := strconv.ParseUint(s, 16, 64)
	r[id] = true
	return err
}

func hexFlag(name string, def uint64, usage string) *uint64 {
	v := def
	flag.Func(name, usage, func(s string) (err error) { v, err = strconv.ParseUint(s, 16, 64); return })
	return &v
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	dir := flag.String("dir", "", "snapshot directory")
	vectors := flag.String("vectors", "", "check the vectors in this directory and exit")
	id := hexFlag("id", 1, "member ID (hex)")
	cluster := hexFlag("cluster-id", 0xc1, "cluster ID (hex)")
	peers, removed := peerFlags{}, idFlags{}
	flag.Var(peers, "peer", "ID=URL of a peer (repeatable)")
	flag.Var(removed, "removed", "ID of a removed member (repeatable)")
	flag.Parse()
	log.SetPrefix("go_node: ")
	if *vectors != "" {
		if err := checkVectors(*vectors); err != nil {
			log.Fatal(err)
		}
		fmt.Println("vectors ok")
		return
	}
	n := &node{id: *id, cluster: *cluster, peers: peers, removed: removed, dir: *dir,
		conns: map[uint64]*grpc.ClientConn{}, outgoing: map[uint64]map[string]*writer{},
		receiving: map[uint64]*int32{}, partials: map[uint64]*partial{},
		pipeq: map[uint64]chan raftpb.Message{}}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	srv.RegisterService(&serviceDesc, n)
	go srv.Serve(lis)
	for p, addr := range peers {
		conn, err := grpc.Dial(addr, grpc.WithInsecure(),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
		if err != nil {
			log.Fatal(err)
		}
		n.conns[p] = conn
		n.outgoing[p] = map[string]*writer{}
		n.pipeq[p] = make(chan raftpb.Message, 4096)
		go n.pipeline(p)
		go n.read(p, "v3")
		go n.read(p, "v2")
	}
	fmt.Printf("PORT %d\n", lis.Addr().(*net.TCPAddr).Port)
	io.Copy(ioutil.Discard, os.Stdin) // the runner closes stdin to stop us
	srv.Stop()
}
