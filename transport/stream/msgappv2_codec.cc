#include "transport/stream/msgappv2_codec.h"

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "peer/inbound_router.h"

namespace raftgrpc {

void MsgAppV2Encoder::Encode(raftpb::Message& m, std::string* frame) {
  if (IsLinkHeartbeat(m)) {
    rec_.mutable_link_heartbeat();
    Append(frame);
    rec_.clear_kind();
    return;
  }
  if (m.index() == index_ && m.logterm() == term_ && m.logterm() == m.term()) {
    // The entries are borrowed for the write: swapped in and back, pointers
    // only.
    auto* entries = m.mutable_entries();
    v1::AppEntries* ae = rec_.mutable_app_entries();
    ae->mutable_entries()->Swap(entries);
    ae->set_commit(m.commit());
    Append(frame);
    ae->mutable_entries()->Swap(entries);
    index_ += m.entries_size();
    return;
  }
  term_ = m.term();
  index_ = m.entries_size() > 0 ? m.entries(m.entries_size() - 1).index() : m.index();
  // Borrowed, not copied: released before anything could free it.
  rec_.unsafe_arena_set_allocated_app(&m);
  Append(frame);
  (void)rec_.unsafe_arena_release_app();
}

void MsgAppV2Encoder::Append(std::string* frame) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  static const uint32_t kTag = WireFormatLite::MakeTag(v1::MsgAppV2Frame::kRecordsFieldNumber,
                                                       WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  const size_t size = rec_.ByteSizeLong();
  const size_t at = frame->size();
  frame->resize(at + CodedOutputStream::VarintSize32(kTag) +
                CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) + size);
  auto* p = reinterpret_cast<uint8_t*>(&(*frame)[at]);
  p = CodedOutputStream::WriteVarint32ToArray(kTag, p);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), p);
  rec_.SerializeWithCachedSizesToArray(p);
}

absl::StatusOr<raftpb::Message> MsgAppV2Decoder::Decode(v1::MsgAppV2Record&& rec) {
  absl::Status s = DecodeInPlace(&rec);
  if (!s.ok()) return s;
  return std::move(*rec.mutable_app());
}

absl::Status MsgAppV2Decoder::DecodeInPlace(v1::MsgAppV2Record* rec) {
  google::protobuf::Arena* const arena = rec->GetArena();
  switch (rec->kind_case()) {
    case v1::MsgAppV2Record::kLinkHeartbeat:
      rec->mutable_app()->set_type(raftpb::MsgHeartbeat);
      return absl::OkStatus();
    case v1::MsgAppV2Record::kAppEntries: {
      // Taken out of the oneof without a copy: in an arena it stays there
      // (freed with it); on the heap it is ours to delete.
      std::unique_ptr<v1::AppEntries> owned;
      v1::AppEntries* ae;
      if (arena != nullptr) {
        ae = rec->unsafe_arena_release_app_entries();
      } else {
        owned.reset(rec->release_app_entries());
        ae = owned.get();
      }
      raftpb::Message* m = rec->mutable_app();
      m->set_type(raftpb::MsgApp);
      m->set_from(remote_);
      m->set_to(local_);
      m->set_term(term_);
      m->set_logterm(term_);
      m->set_index(index_);
      m->mutable_entries()->Swap(ae->mutable_entries());  // same arena: pointers only
      m->set_commit(ae->commit());
      index_ += m->entries_size();
      return absl::OkStatus();
    }
    case v1::MsgAppV2Record::kApp: {
      const raftpb::Message& m = rec->app();
      if (m.type() != raftpb::MsgApp) {
        return absl::InvalidArgumentError(absl::StrCat("msgappv2 stream carries only MsgApp, got ",
                                                       raftpb::MessageType_Name(m.type())));
      }
      if (m.from() != remote_ || m.to() != local_) {
        return absl::InvalidArgumentError(absl::StrCat("msgappv2 record from ", m.from(), " to ",
                                                       m.to(), " on the stream from ", remote_,
                                                       " to ", local_));
      }
      term_ = m.term();
      index_ = m.entries_size() > 0 ? m.entries(m.entries_size() - 1).index() : m.index();
      return absl::OkStatus();
    }
    case v1::MsgAppV2Record::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("failed to parse empty record in msgappv2 stream");
}

}  // namespace raftgrpc
