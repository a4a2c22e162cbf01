#include "testing/messages.h"

namespace raftgrpc::testing {

raftpb::Message Msg(raftpb::MessageType type, uint64_t from, uint64_t to) {
  raftpb::Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  return m;
}

raftpb::Message Heartbeat(uint64_t from, uint64_t to) {
  return Msg(raftpb::MsgHeartbeat, from, to);
}

raftpb::Message App(uint64_t from, uint64_t to, uint64_t term, uint64_t index,
                    absl::string_view payload, int entries) {
  raftpb::Message m = Msg(raftpb::MsgApp, from, to);
  m.set_term(term);
  m.set_logterm(term);
  m.set_index(index);
  for (int i = 0; i < entries; ++i) {
    raftpb::Entry* e = m.add_entries();
    e->set_term(term);
    e->set_index(index + 1 + i);
    e->set_data(payload.data(), payload.size());
  }
  return m;
}

raftpb::Message SnapMsg(uint64_t from, uint64_t to, uint64_t term, uint64_t index) {
  raftpb::Message m = Msg(raftpb::MsgSnap, from, to);
  m.set_term(term);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  m.mutable_snapshot()->mutable_metadata()->set_term(term);
  return m;
}

}  // namespace raftgrpc::testing
