// Client side of the Snapshot RPC (etcd's snapshotSender): at most one
// snapshot in flight per peer; a second is refused and reported as failure
// (ReportUnreachable and ReportSnapshot(kFailure), as etcd).
//
// The transfer runs on its own thread, on a raw call and its own completion
// queue with one write in flight: gRPC flow control paces reading from the
// data source, and the next chunk is read while one is written. Chunks go
// out as slices over a few reused buffers (chunk_frame.h), so memory stays
// bounded whatever the snapshot size and the data is not copied again. If
// the source fails or comes up short, or no progress is made for
// snapshot_progress_timeout, the call is cancelled (never half-closed), so
// the receiver cannot mistake a truncated body for a complete one.
//
// The snapshot channel is dialled when the sender is made (the peer is
// added), in the background, so a transfer does not wait for handshakes;
// a transfer that finds that connection not ready dials afresh. The last
// chunk's worth of a body goes in halves down to 64 KiB (ChunkAt): the
// receiver writes a chunk once all of it has arrived, so the end of a
// transfer then waits for a short write only.
//
// Outcome, as etcd: OK -> status activated, ReportSnapshot(kFinish), the
// message closed with success. Anything else -> URL rotated, peer
// deactivated, ReportUnreachable, ReportSnapshot(kFailure), closed with
// failure. Exactly one report per snapshot. Counts, sizes and durations go
// to the env's PeerCounters.
//
// Thread-safety: Send never blocks; Stop cancels and joins.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/channels.h"
#include "peer/mutex.h"
#include "peer/peer_env.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/channel_pool.h"
#include "transport/internal/scheduler.h"
#include "transport/options.h"

namespace raftgrpc {

class GrpcSnapshotSender : public SnapshotSender {
 public:
  GrpcSnapshotSender(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
                     ChannelPool* channels, Scheduler* scheduler);
  ~GrpcSnapshotSender() override;  // Stop()

  void Send(SnapshotMessage snap) override;
  void Stop() override;

  // Bytes of the next chunk, with `left` bytes of the body still to send
  // and chunks of `chunk_bytes` (TransportOptions::snapshot_chunk_bytes).
  static size_t ChunkAt(size_t chunk_bytes, uint64_t left);

 private:
  struct Watch;
  void Run(SnapshotMessage snap);
  void ScheduleWatch(std::shared_ptr<Watch> w);
  grpc::Status Transfer(SnapshotMessage& snap, const std::string& url, grpc::ClientContext* ctx,
                        Watch* watch);
  // Waits, briefly, while `channel`'s connection is being made; returns its
  // state then.
  grpc_connectivity_state AwaitHandshake(grpc::Channel* channel);
  // The receiver's verified prefix of this snapshot (SnapshotOffset RPC);
  // 0 if none or if it does not support resume.
  uint64_t AskOffset(v1::RaftTransport::Stub* stub, const SnapshotMessage& snap, uint64_t size);
  void Finish(SnapshotMessage& snap, const grpc::Status& s, const grpc::ClientContext& ctx,
              absl::Duration took);

  const PeerEnv env_;
  const std::shared_ptr<const TransportOptions> opts_;
  ChannelPool* const channels_;
  Scheduler* const sched_;

  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the transfer in flight
  // Transfer threads. A finished one is joined by a later Send once it has
  // fully exited (never from itself: Raft may call SendSnapshot from within
  // ReportSnapshot), and the rest by Stop.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> exited;
  };
  std::vector<Worker> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_SNAPSHOT_SENDER_H_
