// CRC-32C (Castagnoli), the snapshot trailer checksum. Uses the SSE4.2
// instruction when the CPU has it (~10 GB/s), a table otherwise.
// Thread-safety: pure.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace raftgrpc {

// Extends `crc` (0 to start) with `n` bytes.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_CRC32C_H_
