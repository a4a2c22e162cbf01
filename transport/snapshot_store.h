// Where received snapshots go. The default store writes each snapshot to a
// temporary file in a directory (`raftgrpc-recv-XXXXXX.tmp`), fsyncs it, and
// renames it to etcd's name `<index as %016x>.snap.db` only once size and
// checksum are verified; anything that fails leaves no file behind. A
// process killed in the middle of a receive does leave its temporary file:
// RemoveLeftovers, which Transport::Create runs for the default store,
// deletes those (and only those) at start-up.
//
// Thread-safety: a store may be used by several receivers at once; each
// SnapshotSink is used by one thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// One incoming snapshot's data.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;  // aborts unless committed
  // Appends data. May block on disk I/O.
  virtual absl::Status Write(const char* data, size_t n) = 0;
  // Makes the data durable and visible; returns where it lies. Replaces
  // whatever was there (a snapshot of the same index): what Raft is handed
  // is always this transfer's data.
  virtual absl::StatusOr<std::string> Commit() = 0;
  // After Commit, when Raft rejected the snapshot: removes what Commit made
  // visible, so no later transfer or reader takes it for a good one.
  virtual void Discard() {}
  // Discards what was written. Idempotent.
  virtual void Abort() = 0;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // Starts receiving the data of `msg` (a MsgSnap), `size` bytes.
  virtual absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                              uint64_t size) = 0;
};

class DiskSnapshotStore : public SnapshotStore {
 public:
  // `dir` (and its parents) are created when the first snapshot arrives.
  explicit DiskSnapshotStore(std::string dir) : dir_(std::move(dir)) {}

  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                      uint64_t size) override;
  // etcd's file name for a snapshot at `index`.
  static std::string FileName(uint64_t index);
  // Whether `name` is one of this store's temporary files.
  static bool IsTempName(const std::string& name);
  // Deletes the temporary files of interrupted receives from dir(); never
  // another file. Returns the names removed. Call before receiving (it
  // would delete a receive in progress). Blocks on the directory scan.
  std::vector<std::string> RemoveLeftovers() const;
  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_
