// PeerStatus: whether a peer is reachable, shared by all of a peer's
// channels (etcd's peerStatus). Any channel's success activates it; any
// channel's failure deactivates it.
//
// Thread-safety: all methods are safe from any thread and never block beyond
// a short internal lock. The transition callback runs under no lock.
#ifndef RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_
#define RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "peer/mutex.h"

namespace raftgrpc {

// Where a failure happened, as etcd's failureType: source is the channel
// ("stream Message", "pipeline", ...), action what failed ("dial", "read",
// "write", "post", ...).
struct FailureType {
  std::string source;
  std::string action;
};

class PeerStatus {
 public:
  // Called on each transition: (active, reason). reason is empty on
  // activation and "failed to <action> <peer> on <source> (<why>)" on
  // deactivation.
  using TransitionFn = std::function<void(bool active, const std::string& reason)>;

  explicit PeerStatus(uint64_t peer_id, TransitionFn on_transition = nullptr);

  PeerStatus(const PeerStatus&) = delete;
  PeerStatus& operator=(const PeerStatus&) = delete;

  // Inactive -> active, stamping ActiveSince with now. No-op when active.
  void Activate();
  // Active -> inactive, clearing ActiveSince. No-op (no callback) when
  // already inactive.
  void Deactivate(const FailureType& failure, absl::string_view why);

  bool IsActive() const;
  // Time of the last inactive -> active transition; absl::Time() (the Unix
  // epoch, Go's zero time) while inactive.
  absl::Time ActiveSince() const;
  // Now while active; else when it last stopped being active
  // (absl::InfinitePast() if it never was). Tells a link that just broke,
  // and is worth waiting for, from a peer that has been down for a while.
  absl::Time LastActive() const;
  // Number of active -> inactive transitions so far
  // (etcd_network_disconnected_peers_total).
  uint64_t disconnects() const;

 private:
  const uint64_t peer_id_;
  const TransitionFn on_transition_;
  mutable Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time since_ ABSL_GUARDED_BY(mu_);
  absl::Time deactivated_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t disconnects_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_
