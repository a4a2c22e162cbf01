#include "transport/server/guarded_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "peer/guarded_raft.h"

namespace raftgrpc {
namespace {

class GuardedSink final : public SnapshotSink {
 public:
  GuardedSink(std::unique_ptr<SnapshotSink> sink, std::shared_ptr<GuardedSnapshotStore::Guard> g)
      : sink_(std::move(sink)), guard_(std::move(g)) {}

  absl::Status Write(const char* data, size_t n) override {
    return Call("SnapshotSink::Write", [&] { return sink_->Write(data, n); });
  }
  absl::Status WriteV(const std::vector<absl::string_view>& pieces) override {
    return Call("SnapshotSink::WriteV", [&] { return sink_->WriteV(pieces); });
  }
  absl::StatusOr<std::string> Commit() override {
    return Call("SnapshotSink::Commit", [&] { return sink_->Commit(); });
  }
  void Discard() override {
    Do("SnapshotSink::Discard", [&] { sink_->Discard(); });
  }
  void Abort() override {
    Do("SnapshotSink::Abort", [&] { sink_->Abort(); });
  }
  absl::Status Checkpoint() override {
    return Call("SnapshotSink::Checkpoint", [&] { return sink_->Checkpoint(); });
  }
  void Keep() override {
    Do("SnapshotSink::Keep", [&] { sink_->Keep(); });
  }
  uint64_t offset() const override {
    try {
      return sink_->offset();
    } catch (...) {
      broken_ = true;
      guard_->Caught("SnapshotSink::offset");
      return 0;  // wrong, but broken_ fails the transfer at its next step
    }
  }
  absl::StatusOr<uint32_t> PrefixCrc32c() override {
    return Call("SnapshotSink::PrefixCrc32c", [&] { return sink_->PrefixCrc32c(); });
  }

 private:
  static absl::Status Broken() {
    return absl::InternalError("the snapshot sink threw earlier in this transfer");
  }
  // f's own result (a Status or StatusOr), or INTERNAL once broken.
  template <typename F>
  auto Call(const char* method, F&& f) -> decltype(f()) {
    if (broken_) return Broken();
    try {
      return f();
    } catch (...) {
      broken_ = true;
      return guard_->Caught(method);
    }
  }
  template <typename F>
  void Do(const char* method, F&& f) {
    try {
      f();
    } catch (...) {
      broken_ = true;
      guard_->Caught(method);
    }
  }

  const std::unique_ptr<SnapshotSink> sink_;
  const std::shared_ptr<GuardedSnapshotStore::Guard> guard_;
  mutable bool broken_ = false;  // one thread uses a sink
};

}  // namespace

absl::Status GuardedSnapshotStore::Guard::Caught(const char* method) {
  exceptions.fetch_add(1, std::memory_order_relaxed);
  std::string line = absl::StrCat(method, " threw: ", CurrentExceptionText());
  if (on_exception) on_exception(line);
  return absl::InternalError(std::move(line));
}

GuardedSnapshotStore::GuardedSnapshotStore(SnapshotStore* store, ExceptionFn on_exception)
    : store_(store), guard_(std::make_shared<Guard>()) {
  guard_->on_exception = std::move(on_exception);
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::Wrap(
    absl::StatusOr<std::unique_ptr<SnapshotSink>> sink) {
  if (!sink.ok()) return sink;
  return std::unique_ptr<SnapshotSink>(new GuardedSink(*std::move(sink), guard_));
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::Begin(
    const raftpb::Message& msg, uint64_t size) {
  try {
    return Wrap(store_->Begin(msg, size));
  } catch (...) {
    return guard_->Caught("SnapshotStore::Begin");
  }
}

uint64_t GuardedSnapshotStore::ResumeOffset(uint64_t from, const raftpb::Message& msg,
                                            uint64_t size) {
  try {
    return store_->ResumeOffset(from, msg, size);
  } catch (...) {
    guard_->Caught("SnapshotStore::ResumeOffset");
    return 0;
  }
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::BeginFrom(
    uint64_t from, const raftpb::Message& msg, uint64_t size, uint64_t offset) {
  try {
    return Wrap(store_->BeginFrom(from, msg, size, offset));
  } catch (...) {
    return guard_->Caught("SnapshotStore::BeginFrom");
  }
}

void GuardedSnapshotStore::Forget(uint64_t from) {
  try {
    store_->Forget(from);
  } catch (...) {
    guard_->Caught("SnapshotStore::Forget");
  }
}

uint64_t GuardedSnapshotStore::exceptions() const {
  return guard_->exceptions.load(std::memory_order_relaxed);
}

}  // namespace raftgrpc
