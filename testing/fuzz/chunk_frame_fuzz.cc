// Fuzz target: SplitChunkFrame, the receiver's copy-free parse of snapshot
// chunk frames, against protobuf's parser. Input: byte 0 picks how the
// frame is cut into slices (0: one slice; k: slices of k % 13 + 1 bytes),
// as gRPC may hand it over; the rest is the frame. Invariants: whatever
// the split accepts, protobuf parses to a chunk with the same data and
// checksum; a chunk frame exactly as protobuf encodes it (no unknown
// fields) is accepted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/transport.pb.h"
#include "testing/fuzz/fuzz_check.h"
#include "transport/snapshot/chunk_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* frame = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  std::vector<grpc::Slice> slices;
  const size_t step = data[0] == 0 ? (n > 0 ? n : 1) : data[0] % 13 + 1;
  for (size_t i = 0; i < n; i += step) slices.emplace_back(frame + i, std::min(step, n - i));
  grpc::ByteBuffer buf(slices.data(), slices.size());

  raftgrpc::ChunkFrame split;
  const bool ok = raftgrpc::SplitChunkFrame(buf, &split);
  raftgrpc::v1::SnapshotFrame parsed;
  const bool parses = parsed.ParseFromArray(frame, static_cast<int>(n));
  if (ok) {
    FUZZ_CHECK(parses);
    FUZZ_CHECK(parsed.kind_case() == raftgrpc::v1::SnapshotFrame::kChunk);
    std::string joined;
    for (const grpc::Slice& s : split.data) {
      joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    FUZZ_CHECK(joined == parsed.chunk());
    FUZZ_CHECK(split.size == joined.size());
    FUZZ_CHECK(split.has_crc == parsed.has_chunk_crc32c());
    FUZZ_CHECK(split.crc == parsed.chunk_crc32c());
  }
  if (parses && parsed.kind_case() == raftgrpc::v1::SnapshotFrame::kChunk &&
      parsed.GetReflection()->GetUnknownFields(parsed).empty() &&
      parsed.SerializeAsString() == std::string(frame, n)) {
    FUZZ_CHECK(ok);
  }
  return 0;
}
