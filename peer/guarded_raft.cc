#include "peer/guarded_raft.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace raftgrpc {

namespace {

// What the exception being handled says. Only inside a catch block.
std::string CurrentExceptionText() {
  try {
    throw;  // the one being handled: to read its what()
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace

absl::Status CaughtExceptions::Caught(const char* call) {
  count_.fetch_add(1, std::memory_order_relaxed);
  std::string line = absl::StrCat(call, " threw: ", CurrentExceptionText());
  if (on_exception_) on_exception_(line);
  return absl::InternalError(std::move(line));
}

absl::Status GuardedRaft::Process(const raftpb::Message& m) {
  try {
    return raft_->Process(m);
  } catch (...) {
    return caught_->Caught("Raft::Process");
  }
}

bool GuardedRaft::TryProcessUrgent(const raftpb::Message& m, absl::Status* status) {
  try {
    return raft_->TryProcessUrgent(m, status);
  } catch (...) {
    *status = caught_->Caught("Raft::TryProcessUrgent");
    return true;
  }
}

absl::Status GuardedRaft::ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) {
  try {
    return raft_->ProcessSnapshot(m, data_path);
  } catch (...) {
    return caught_->Caught("Raft::ProcessSnapshot");
  }
}

bool GuardedRaft::IsIdRemoved(uint64_t id) {
  try {
    return raft_->IsIdRemoved(id);
  } catch (...) {
    (void)caught_->Caught("Raft::IsIdRemoved");
    return false;
  }
}

void GuardedRaft::ReportUnreachable(uint64_t id) {
  try {
    raft_->ReportUnreachable(id);
  } catch (...) {
    (void)caught_->Caught("Raft::ReportUnreachable");
  }
}

void GuardedRaft::ReportSnapshot(uint64_t id, SnapshotStatus status) {
  try {
    raft_->ReportSnapshot(id, status);
  } catch (...) {
    (void)caught_->Caught("Raft::ReportSnapshot");
  }
}

}  // namespace raftgrpc
