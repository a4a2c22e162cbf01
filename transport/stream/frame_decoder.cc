#include "transport/stream/frame_decoder.h"

#include "absl/strings/str_cat.h"
#include "peer/inbound_router.h"

namespace raftgrpc {

namespace {

absl::Status CheckedDeliver(raftpb::Message* m, size_t max, const DeliverFn& deliver) {
  const size_t size = m->ByteSizeLong();
  if (size > max) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", size, " bytes exceeds the limit of ", max));
  }
  return deliver(m);
}

}  // namespace

absl::Status CheckStreamSender(const raftpb::Message& m, uint64_t peer_id) {
  if (m.from() == peer_id || IsLinkHeartbeat(m)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("message from ", absl::Hex(m.from()),
                                                  " on the stream of peer ", absl::Hex(peer_id)));
}

absl::Status DecodeMessageFrame(v1::MessageFrame* frame, size_t max_message_bytes,
                                const DeliverFn& deliver) {
  for (raftpb::Message& m : *frame->mutable_messages()) {
    absl::Status s = CheckedDeliver(&m, max_message_bytes, deliver);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status DecodeMsgAppV2Frame(v1::MsgAppV2Frame* frame, MsgAppV2Decoder* dec,
                                 size_t max_message_bytes, const DeliverFn& deliver) {
  for (v1::MsgAppV2Record& rec : *frame->mutable_records()) {
    absl::Status s = dec->DecodeInPlace(&rec);
    if (!s.ok()) return s;
    s = CheckedDeliver(rec.mutable_app(), max_message_bytes, deliver);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace raftgrpc
