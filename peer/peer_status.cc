#include "peer/peer_status.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"

namespace raftgrpc {

PeerStatus::PeerStatus(uint64_t peer_id, TransitionFn on_transition)
    : peer_id_(peer_id), on_transition_(std::move(on_transition)) {}

void PeerStatus::Activate() {
  {
    MutexLock l(&mu_);
    if (active_) return;
    active_ = true;
    since_ = absl::Now();
  }
  if (on_transition_) on_transition_(true, "");
}

void PeerStatus::Deactivate(const FailureType& failure, absl::string_view why) {
  {
    MutexLock l(&mu_);
    if (!active_) return;
    active_ = false;
    since_ = absl::Time();
    deactivated_ = absl::Now();
    ++disconnects_;
  }
  if (on_transition_) {
    on_transition_(false, absl::StrCat("failed to ", failure.action, " ", absl::Hex(peer_id_),
                                       " on ", failure.source, " (", why, ")"));
  }
}

bool PeerStatus::IsActive() const {
  MutexLock l(&mu_);
  return active_;
}

absl::Time PeerStatus::ActiveSince() const {
  MutexLock l(&mu_);
  return since_;
}

absl::Time PeerStatus::LastActive() const {
  MutexLock l(&mu_);
  return active_ ? absl::Now() : deactivated_;
}

uint64_t PeerStatus::disconnects() const {
  MutexLock l(&mu_);
  return disconnects_;
}

}  // namespace raftgrpc
