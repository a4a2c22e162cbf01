// The pipeline (etcd's pipeline): one unary Pipeline RPC per message, at most
// conn_per_pipeline in flight per peer, from a queue of pipeline_buf_size.
// Used for MsgSnap without data and whenever no stream works.
//
// On failure: the URL is rotated, the peer deactivated, and (for a peer, not
// a remote) ReportUnreachable(to), plus ReportSnapshot(to, kFailure) for a
// MsgSnap. On success: activated; MsgSnap reports kFinish. Bytes and
// failures go to the env's PeerCounters.
//
// Thread-safety: TrySend never blocks; Stop cancels calls in flight and
// waits for their completions.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_

#include <memory>

#include "peer/channels.h"
#include "peer/peer_env.h"
#include "transport/internal/channel_pool.h"
#include "transport/options.h"

namespace raftgrpc {

class GrpcPipeline : public MessageChannel {
 public:
  // `report` false: a remote's pipeline, which reports nothing to Raft.
  GrpcPipeline(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
               ChannelPool* channels, bool report);
  ~GrpcPipeline() override;  // Stop()

  bool Working() const override { return true; }
  bool TrySend(raftpb::Message&& m) override;
  void Stop() override;

  class Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PIPELINE_H_
