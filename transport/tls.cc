#include "transport/tls.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace raftgrpc {

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read TLS ", what, " ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " ", path, " is not PEM"));
  }
  return ss.str();
}

// The PEM files named in `tls`; a file not named reads as "".
struct Pems {
  std::string cert, key, ca;
};
absl::StatusOr<Pems> ReadPems(const TlsOptions& tls) {
  auto cert = ReadPem(tls.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(tls.key_file, "key");
  if (!key.ok()) return key.status();
  auto ca = ReadPem(tls.ca_file, "CA");
  if (!ca.ok()) return ca.status();
  return Pems{*std::move(cert), *std::move(key), *std::move(ca)};
}

std::string IdentityOf(const TlsOptions& tls, uint64_t member) {
  return tls.member_identity ? tls.member_identity(member) : DefaultMemberIdentity(member);
}

// The client's half of verify_member_identity, run in the TLS handshake
// after the chain was verified: the host name as gRPC checks it by default,
// then the member's name among the certificate's.
class MemberCertificateVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  MemberCertificateVerifier(uint64_t member, std::string want)
      : member_(member), want_(std::move(want)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* req,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* status) override {
    // Synchronous: HostNameCertificateVerifier never defers.
    hostname_.Verify(
        req, [](grpc::Status) {}, status);
    if (!status->ok()) return true;
    std::vector<std::string> names;
    names.emplace_back(req->common_name().data(), req->common_name().size());
    for (const auto& list : {req->dns_names(), req->uri_names()}) {
      for (const grpc::string_ref& n : list) {
        if (std::find(names.begin(), names.end(), n) == names.end()) {
          names.emplace_back(n.data(), n.size());
        }
      }
    }
    for (const std::string& n : names) {
      if (n == want_) return true;
    }
    *status = grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat("server certificate (", absl::StrJoin(names, ", "), ") does not name member ",
                     absl::Hex(member_), " (want ", want_, ")"));
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const uint64_t member_;
  const std::string want_;
  grpc::experimental::HostNameCertificateVerifier hostname_;
};

}  // namespace

absl::Status TlsOptions::Validate() const {
  if (!enabled()) {
    if (require_client_cert || verify_member_identity) {
      return absl::InvalidArgumentError("tls: client certificate checks need TLS files");
    }
    return absl::OkStatus();
  }
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("tls: cert_file and key_file go together");
  }
  if (require_client_cert && ca_file.empty()) {
    return absl::InvalidArgumentError("tls: require_client_cert needs ca_file");
  }
  if (verify_member_identity && !require_client_cert) {
    return absl::InvalidArgumentError("tls: verify_member_identity needs require_client_cert");
  }
  return absl::OkStatus();
}

std::string DefaultMemberIdentity(uint64_t member_id) {
  return absl::StrCat("member-", absl::Hex(member_id));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (absl::Status s = tls.Validate(); !s.ok()) return s;
  if (tls.cert_file.empty()) {
    return absl::InvalidArgumentError("tls: a server needs cert_file and key_file");
  }
  auto pems = ReadPems(tls);
  if (!pems.ok()) return pems.status();
  // Ask for and verify a client certificate when one is presented; whether
  // one is required is decided per request, so that a missing one gets a
  // clear UNAUTHENTICATED instead of a bare handshake failure.
  grpc::SslServerCredentialsOptions o(pems->ca.empty()
                                          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = pems->ca;
  o.pem_key_cert_pairs.push_back({pems->key, pems->cert});
  return grpc::SslServerCredentials(o);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  if (absl::Status s = tls.Validate(); !s.ok()) return s;
  auto pems = ReadPems(tls);
  if (!pems.ok()) return pems.status();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pems->ca;  // empty: the system roots
  o.pem_private_key = pems->key;
  o.pem_cert_chain = pems->cert;
  return grpc::SslCredentials(o);
}

absl::StatusOr<MemberChannelCredentials> MakeMemberChannelCredentials(const TlsOptions& tls) {
  if (!tls.verify_member_identity) {
    auto creds = MakeChannelCredentials(tls);
    if (!creds.ok()) return creds.status();
    return MemberChannelCredentials([creds = *std::move(creds)](uint64_t) { return creds; });
  }
  if (absl::Status s = tls.Validate(); !s.ok()) return s;
  auto pems = ReadPems(tls);
  if (!pems.ok()) return pems.status();
  using grpc::experimental::IdentityKeyCertPair;
  using grpc::experimental::StaticDataCertificateProvider;
  std::vector<IdentityKeyCertPair> identity;
  if (!pems->cert.empty()) identity.push_back({pems->key, pems->cert});
  std::shared_ptr<StaticDataCertificateProvider> provider =
      pems->ca.empty() ? std::make_shared<StaticDataCertificateProvider>(identity)
                       : std::make_shared<StaticDataCertificateProvider>(pems->ca, identity);
  const bool has_ca = !pems->ca.empty(), has_identity = !identity.empty();
  return MemberChannelCredentials(
      [provider, has_ca, has_identity, name_of = tls.member_identity](uint64_t member) {
        grpc::experimental::TlsChannelCredentialsOptions o;
        o.set_certificate_provider(provider);
        if (has_ca) o.watch_root_certs();  // else the system roots
        if (has_identity) o.watch_identity_key_cert_pairs();
        o.set_verify_server_certs(true);
        o.set_certificate_verifier(
            grpc::experimental::ExternalCertificateVerifier::Create<MemberCertificateVerifier>(
                member, name_of ? name_of(member) : DefaultMemberIdentity(member)));
        return grpc::experimental::TlsCredentials(o);
      });
}

grpc::Status CheckClientCertificate(const grpc::ServerContextBase& ctx, const TlsOptions& tls) {
  if (!tls.require_client_cert) return grpc::Status::OK;
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "a client certificate signed by the cluster CA is required");
  }
  return grpc::Status::OK;
}

grpc::Status CheckMemberIdentity(const grpc::ServerContextBase& ctx, const TlsOptions& tls,
                                 uint64_t from) {
  if (!tls.verify_member_identity) return grpc::Status::OK;
  const std::string want = IdentityOf(tls, from);
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  std::vector<std::string> names;
  if (auth != nullptr) {
    for (const char* prop : {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const grpc::string_ref& v : auth->FindPropertyValues(prop)) {
        names.emplace_back(v.data(), v.size());
        if (names.back() == want) return grpc::Status::OK;
      }
    }
  }
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      absl::StrCat("client certificate (", absl::StrJoin(names, ", "), ") does not name member ",
                   absl::Hex(from), " (want ", want, ")"));
}

}  // namespace raftgrpc
