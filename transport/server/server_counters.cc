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

void InboundMetrics::SnapshotEnded(uint64_t from, bool ok, double seconds) {
  MutexLock l(&mu_);
  From& f = from_[from];
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
  return from_;
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
