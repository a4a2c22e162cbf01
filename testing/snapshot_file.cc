#include "testing/snapshot_file.h"

#include <utility>

#include "testing/messages.h"
#include "transport/snapshot.h"

namespace raftgrpc::testing {

absl::StatusOr<SnapshotMessage> FileSnapshot(uint64_t from, uint64_t to, uint64_t index,
                                             const std::string& path) {
  auto data = FileSnapshotData::Open(path);
  if (!data.ok()) return data.status();
  SnapshotMessage snap;
  snap.message = Msg(raftpb::MsgSnap, from, to);
  snap.message.mutable_snapshot()->mutable_metadata()->set_index(index);
  snap.data = *std::move(data);
  return snap;
}

}  // namespace raftgrpc::testing
