#include "peer/peer_env.h"

namespace raftgrpc {

void PeerCounters::SnapshotSendStarted() {
  MutexLock l(&mu_);
  ++snapshot_inflight_;
}

void PeerCounters::SnapshotSendBegin(uint64_t index, uint64_t total, uint64_t resumed) {
  MutexLock l(&mu_);
  progress_ = SnapshotProgress();
  progress_.active = true;
  progress_.index = index;
  progress_.total_bytes = total;
  progress_.done_bytes = resumed;
  progress_.resumed_bytes = resumed;
  progress_start_ = absl::Now();
  snapshot_resumed_bytes_ += resumed;
}

void PeerCounters::SnapshotSendProgress(uint64_t done, uint64_t chunk) {
  MutexLock l(&mu_);
  progress_.done_bytes = done;
  snapshot_data_bytes_ += chunk;
}

void PeerCounters::SnapshotSendEnded(bool ok, double seconds) {
  MutexLock l(&mu_);
  progress_ = SnapshotProgress();
  if (snapshot_inflight_ > 0) --snapshot_inflight_;
  if (ok) {
    ++snapshot_success_;
    snapshot_seconds_.Observe(seconds);
  } else {
    ++snapshot_failures_;
  }
}

void PeerCounters::SnapshotSendRefused() {
  MutexLock l(&mu_);
  ++snapshot_failures_;
}

void PeerCounters::AddTo(PeerMetrics* m) const {
  m->sent_bytes += sent_bytes_.load(std::memory_order_relaxed);
  m->sent_failures += sent_failures_.load(std::memory_order_relaxed);
  if (const uint64_t n = dropped_unsent_.load(std::memory_order_relaxed)) {
    m->dropped["stream_closed"] += n;
  }
  m->received_bytes += received_bytes_.load(std::memory_order_relaxed);
  m->received_failures += received_failures_.load(std::memory_order_relaxed);
  MutexLock l(&mu_);
  m->snapshot_send_resumed_bytes = snapshot_resumed_bytes_;
  m->snapshot_sent_data_bytes = snapshot_data_bytes_;
  m->snapshot_sending = progress_;
  if (progress_.active) {
    m->snapshot_sending.seconds = absl::ToDoubleSeconds(absl::Now() - progress_start_);
  }
  m->snapshot_send_success = snapshot_success_;
  m->snapshot_send_failures = snapshot_failures_;
  m->snapshot_send_inflight = snapshot_inflight_;
  m->snapshot_send_seconds = snapshot_seconds_;
}

void ReportNotSent(const PeerEnv& env, bool snapshot) {
  env.raft->ReportUnreachable(env.peer_id);
  if (snapshot) env.raft->ReportSnapshot(env.peer_id, SnapshotStatus::kFailure);
}

void ReportChannelFailure(const PeerEnv& env, const ChannelFailure& f) {
  if (!f.url.empty()) env.picker->Unreachable(f.url);
  if (f.deactivate) env.status->Deactivate(f.source, f.reason);
  if (f.report) ReportNotSent(env, f.snapshot);
  if (f.removed_member && env.on_critical) {
    env.on_critical(
        absl::PermissionDeniedError("the member has been permanently removed from the cluster"));
  }
}

}  // namespace raftgrpc
