// etcd's msgappv2 codec as gRPC records: a MsgApp that continues where the
// previous one on the same stream ended, in the same term, travels as only
// its entries and commit; the decoder rebuilds the rest from its state.
//
// Thread-safety: none; one encoder per stream writer conn, one decoder per
// reader call, each used under its owner's serialization.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_MSGAPPV2_CODEC_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_MSGAPPV2_CODEC_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/raftpb/raft.pb.h"
#include "proto/transport.pb.h"

namespace raftgrpc {

class MsgAppV2Encoder {
 public:
  // Appends `m`'s record to `frame` (m: a MsgApp or the link heartbeat) and
  // advances the state. Entries are moved out of `m`.
  void Encode(raftpb::Message&& m, v1::MsgAppV2Frame* frame);
  // Clears a written frame for reuse, keeping its records' AppEntries for
  // the next Encode: a oneof submessage is otherwise freed on clear and
  // allocated again, one heap allocation per message.
  void Recycle(v1::MsgAppV2Frame* frame);
  // Frees the entries a written frame's compact records carry (the costly
  // part of Recycle: a free per entry and per buffer), or clears small ones
  // and keeps them (below). Uses no encoder state, so a writer calls it
  // outside its lock, before Recycle.
  //
  // Why keep small entries: Encode swaps a record's entries with the
  // message's, so the message then holds the kept ones, and whoever
  // destroys it frees them: Send's caller, Raft's thread, which allocated
  // them. Freed on gRPC's thread instead, every small entry made glibc's
  // malloc take its slow path on Raft's thread and lock its arena against
  // ours (bench/README.md, "What changed the send path"). Kept only up to
  // kMaxKeptEntries entries and kMaxKeptBytes of data per record, so the
  // pool holds at most kMaxPooled * about 1.2 KiB. 1 KiB, not 256 bytes,
  // since the receive worker decodes: 1 KiB entries then gained 12%
  // throughput (bench/README.md, "The writer keeps 1 KiB entries").
  static void FreeEntries(v1::MsgAppV2Frame* frame);

  static constexpr int kMaxKeptEntries = 2;
  static constexpr size_t kMaxKeptBytes = 1024;

 private:
  static constexpr size_t kMaxPooled = 4096;
  uint64_t term_ = 0;
  uint64_t index_ = 0;
  std::vector<std::unique_ptr<v1::AppEntries>> pool_;
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
