package main

// The language-neutral vectors (proto/testdata), checked against etcd's
// raftpb Go types and this node's codec and validation: go_node --vectors=DIR.

import (
	"bytes"
	hexenc "encoding/hex"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"path/filepath"
	"strconv"

	"go.etcd.io/etcd/raft/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type entryFields struct {
	Type  int32
	Term  string
	Index string
	Data  string
}

type messageFields struct {
	Type       int32   `json:"type"`
	To         string  `json:"to"`
	From       string  `json:"from"`
	Term       string  `json:"term"`
	LogTerm    string  `json:"logTerm"`
	Index      string  `json:"index"`
	Commit     string  `json:"commit"`
	Reject     bool    `json:"reject"`
	RejectHint string  `json:"rejectHint"`
	Context    *string `json:"context"`
	Entries    []entryFields
	Snapshot   struct {
		Index    string
		Term     string
		Voters   []string
		Learners []string
	}
}

func u64(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return v
}

func unhex(s string) []byte {
	b, err := hexenc.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func load(dir, name string, v interface{}) error {
	data, err := ioutil.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func checkMessage(m *raftpb.Message, f *messageFields) error {
	if int32(m.Type) != f.Type || m.To != u64(f.To) || m.From != u64(f.From) || m.Term != u64(f.Term) ||
		m.LogTerm != u64(f.LogTerm) || m.Index != u64(f.Index) || m.Commit != u64(f.Commit) ||
		m.Reject != f.Reject || m.RejectHint != u64(f.RejectHint) {
		return fmt.Errorf("scalar fields differ: %+v", m)
	}
	if (f.Context == nil) != (m.Context == nil) || (f.Context != nil && !bytes.Equal(m.Context, unhex(*f.Context))) {
		return fmt.Errorf("context %x", m.Context)
	}
	if len(m.Entries) != len(f.Entries) {
		return fmt.Errorf("%d entries, want %d", len(m.Entries), len(f.Entries))
	}
	for i, e := range m.Entries {
		w := f.Entries[i]
		if int32(e.Type) != w.Type || e.Term != u64(w.Term) || e.Index != u64(w.Index) || !bytes.Equal(e.Data, unhex(w.Data)) {
			return fmt.Errorf("entry %d differs", i)
		}
	}
	md := m.Snapshot.Metadata
	if md.Index != u64(f.Snapshot.Index) || md.Term != u64(f.Snapshot.Term) ||
		len(md.ConfState.Voters) != len(f.Snapshot.Voters) || len(md.ConfState.Learners) != len(f.Snapshot.Learners) {
		return fmt.Errorf("snapshot metadata differs")
	}
	return nil
}

// canonical: gogo's encoding of a message, which writes every field etcd
// declares non-nullable, so that field-equal messages compare equal.
func canonical(m raftpb.Message) []byte {
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func checkVectors(dir string) error {
	var msgs struct {
		Messages []struct {
			Name   string
			Hex    string
			Fields messageFields
		}
	}
	if err := load(dir, "raftpb_messages.json", &msgs); err != nil {
		return err
	}
	for _, v := range msgs.Messages {
		var m raftpb.Message
		if err := m.Unmarshal(unhex(v.Hex)); err != nil {
			return fmt.Errorf("message %s: %v", v.Name, err)
		}
		if err := checkMessage(&m, &v.Fields); err != nil {
			return fmt.Errorf("message %s: %v", v.Name, err)
		}
		// etcd's own encoder must produce these very bytes (newer fields,
		// unknown to 3.4, are kept and written back after the known ones).
		again, err := m.Marshal()
		if err != nil || !bytes.Equal(again, unhex(v.Hex)) {
			return fmt.Errorf("message %s: re-encoded as %x", v.Name, again)
		}
	}

	var seqs struct {
		Sequences []struct {
			Name        string
			From, To    string
			Input       []string
			RecordKinds []string `json:"record_kinds"`
			Frame       string
			Decoded     []string
		}
	}
	if err := load(dir, "msgappv2.json", &seqs); err != nil {
		return err
	}
	kinds := map[int]string{1: "link_heartbeat", 2: "app_entries", 3: "app"}
	for _, s := range seqs.Sequences {
		var f MsgAppV2Frame
		if err := f.Unmarshal(unhex(s.Frame)); err != nil {
			return fmt.Errorf("sequence %s: %v", s.Name, err)
		}
		if len(f.Records) != len(s.Decoded) {
			return fmt.Errorf("sequence %s: %d records, want %d", s.Name, len(f.Records), len(s.Decoded))
		}
		dec := v2Decoder{from: u64(s.From), to: u64(s.To)}
		for i, r := range f.Records {
			got, err := dec.decode(r)
			if err != nil {
				return fmt.Errorf("sequence %s record %d: %v", s.Name, i, err)
			}
			var want raftpb.Message
			if err := want.Unmarshal(unhex(s.Decoded[i])); err != nil {
				return err
			}
			if !bytes.Equal(canonical(got), canonical(want)) {
				return fmt.Errorf("sequence %s record %d: decoded %+v, want %+v", s.Name, i, got, want)
			}
		}
		// Our encoder makes the same record kinds from the same input, and
		// decoding what it made gives the same messages.
		var enc v2Encoder
		dec2 := v2Decoder{from: u64(s.From), to: u64(s.To)}
		for i, in := range s.Input {
			var m raftpb.Message
			if err := m.Unmarshal(unhex(in)); err != nil {
				return err
			}
			r := enc.encode(m)
			if kinds[r.Kind] != s.RecordKinds[i] {
				return fmt.Errorf("sequence %s input %d: encoded as %s, want %s", s.Name, i, kinds[r.Kind], s.RecordKinds[i])
			}
			b, _ := r.Marshal()
			var r2 MsgAppV2Record
			if err := r2.Unmarshal(b); err != nil {
				return err
			}
			got, err := dec2.decode(r2)
			if err != nil {
				return err
			}
			var want raftpb.Message
			want.Unmarshal(unhex(s.Decoded[i]))
			if !bytes.Equal(canonical(got), canonical(want)) {
				return fmt.Errorf("sequence %s input %d: our encoding decodes to %+v", s.Name, i, got)
			}
		}
	}

	var md struct {
		Server struct {
			ID        string
			ClusterID string `json:"cluster_id"`
		}
		Cases []struct {
			Name     string
			Metadata map[string]string
			Want     string
		}
		Bodies []struct {
			Name             string
			Caller, From, To string
			Want             string
		}
	}
	if err := load(dir, "metadata.json", &md); err != nil {
		return err
	}
	cluster, _ := parseID(md.Server.ClusterID)
	codeName := func(err error) string {
		c := status.Code(err)
		if c == codes.OK {
			return "OK"
		}
		return map[codes.Code]string{codes.InvalidArgument: "INVALID_ARGUMENT",
			codes.FailedPrecondition: "FAILED_PRECONDITION", codes.PermissionDenied: "PERMISSION_DENIED"}[c]
	}
	for _, c := range md.Cases {
		_, err := validateMD(metadata.New(c.Metadata), cluster)
		if got := codeName(err); got != c.Want {
			return fmt.Errorf("metadata %s: %s, want %s", c.Name, got, c.Want)
		}
	}
	local, _ := parseID(md.Server.ID)
	for _, b := range md.Bodies {
		m := raftpb.Message{Type: raftpb.MsgHeartbeat, From: u64(b.From), To: u64(b.To)}
		if got := codeName(checkBody(&m, u64(b.Caller), local)); got != b.Want {
			return fmt.Errorf("body %s: %s, want %s", b.Name, got, b.Want)
		}
	}
	fmt.Printf("vectors: %d messages, %d v2 sequences, %d metadata cases, %d bodies\n",
		len(msgs.Messages), len(seqs.Sequences), len(md.Cases), len(md.Bodies))
	return nil
}
