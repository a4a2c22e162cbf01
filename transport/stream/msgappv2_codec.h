// etcd's msgappv2 codec as gRPC records: a MsgApp that continues where the
// previous one on the same stream ended, in the same term, travels as only
// its entries and commit; the decoder rebuilds the rest from its state.
//
// Thread-safety: none; one encoder per stream writer conn, one decoder per
// reader call, each used under its owner's serialization.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_MSGAPPV2_CODEC_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_MSGAPPV2_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "proto/raftpb/raft.pb.h"
#include "proto/transport.pb.h"

namespace raftgrpc {

// Encodes straight to the wire: a writer's frame is the bytes of a
// v1::MsgAppV2Frame, one record appended per message on Send's thread,
// where the message is still in cache. The message keeps its entries (they
// are serialized, not moved), so the thread that built them frees them.
// gRPC's thread then only hands the bytes to the socket: serializing a
// frame of protobuf records there walked every entry again, on the other
// CPU, to size it (bench/README.md, "The msgappv2 writer serializes on
// Send's thread").
class MsgAppV2Encoder {
 public:
  // Appends m's record to `frame`, the wire bytes of a MsgAppV2Frame (m: a
  // MsgApp or the link heartbeat), and advances the state. m's parts are
  // borrowed while it is serialized; m is left as it was.
  void Encode(raftpb::Message& m, std::string* frame);

 private:
  void Append(std::string* frame);

  uint64_t term_ = 0;
  uint64_t index_ = 0;
  // Reused for each record: it points at the message's parts while they
  // are serialized and owns none of them afterwards.
  v1::MsgAppV2Record rec_;
};

class MsgAppV2Decoder {
 public:
  // `local`: this node (the rebuilt messages' to); `remote`: the sender.
  MsgAppV2Decoder(uint64_t local, uint64_t remote) : local_(local), remote_(remote) {}

  // Rebuilds the message of one record (entries are moved out of it). A link
  // heartbeat record yields the link heartbeat message. INVALID_ARGUMENT for
  // an empty record or a full record that is not a MsgApp.
  absl::StatusOr<raftpb::Message> Decode(v1::MsgAppV2Record&& rec);
  // The same, in place: on success `rec` holds the whole message as its
  // `app`, in rec's arena if it has one (no copy, no heap allocation).
  absl::Status DecodeInPlace(v1::MsgAppV2Record* rec);

 private:
  const uint64_t local_;
  const uint64_t remote_;
  uint64_t term_ = 0;
  uint64_t index_ = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_MSGAPPV2_CODEC_H_
