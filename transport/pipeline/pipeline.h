// The pipeline (etcd's pipeline): one unary Pipeline RPC per message, at most
// conn_per_pipeline in flight per peer, from a queue of pipeline_buf_size.
// Used for MsgSnap without data and whenever no stream works.
//
// On failure: the URL is rotated, the peer deactivated, and (for a peer, not
// a remote) ReportUnreachable(to), plus ReportSnapshot(to, kFailure) for a
// MsgSnap. On success: activated; MsgSnap reports kFinish.
//
// Thread-safety: TrySend never blocks; Stop cancels calls in flight and
// waits for their completions.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "peer/channels.h"
#include "peer/peer.h"
#include "transport/internal/channel_pool.h"
#include "transport/options.h"

namespace raftgrpc {

struct PipelineStats {
  uint64_t sent = 0;       // OK answers
  uint64_t failures = 0;   // errors, including cancellation at stop
  uint64_t bytes = 0;      // message bytes of successful sends
};

class GrpcPipeline : public MessageChannel {
 public:
  using CriticalFn = std::function<void(const absl::Status&)>;

  // `report` false: a remote's pipeline, which reports nothing to Raft.
  GrpcPipeline(const PeerEnv& env, const TransportOptions& opts, ChannelPool* channels,
               bool report, CriticalFn on_critical);
  ~GrpcPipeline() override;  // Stop()

  bool Working() const override { return true; }
  bool TrySend(raftpb::Message&& m) override;
  void Stop() override;
  PipelineStats stats() const;

  class Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_
