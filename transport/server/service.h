// The RaftTransport gRPC service (etcd's Handler()): validates every request
// in etcd's order, attaches accepted streams to the sender's peer, queues
// pipeline messages for Raft, stores snapshots, answers probes.
//
// Handlers never block a gRPC thread: streams and pipeline requests are
// handed off without waiting for Raft::Process.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_

#include <cstdint>
#include <memory>

#include "peer/peer.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"
#include "transport/internal/log.h"
#include "transport/server/server_counters.h"
#include "transport/server/service_host.h"
#include "transport/server/snapshot_receiver.h"
#include "transport/stream/server_stream.h"

namespace raftgrpc {

// Snapshot is a raw method: its reactor parses frames itself, so that data
// chunks reach the disk without a copy (snapshot/chunk_frame.h).
// Pipeline and SnapshotOffset are raw too: their handlers decode the
// request (the pipeline's into the message it queues: one decoded copy, not
// gRPC's plus ours) once the identity headers have passed, and a refused or
// answered request's decoded copy is freed before the handler returns.
// gRPC's copy would live until the call's status had been sent, behind
// every request already waiting for a thread: a flood of requests full of
// empty entries then held dozens of decoded copies at once (over 1 GB)
// whenever a thread other than gRPC's own polled the process's sockets
// (testing/reliability_test.cc).
// MsgAppV2Stream is raw too: its writer builds the frame's wire bytes on
// Send's thread (MsgAppV2Encoder). Spelled out method by method, because
// a raw method cannot override a callback one of the same parameters.
using TransportServiceBase = v1::RaftTransport::WithCallbackMethod_MessageStream<
    v1::RaftTransport::WithRawCallbackMethod_MsgAppV2Stream<
        v1::RaftTransport::WithRawCallbackMethod_Pipeline<
            v1::RaftTransport::WithRawCallbackMethod_Snapshot<
                v1::RaftTransport::WithRawCallbackMethod_SnapshotOffset<
                    v1::RaftTransport::WithCallbackMethod_Probe<v1::RaftTransport::Service>>>>>>;

class TransportService final : public TransportServiceBase {
 public:
  explicit TransportService(ServiceHost* host)
      : admission_(host->options().max_snapshot_receives),
        env_{host, &counters_, &failure_log_, &admission_} {}

  grpc::ServerBidiReactor<v1::StreamControl, v1::MessageFrame>* MessageStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* MsgAppV2Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Pipeline(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* Snapshot(grpc::CallbackServerContext* ctx,
                                                      grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* SnapshotOffset(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* req,
                                           grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const v1::ProbeRequest* req,
                                  v1::ProbeResponse* resp) override;

  const ServerCounters& counters() const { return counters_; }

  // Called once the transport is built, before the service is registered:
  // each handler acquires it. The node's server hands the service to
  // gRPC's threads inside libgrpc, where TSan does not see it (Handoff).
  void Publish() { ready_.Publish(); }

 private:
  template <class Frame>
  ServerStream<Frame>* AcceptStream(grpc::CallbackServerContext* ctx, StreamType type);
  // Steps 1-7 of etcd's stream handler; OK with the sender's peer set.
  grpc::Status ValidateStream(grpc::CallbackServerContext* ctx, std::shared_ptr<Peer>* peer);

  ServerCounters counters_;
  LogRateLimiter failure_log_;
  SnapshotAdmission admission_;
  const ServerEnv env_;
  Handoff ready_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_H_
