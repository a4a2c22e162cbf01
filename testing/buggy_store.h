// BuggyStore: a SnapshotStore with bugs, for tests of what a node's own
// store may do on our threads. Begin throws for a snapshot of index 1; the
// sinks it returns throw from Write; ResumeOffset throws what is not a
// std::exception. Aborted sinks are counted.
//
// Thread-safety: safe from any thread (the transport calls it from gRPC's).
#ifndef RAFT_GRPC_TRANSPORT_TESTING_BUGGY_STORE_H_
#define RAFT_GRPC_TRANSPORT_TESTING_BUGGY_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "transport/snapshot_store.h"

namespace raftgrpc::testing {

class BuggyStore : public SnapshotStore {
 public:
  std::atomic<int> aborted{0};

  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& m, uint64_t) override {
    if (m.snapshot().metadata().index() == 1) throw std::runtime_error("no room at the inn");
    return std::unique_ptr<SnapshotSink>(new Sink(&aborted));
  }
  uint64_t ResumeOffset(uint64_t, const raftpb::Message&, uint64_t) override { throw 7; }

 private:
  class Sink : public SnapshotSink {
   public:
    explicit Sink(std::atomic<int>* aborted) : aborted_(aborted) {}
    absl::Status Write(const char*, size_t) override { throw std::runtime_error("haunted disk"); }
    absl::StatusOr<std::string> Commit() override { return std::string("/committed"); }
    void Abort() override { aborted_->fetch_add(1); }

   private:
    std::atomic<int>* aborted_;
  };
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_BUGGY_STORE_H_
