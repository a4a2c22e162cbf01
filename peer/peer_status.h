// PeerStatus: whether a peer is reachable, shared by all of a peer's
// channels (etcd's peerStatus). Any channel's success activates it; any
// channel's failure deactivates it.
//
// Thread-safety: all methods are safe from any thread and never block beyond
// a short internal lock. The event callback runs under no lock, on the
// calling thread.
#ifndef RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_
#define RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_

#include <cstdint>
#include <functional>
#include <map>
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
  // What the owner is told, for its log.
  struct Event {
    enum class Kind {
      kActivated,    // inactive -> active
      kDeactivated,  // active -> inactive
      // A failure while already inactive (or never active) with a reason
      // other than the last one told for its channel (FailureType's
      // source). etcd logs these only at debug level, so a peer that was
      // never reached (a wrong port or certificate) went unnamed; told
      // once per cause and channel, not once per 100 ms redial, and at
      // most once per `failure_interval` per channel, since a hostile peer
      // can vary its error text at every dial.
      kFailedAgain,
    };
    Kind kind = Kind::kFailedAgain;
    // Empty for kActivated; else "failed to <action> <peer> on <source>
    // (<why>)".
    std::string reason;
    // kFailedAgain: failures of the channel not told since its last one.
    uint64_t repeats = 0;
  };
  using EventFn = std::function<void(const Event&)>;

  explicit PeerStatus(uint64_t peer_id, EventFn on_event = nullptr,
                      absl::Duration failure_interval = absl::Seconds(1));

  PeerStatus(const PeerStatus&) = delete;
  PeerStatus& operator=(const PeerStatus&) = delete;

  // Inactive -> active, stamping ActiveSince with now. No-op when active.
  void Activate();
  // Active -> inactive, clearing ActiveSince (kDeactivated). When already
  // inactive, tells kFailedAgain only if the reason is new for its channel
  // and none was told for that channel within `failure_interval`.
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
  const EventFn on_event_;
  const absl::Duration failure_interval_;
  mutable Mutex mu_;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time since_ ABSL_GUARDED_BY(mu_);
  absl::Time deactivated_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t disconnects_ ABSL_GUARDED_BY(mu_) = 0;
  // Per channel (FailureType::source; a peer has a handful), the last
  // failure told since the peer was last active, when, and the failures
  // not told since. Keyed by channel because channels fail in turn: one
  // "last reason" for all would be new at every redial.
  struct Told {
    std::string reason;
    absl::Time at = absl::InfinitePast();
    uint64_t repeats = 0;
  };
  std::map<std::string, Told> told_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_PEER_STATUS_H_
