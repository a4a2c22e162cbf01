// GuardedRaft: the node's Raft as the transport calls it. Every call
// catches what the node's code throws, so that an exception never ends the
// process from one of gRPC's threads (where it cannot be caught: gRPC's
// C core lies between) or from a receive worker. A library cannot assume
// that every Raft is written without exceptions; etcd's Go has none.
//
// What a throw becomes:
//   Process, ProcessSnapshot: INTERNAL ("Raft::Process threw: ..."), as a
//     failed Process (counted, returned to a pipeline or snapshot sender);
//   TryProcessUrgent: taken, with that INTERNAL status (the message is
//     dropped and counted as a Process error; Raft sends another);
//   IsIdRemoved: false (not removed: the call goes on to Process);
//   ReportUnreachable, ReportSnapshot: nothing more.
// Each is counted (exceptions()) and passed to `on_exception` with the
// method's name and what().
//
// Thread-safety: as the Raft it wraps; on_exception is called from any
// thread, outside any lock of ours, and must not throw.
#ifndef RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_
#define RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "peer/raft.h"

namespace raftgrpc {

// What the exception being handled says: its what(), or that it is not a
// std::exception. Call only inside a catch block.
std::string CurrentExceptionText();

class GuardedRaft final : public Raft {
 public:
  using ExceptionFn = std::function<void(const std::string& what)>;

  // `raft` must outlive this.
  GuardedRaft(Raft* raft, ExceptionFn on_exception)
      : raft_(raft), on_exception_(std::move(on_exception)) {}

  absl::Status Process(const raftpb::Message& m) override;
  bool TryProcessUrgent(const raftpb::Message& m, absl::Status* status) override;
  absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) override;
  bool IsIdRemoved(uint64_t id) override;
  void ReportUnreachable(uint64_t id) override;
  void ReportSnapshot(uint64_t id, SnapshotStatus status) override;

  // Exceptions caught so far.
  uint64_t exceptions() const { return exceptions_.load(std::memory_order_relaxed); }

 private:
  // Counts and reports the exception being handled (call only inside a
  // catch block); returns INTERNAL naming `method` and what() it said.
  absl::Status Caught(const char* method);

  Raft* const raft_;
  const ExceptionFn on_exception_;
  std::atomic<uint64_t> exceptions_{0};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_
