// SnapshotData over a file, read sequentially with a fixed size taken when
// it is opened (etcd's exact-size reader: the sender fails the transfer if
// the file then reads shorter or longer).
// Thread-safety: one reader thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_FILE_SNAPSHOT_DATA_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_FILE_SNAPSHOT_DATA_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "peer/channels.h"

namespace raftgrpc {

class FileSnapshotData : public SnapshotData {
 public:
  static absl::StatusOr<std::unique_ptr<FileSnapshotData>> Open(const std::string& path);
  ~FileSnapshotData() override;

  uint64_t size() const override { return size_; }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override;

 private:
  FileSnapshotData(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_FILE_SNAPSHOT_DATA_H_
