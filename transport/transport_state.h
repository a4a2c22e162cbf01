// Transport::State, shared by transport.cc and transport_metrics.cc: the
// transport's peers, remotes and probers behind one lock. Private to
// //transport (listed in its srcs, not its hdrs).
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_STATE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_STATE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/mutex.h"
#include "peer/peer.h"
#include "transport/pipeline/prober.h"
#include "transport/pipeline/remote.h"
#include "transport/transport.h"

namespace raftgrpc {

struct Transport::State {
  SharedMutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  std::unique_ptr<grpc::Server> server ABSL_GUARDED_BY(mu);  // from Serve
  std::map<uint64_t, std::shared_ptr<Peer>> peers ABSL_GUARDED_BY(mu);
  std::map<uint64_t, std::shared_ptr<Remote>> remotes ABSL_GUARDED_BY(mu);
  std::map<uint64_t, std::shared_ptr<Prober>> probers ABSL_GUARDED_BY(mu);  // one per peer
  uint64_t remotes_evicted ABSL_GUARDED_BY(mu) = 0;
  // Evicted by a gRPC handler (AddRemote), waiting to be stopped on the
  // scheduler thread: Remote::Stop waits for its calls' callbacks, which
  // must not be waited for on a gRPC callback thread.
  std::vector<std::shared_ptr<Remote>> retiring ABSL_GUARDED_BY(mu);
  // (peer id, URL) that UpdatePeer dropped, whose channels are still in the
  // pool; released on the timer thread (ReleaseStaleChannels).
  std::set<std::pair<uint64_t, std::string>> stale_urls ABSL_GUARDED_BY(mu);
  bool stale_release_scheduled ABSL_GUARDED_BY(mu) = false;

  // Takes out the remotes unused for `idle` and, with `make_room`, the
  // least recently used one while `max` or more remain. The caller stops
  // them, outside the lock (Stop waits for their calls).
  std::vector<std::shared_ptr<Remote>> EvictRemotes(absl::Duration idle, size_t max, bool make_room)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::vector<std::shared_ptr<Remote>> out;
    const absl::Time now = absl::Now();
    for (auto it = remotes.begin(); it != remotes.end();) {
      if (now - it->second->last_used() >= idle) {
        out.push_back(std::move(it->second));
        it = remotes.erase(it);
      } else {
        ++it;
      }
    }
    while (make_room && !remotes.empty() && remotes.size() >= max) {
      auto lru = remotes.begin();
      for (auto it = remotes.begin(); it != remotes.end(); ++it) {
        if (it->second->last_used() < lru->second->last_used()) lru = it;
      }
      out.push_back(std::move(lru->second));
      remotes.erase(lru);
    }
    remotes_evicted += out.size();
    return out;
  }
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_STATE_H_
