// Remote (etcd's remote): a sender-only helper for a member that is not yet
// a peer, e.g. a newly joined node. Pipeline only; a full queue drops and
// counts but reports nothing to Raft.
// Thread-safety: safe from any thread; Send never blocks.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_REMOTE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_REMOTE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "peer/peer_env.h"
#include "transport/internal/channel_pool.h"
#include "transport/pipeline/pipeline.h"

namespace raftgrpc {

class Remote {
 public:
  Remote(uint64_t local_id, uint64_t id, std::vector<std::string> urls, Raft* raft,
         std::shared_ptr<const TransportOptions> opts, ChannelPool* channels);
  ~Remote();  // Stop()

  // false when paused or the queue is full (counted). Marks the remote used.
  bool Send(raftpb::Message m);
  // When it was created or last sent to (for expiry of unused remotes).
  absl::Time last_used() const { return absl::FromUnixNanos(last_used_ns_.load()); }
  void Pause() { paused_.store(true); }
  void Resume() { paused_.store(false); }
  void Stop() { pipeline_.Stop(); }
  uint64_t id() const { return env_.peer_id; }
  std::vector<std::string> urls() const { return picker_.urls(); }
  uint64_t dropped() const { return dropped_.load(); }

 private:
  PeerStatus status_;
  UrlPicker picker_;
  PeerCounters counters_;  // counted, not exported (as etcd's remotes)
  PeerEnv env_;
  GrpcPipeline pipeline_;
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<int64_t> last_used_ns_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_REMOTE_H_
