// The raftgrpc.v1 messages for Go programs that use etcd's own raftpb types
// (go.etcd.io/etcd/raft/raftpb, gogo-generated, as every etcd-raft node
// does), and the gRPC codec that lets them travel.
//
// Why by hand: stubs from protoc-gen-go would generate their own raftpb
// package (not etcd's), and gogo stubs do not compile against etcd 3.4's
// raftpb. The transport messages are thin wrappers, so each one here
// encodes its own fields with protowire and hands the embedded Raft
// messages to gogo's Marshal/Unmarshal.
package main

import (
	"fmt"

	"go.etcd.io/etcd/raft/raftpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
)

// wireMessage is what the codec needs: gogo's raftpb types already have it.
type wireMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// codec replaces gRPC's default "proto" codec for this process: every
// message on the wire here (ours and raftpb's) marshals itself.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v interface{}) ([]byte, error) {
	m, ok := v.(wireMessage)
	if !ok {
		return nil, fmt.Errorf("codec: %T has no Marshal", v)
	}
	return m.Marshal()
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(wireMessage)
	if !ok {
		return fmt.Errorf("codec: %T has no Unmarshal", v)
	}
	return m.Unmarshal(data)
}

func init() { encoding.RegisterCodec(codec{}) }

// fields walks the top-level fields of b, calling f for each; f returns
// false to skip (unknown fields are skipped, as protobuf does).
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func appendMsg(b []byte, num protowire.Number, m wireMessage) ([]byte, error) {
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, data), nil
}

// empty is StreamControl, PipelineResponse, SnapshotResponse, ProbeRequest
// and LinkHeartbeat: no fields.
type empty struct{}

func (*empty) Marshal() ([]byte, error) { return nil, nil }
func (*empty) Unmarshal([]byte) error   { return nil }

// MessageFrame: repeated raftpb.Message messages = 1.
type MessageFrame struct{ Messages []raftpb.Message }

func (f *MessageFrame) Marshal() ([]byte, error) {
	var b []byte
	var err error
	for i := range f.Messages {
		if b, err = appendMsg(b, 1, &f.Messages[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (f *MessageFrame) Unmarshal(b []byte) error {
	f.Messages = nil
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 1 && typ == protowire.BytesType {
			var m raftpb.Message
			if err := m.Unmarshal(v); err != nil {
				return err
			}
			f.Messages = append(f.Messages, m)
		}
		return nil
	})
}

// MsgAppV2Record: oneof link_heartbeat = 1, app_entries = 2 {repeated
// raftpb.Entry entries = 1; uint64 commit = 2}, app = 3.
type MsgAppV2Record struct {
	Kind    int // 1, 2 or 3 as the field numbers; 0: none set
	Entries []raftpb.Entry
	Commit  uint64
	App     raftpb.Message
}

func (r *MsgAppV2Record) Marshal() ([]byte, error) {
	var b []byte
	switch r.Kind {
	case 1:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, nil)
	case 2:
		var ae []byte
		var err error
		for i := range r.Entries {
			if ae, err = appendMsg(ae, 1, &r.Entries[i]); err != nil {
				return nil, err
			}
		}
		if r.Commit != 0 {
			ae = protowire.AppendTag(ae, 2, protowire.VarintType)
			ae = protowire.AppendVarint(ae, r.Commit)
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, ae)
	case 3:
		return appendMsg(b, 3, &r.App)
	}
	return b, nil
}

func (r *MsgAppV2Record) Unmarshal(b []byte) error {
	*r = MsgAppV2Record{}
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			r.Kind, r.Entries, r.Commit = 1, nil, 0
		case 2:
			r.Kind, r.Entries, r.Commit = 2, nil, 0
			return fields(v, func(n protowire.Number, t protowire.Type, ev []byte, x uint64) error {
				switch {
				case n == 1 && t == protowire.BytesType:
					var e raftpb.Entry
					if err := e.Unmarshal(ev); err != nil {
						return err
					}
					r.Entries = append(r.Entries, e)
				case n == 2 && t == protowire.VarintType:
					r.Commit = x
				}
				return nil
			})
		case 3:
			r.Kind = 3
			r.App = raftpb.Message{}
			return r.App.Unmarshal(v)
		}
		return nil
	})
}

// MsgAppV2Frame: repeated MsgAppV2Record records = 1.
type MsgAppV2Frame struct{ Records []MsgAppV2Record }

func (f *MsgAppV2Frame) Marshal() ([]byte, error) {
	var b []byte
	var err error
	for i := range f.Records {
		if b, err = appendMsg(b, 1, &f.Records[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (f *MsgAppV2Frame) Unmarshal(b []byte) error {
	f.Records = nil
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 1 && typ == protowire.BytesType {
			var r MsgAppV2Record
			if err := r.Unmarshal(v); err != nil {
				return err
			}
			f.Records = append(f.Records, r)
		}
		return nil
	})
}

// PipelineRequest: raftpb.Message message = 1.
type PipelineRequest struct{ Message raftpb.Message }

func (p *PipelineRequest) Marshal() ([]byte, error) { return appendMsg(nil, 1, &p.Message) }
func (p *PipelineRequest) Unmarshal(b []byte) error {
	p.Message = raftpb.Message{}
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 1 && typ == protowire.BytesType {
			return p.Message.Unmarshal(v)
		}
		return nil
	})
}

