// GuardedSnapshotStore: the node's SnapshotStore, and each sink it makes, as
// the snapshot receiver calls them, on gRPC's threads and the transfer's
// disk thread. As GuardedRaft does for Raft, every call catches what the
// node's code throws: an exception there would end the process.
//
// What a throw becomes: INTERNAL ("SnapshotStore::Begin threw: ...") from a
// call that returns a status; ResumeOffset answers 0 (start over); the
// void calls do nothing more. A sink that threw once is broken: each later
// call that returns a status fails with INTERNAL, so its transfer fails
// and nothing it wrote is taken for good. Each throw is counted and passed
// to `on_exception`. A sink's destructor cannot be guarded: it must not
// throw (C++ ends the process first).
//
// Thread-safety: as the store it wraps; each sink is used by one thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_GUARDED_STORE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_GUARDED_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transport/snapshot_store.h"

namespace raftgrpc {

class GuardedSnapshotStore final : public SnapshotStore {
 public:
  using ExceptionFn = std::function<void(const std::string& what)>;

  // `store` must outlive this and every sink it makes.
  GuardedSnapshotStore(SnapshotStore* store, ExceptionFn on_exception);

  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                      uint64_t size) override;
  uint64_t ResumeOffset(uint64_t from, const raftpb::Message& msg, uint64_t size) override;
  absl::StatusOr<std::unique_ptr<SnapshotSink>> BeginFrom(uint64_t from, const raftpb::Message& msg,
                                                          uint64_t size, uint64_t offset) override;
  void Forget(uint64_t from) override;

  // Exceptions caught so far, from the store and its sinks.
  uint64_t exceptions() const;

  // Shared with the sinks, which may outlive a call into the store.
  struct Guard {
    ExceptionFn on_exception;
    std::atomic<uint64_t> exceptions{0};
    // Counts and reports the exception being handled (inside a catch
    // block only); returns INTERNAL naming `method`.
    absl::Status Caught(const char* method);
  };

 private:
  absl::StatusOr<std::unique_ptr<SnapshotSink>> Wrap(
      absl::StatusOr<std::unique_ptr<SnapshotSink>> sink);

  SnapshotStore* const store_;
  const std::shared_ptr<Guard> guard_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_GUARDED_STORE_H_
