// PeerEnv: what a peer's channels share (owned by the Peer, or by a remote),
// the per-peer counters they write for metrics, and etcd's failure path,
// which every channel runs the same way.
//
// Thread-safety: PeerCounters and ReportChannelFailure are safe from any
// thread and never block beyond a short lock (plus what the Raft callbacks
// and on_critical do).
#ifndef RAFT_GRPC_TRANSPORT_PEER_PEER_ENV_H_
#define RAFT_GRPC_TRANSPORT_PEER_PEER_ENV_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "peer/inbound_router.h"
#include "peer/mutex.h"
#include "peer/peer_status.h"
#include "peer/raft.h"
#include "peer/url_picker.h"
#include "transport/metrics.h"

namespace raftgrpc {

// etcd's per-peer network metrics (etcd_network_peer_*, snapshot_send_*),
// written by whichever channels implement the ports and read by the
// transport's Metrics(), so that neither side needs the other's classes.
class PeerCounters {
 public:
  void AddSent(uint64_t bytes) { sent_bytes_.fetch_add(bytes, std::memory_order_relaxed); }
  void AddSendFailure() { sent_failures_.fetch_add(1, std::memory_order_relaxed); }
  // Messages a stream writer had queued, not yet begun, when its stream
  // failed, was replaced or ended: dropped (Raft was told unreachable),
  // counted as dropped{stream_closed}.
  void AddDroppedUnsent(uint64_t n) { dropped_unsent_.fetch_add(n, std::memory_order_relaxed); }
  void AddReceived(uint64_t bytes) { received_bytes_.fetch_add(bytes, std::memory_order_relaxed); }
  void AddReceiveFailure() { AddReceiveFailures(1); }
  void AddReceiveFailures(uint64_t n) {
    received_failures_.fetch_add(n, std::memory_order_relaxed);
  }
  // A snapshot transfer started / ended (`seconds` counted on success only,
  // as etcd's snapshot_send_total_duration); a refused one only fails.
  void SnapshotSendStarted();
  void SnapshotSendEnded(bool ok, double seconds);
  void SnapshotSendRefused();
  // Progress of the transfer in flight (one per peer): it starts (with
  // what the receiver kept, not sent again), `done` grows per chunk
  // (`chunk` bytes sent), and SnapshotSendEnded ends it.
  void SnapshotSendBegin(uint64_t index, uint64_t total, uint64_t resumed);
  void SnapshotSendProgress(uint64_t done, uint64_t chunk);

  // Adds these counters to `m` (sent/received bytes and failures add up
  // with what other sources already put there).
  void AddTo(PeerMetrics* m) const;

 private:
  std::atomic<uint64_t> sent_bytes_{0};
  std::atomic<uint64_t> sent_failures_{0};
  std::atomic<uint64_t> dropped_unsent_{0};
  std::atomic<uint64_t> received_bytes_{0};
  std::atomic<uint64_t> received_failures_{0};
  mutable Mutex mu_;  // the snapshot fields
  uint64_t snapshot_success_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t snapshot_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t snapshot_inflight_ ABSL_GUARDED_BY(mu_) = 0;
  Histogram snapshot_seconds_ ABSL_GUARDED_BY(mu_) = SnapshotHistogram();
  uint64_t snapshot_resumed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t snapshot_data_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  SnapshotProgress progress_ ABSL_GUARDED_BY(mu_);
  absl::Time progress_start_ ABSL_GUARDED_BY(mu_);
};

using CriticalErrorFn = std::function<void(const absl::Status&)>;

// What a peer's channels share. Owned by the Peer (or a remote); outlives
// every channel. Copied by value into each channel: all members are
// pointers or small.
struct PeerEnv {
  uint64_t local_id = 0;
  uint64_t peer_id = 0;
  Raft* raft = nullptr;
  PeerStatus* status = nullptr;
  UrlPicker* picker = nullptr;
  InboundRouter* inbound = nullptr;  // where stream readers deliver
  PeerCounters* counters = nullptr;
  // etcd's ErrorC (e.g. this member was removed). May be empty.
  CriticalErrorFn on_critical;
};

// How a channel failed, and whom to tell.
struct ChannelFailure {
  FailureType source;           // e.g. {"pipeline", "write"}
  std::string reason;           // why, for the deactivation log line
  std::string url;              // rotate away from it; empty: keep the URL
  bool deactivate = true;       // mark the peer inactive
  bool report = true;           // Raft::ReportUnreachable(peer)
  bool snapshot = false;        // also Raft::ReportSnapshot(peer, kFailure)
  bool removed_member = false;  // the remote says we were removed: critical
};

// etcd's failure path, in its order: rotate the URL, deactivate the peer,
// report to Raft, raise the removed-member critical error. Call it outside
// the channel's locks: Raft may call back into the transport.
void ReportChannelFailure(const PeerEnv& env, const ChannelFailure& f);

// What Raft is told of a message that did not go out (dropped, refused or
// cancelled): ReportUnreachable, plus ReportSnapshot(kFailure) for a
// snapshot. The last step of ReportChannelFailure; outside any lock too.
void ReportNotSent(const PeerEnv& env, bool snapshot);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_PEER_ENV_H_
