// TLS and mTLS for the transport, from PEM files (etcd's --peer-cert-file,
// --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth).
//
// Status codes a server with TLS answers:
//   - client certificate required but none presented -> UNAUTHENTICATED;
//   - certificate does not name the member it claims to be (x-server-from),
//     when verify_member_identity is on -> PERMISSION_DENIED.
// A certificate that fails chain verification (e.g. another CA) fails the
// TLS handshake itself: the client sees UNAVAILABLE, as no RPC can start.
//
// Thread-safety: free functions, safe from any thread; they read files, so
// call them at set-up, not on a hot path.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_TLS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_TLS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace raftgrpc {

struct TlsOptions {
  // PEM files. cert_file + key_file: our certificate (used both as server
  // and as client certificate, as etcd's peer certificate is). ca_file: the
  // roots that verify the other side. All empty: plaintext.
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  // Server: every request must carry a client certificate signed by
  // ca_file (etcd's --peer-client-cert-auth; off by default, as in etcd).
  bool require_client_cert = false;
  // Server: the client certificate must name the member in x-server-from.
  // Requires require_client_cert.
  bool verify_member_identity = false;
  // The name a member's certificate carries, as its common name or a DNS or
  // URI subject alternative name. Default: "member-<id in hex>".
  std::function<std::string(uint64_t member_id)> member_identity;
  // Client: name checked against the server certificate instead of the URL's
  // host (gRPC's ssl_target_name_override). Empty: the URL's host.
  std::string server_name_override;

  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
  // Consistency of the fields (files are read later): INVALID_ARGUMENT.
  absl::Status Validate() const;
};

// "member-<id in hex>".
std::string DefaultMemberIdentity(uint64_t member_id);

// Credentials for a server hosting the transport's service; plaintext when
// !tls.enabled(). Unreadable files: INVALID_ARGUMENT naming the file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls);
// Credentials for dialling peers; plaintext when !tls.enabled().
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsOptions& tls);

// Per-member client credentials, which Transport uses: as above, and with
// verify_member_identity the TLS handshake also checks that the server's
// certificate names the member being dialled, so that a stolen URL or a
// changed DNS record cannot send one peer's traffic to another member.
// Such a connection fails before any request is sent; its calls fail
// UNAVAILABLE with the reason ("server certificate ... does not name member
// ..."). Files are read once, here; the returned function does no I/O and is
// safe from any thread.
using MemberChannelCredentials =
    std::function<std::shared_ptr<grpc::ChannelCredentials>(uint64_t member_id)>;
absl::StatusOr<MemberChannelCredentials> MakeMemberChannelCredentials(const TlsOptions& tls);

// Server side, per request. Before the identity is parsed: a certificate is
// present if required (else UNAUTHENTICATED).
grpc::Status CheckClientCertificate(const grpc::ServerContextBase& ctx, const TlsOptions& tls);
// After: the certificate names member `from`, if verify_member_identity
// (else PERMISSION_DENIED).
grpc::Status CheckMemberIdentity(const grpc::ServerContextBase& ctx, const TlsOptions& tls,
                                 uint64_t from);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_TLS_H_
