#include "transport/pipeline/remote.h"

namespace raftgrpc {
namespace {

PeerEnv MakeEnv(uint64_t local_id, uint64_t id, Raft* raft, PeerStatus* status,
                UrlPicker* picker) {
  PeerEnv env;
  env.local_id = local_id;
  env.peer_id = id;
  env.raft = raft;
  env.status = status;
  env.picker = picker;
  return env;
}

}  // namespace

Remote::Remote(uint64_t local_id, uint64_t id, std::vector<std::string> urls, Raft* raft,
               const TransportOptions& opts, ChannelPool* channels)
    : status_(id),
      picker_(std::move(urls)),
      env_(MakeEnv(local_id, id, raft, &status_, &picker_)),
      pipeline_(env_, opts, channels, /*report=*/false, opts.on_critical_error) {}

Remote::~Remote() { Stop(); }

bool Remote::Send(raftpb::Message m) {
  if (paused_.load(std::memory_order_relaxed) || !pipeline_.TrySend(std::move(m))) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

}  // namespace raftgrpc
