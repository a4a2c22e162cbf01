#include "transport/server/server_counters.h"

namespace raftgrpc {

void InboundMetrics::AddBytes(uint64_t from, uint64_t n) {
  MutexLock l(&mu_);
  from_[from].received_bytes += n;
}

void InboundMetrics::AddFailure(uint64_t from) {
  MutexLock l(&mu_);
  ++from_[from].received_failures;
}

void InboundMetrics::SnapshotStarted(uint64_t from) {
  MutexLock l(&mu_);
  ++from_[from].snapshot_inflight;
}

void InboundMetrics::SnapshotReceiveBegin(uint64_t from, uint64_t index, uint64_t total,
                                          uint64_t resumed) {
  MutexLock l(&mu_);
  From& f = from_[from];
  f.receiving = SnapshotProgress();
  f.receiving.active = true;
  f.receiving.index = index;
  f.receiving.total_bytes = total;
  f.receiving.done_bytes = resumed;
  f.receiving.resumed_bytes = resumed;
  f.receiving_since = absl::Now();
  f.snapshot_resumed_bytes += resumed;
}

void InboundMetrics::SnapshotReceiveProgress(uint64_t from, uint64_t done, uint64_t chunk) {
  MutexLock l(&mu_);
  From& f = from_[from];
  f.receiving.done_bytes = done;
  f.snapshot_data_bytes += chunk;
}

void InboundMetrics::SnapshotEnded(uint64_t from, bool ok, double seconds) {
  MutexLock l(&mu_);
  From& f = from_[from];
  f.receiving = SnapshotProgress();
  if (f.snapshot_inflight > 0) --f.snapshot_inflight;
  if (ok) {
    ++f.snapshot_success;
    f.snapshot_seconds.Observe(seconds);
  } else {
    ++f.snapshot_failures;
    ++f.received_failures;
  }
}

std::map<uint64_t, InboundMetrics::From> InboundMetrics::Get() const {
  MutexLock l(&mu_);
  std::map<uint64_t, From> out = from_;
  const absl::Time now = absl::Now();
  for (auto& [id, f] : out) {
    if (f.receiving.active) f.receiving.seconds = absl::ToDoubleSeconds(now - f.receiving_since);
  }
  return out;
}

void ServerCounters::ReadTotals(TransportCounters* t) const {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  t->streams_accepted = get(streams_accepted);
  t->streams_rejected = get(streams_rejected);
  t->pipeline_received = get(pipeline_received);
  t->pipeline_rejected = get(pipeline_rejected);
  t->snapshots_received = get(snapshots_received);
  t->snapshots_rejected = get(snapshots_rejected);
  t->received_bytes = get(received_bytes);
}

}  // namespace raftgrpc
