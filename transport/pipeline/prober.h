// Prober (etcd's probing): every probe_interval, a Probe RPC to each peer's
// current URL. Keeps an RTT histogram with etcd's buckets (0.1 ms * 2^k,
// k < 16), a smoothed RTT (srtt = 7/8 srtt + 1/8 rtt), the clock difference,
// and health. A successful probe activates the peer (so ActiveSince reflects
// it); a failed one rotates the URL, as etcd's prober does.
//
// Thread-safety: all methods are safe from any thread and never block on
// the network; Stop waits for a probe in flight.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PROBER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PROBER_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/time/time.h"
#include "peer/peer_env.h"
#include "transport/internal/channel_pool.h"
#include "transport/internal/scheduler.h"
#include "transport/metrics.h"
#include "transport/options.h"

namespace raftgrpc {

struct ProbeStats {
  uint64_t probes = 0;
  uint64_t failures = 0;
  bool healthy = false;
  absl::Duration srtt;
  absl::Duration clock_diff;       // remote clock minus ours, RTT-corrected
  Histogram rtt = RttHistogram();  // seconds, successful probes
};

class Prober {
 public:
  Prober(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts, Scheduler* scheduler,
         ChannelPool* channels);
  ~Prober();  // Stop()

  void Stop();
  ProbeStats stats() const;

  class Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_PIPELINE_PROBER_H_
