// A MsgSnap carrying a file as its data, for tests and tools that send
// snapshots.
// Thread-safety: a plain function; opens the file, does not read it.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_SNAPSHOT_FILE_H_
#define RAFT_GRPC_TRANSPORT_TESTING_SNAPSHOT_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "transport/snapshot.h"

namespace raftgrpc::testing {

// MsgSnap from `from` to `to` at snapshot index `index`, data streamed from
// the file at `path` (FileSnapshotData). Fails as FileSnapshotData::Open.
absl::StatusOr<SnapshotMessage> FileSnapshot(uint64_t from, uint64_t to, uint64_t index,
                                             const std::string& path);

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_SNAPSHOT_FILE_H_
