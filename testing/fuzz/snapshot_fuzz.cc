// Fuzz target: the Snapshot handler over a real in-process client stream.
// Input: byte 0 picks the identity (see fuzz_node.h) and, in bit 7,
// whether the client cancels instead of half-closing; then frames, each a
// 2-byte big-endian length and a serialized SnapshotFrame. Invariants: no
// crash; the code is a documented one; a failed transfer leaves no file.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "testing/fuzz/fuzz_check.h"
#include "testing/fuzz/fuzz_node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<raftgrpc::v1::SnapshotFrame> frames;
  for (size_t i = 1; i + 2 <= size;) {
    const size_t n = (size_t(data[i]) << 8) | data[i + 1];
    i += 2;
    if (i + n > size) break;
    raftgrpc::v1::SnapshotFrame f;
    if (!f.ParseFromArray(data + i, static_cast<int>(n))) return 0;
    frames.push_back(std::move(f));
    i += n;
  }
  const bool cancel = data[0] & 0x80;
  auto& node = raftgrpc::fuzz::GetFuzzNode();
  const int files_before = raftgrpc::fuzz::CountSnapshotFiles();
  const uint64_t answered_before = raftgrpc::fuzz::SnapshotsAnswered();
  grpc::ClientContext ctx;
  raftgrpc::fuzz::AddFuzzIdentity(&ctx, data[0]);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  raftgrpc::v1::SnapshotResponse resp;
  auto w = node.stub->Snapshot(&ctx, &resp);
  for (const auto& f : frames) {
    if (!w->Write(f)) break;
  }
  // Bounded waits on the server's own counters (the call is seen by the
  // server asynchronously; "in flight" lasts until its cleanup is done).
  auto wait = [](const auto& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return pred();
  };
  if (cancel) {
    // Cancel mid-transfer: once the server has the call (or already answered).
    wait([&] {
      return raftgrpc::fuzz::SnapshotsInFlight() > 0 ||
             raftgrpc::fuzz::SnapshotsAnswered() > answered_before;
    });
    ctx.TryCancel();
  } else {
    w->WritesDone();
  }
  const grpc::Status s = w->Finish();
  FUZZ_CHECK(wait([] { return raftgrpc::fuzz::SnapshotsInFlight() == 0; }));
  if (cancel) {
    // Stored anyway if the cancel came after the commit; never a temp file.
    FUZZ_CHECK(raftgrpc::fuzz::CountSnapshotFiles() <= files_before + 1);
    return 0;
  }
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      FUZZ_CHECK(data[0] % 4 < 2);  // only a valid identity stores anything
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::NOT_FOUND:
      if (raftgrpc::fuzz::CountSnapshotFiles() != files_before) {
        std::fprintf(stderr, "status %d (%s) left a file\n", s.error_code(),
                     s.error_message().c_str());
      }
      FUZZ_CHECK(raftgrpc::fuzz::CountSnapshotFiles() == files_before);
      break;
    default:
      std::fprintf(stderr, "unexpected status %d: %s\n", s.error_code(), s.error_message().c_str());
      FUZZ_CHECK(false);
  }
  return 0;
}
