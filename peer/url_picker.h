// UrlPicker: a peer's URLs and the one currently in use (etcd's urlPicker).
// Shared by a peer's pipeline, snapshot sender and stream readers.
//
// Thread-safety: all methods are safe from any thread; none blocks beyond a
// short internal lock.
#ifndef RAFT_GRPC_TRANSPORT_PEER_URL_PICKER_H_
#define RAFT_GRPC_TRANSPORT_PEER_URL_PICKER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "peer/mutex.h"

namespace raftgrpc {

// Validates peer URLs as etcd does: non-empty list, each
// `http://host:port` or `https://host:port` with no path, query or user
// info. Returns them sorted (etcd sorts), or INVALID_ARGUMENT naming the bad
// URL.
absl::StatusOr<std::vector<std::string>> ValidatePeerUrls(const std::vector<std::string>& urls);

// "http://10.0.0.1:2380" -> "10.0.0.1:2380" (a gRPC target). The URL must
// have passed ValidatePeerUrls.
std::string GrpcTarget(const std::string& url);

class UrlPicker {
 public:
  // `urls` must be valid (ValidatePeerUrls); they are used in sorted order.
  explicit UrlPicker(std::vector<std::string> urls);

  // The URL in use. The same until Unreachable(it) or Update().
  std::string Pick() const;
  // Rotates to the next URL only if `url` is the current one, so several
  // channels reporting the same failure advance once.
  void Unreachable(const std::string& url);
  // Replaces the URLs (sorted) and goes back to the first.
  void Update(std::vector<std::string> urls);

  std::vector<std::string> urls() const;

 private:
  mutable Mutex mu_;
  std::vector<std::string> urls_ ABSL_GUARDED_BY(mu_);
  size_t picked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_URL_PICKER_H_
