#include "peer/peer_status.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"

namespace raftgrpc {

PeerStatus::PeerStatus(uint64_t peer_id, EventFn on_event, absl::Duration failure_interval)
    : peer_id_(peer_id), on_event_(std::move(on_event)), failure_interval_(failure_interval) {}

void PeerStatus::Activate() {
  {
    MutexLock l(&mu_);
    if (active_) return;
    active_ = true;
    since_ = absl::Now();
    told_.clear();
  }
  if (on_event_) on_event_({Event::Kind::kActivated, "", 0});
}

void PeerStatus::Deactivate(const FailureType& failure, absl::string_view why) {
  Event e;
  e.reason = absl::StrCat("failed to ", failure.action, " ", absl::Hex(peer_id_), " on ",
                          failure.source, " (", why, ")");
  const absl::Time now = absl::Now();
  {
    MutexLock l(&mu_);
    Told& told = told_[failure.source];
    if (active_) {
      e.kind = Event::Kind::kDeactivated;
      active_ = false;
      since_ = absl::Time();
      deactivated_ = now;
      ++disconnects_;
    } else if (e.reason == told.reason || now - told.at < failure_interval_) {
      ++told.repeats;
      return;
    } else {
      e.kind = Event::Kind::kFailedAgain;
      e.repeats = told.repeats;
    }
    told.reason = e.reason;
    told.at = now;
    told.repeats = 0;
  }
  if (on_event_) on_event_(e);
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
