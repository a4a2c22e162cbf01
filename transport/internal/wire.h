// Wire-level names shared by clients and servers of the RaftTransport
// service: metadata keys (etcd's HTTP headers) and member-ID text form.
//
// Thread-safety: every function here is pure and safe from any thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_WIRE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace raftgrpc {

// Request metadata keys, lower-case as gRPC requires.
inline constexpr char kMetaFrom[] = "x-server-from";
inline constexpr char kMetaTo[] = "x-raft-to";
inline constexpr char kMetaClusterId[] = "x-etcd-cluster-id";
inline constexpr char kMetaServerVersion[] = "x-server-version";
inline constexpr char kMetaMinClusterVersion[] = "x-min-cluster-version";
inline constexpr char kMetaPeerUrls[] = "x-peerurls";
// Trailing metadata naming a machine-readable failure reason.
inline constexpr char kMetaRaftError[] = "raft-error";
inline constexpr char kRaftErrorRemovedMember[] = "removed-member";

// Versions advertised in metadata (etcd compares major.minor only).
inline constexpr char kServerVersion[] = "3.5.0";
inline constexpr char kMinClusterVersion[] = "3.0.0";

// Member and cluster IDs travel as lower-case hex without padding, as etcd
// writes them (strconv.FormatUint(id, 16)).
std::string FormatId(uint64_t id);

// Parses FormatId's form (upper-case digits accepted). nullopt on empty
// input, a non-hex digit or overflow.
std::optional<uint64_t> ParseId(absl::string_view text);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_WIRE_H_
