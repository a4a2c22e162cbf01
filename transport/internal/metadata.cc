#include "transport/internal/metadata.h"

#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "transport/internal/wire.h"

namespace raftgrpc {
namespace {

absl::string_view Find(const ClientMetadata& md, absl::string_view key) {
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return absl::string_view();
  return absl::string_view(it->second.data(), it->second.size());
}

// A version component: 1 to 3 decimal digits (so major * 1000 + minor
// cannot overflow and no component runs into another).
std::optional<int> VersionPart(absl::string_view p) {
  if (p.empty() || p.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// major * 1000 + minor of "X.Y[.Z...]"; missing -> 2.0 (etcd's default for
// a peer that sends no version); malformed or out of range -> nullopt.
std::optional<int> MajorMinor(absl::string_view v) {
  if (v.empty()) return 2000;
  std::vector<absl::string_view> parts = absl::StrSplit(v, absl::MaxSplits('.', 2));
  if (parts.size() < 2) return std::nullopt;
  std::optional<int> major = VersionPart(parts[0]), minor = VersionPart(parts[1]);
  if (!major || !minor) return std::nullopt;
  return *major * 1000 + *minor;
}

}  // namespace

void AddIdentityMetadata(grpc::ClientContext* ctx, const TransportOptions& opts, uint64_t to) {
  ctx->AddMetadata(kMetaFrom, FormatId(opts.local_id));
  ctx->AddMetadata(kMetaTo, FormatId(to));
  ctx->AddMetadata(kMetaClusterId, FormatId(opts.cluster_id));
  ctx->AddMetadata(kMetaServerVersion, kServerVersion);
  ctx->AddMetadata(kMetaMinClusterVersion, kMinClusterVersion);
  if (!opts.advertise_urls.empty()) {
    ctx->AddMetadata(kMetaPeerUrls, absl::StrJoin(opts.advertise_urls, ","));
  }
}

grpc::Status ValidateIdentity(const ClientMetadata& md, const TransportOptions& opts,
                              RequestIdentity* id) {
  const std::optional<int> remote_version = MajorMinor(Find(md, kMetaServerVersion));
  const std::optional<int> remote_min = MajorMinor(Find(md, kMetaMinClusterVersion));
  if (!remote_version || !remote_min) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("malformed ", !remote_version ? kMetaServerVersion : kMetaMinClusterVersion,
                     " (want major.minor[.patch], at most 3 digits each)"));
  }
  if (*remote_version < *MajorMinor(kMinClusterVersion) ||
      *remote_min > *MajorMinor(kServerVersion)) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "incompatible version");
  }
  std::optional<uint64_t> cluster = ParseId(Find(md, kMetaClusterId));
  if (!cluster || *cluster != opts.cluster_id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
  }
  std::optional<uint64_t> from = ParseId(Find(md, kMetaFrom));
  if (!from || *from == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "invalid from");
  }
  id->from = *from;
  absl::string_view to = Find(md, kMetaTo);
  id->to = to.empty() ? std::nullopt : ParseId(to);
  if (!to.empty() && !id->to) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "invalid to");
  }
  id->peer_urls.clear();
  absl::string_view urls = Find(md, kMetaPeerUrls);
  if (!urls.empty()) id->peer_urls = absl::StrSplit(urls, ',', absl::SkipEmpty());
  return grpc::Status::OK;
}

grpc::Status CheckMessageIdentity(const raftpb::Message& m, uint64_t from, uint64_t local) {
  if (m.from() != from) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("message from ", absl::Hex(m.from()), " in a request from ", absl::Hex(from)));
  }
  if (local != 0 && m.to() != local) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("message to ", absl::Hex(m.to()), " sent to member ", absl::Hex(local)));
  }
  return grpc::Status::OK;
}

grpc::Status ProcessErrorStatus(const absl::Status& ps, grpc::ServerContextBase* ctx) {
  if (ps.code() == absl::StatusCode::kPermissionDenied) return RemovedMemberStatus(ctx);
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat("failed to process raft message (", ps.ToString(), ")"));
}

grpc::Status RemovedMemberStatus(grpc::ServerContextBase* ctx) {
  ctx->AddTrailingMetadata(kMetaRaftError, kRaftErrorRemovedMember);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "the member has been permanently removed from the cluster");
}

bool IsRemovedMember(const grpc::Status& s, const grpc::ClientContext& ctx) {
  if (s.error_code() != grpc::StatusCode::PERMISSION_DENIED) return false;
  auto md = ctx.GetServerTrailingMetadata();
  auto it = md.find(kMetaRaftError);
  return it != md.end() &&
         absl::string_view(it->second.data(), it->second.size()) == kRaftErrorRemovedMember;
}

grpc::Status ValidateRequest(const grpc::ServerContextBase* ctx, const TransportOptions& opts,
                             RequestIdentity* id) {
  grpc::Status s = CheckClientCertificate(*ctx, opts.tls);
  if (!s.ok()) return s;
  s = ValidateIdentity(ctx->client_metadata(), opts, id);
  if (!s.ok()) return s;
  return CheckMemberIdentity(*ctx, opts.tls, id->from);
}

}  // namespace raftgrpc
