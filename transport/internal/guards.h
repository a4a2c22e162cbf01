// Guards around the node's code that the transport calls on its own and
// gRPC's threads, where an exception would end the process: the
// SnapshotStore (and each sink it makes), and a snapshot's SnapshotData
// and on_done. The node's Raft has its own (peer/guarded_raft.h). Each
// throw is counted and reported by the transport's CaughtExceptions.
//
// GuardedSnapshotStore: INTERNAL ("SnapshotStore::Begin threw: ...") from
// a call that returns a status; ResumeOffset answers 0 (start over); the
// void calls do nothing more. A sink that threw once is broken: each later
// call that returns a status fails with INTERNAL, so its transfer fails
// and nothing it wrote is taken for good.
//
// GuardSnapshot: a SnapshotData whose Read or SkipTo throws fails with
// INTERNAL, and so does the transfer; an on_done that throws is reported.
//
// Destructors cannot be guarded: they must not throw (C++ ends the process
// first).
//
// Thread-safety: as what they wrap; each sink and data is used by one
// thread at a time.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_GUARDS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_GUARDS_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "peer/guarded_raft.h"
#include "transport/snapshot.h"
#include "transport/snapshot_store.h"

namespace raftgrpc {

class GuardedSnapshotStore final : public SnapshotStore {
 public:
  // `store` must outlive this and every sink it makes.
  GuardedSnapshotStore(SnapshotStore* store, std::shared_ptr<CaughtExceptions> caught)
      : store_(store), caught_(std::move(caught)) {}

  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                      uint64_t size) override;
  uint64_t ResumeOffset(uint64_t from, const raftpb::Message& msg, uint64_t size) override;
  absl::StatusOr<std::unique_ptr<SnapshotSink>> BeginFrom(uint64_t from, const raftpb::Message& msg,
                                                          uint64_t size, uint64_t offset) override;
  void Forget(uint64_t from) override;

 private:
  absl::StatusOr<std::unique_ptr<SnapshotSink>> Wrap(
      absl::StatusOr<std::unique_ptr<SnapshotSink>> sink);

  SnapshotStore* const store_;
  const std::shared_ptr<CaughtExceptions> caught_;
};

// Puts `snap`'s on_done, then its data, behind guards. Reads the data's
// size once, here (the sender needs it before anything else): if that
// throws, returns INTERNAL, with on_done guarded, for the caller to fail.
absl::Status GuardSnapshot(SnapshotMessage* snap, std::shared_ptr<CaughtExceptions> caught);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_GUARDS_H_
