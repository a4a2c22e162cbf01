// Snapshot data for Transport::SendSnapshot (etcd's snap.Message): a MsgSnap
// with a reader of its data, and the file-backed reader most nodes use.
//
//   auto data = FileSnapshotData::Open("/var/lib/node/snap/db");
//   SnapshotMessage snap;
//   snap.message = msg_snap;              // the MsgSnap Raft produced
//   snap.data = *std::move(data);
//   snap.on_done = [](bool ok) { ... };   // optional
//   transport->SendSnapshot(std::move(snap));
//
// Thread-safety: a SnapshotData is read by one thread at a time (the
// snapshot sender's); on_done runs once, on a transport thread. An
// exception either throws is caught: the send fails and is reported
// (transport/internal/guards.h).
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// Readable snapshot bytes of a known size (etcd's snap.Message reader).
class SnapshotData {
 public:
  virtual ~SnapshotData() = default;
  // Exact number of bytes Read will return in total.
  virtual uint64_t size() const = 0;
  // Reads up to `n` bytes into `buf`: bytes read (0 only at the end) or an
  // error. May block on I/O; called from the snapshot sender's thread.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
  // Resuming a broken transfer: skips the first `offset` bytes (called
  // before any Read) and returns their CRC-32C, which the end-to-end
  // checksum covers. May block reading them (no network is involved). The
  // default, UNIMPLEMENTED, makes the transfer start from 0.
  virtual absl::StatusOr<uint32_t> SkipTo(uint64_t offset);
};

// A MsgSnap plus its data (etcd's snap.Message).
struct SnapshotMessage {
  raftpb::Message message;  // type MsgSnap
  std::unique_ptr<SnapshotData> data;
  // Called exactly once when the send ends: true on success (etcd's
  // CloseNotify). May be empty. Runs on a transport thread: keep it short.
  std::function<void(bool ok)> on_done;

  // Runs on_done (once) with `ok`.
  void Close(bool ok) {
    if (on_done) {
      auto fn = std::move(on_done);
      on_done = nullptr;
      fn(ok);
    }
  }
};

// SnapshotData over a file, read sequentially with a fixed size taken when
// it is opened (etcd's exact-size reader: the sender fails the transfer if
// the file then reads shorter or longer).
class FileSnapshotData : public SnapshotData {
 public:
  // NOT_FOUND if the file cannot be opened. Does not block beyond open/stat.
  static absl::StatusOr<std::unique_ptr<FileSnapshotData>> Open(const std::string& path);
  ~FileSnapshotData() override;

  uint64_t size() const override { return size_; }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override;
  // Reads the prefix to checksum it.
  absl::StatusOr<uint32_t> SkipTo(uint64_t offset) override;

 private:
  FileSnapshotData(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_H_
