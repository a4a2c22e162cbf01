#include "testing/fake_raft.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "absl/time/clock.h"

namespace raftgrpc::testing {

absl::Status FakeRaft::Process(const raftpb::Message& m) {
  std::function<void(const raftpb::Message&)> hook;
  absl::Duration delay;
  absl::Status result;
  {
    std::unique_lock<std::mutex> l(mu_);
    processing_types_.insert(m.type());
    cv_.notify_all();
    cv_.wait(l, [&] { return blocked_types_.count(m.type()) == 0; });
    processing_types_.erase(processing_types_.find(m.type()));
    delay = process_delay_;
    hook = on_process_;
    result = process_error_;
  }
  if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
  if (hook) hook(m);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (keep_messages_) messages_.push_back(m);
    ++message_count_;
  }
  cv_.notify_all();
  MaybeThrow("Process");
  return result;
}

void FakeRaft::MaybeThrow(const char* method) const {
  bool t;
  {
    std::lock_guard<std::mutex> l(mu_);
    t = throw_;
  }
  if (t) throw std::runtime_error(std::string("FakeRaft::") + method + " told to throw");
}

void FakeRaft::set_throw(bool t) {
  std::lock_guard<std::mutex> l(mu_);
  throw_ = t;
}

bool FakeRaft::TryProcessUrgent(const raftpb::Message& m, absl::Status* status) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++urgent_offered_;
    if (throw_) throw std::runtime_error("FakeRaft::TryProcessUrgent told to throw");
    if (!take_urgent_) return false;
    ++urgent_taken_;
  }
  *status = Process(m);
  return true;
}

void FakeRaft::set_take_urgent(bool take) {
  std::lock_guard<std::mutex> l(mu_);
  take_urgent_ = take;
}

size_t FakeRaft::urgent_offered() const {
  std::lock_guard<std::mutex> l(mu_);
  return urgent_offered_;
}

size_t FakeRaft::urgent_taken() const {
  std::lock_guard<std::mutex> l(mu_);
  return urgent_taken_;
}

absl::Status FakeRaft::ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    snapshot_paths_.push_back(data_path);
  }
  return Process(m);
}

std::vector<std::string> FakeRaft::snapshot_paths() const {
  std::lock_guard<std::mutex> l(mu_);
  return snapshot_paths_;
}

bool FakeRaft::IsIdRemoved(uint64_t id) {
  bool removed;
  {
    std::lock_guard<std::mutex> l(mu_);
    removed = removed_.count(id) > 0;
  }
  MaybeThrow("IsIdRemoved");
  return removed;
}

void FakeRaft::ReportUnreachable(uint64_t id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    unreachable_.push_back(id);
  }
  cv_.notify_all();
  MaybeThrow("ReportUnreachable");
}

void FakeRaft::ReportSnapshot(uint64_t id, SnapshotStatus status) {
  {
    std::lock_guard<std::mutex> l(mu_);
    snapshot_reports_.emplace_back(id, status);
  }
  cv_.notify_all();
  MaybeThrow("ReportSnapshot");
}

bool FakeRaft::WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), pred);
}

bool FakeRaft::WaitForMessages(size_t n, absl::Duration timeout) {
  return WaitFor([&] { return message_count_ >= n; }, timeout);
}

bool FakeRaft::WaitForUnreachable(size_t n, absl::Duration timeout) {
  return WaitFor([&] { return unreachable_.size() >= n; }, timeout);
}

bool FakeRaft::WaitForSnapshotReports(size_t n, absl::Duration timeout) {
  return WaitFor([&] { return snapshot_reports_.size() >= n; }, timeout);
}

bool FakeRaft::WaitForProcessing(raftpb::MessageType type, absl::Duration timeout) {
  return WaitFor([&] { return processing_types_.count(type) > 0; }, timeout);
}

std::vector<raftpb::Message> FakeRaft::messages() const {
  std::lock_guard<std::mutex> l(mu_);
  return messages_;
}

size_t FakeRaft::message_count() const {
  std::lock_guard<std::mutex> l(mu_);
  return message_count_;
}

std::vector<uint64_t> FakeRaft::unreachable() const {
  std::lock_guard<std::mutex> l(mu_);
  return unreachable_;
}

std::vector<std::pair<uint64_t, SnapshotStatus>> FakeRaft::snapshot_reports() const {
  std::lock_guard<std::mutex> l(mu_);
  return snapshot_reports_;
}

void FakeRaft::set_keep_messages(bool keep) {
  std::lock_guard<std::mutex> l(mu_);
  keep_messages_ = keep;
}

void FakeRaft::SetProcessError(absl::Status s) {
  std::lock_guard<std::mutex> l(mu_);
  process_error_ = std::move(s);
}

void FakeRaft::SetProcessDelay(absl::Duration d) {
  std::lock_guard<std::mutex> l(mu_);
  process_delay_ = d;
}

void FakeRaft::SetRemoved(uint64_t id, bool removed) {
  std::lock_guard<std::mutex> l(mu_);
  if (removed) {
    removed_.insert(id);
  } else {
    removed_.erase(id);
  }
}

void FakeRaft::BlockType(raftpb::MessageType type) {
  std::lock_guard<std::mutex> l(mu_);
  blocked_types_.insert(type);
}

void FakeRaft::Unblock() {
  {
    std::lock_guard<std::mutex> l(mu_);
    blocked_types_.clear();
  }
  cv_.notify_all();
}

void FakeRaft::set_on_process(std::function<void(const raftpb::Message&)> fn) {
  std::lock_guard<std::mutex> l(mu_);
  on_process_ = std::move(fn);
}

}  // namespace raftgrpc::testing
