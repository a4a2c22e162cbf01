// Fuzz target: the stream reader's frame decoding (v2 and v3).
// Input: byte 0 selects v3 (even) or v2 (odd), and for v2 whether the frame
// is parsed into an arena, as the reader does (bit 1); the rest is a
// serialized frame, parsed as gRPC would. Invariants: no crash; a v2 message is always
// a MsgApp (or the link heartbeat) from the remote to us; nothing over the
// size limit is delivered.
#include <cstddef>
#include <cstdint>

#include "google/protobuf/arena.h"
#include "testing/fuzz/fuzz_check.h"
#include "transport/stream/frame_decoder.h"

namespace {
constexpr size_t kMax = 64 * 1024;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool v2 = data[0] & 1;
  const auto deliver = [&](raftpb::Message* delivered) {
    const raftpb::Message& m = *delivered;
    FUZZ_CHECK(m.ByteSizeLong() <= kMax);
    if (v2) {
      const bool link = m.type() == raftpb::MsgHeartbeat && m.from() == 0 && m.to() == 0;
      FUZZ_CHECK(link || (m.type() == raftpb::MsgApp && m.from() == 2 && m.to() == 1));
    }
    return absl::OkStatus();
  };
  if (v2) {
    google::protobuf::Arena arena;
    raftgrpc::v1::MsgAppV2Frame heap;
    raftgrpc::v1::MsgAppV2Frame* f =
        (data[0] & 2) ? google::protobuf::Arena::CreateMessage<raftgrpc::v1::MsgAppV2Frame>(&arena)
                      : &heap;
    if (!f->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    raftgrpc::MsgAppV2Decoder dec(/*local=*/1, /*remote=*/2);
    (void)raftgrpc::DecodeMsgAppV2Frame(f, &dec, kMax, deliver);
  } else {
    raftgrpc::v1::MessageFrame f;
    if (!f.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    (void)raftgrpc::DecodeMessageFrame(&f, kMax, deliver);
  }
  return 0;
}
