// FakeRaft: a Raft that records every call, with blocking waits for tests
// of transports and of Raft nodes built on them.
//
// Thread-safety: every method is safe from any thread. The Wait* calls block
// up to their timeout; Process blocks while its type is blocked (BlockType)
// and for the configured delay.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_FAKE_RAFT_H_
#define RAFT_GRPC_TRANSPORT_TESTING_FAKE_RAFT_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "peer/raft.h"

namespace raftgrpc::testing {

class FakeRaft : public Raft {
 public:
  absl::Status Process(const raftpb::Message& m) override;
  // Takes the message (Process on the calling thread) if set_take_urgent
  // says so; otherwise leaves it to Process, as Raft's default.
  bool TryProcessUrgent(const raftpb::Message& m, absl::Status* status) override;
  // Records where the data lies, then Process(m).
  absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) override;
  bool IsIdRemoved(uint64_t id) override;
  void ReportUnreachable(uint64_t id) override;
  void ReportSnapshot(uint64_t id, SnapshotStatus status) override;

  // Each returns true once the count reaches `n`, false at the timeout.
  bool WaitForMessages(size_t n, absl::Duration timeout = absl::Seconds(10));
  bool WaitForUnreachable(size_t n, absl::Duration timeout = absl::Seconds(10));
  bool WaitForSnapshotReports(size_t n, absl::Duration timeout = absl::Seconds(10));
  // Waits until a Process call of `type` is running (e.g. blocked).
  bool WaitForProcessing(raftpb::MessageType type, absl::Duration timeout = absl::Seconds(10));

  std::vector<raftpb::Message> messages() const;
  size_t message_count() const;
  std::vector<uint64_t> unreachable() const;
  std::vector<std::pair<uint64_t, SnapshotStatus>> snapshot_reports() const;
  std::vector<std::string> snapshot_paths() const;

  // Stop keeping message bodies (counts only), for high-volume tests.
  void set_keep_messages(bool keep);
  // Process returns this status (after recording the message).
  void SetProcessError(absl::Status s);
  // Process sleeps this long per message: a slow node.
  void SetProcessDelay(absl::Duration d);
  void SetRemoved(uint64_t id, bool removed = true);
  // Process of messages of `type` blocks until Unblock() (a proposal with no
  // leader). The message is recorded once it is let through.
  void BlockType(raftpb::MessageType type);
  void Unblock();
  // Whether TryProcessUrgent takes what it is offered (default: no).
  void set_take_urgent(bool take);
  // Messages offered to TryProcessUrgent, and taken by it.
  size_t urgent_offered() const;
  size_t urgent_taken() const;
  // Called (outside the lock) for every processed message.
  void set_on_process(std::function<void(const raftpb::Message&)> fn);
  // A Raft with a bug: every method does and records what it would, then
  // throws std::runtime_error (TryProcessUrgent before taking anything).
  void set_throw(bool t);

 private:
  bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout);
  void MaybeThrow(const char* method) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raftpb::Message> messages_;
  size_t message_count_ = 0;
  bool take_urgent_ = false;
  bool throw_ = false;
  size_t urgent_offered_ = 0;
  size_t urgent_taken_ = 0;
  bool keep_messages_ = true;
  std::vector<uint64_t> unreachable_;
  std::vector<std::string> snapshot_paths_;
  std::vector<std::pair<uint64_t, SnapshotStatus>> snapshot_reports_;
  absl::Status process_error_;
  absl::Duration process_delay_ = absl::ZeroDuration();
  std::set<uint64_t> removed_;
  std::set<int> blocked_types_;
  std::multiset<int> processing_types_;
  std::function<void(const raftpb::Message&)> on_process_;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_FAKE_RAFT_H_
