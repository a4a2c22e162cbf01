// CRC-32C (Castagnoli), the snapshot trailer checksum. Uses the SSE4.2
// instruction when the CPU has it (three streams at once from 4 KiB on,
// then combined), a table otherwise.
// Thread-safety: pure.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace raftgrpc {

// Extends `crc` (0 to start) with `n` bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
// The same over the pieces in order, as fast as over one buffer.
uint32_t Crc32cExtend(uint32_t crc, const std::vector<absl::string_view>& pieces);

// The CRC-32C of A followed by B, from crc(A), crc(B) and B's length,
// without reading the data: a chunk's checksum, computed once, also
// extends the whole transfer's (one pass over the data, not two). One
// 32x32 bit-matrix product per set bit of `len_b`: about 0.1 µs for a
// 1 MiB chunk, against 100 µs to read it again (micro_bench).
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_
