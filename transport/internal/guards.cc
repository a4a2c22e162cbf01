#include "transport/internal/guards.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace raftgrpc {
namespace {

class GuardedSink final : public SnapshotSink {
 public:
  GuardedSink(std::unique_ptr<SnapshotSink> sink, std::shared_ptr<CaughtExceptions> caught)
      : sink_(std::move(sink)), caught_(std::move(caught)) {}

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
      (void)caught_->Caught("SnapshotSink::offset");
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
      return caught_->Caught(method);
    }
  }
  template <typename F>
  void Do(const char* method, F&& f) {
    try {
      f();
    } catch (...) {
      broken_ = true;
      (void)caught_->Caught(method);
    }
  }

  const std::unique_ptr<SnapshotSink> sink_;
  const std::shared_ptr<CaughtExceptions> caught_;
  mutable bool broken_ = false;  // one thread uses a sink
};

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::Wrap(
    absl::StatusOr<std::unique_ptr<SnapshotSink>> sink) {
  if (!sink.ok()) return sink;
  return std::unique_ptr<SnapshotSink>(new GuardedSink(*std::move(sink), caught_));
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::Begin(
    const raftpb::Message& msg, uint64_t size) {
  try {
    return Wrap(store_->Begin(msg, size));
  } catch (...) {
    return caught_->Caught("SnapshotStore::Begin");
  }
}

uint64_t GuardedSnapshotStore::ResumeOffset(uint64_t from, const raftpb::Message& msg,
                                            uint64_t size) {
  try {
    return store_->ResumeOffset(from, msg, size);
  } catch (...) {
    (void)caught_->Caught("SnapshotStore::ResumeOffset");
    return 0;
  }
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> GuardedSnapshotStore::BeginFrom(
    uint64_t from, const raftpb::Message& msg, uint64_t size, uint64_t offset) {
  try {
    return Wrap(store_->BeginFrom(from, msg, size, offset));
  } catch (...) {
    return caught_->Caught("SnapshotStore::BeginFrom");
  }
}

void GuardedSnapshotStore::Forget(uint64_t from) {
  try {
    store_->Forget(from);
  } catch (...) {
    (void)caught_->Caught("SnapshotStore::Forget");
  }
}

namespace {

class GuardedSnapshotData final : public SnapshotData {
 public:
  GuardedSnapshotData(std::unique_ptr<SnapshotData> data, uint64_t size,
                      std::shared_ptr<CaughtExceptions> caught)
      : data_(std::move(data)), size_(size), caught_(std::move(caught)) {}

  uint64_t size() const override { return size_; }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    try {
      return data_->Read(buf, n);
    } catch (...) {
      return caught_->Caught("SnapshotData::Read");
    }
  }
  absl::StatusOr<uint32_t> SkipTo(uint64_t offset) override {
    try {
      return data_->SkipTo(offset);
    } catch (...) {
      return caught_->Caught("SnapshotData::SkipTo");
    }
  }

 private:
  const std::unique_ptr<SnapshotData> data_;
  const uint64_t size_;  // read once, guarded (GuardSnapshot)
  const std::shared_ptr<CaughtExceptions> caught_;
};

}  // namespace

absl::Status GuardSnapshot(SnapshotMessage* snap, std::shared_ptr<CaughtExceptions> caught) {
  if (snap->on_done) {  // first: the caller runs it if the size throws
    snap->on_done = [fn = std::move(snap->on_done), caught](bool ok) {
      try {
        fn(ok);
      } catch (...) {
        (void)caught->Caught("SnapshotMessage::on_done");
      }
    };
  }
  if (snap->data != nullptr) {
    uint64_t size;
    try {
      size = snap->data->size();
    } catch (...) {
      return caught->Caught("SnapshotData::size");
    }
    snap->data = std::make_unique<GuardedSnapshotData>(std::move(snap->data), size, caught);
  }
  return absl::OkStatus();
}

}  // namespace raftgrpc
