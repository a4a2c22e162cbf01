// Decoding of stream frames on the receiving side (the stream reader), kept
// free of gRPC so that it is fuzzed directly (testing/fuzz).
//
// Thread-safety: pure functions; the v2 decoder state is the caller's.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_FRAME_DECODER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_FRAME_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "proto/raftpb/raft.pb.h"
#include "proto/transport.pb.h"
#include "transport/stream/msgappv2_codec.h"

namespace raftgrpc {

// Receives each decoded message in order; an error stops decoding. The
// message lives in the frame (in its arena, if it has one): move it out, or
// keep the frame alive as long as the message is used.
using DeliverFn = std::function<absl::Status(raftpb::Message*)>;

// Hands every message of a v3 frame to `deliver`, in order. A message over
// `max_message_bytes` -> RESOURCE_EXHAUSTED (the stream must be torn down).
absl::Status DecodeMessageFrame(v1::MessageFrame* frame, size_t max_message_bytes,
                                const DeliverFn& deliver);

// The same for a v2 frame through `dec` (the call's codec state), each
// record decoded in place: a bad record -> INVALID_ARGUMENT; an oversize
// message -> RESOURCE_EXHAUSTED.
absl::Status DecodeMsgAppV2Frame(v1::MsgAppV2Frame* frame, MsgAppV2Decoder* dec,
                                 size_t max_message_bytes, const DeliverFn& deliver);

// The peer a reader dialled speaks only for itself: a message from anyone
// else -> PERMISSION_DENIED (the stream must be torn down). Link heartbeats
// carry no sender.
absl::Status CheckStreamSender(const raftpb::Message& m, uint64_t peer_id);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_FRAME_DECODER_H_