// SnapshotFrame: oneof header = 1 {message = 1, data_size = 2, offset = 3},
// chunk = 2, trailer = 3 {fixed32 crc32c = 1}; optional fixed32
// chunk_crc32c = 4.
type SnapshotFrame struct {
	Kind        int // 1 header, 2 chunk, 3 trailer; 0: none
	Message     raftpb.Message
	DataSize    uint64
	Offset      uint64
	Chunk       []byte
	Crc32c      uint32
	HasChunkCrc bool
	ChunkCrc    uint32
}

func (f *SnapshotFrame) Marshal() ([]byte, error) {
	var b []byte
	switch f.Kind {
	case 1:
		h, err := appendMsg(nil, 1, &f.Message)
		if err != nil {
			return nil, err
		}
		if f.DataSize != 0 {
			h = protowire.AppendTag(h, 2, protowire.VarintType)
			h = protowire.AppendVarint(h, f.DataSize)
		}
		if f.Offset != 0 {
			h = protowire.AppendTag(h, 3, protowire.VarintType)
			h = protowire.AppendVarint(h, f.Offset)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, h)
	case 2:
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Chunk)
	case 3:
		t := protowire.AppendTag(nil, 1, protowire.Fixed32Type)
		t = protowire.AppendFixed32(t, f.Crc32c)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, t)
	}
	if f.HasChunkCrc {
		b = protowire.AppendTag(b, 4, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, f.ChunkCrc)
	}
	return b, nil
}

func (f *SnapshotFrame) Unmarshal(b []byte) error {
	*f = SnapshotFrame{}
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			f.Kind, f.Message, f.DataSize, f.Offset = 1, raftpb.Message{}, 0, 0
			return fields(v, func(n protowire.Number, t protowire.Type, hv []byte, hx uint64) error {
				switch {
				case n == 1 && t == protowire.BytesType:
					return f.Message.Unmarshal(hv)
				case n == 2 && t == protowire.VarintType:
					f.DataSize = hx
				case n == 3 && t == protowire.VarintType:
					f.Offset = hx
				}
				return nil
			})
		case num == 2 && typ == protowire.BytesType:
			f.Kind, f.Chunk = 2, v
		case num == 3 && typ == protowire.BytesType:
			f.Kind, f.Crc32c = 3, 0
			return fields(v, func(n protowire.Number, t protowire.Type, _ []byte, tx uint64) error {
				if n == 1 && t == protowire.Fixed32Type {
					f.Crc32c = uint32(tx)
				}
				return nil
			})
		case num == 4 && typ == protowire.Fixed32Type:
			f.HasChunkCrc, f.ChunkCrc = true, uint32(x)
		}
		return nil
	})
}

// ProbeResponse: bool ok = 1, int64 now_unix_nanos = 2.
type ProbeResponse struct {
	Ok           bool
	NowUnixNanos int64
}

func (p *ProbeResponse) Marshal() ([]byte, error) {
	var b []byte
	if p.Ok {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if p.NowUnixNanos != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(p.NowUnixNanos))
	}
	return b, nil
}

func (p *ProbeResponse) Unmarshal(b []byte) error {
	*p = ProbeResponse{}
	return fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if typ == protowire.VarintType {
			switch num {
			case 1:
				p.Ok = x != 0
			case 2:
				p.NowUnixNanos = int64(x)
			}
		}
		return nil
	})
}

// SnapshotOffsetRequest: raftpb.Message message = 1, uint64 data_size = 2.
type SnapshotOffsetRequest struct {
	Message  raftpb.Message
	DataSize uint64
}

func (r *SnapshotOffsetRequest) Marshal() ([]byte, error) {
	b, err := appendMsg(nil, 1, &r.Message)
	if err != nil {
		return nil, err
	}
	if r.DataSize != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, r.DataSize)
	}
	return b, nil
}

func (r *SnapshotOffsetRequest) Unmarshal(b []byte) error {
	*r = SnapshotOffsetRequest{}
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return r.Message.Unmarshal(v)
		case num == 2 && typ == protowire.VarintType:
			r.DataSize = x
		}
		return nil
	})
}

// SnapshotOffsetResponse: uint64 offset = 1.
type SnapshotOffsetResponse struct{ Offset uint64 }

func (r *SnapshotOffsetResponse) Marshal() ([]byte, error) {
	if r.Offset == 0 {
		return nil, nil
	}
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(b, r.Offset), nil
}

func (r *SnapshotOffsetResponse) Unmarshal(b []byte) error {
	*r = SnapshotOffsetResponse{}
	return fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num == 1 && typ == protowire.VarintType {
			r.Offset = x
		}
		return nil
	})
}
