// A SnapshotFrame that carries a data chunk, without copying the chunk.
//
// The Snapshot RPC moves the snapshot body in frames of about
// snapshot_chunk_bytes (1 MiB). Through protobuf each frame costs a fresh
// 1 MiB allocation and a copy on both sides, and the allocations alone
// (page faults on memory glibc had just returned to the kernel) took a
// quarter of the receiver's gRPC threads (perf, 2026-11-30). Both sides
// therefore handle chunk frames as gRPC byte buffers: the sender wraps its
// read buffer in a slice, and the receiver hands the received slices to the
// disk. Every other frame (header, trailer, anything unexpected) goes
// through protobuf as before. Thread-compatible.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CHUNK_FRAME_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CHUNK_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace raftgrpc {

// A chunk frame's content: its data as slices of the received buffer.
struct ChunkFrame {
  std::vector<grpc::Slice> data;
  size_t size = 0;       // bytes in `data`
  bool has_crc = false;  // chunk_crc32c was present
  uint32_t crc = 0;
};

// Whether `buf` is a chunk frame made only of `chunk` (field 2) and
// `chunk_crc32c` (field 4) fields, in any order and repeated (the last one
// of each counts, as protobuf has it). Then *out holds them, sharing
// `buf`'s memory. Anything else, well formed or not (a header, a trailer,
// an unknown field, a bad length), returns false and leaves the frame to
// protobuf's parser, so that what is accepted never differs from it.
bool SplitChunkFrame(const grpc::ByteBuffer& buf, ChunkFrame* out);

// The frame {chunk: data, chunk_crc32c: crc}, as protobuf would encode it,
// sharing `data`'s memory.
grpc::ByteBuffer MakeChunkFrame(grpc::Slice data, uint32_t crc);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CHUNK_FRAME_H_
