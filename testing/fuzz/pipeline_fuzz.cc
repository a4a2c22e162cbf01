// Fuzz target: the Pipeline handler over a real in-process gRPC call.
// Input: byte 0 picks the sender identity (see fuzz_node.h); the rest is a
// PipelineRequest as it would arrive on the wire. Invariants: no crash; the
// answer's code is one the protocol documents for that case.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "testing/fuzz/fuzz_check.h"
#include "testing/fuzz/fuzz_node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  raftgrpc::v1::PipelineRequest req;
  if (!req.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  auto& node = raftgrpc::fuzz::GetFuzzNode();
  grpc::ClientContext ctx;
  raftgrpc::fuzz::AddFuzzIdentity(&ctx, data[0]);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  raftgrpc::v1::PipelineResponse resp;
  const grpc::Status s = node.stub->Pipeline(&ctx, req, &resp);
  switch (data[0] % 4) {
    case 2:  // removed member
      FUZZ_CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                 s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                 s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
      break;
    case 3:  // wrong cluster
      FUZZ_CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
      break;
    default: {
      // The body must name the caller (2 or 9) as sender and the node (1)
      // as receiver, or it is PERMISSION_DENIED.
      const uint64_t caller = data[0] % 4 == 0 ? 2 : 9;
      const bool impostor =
          req.has_message() && (req.message().from() != caller || req.message().to() != 1);
      FUZZ_CHECK(s.ok() || s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                 s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                 (impostor && s.error_code() == grpc::StatusCode::PERMISSION_DENIED));
      if (impostor && s.ok()) FUZZ_CHECK(false);
      if (!req.has_message()) FUZZ_CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    }
  }
  return 0;
}
