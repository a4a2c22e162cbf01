// The RaftTransport gRPC service (etcd's Handler()): validates every request
// in etcd's order, attaches accepted streams to the sender's peer, queues
// pipeline messages for Raft, stores snapshots, answers probes.
//
// Handlers never block a gRPC thread: streams and pipeline requests are
// handed off without waiting for Raft::Process.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peer/inbound_router.h"
#include "peer/peer.h"
#include "peer/raft.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/log.h"
#include "transport/metrics.h"
#include "transport/options.h"

namespace raftgrpc {

class SnapshotStore;

// What the service needs from its transport. Thread-safe.
class ServiceHost {
 public:
  virtual ~ServiceHost() = default;
  virtual const TransportOptions& options() const = 0;
  virtual Raft* raft() const = 0;
  // nullptr if `id` is not a peer (or the transport stopped).
  virtual std::shared_ptr<Peer> FindPeer(uint64_t id) = 0;
  // etcd's addRemoteFromRequest: a no-op for known peers and remotes.
  virtual void AddRemote(uint64_t id, const std::vector<std::string>& urls) = 0;
  // Queue for pipeline messages from senders that are not peers.
  virtual InboundRouter* stranger_inbound() = 0;
  virtual SnapshotStore* snapshot_store() = 0;
};

// Counters of the server side. Monotonic.
struct ServiceStats {
  uint64_t streams_accepted = 0;
  uint64_t streams_rejected = 0;
  uint64_t pipeline_received = 0;
  uint64_t pipeline_rejected = 0;
  uint64_t snapshots_received = 0;
  uint64_t snapshots_rejected = 0;
  uint64_t received_bytes = 0;  // pipeline messages and snapshot data
};

class TransportService final : public v1::RaftTransport::CallbackService {
 public:
  explicit TransportService(ServiceHost* host) : host_(host) {}

  grpc::ServerBidiReactor<v1::StreamControl, v1::MessageFrame>* MessageStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerBidiReactor<v1::StreamControl, v1::MsgAppV2Frame>* MsgAppV2Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Pipeline(grpc::CallbackServerContext* ctx,
                                     const v1::PipelineRequest* req,
                                     v1::PipelineResponse* resp) override;
  grpc::ServerReadReactor<v1::SnapshotFrame>* Snapshot(grpc::CallbackServerContext* ctx,
                                                       v1::SnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const v1::ProbeRequest* req,
                                  v1::ProbeResponse* resp) override;

  ServiceStats stats() const;

 private:
  template <class Frame>
  grpc::ServerBidiReactor<v1::StreamControl, Frame>* AcceptStream(
      grpc::CallbackServerContext* ctx, StreamType type);
  // Steps 1-7 of etcd's stream handler; OK with the sender's peer set.
  grpc::Status ValidateStream(grpc::CallbackServerContext* ctx, std::shared_ptr<Peer>* peer);

  ServiceHost* const host_;
  std::atomic<uint64_t> streams_accepted_{0};
  std::atomic<uint64_t> streams_rejected_{0};
  std::atomic<uint64_t> pipeline_received_{0};
  std::atomic<uint64_t> pipeline_rejected_{0};
  std::atomic<uint64_t> received_bytes_{0};
  InboundMetrics inbound_metrics_;
  LogRateLimiter log_limiter_;

  friend class SnapshotReceiver;
 public:
  // Used by the snapshot receiver.
  std::atomic<uint64_t> snapshots_received_{0};
  std::atomic<uint64_t> snapshots_rejected_{0};
  void AddReceivedBytes(uint64_t from, uint64_t n) {
    received_bytes_.fetch_add(n, std::memory_order_relaxed);
    inbound_metrics_.AddBytes(from, n);
  }
  InboundMetrics& inbound_metrics() { return inbound_metrics_; }
  // For failure lines a remote can trigger at will.
  LogRateLimiter& log_limiter() { return log_limiter_; }
  ServiceHost* host() const { return host_; }
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_
