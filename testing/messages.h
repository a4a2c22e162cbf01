// Raft message builders for tests, benchmarks and examples. Each sets only
// the fields it names (raftpb is proto2: an unset field stays absent), so a
// caller adds what its case needs (commit, reject, ...) on the result.
//
// Thread-safety: pure functions.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_MESSAGES_H_
#define RAFT_GRPC_TRANSPORT_TESTING_MESSAGES_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc::testing {

// type, from and to.
raftpb::Message Msg(raftpb::MessageType type, uint64_t from, uint64_t to);

// A MsgHeartbeat from `from` to `to`.
raftpb::Message Heartbeat(uint64_t from, uint64_t to);

// A MsgApp in `term` that appends `entries` entries after the entry at
// `index` (whose term, logterm, is `term` too): entry i has term `term`,
// index index+1+i and data `payload`.
raftpb::Message App(uint64_t from, uint64_t to, uint64_t term, uint64_t index,
                    absl::string_view payload = "", int entries = 1);

// A MsgSnap in `term` for a snapshot at (`index`, `term`).
raftpb::Message SnapMsg(uint64_t from, uint64_t to, uint64_t term, uint64_t index);

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_MESSAGES_H_
