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
// Each is counted and reported by a CaughtExceptions, with the method's
// name and what().
//
// Thread-safety: as the Raft it wraps.
#ifndef RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_
#define RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "peer/raft.h"

namespace raftgrpc {

// Where the guards of one transport (this one, and those of its snapshot
// store and snapshot data) count what they catch and report it.
//
// Thread-safety: safe from any thread; `on_exception` is called on the
// catching thread, outside any lock of ours, and must not throw.
class CaughtExceptions {
 public:
  explicit CaughtExceptions(std::function<void(const std::string& what)> on_exception)
      : on_exception_(std::move(on_exception)) {}

  // Counts and reports the exception being handled (call only inside a
  // catch block); returns INTERNAL "<call> threw: <what()>", for a call
  // that has a status to return (the others discard it).
  absl::Status Caught(const char* call);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::function<void(const std::string& what)> on_exception_;
  std::atomic<uint64_t> count_{0};
};

class GuardedRaft final : public Raft {
 public:
  // `raft` must outlive this.
  GuardedRaft(Raft* raft, std::shared_ptr<CaughtExceptions> caught)
      : raft_(raft), caught_(std::move(caught)) {}

  absl::Status Process(const raftpb::Message& m) override;
  bool TryProcessUrgent(const raftpb::Message& m, absl::Status* status) override;
  absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) override;
  bool IsIdRemoved(uint64_t id) override;
  void ReportUnreachable(uint64_t id) override;
  void ReportSnapshot(uint64_t id, SnapshotStatus status) override;

 private:
  Raft* const raft_;
  const std::shared_ptr<CaughtExceptions> caught_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_GUARDED_RAFT_H_
