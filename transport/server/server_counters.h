// What the server side counts: service totals and, per sender (senders
// need not be peers), etcd's received-bytes/failures and snapshot-receive
// metrics. Shared by the service's handlers and the snapshot receiver.
//
// Thread-safety: safe from any thread; InboundMetrics takes a short lock
// per call (pipeline and snapshot paths only).
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVER_COUNTERS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVER_COUNTERS_H_

#include <atomic>
#include <cstdint>
#include <map>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "peer/mutex.h"
#include "transport/metrics.h"

namespace raftgrpc {

// Server-side counters per sender, for senders that may not be peers.
// Thread-safe; a short lock per call (pipeline and snapshot paths only).
class InboundMetrics {
 public:
  // Takes the lock once, for TSan: the handlers that counted last ran on
  // gRPC's threads, and the server's shutdown orders them before this
  // only inside libgrpc, where TSan cannot see it (a report, 2026-12-02).
  ~InboundMetrics() { MutexLock l(&mu_); }

  struct From {
    uint64_t received_bytes = 0;     // pipeline messages and snapshot data
    uint64_t received_failures = 0;  // rejected pipeline/snapshot requests
    uint64_t snapshot_success = 0;
    uint64_t snapshot_failures = 0;
    uint64_t snapshot_inflight = 0;
    Histogram snapshot_seconds = SnapshotHistogram();
    uint64_t snapshot_resumed_bytes = 0;
    uint64_t snapshot_data_bytes = 0;
    SnapshotProgress receiving;  // seconds filled in by Get
    absl::Time receiving_since;
  };
  void AddBytes(uint64_t from, uint64_t n);
  void AddFailure(uint64_t from);
  void SnapshotStarted(uint64_t from);
  void SnapshotEnded(uint64_t from, bool ok, double seconds);
  // Progress of the receive in flight from `from` (one per sender).
  void SnapshotReceiveBegin(uint64_t from, uint64_t index, uint64_t total, uint64_t resumed);
  void SnapshotReceiveProgress(uint64_t from, uint64_t done, uint64_t chunk);
  std::map<uint64_t, From> Get() const;

 private:
  mutable Mutex mu_;
  std::map<uint64_t, From> from_ ABSL_GUARDED_BY(mu_);
};

// Service totals (monotonic) and per-sender metrics.
struct ServerCounters {
  std::atomic<uint64_t> streams_accepted{0};
  std::atomic<uint64_t> streams_rejected{0};
  std::atomic<uint64_t> pipeline_received{0};
  std::atomic<uint64_t> pipeline_rejected{0};
  std::atomic<uint64_t> snapshots_received{0};
  std::atomic<uint64_t> snapshots_rejected{0};
  std::atomic<uint64_t> received_bytes{0};
  InboundMetrics by_sender;

  void AddReceivedBytes(uint64_t from, uint64_t n) {
    received_bytes.fetch_add(n, std::memory_order_relaxed);
    by_sender.AddBytes(from, n);
  }
  // Copies the totals into `t`'s server fields.
  void ReadTotals(TransportCounters* t) const;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVER_COUNTERS_H_
