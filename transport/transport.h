// Transport: the one header a Raft node includes (etcd's Transporter).
//
//   TransportOptions opts;
//   opts.local_id = 1; opts.cluster_id = 0x1000; opts.snapshot_dir = "/var/snap";
//   auto t = Transport::Create(opts, &my_raft);          // my_raft: a Raft
//   int port = *(*t)->Serve("0.0.0.0:2380");              // or register service()
//   (*t)->AddPeer(2, {"http://10.0.0.2:2380"});
//   (*t)->Send(messages);                                 // never blocks
//
// Each peer gets two stream channels (dialled by the receiver), a pipeline,
// and a snapshot sender; see peer/peer.h for routing and reporting.
//
// Thread-safety: every method is safe from any thread. Send, SendSnapshot,
// AddRemote, ActiveSince, ActivePeers, Pause/Resume and CutPeer/MendPeer
// never block on the network. AddPeer/UpdatePeer return at once (dialling
// happens in the background). RemovePeer, RemoveAllPeers and Stop block
// until the affected peers' calls, timers and workers have stopped,
// including an in-flight Raft::Process call of those peers.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/raft.h"
#include "transport/metrics.h"
#include "transport/options.h"
#include "transport/snapshot.h"
#include "transport/snapshot_store.h"

namespace raftgrpc {

// Internal classes, reachable only through GetPeer/GetProber (for tests).
class ByteBudget;
class ChannelPool;
class InboundRouter;
class GuardedRaft;
class CaughtExceptions;
class GuardedSnapshotStore;
class LogRateLimiter;
class Peer;
class Prober;
class Remote;
class Scheduler;
class TransportService;

class Transport {
 public:
  // Validates `opts` (INVALID_ARGUMENT otherwise) and starts the transport's
  // timer thread. `raft` must outlive the Transport. `store` receives
  // snapshots; by default a DiskSnapshotStore in opts.snapshot_dir, whose
  // leftover temporary files (of receives a crash interrupted) are removed
  // and logged here.
  static absl::StatusOr<std::unique_ptr<Transport>> Create(
      TransportOptions opts, Raft* raft, std::unique_ptr<SnapshotStore> store = nullptr);
  // Stop(), then lets go of the client channels. A connection attempt under
  // way is waited for up to 300 ms: gRPC 1.51 would leak its connection
  // (internal/channel_pool.h).
  ~Transport();

  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The service to register on a grpc::ServerBuilder (etcd's Handler()). Use
  // ConfigureServer on that builder too. Shut that server down before
  // destroying the Transport.
  grpc::Service* service();
  // Sets message-size limits on a builder that will host service().
  static void ConfigureServer(grpc::ServerBuilder* builder, const TransportOptions& opts);
  // Credentials for a server hosting service(), from opts.tls (plaintext
  // without TLS files); nullptr if TLS has no server certificate.
  std::shared_ptr<grpc::ServerCredentials> server_credentials() const { return server_creds_; }
  // Convenience: runs our own server on `listen_addr` (e.g. "127.0.0.1:0")
  // and returns the bound port. Once per Transport. `creds` nullptr: those
  // of server_credentials(). Fails (UNAVAILABLE) on a port some socket
  // already listens on: without SO_REUSEPORT, unlike gRPC's default, so
  // two processes never share a node's connections.
  absl::StatusOr<int> Serve(const std::string& listen_addr,
                            std::shared_ptr<grpc::ServerCredentials> creds = nullptr);

  // Starts a peer (streams dial at once). Duplicate ID: no-op (OK). Bad URLs:
  // INVALID_ARGUMENT. After Stop: FAILED_PRECONDITION.
  absl::Status AddPeer(uint64_t id, const std::vector<std::string>& urls);
  // Stops and removes a peer, and closes its connections (those a Remote
  // of the same id still uses stay); NOT_FOUND if unknown.
  absl::Status RemovePeer(uint64_t id);
  void RemoveAllPeers();
  // New URLs are used from the next dial; unknown ID: no-op (OK). The
  // channels to dropped URLs are closed in the background once the calls
  // on them have ended (a working stream stays until it breaks, as in etcd).
  absl::Status UpdatePeer(uint64_t id, const std::vector<std::string>& urls);
  // A sender-only helper (pipeline, no reports) used while `id` is not yet a
  // peer. Ignored if a peer or remote with `id` exists or after Stop. At
  // most max_remotes exist (the least recently sent to gives way), and one
  // not sent to for remote_idle_timeout is removed. May wait for an evicted
  // remote's calls to be cancelled.
  void AddRemote(uint64_t id, const std::vector<std::string>& urls);

  // Sends each message to its `to`: a peer, else a remote, else dropped and
  // counted. to == 0 is skipped. Never blocks.
  void Send(std::vector<raftpb::Message> msgs);
  void Send(raftpb::Message m);
  // Unknown peer: closed with failure at once. Otherwise asynchronous.
  void SendSnapshot(SnapshotMessage snap);

  // Since when `id` is active; absl::Time() if inactive or unknown.
  absl::Time ActiveSince(uint64_t id) const;
  int ActivePeers() const;

  void Pause();  // every peer (not remotes)
  void Resume();
  void CutPeer(uint64_t id);  // pause the peer and remote with `id`
  void MendPeer(uint64_t id);

  // Stops every peer and remote, the server from Serve, and the timer
  // thread. Idempotent.
  void Stop();

  uint64_t id() const { return opts_->local_id; }

  // Observability, the one entry point: per-peer metrics with etcd's
  // meanings and transport-wide totals (see transport/metrics.h), and the
  // same in Prometheus text format. A consistent-enough snapshot: each
  // counter is read once, without stopping traffic. Never blocks on the
  // network.
  TransportMetrics Metrics() const;
  std::string PrometheusMetrics() const;

  // Introspection for tests and tools built in this repository: the
  // internal objects behind a peer (peer/peer.h, transport/pipeline/
  // prober.h). nullptr if unknown. Not part of the stable API.
  std::shared_ptr<Peer> GetPeer(uint64_t id) const;
  std::shared_ptr<Prober> GetProber(uint64_t id) const;

 private:
  class Factory;
  class Host;

  Transport(TransportOptions opts, Raft* raft, std::unique_ptr<SnapshotStore> store,
            MemberChannelCredentials client_creds,
            std::shared_ptr<grpc::ServerCredentials> server_creds);

  // Removes unused remotes, then runs again on the timer thread.
  void SweepRemotes();
  // Removes kept snapshot prefixes past snapshot_partial_ttl (the default
  // store's), every ttl / 4.
  void SweepPartials();
  // Stops the remotes AddRemote evicted (State::retiring).
  void StopRetiring();
  // Stops remotes and releases their channels. Never on a gRPC thread.
  void Retire(const std::vector<std::shared_ptr<Remote>>& remotes);
  // Releases the channels to URLs that peers dropped (UpdatePeer,
  // State::stale_urls) once no call uses them; while a call still does
  // (a stream on an old address that works), it runs again a second later.
  // On the timer thread.
  void ReleaseStaleChannels();

  // Shared, immutable: every channel of every peer reads this one copy.
  const std::shared_ptr<const TransportOptions> opts_;
  // What the guards around the node's code caught (callback_exceptions).
  const std::shared_ptr<CaughtExceptions> caught_;
  // The node's Raft behind a guard that catches what it throws; raft_
  // points to the guard, and nothing of ours calls the node's directly.
  const std::unique_ptr<GuardedRaft> guarded_raft_;
  Raft* const raft_;
  std::unique_ptr<SnapshotStore> store_;
  // What the receiver calls: store_ behind a guard as raft_'s (null
  // without a store).
  std::unique_ptr<GuardedSnapshotStore> guarded_store_;
  const std::shared_ptr<grpc::ServerCredentials> server_creds_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ChannelPool> channels_;
  std::unique_ptr<Factory> factory_;
  // Inbound bytes of all peers and strangers, and the strangers' share.
  std::unique_ptr<ByteBudget> inbound_budget_;
  std::unique_ptr<ByteBudget> strangers_budget_;
  std::unique_ptr<InboundRouter> strangers_;
  std::unique_ptr<Host> host_;
  std::unique_ptr<TransportService> service_;
  // Peers, remotes, probers, the server and the stopped flag, behind one
  // lock (transport.cc); a pointer so that this header names no internal
  // type.
  struct State;
  const std::unique_ptr<State> state_;

  std::atomic<uint64_t> sent_to_peers_{0};
  std::atomic<uint64_t> sent_to_remotes_{0};
  std::atomic<uint64_t> dropped_unknown_{0};
  std::atomic<uint64_t> dropped_oversize_{0};
  std::atomic<uint64_t> dropped_stopped_{0};
  std::unique_ptr<LogRateLimiter> drop_log_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_TRANSPORT_H_
