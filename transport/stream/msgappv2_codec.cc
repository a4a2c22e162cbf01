#include "transport/stream/msgappv2_codec.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "peer/inbound_router.h"

namespace raftgrpc {

void MsgAppV2Encoder::Encode(raftpb::Message&& m, v1::MsgAppV2Frame* frame) {
  v1::MsgAppV2Record* rec = frame->add_records();
  if (IsLinkHeartbeat(m)) {
    rec->mutable_link_heartbeat();
    return;
  }
  if (m.index() == index_ && m.logterm() == term_ && m.logterm() == m.term()) {
    v1::AppEntries* ae;
    if (!pool_.empty()) {
      ae = pool_.back().release();
      pool_.pop_back();
      rec->set_allocated_app_entries(ae);
    } else {
      ae = rec->mutable_app_entries();
    }
    ae->mutable_entries()->Swap(m.mutable_entries());
    ae->set_commit(m.commit());
    index_ += ae->entries_size();
    return;
  }
  term_ = m.term();
  index_ = m.entries_size() > 0 ? m.entries(m.entries_size() - 1).index() : m.index();
  *rec->mutable_app() = std::move(m);
}

namespace {

// Whether a written record's entries are small enough to keep, cleared,
// for the next message's swap (see FreeEntries).
bool KeepCleared(const google::protobuf::RepeatedPtrField<raftpb::Entry>& es) {
  if (es.size() > MsgAppV2Encoder::kMaxKeptEntries) return false;
  size_t bytes = 0;
  for (const raftpb::Entry& e : es) bytes += e.data().capacity();
  return bytes <= MsgAppV2Encoder::kMaxKeptBytes;
}

// Clears small written entries, kept for the next swap; frees large ones
// (a cleared RepeatedPtrField would keep them, and their data buffers,
// alive in the pool).
void KeepOrFree(google::protobuf::RepeatedPtrField<raftpb::Entry>* es) {
  if (KeepCleared(*es)) {
    es->Clear();  // keeps the Entry objects and their data buffers
  } else {
    google::protobuf::RepeatedPtrField<raftpb::Entry> drop;
    es->Swap(&drop);
  }
}

}  // namespace

void MsgAppV2Encoder::FreeEntries(v1::MsgAppV2Frame* frame) {
  for (v1::MsgAppV2Record& rec : *frame->mutable_records()) {
    if (rec.has_app_entries()) KeepOrFree(rec.mutable_app_entries()->mutable_entries());
  }
}

void MsgAppV2Encoder::Recycle(v1::MsgAppV2Frame* frame) {
  for (v1::MsgAppV2Record& rec : *frame->mutable_records()) {
    if (rec.has_app_entries() && pool_.size() < kMaxPooled) {
      std::unique_ptr<v1::AppEntries> ae(rec.release_app_entries());
      KeepOrFree(ae->mutable_entries());  // done already if FreeEntries ran
      ae->Clear();
      pool_.push_back(std::move(ae));
    }
  }
  frame->Clear();
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
