#include "transport/pipeline/remote.h"

#include "transport/internal/log.h"

namespace raftgrpc {
namespace {

PeerEnv MakeEnv(uint64_t local_id, uint64_t id, Raft* raft, PeerStatus* status, UrlPicker* picker,
                PeerCounters* counters, CriticalErrorFn on_critical) {
  PeerEnv env;
  env.local_id = local_id;
  env.peer_id = id;
  env.raft = raft;
  env.status = status;
  env.picker = picker;
  env.counters = counters;
  env.on_critical = std::move(on_critical);
  return env;
}

}  // namespace

Remote::Remote(uint64_t local_id, uint64_t id, std::vector<std::string> urls, Raft* raft,
               std::shared_ptr<const TransportOptions> opts, ChannelPool* channels)
    : status_(id, PeerStatusLogger(opts, id, "remote member")),
      picker_(std::move(urls)),
      env_(MakeEnv(local_id, id, raft, &status_, &picker_, &counters_, opts->on_critical_error)),
      pipeline_(env_, opts, channels, /*report=*/false),
      last_used_ns_(absl::GetCurrentTimeNanos()) {}

Remote::~Remote() { Stop(); }

bool Remote::Send(raftpb::Message m) {
  last_used_ns_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  if (paused_.load(std::memory_order_relaxed) || !pipeline_.TrySend(std::move(m))) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

}  // namespace raftgrpc
