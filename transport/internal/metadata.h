// Identity metadata on every RPC (etcd's headers) and its validation in
// etcd's order, mapped to precise gRPC status codes.
//
// Thread-safety: pure functions.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_METADATA_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_METADATA_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/raftpb/raft.pb.h"
#include "transport/options.h"

namespace raftgrpc {

// Adds x-server-from, x-raft-to, x-etcd-cluster-id, versions and
// x-peerurls (when advertised) to an outgoing call.
void AddIdentityMetadata(grpc::ClientContext* ctx, const TransportOptions& opts, uint64_t to);

// What a request says about its sender.
struct RequestIdentity {
  uint64_t from = 0;
  std::optional<uint64_t> to;  // absent when x-raft-to is not sent
  std::vector<std::string> peer_urls;
};

using ClientMetadata = std::multimap<grpc::string_ref, grpc::string_ref>;

// Steps common to every handler, in etcd's order:
//   1. version compatibility (major.minor; missing versions count as 2.0.0)
//      -> FAILED_PRECONDITION "incompatible version";
//   2. cluster ID -> FAILED_PRECONDITION "cluster ID mismatch";
//   3. sender ID present and hex -> else INVALID_ARGUMENT "invalid from".
// On OK fills `id`.
grpc::Status ValidateIdentity(const ClientMetadata& md, const TransportOptions& opts,
                              RequestIdentity* id);

// What every handler runs first: the client certificate check (TLS), then
// ValidateIdentity, then the member identity check (see transport/tls.h).
grpc::Status ValidateRequest(const grpc::ServerContextBase* ctx, const TransportOptions& opts,
                             RequestIdentity* id);

// The body must agree with who the call is from: m.from() == `from` (the
// sender the request was authenticated as: its header, checked against
// its certificate with mTLS) and, unless `local` is 0, m.to() == `local`.
// Otherwise PERMISSION_DENIED naming both.
grpc::Status CheckMessageIdentity(const raftpb::Message& m, uint64_t from, uint64_t local);

// Marks a status as etcd's "removed member" (PERMISSION_DENIED plus trailing
// metadata raft-error: removed-member).
grpc::Status RemovedMemberStatus(grpc::ServerContextBase* ctx);

// The answer to a request whose message Raft::Process (or ProcessSnapshot)
// refused: PERMISSION_DENIED for a removed member (RemovedMemberStatus),
// INTERNAL with Raft's error otherwise.
grpc::Status ProcessErrorStatus(const absl::Status& ps, grpc::ServerContextBase* ctx);

// Whether a status received by a client is the removed-member answer.
bool IsRemovedMember(const grpc::Status& s, const grpc::ClientContext& ctx);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_METADATA_H_
