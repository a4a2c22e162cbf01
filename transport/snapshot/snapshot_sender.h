// Client side of the Snapshot RPC (etcd's snapshotSender): at most one
// snapshot in flight per peer; a second is refused and reported as failure.
//
// The transfer runs on its own thread with the synchronous client-streaming
// API, so gRPC flow control paces reading from the data source; one chunk
// buffer is reused, so memory stays bounded whatever the snapshot size. If
// the source fails or comes up short, or no progress is made for
// snapshot_progress_timeout, the call is cancelled (never half-closed), so
// the receiver cannot mistake a truncated body for a complete one.
//
// Outcome, as etcd: OK -> status activated, ReportSnapshot(kFinish), the
// message closed with success. Anything else -> URL rotated, peer
// deactivated, ReportUnreachable, ReportSnapshot(kFailure), closed with
// failure. Exactly one report per snapshot.
//
// Thread-safety: Send never blocks; Stop cancels and joins.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "peer/channels.h"
#include "peer/peer.h"
#include "transport/internal/channel_pool.h"
#include "transport/metrics.h"
#include "transport/options.h"
#include "transport/internal/scheduler.h"

namespace raftgrpc {

struct SnapshotSenderStats {
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t refused_busy = 0;  // a snapshot was already in flight
  uint64_t bytes = 0;         // data bytes of successful sends
  absl::Duration last_duration;
  bool inflight = false;
  // Durations of finished transfers (etcd's snapshot_send_total_duration).
  Histogram seconds = SnapshotHistogram();
};

class GrpcSnapshotSender : public SnapshotSender {
 public:
  using CriticalFn = std::function<void(const absl::Status&)>;

  GrpcSnapshotSender(const PeerEnv& env, const TransportOptions& opts, ChannelPool* channels,
                     Scheduler* scheduler, CriticalFn on_critical);
  ~GrpcSnapshotSender() override;  // Stop()

  void Send(SnapshotMessage snap) override;
  void Stop() override;
  SnapshotSenderStats stats() const;

 private:
  struct Watch;
  void Run(SnapshotMessage snap);
  void ScheduleWatch(std::shared_ptr<Watch> w);
  grpc::Status Transfer(SnapshotMessage& snap, grpc::ClientContext* ctx, Watch* watch);
  void Finish(SnapshotMessage& snap, const grpc::Status& s, const grpc::ClientContext& ctx,
              absl::Duration took);

  const PeerEnv env_;
  const TransportOptions opts_;
  ChannelPool* const channels_;
  Scheduler* const sched_;
  const CriticalFn on_critical_;

  mutable std::mutex mu_;
  bool stopped_ = false;
  bool busy_ = false;
  grpc::ClientContext* ctx_ = nullptr;  // of the transfer in flight
  // Transfer threads. A finished one is joined by a later Send once it has
  // fully exited (never from itself: Raft may call SendSnapshot from within
  // ReportSnapshot), and the rest by Stop.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> exited;
  };
  std::vector<Worker> workers_;
  SnapshotSenderStats stats_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_
