// UnaryCall: one asynchronous unary RPC to a peer (a pipeline message or a
// probe), with etcd's identity metadata and a deadline. Shared by the
// pipeline and the prober so that both start calls the same way.
//
// Thread-safety: Start once, from any thread; `done` runs on a gRPC thread
// and owns the call from then on.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_UNARY_CALL_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_UNARY_CALL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"
#include "transport/internal/metadata.h"
#include "transport/options.h"

namespace raftgrpc {

template <class Request, class Response>
struct UnaryCall {
  grpc::ClientContext ctx;
  Request req;
  Response resp;
  std::string url;
  absl::Time started;

  // Starts the call to member `to` on `channel` (the pool's for `url`). `rpc(async, ctx,
  // req, resp, callback)` names the method, e.g.
  //   [](auto* a, auto... args) { a->Probe(args...); }
  // `done(this, status)` runs once, on a gRPC thread.
  template <class Rpc, class Done>
  void Start(std::shared_ptr<grpc::Channel> channel, const TransportOptions& opts, uint64_t to,
             absl::Duration timeout, Rpc rpc, Done done) {
    AddIdentityMetadata(&ctx, opts, to);
    started = absl::Now();
    ctx.set_deadline(absl::ToChronoTime(started + timeout));
    stub_ = v1::RaftTransport::NewStub(std::move(channel));
    handoff_.Publish();
    rpc(stub_->async(), &ctx, &req, &resp, [this, done = std::move(done)](grpc::Status s) mutable {
      handoff_.Acquire();
      done(this, s);
    });
  }

 private:
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  Handoff handoff_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_UNARY_CALL_H_
