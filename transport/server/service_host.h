// ServiceHost: what the server side needs from its transport (implemented
// by Transport), and ServerEnv: what each handler and snapshot receiver is
// given, so that none of them reaches into another's internals.
//
// Thread-safety: ServiceHost's methods are safe from any thread and never
// block on the network.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_HOST_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_HOST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peer/inbound_router.h"
#include "peer/peer.h"
#include "peer/raft.h"
#include "transport/internal/log.h"
#include "transport/options.h"
#include "transport/server/server_counters.h"
#include "transport/snapshot_store.h"

namespace raftgrpc {

class Scheduler;
class SnapshotAdmission;

class ServiceHost {
 public:
  virtual ~ServiceHost() = default;
  virtual const TransportOptions& options() const = 0;
  virtual Raft* raft() const = 0;
  // nullptr if `id` is not a peer (or the transport stopped).
  virtual std::shared_ptr<Peer> FindPeer(uint64_t id) = 0;
  // etcd's addRemoteFromRequest: a no-op for known peers and remotes.
  virtual void AddRemote(uint64_t id, const std::vector<std::string>& urls) = 0;
  // Queue for pipeline messages from senders that are not peers.
  virtual InboundRouter* stranger_inbound() = 0;
  // nullptr: no store configured (snapshots are refused).
  virtual SnapshotStore* snapshot_store() = 0;
  // The transport's timer thread (server-side timeouts).
  virtual Scheduler* scheduler() = 0;
};

// Whether a snapshot from `from` may resume, and its broken transfer be
// kept for that: resume on, and `from` a peer (a remote or a stranger could
// otherwise leave an abandoned prefix under every ID it claims).
inline bool SnapshotResumable(ServiceHost* host, uint64_t from) {
  return host->options().snapshot_resume && host->FindPeer(from) != nullptr;
}

// The server side's shared state. Owned by the TransportService.
struct ServerEnv {
  ServiceHost* host = nullptr;
  ServerCounters* counters = nullptr;
  // For failure lines a remote can trigger at will.
  LogRateLimiter* failure_log = nullptr;
  // Which snapshot receives may proceed.
  SnapshotAdmission* snapshot_admission = nullptr;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SERVICE_HOST_H_
