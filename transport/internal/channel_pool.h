// ChannelPool: gRPC channels to peers, one per URL and purpose, shared by a
// transport's readers, pipelines and probes. Snapshots get channels of their
// own (own HTTP/2 connection, wide flow-control window) so bulk data never
// queues ahead of heartbeats.
//
// Thread-safety: safe from any thread; Get never blocks on the network.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_

#include <map>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "peer/mutex.h"
#include "transport/options.h"

namespace raftgrpc {

class ChannelPool {
 public:
  ChannelPool(std::shared_ptr<const TransportOptions> opts,
              std::shared_ptr<grpc::ChannelCredentials> creds);

  // For streams, pipeline and probes.
  std::shared_ptr<grpc::Channel> Get(const std::string& url);
  // For snapshots.
  std::shared_ptr<grpc::Channel> GetForSnapshots(const std::string& url);
  // Largest message a channel accepts: a full frame plus slack.
  static int MaxReceiveBytes(const TransportOptions& opts);

 private:
  std::shared_ptr<grpc::Channel> Make(const std::string& url, bool snapshot);

  const std::shared_ptr<const TransportOptions> opts_;
  const std::shared_ptr<grpc::ChannelCredentials> creds_;
  Mutex mu_;
  std::map<std::pair<std::string, bool>, std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_
