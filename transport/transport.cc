#include "transport/transport.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/guarded_raft.h"
#include "peer/mutex.h"
#include "peer/peer.h"
#include "transport/internal/channel_pool.h"
#include "transport/internal/guards.h"
#include "transport/internal/log.h"
#include "transport/internal/scheduler.h"
#include "transport/pipeline/pipeline.h"
#include "transport/pipeline/prober.h"
#include "transport/pipeline/remote.h"
#include "transport/server/service.h"
#include "transport/snapshot/snapshot_sender.h"
#include "transport/stream/stream_reader.h"
#include "transport/stream/stream_writer.h"
#include "transport/transport_state.h"

namespace raftgrpc {

// The one place that says which gRPC class implements each of a peer's
// ports (peer/channels.h).
class Transport::Factory : public ChannelFactory {
 public:
  Factory(std::shared_ptr<const TransportOptions> opts, Scheduler* sched, ChannelPool* channels)
      : opts_(std::move(opts)), sched_(sched), channels_(channels) {}

  std::unique_ptr<MessageChannel> NewPipeline(const PeerEnv& env) override {
    return std::make_unique<GrpcPipeline>(env, opts_, channels_, /*report=*/true);
  }
  std::unique_ptr<StreamWriter> NewStreamWriter(StreamType type, const PeerEnv& env) override {
    return std::make_unique<GrpcStreamWriter>(type, env, opts_, sched_);
  }
  std::unique_ptr<SnapshotSender> NewSnapshotSender(const PeerEnv& env) override {
    return std::make_unique<GrpcSnapshotSender>(env, opts_, channels_, sched_);
  }
  std::unique_ptr<StreamReader> NewStreamReader(StreamType type, const PeerEnv& env) override {
    return std::make_unique<GrpcStreamReader>(type, env, opts_, sched_, channels_);
  }

 private:
  const std::shared_ptr<const TransportOptions> opts_;
  Scheduler* const sched_;
  ChannelPool* const channels_;
};

// What the service sees of the transport.
class Transport::Host : public ServiceHost {
 public:
  explicit Host(Transport* t) : t_(t) {}
  const TransportOptions& options() const override { return *t_->opts_; }
  Raft* raft() const override { return t_->raft_; }
  std::shared_ptr<Peer> FindPeer(uint64_t id) override { return t_->GetPeer(id); }
  void AddRemote(uint64_t id, const std::vector<std::string>& urls) override {
    t_->AddRemote(id, urls);
  }
  InboundRouter* stranger_inbound() override { return t_->strangers_.get(); }
  SnapshotStore* snapshot_store() override { return t_->guarded_store_.get(); }
  Scheduler* scheduler() override { return t_->scheduler_.get(); }

 private:
  Transport* const t_;
};

namespace {

// The node's on_critical_error runs on our threads, gRPC's among them, where
// an exception it throws would end the process: caught and logged instead.
// (Its Raft is guarded by GuardedRaft, its log sink by LogLine.)
TransportOptions WithCriticalErrorGuarded(TransportOptions opts) {
  if (opts.on_critical_error) {
    opts.on_critical_error = [fn = std::move(opts.on_critical_error), local_id = opts.local_id,
                              log = opts.log](const absl::Status& s) {
      try {
        fn(s);
      } catch (...) {
        LogLine(local_id, log,
                absl::StrCat("TransportOptions::on_critical_error threw, for: ", s.ToString()));
      }
    };
  }
  return opts;
}

// Where the guards around the node's code report: the log, at most a line
// a second (a broken Raft may throw at every heartbeat).
std::function<void(const std::string&)> ExceptionLogger(
    std::shared_ptr<const TransportOptions> opts) {
  return [opts = std::move(opts), limiter = std::make_shared<LogRateLimiter>()](
             const std::string& what) { limiter->Log(*opts, what); };
}

DiskSnapshotStore::IoMode SnapshotIoMode(const TransportOptions& o) {
  if (o.snapshot_direct_io) return DiskSnapshotStore::IoMode::kDirect;
  return o.snapshot_io_adaptive ? DiskSnapshotStore::IoMode::kAdaptive
                                : DiskSnapshotStore::IoMode::kBuffered;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> Transport::Create(TransportOptions opts, Raft* raft,
                                                             std::unique_ptr<SnapshotStore> store) {
  absl::Status s = opts.Validate();
  if (!s.ok()) return s;
  if (raft == nullptr) return absl::InvalidArgumentError("Transport needs a Raft");
  if (store == nullptr && !opts.snapshot_dir.empty()) {
    auto disk =
        std::make_unique<DiskSnapshotStore>(opts.snapshot_dir, opts.snapshot_partial_ttl,
                                            opts.snapshot_partial_max_bytes, SnapshotIoMode(opts));
    // A receive interrupted by a crash left its temporary file behind.
    for (const std::string& name : disk->RemoveLeftovers()) {
      LogLine(opts, absl::StrCat("removed ", opts.snapshot_dir, "/", name,
                                 ", left over from an interrupted snapshot receive"));
    }
    store = std::move(disk);
  }
  // Read the TLS files now, so that a bad file fails Create, not each dial.
  auto client_creds = MakeMemberChannelCredentials(opts.tls);
  if (!client_creds.ok()) return client_creds.status();
  auto server_creds = MakeServerCredentials(opts.tls);
  if (opts.tls.enabled() && !opts.tls.cert_file.empty() && !server_creds.ok()) {
    return server_creds.status();
  }
  std::unique_ptr<Transport> t;
  try {
    t.reset(new Transport(std::move(opts), raft, std::move(store), *std::move(client_creds),
                          server_creds.ok() ? *std::move(server_creds) : nullptr));
  } catch (const std::system_error& e) {
    // The timer thread could not be created (a process or memory limit).
    return absl::ResourceExhaustedError(absl::StrCat("cannot start the transport: ", e.what()));
  }
  t->SweepRemotes();  // and every remote_idle_timeout / 4 from now on
  t->SweepPartials();
  t->service_->Publish();  // all of the above, to its handlers (for TSan)
  return t;
}

Transport::Transport(TransportOptions opts, Raft* raft, std::unique_ptr<SnapshotStore> store,
                     MemberChannelCredentials client_creds,
                     std::shared_ptr<grpc::ServerCredentials> server_creds)
    : opts_(std::make_shared<const TransportOptions>(WithCriticalErrorGuarded(std::move(opts)))),
      caught_(std::make_shared<CaughtExceptions>(ExceptionLogger(opts_))),
      guarded_raft_(std::make_unique<GuardedRaft>(raft, caught_)),
      raft_(guarded_raft_.get()),
      store_(std::move(store)),
      guarded_store_(store_ == nullptr
                         ? nullptr
                         : std::make_unique<GuardedSnapshotStore>(store_.get(), caught_)),
      server_creds_(std::move(server_creds)),
      scheduler_(std::make_unique<Scheduler>()),
      channels_(std::make_unique<ChannelPool>(opts_, std::move(client_creds), scheduler_.get())),
      factory_(std::make_unique<Factory>(opts_, scheduler_.get(), channels_.get())),
      inbound_budget_(std::make_unique<ByteBudget>(opts_->max_inbound_bytes)),
      strangers_budget_(
          std::make_unique<ByteBudget>(opts_->max_inbound_bytes_per_peer, inbound_budget_.get())),
      strangers_(std::make_unique<InboundRouter>(raft_, opts_->recv_buf_size,
                                                 opts_->max_pending_proposals,
                                                 std::chrono::seconds(1), strangers_budget_.get())),
      host_(std::make_unique<Host>(this)),
      service_(std::make_unique<TransportService>(host_.get())),
      state_(std::make_unique<State>()),
      drop_log_(std::make_unique<LogRateLimiter>()) {}

Transport::~Transport() { Stop(); }

grpc::Service* Transport::service() { return service_.get(); }

void Transport::ConfigureServer(grpc::ServerBuilder* builder, const TransportOptions& opts) {
  builder->SetMaxReceiveMessageSize(ChannelPool::MaxReceiveBytes(opts));
  builder->SetMaxSendMessageSize(ChannelPool::MaxReceiveBytes(opts));
  // Snapshots stream in bulk: a fixed window, no BDP probing. The window
  // is memory the receiver holds while its disk is behind: 2 MiB (two
  // chunks) kept a 1 GiB receive at 29 MB peak RSS where 16 MiB took
  // 48 MB, at the same rate to disk and tmpfs (2026-11-30, rotated runs).
  builder->AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 2 * 1024 * 1024);
  // A frozen or silently cut stream reader is found by its stream
  // heartbeats stopping (ServerStream::ReaderSilentFor), per stream. HTTP/2
  // keepalive is per connection and covers snapshot uploads too, so its
  // ping may go unanswered for as long as a snapshot may make no progress:
  // a link stall shorter than that fails nothing. It remains what finds a
  // dead reader that sends no heartbeats (an older or other-language node).
  const int read_ms = static_cast<int>(absl::ToInt64Milliseconds(opts.conn_read_timeout));
  const int64_t stall_ms =
      std::max<int64_t>(read_ms * 2 / 3, absl::ToInt64Milliseconds(opts.snapshot_progress_timeout));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, std::max(100, read_ms / 3));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                              static_cast<int>(std::min<int64_t>(stall_ms, INT32_MAX)));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // An older stream reader sends us no data frames, and gRPC by default
  // spaces pings "without data" 5 minutes apart, which would leave one
  // keepalive ping per connection.
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
                              std::max(100, read_ms / 3));
}

absl::StatusOr<int> Transport::Serve(const std::string& listen_addr,
                                     std::shared_ptr<grpc::ServerCredentials> creds) {
  WriterLock l(&state_->mu);
  if (state_->stopped) return absl::FailedPreconditionError("transport stopped");
  if (state_->server) return absl::FailedPreconditionError("Serve already called");
  if (creds == nullptr) creds = server_creds_;
  if (creds == nullptr) {
    return absl::InvalidArgumentError("TLS options have no server certificate (cert_file)");
  }
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(listen_addr, std::move(creds), &port);
  ConfigureServer(&b, *opts_);
  // gRPC sets SO_REUSEPORT by default, so a port another process listens
  // on (a node not yet gone, a misconfigured neighbour) is shared, and the
  // kernel splits peers' connections between the two. etcd's listener
  // fails with "address already in use"; so does this one.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.RegisterService(service_.get());
  state_->server = b.BuildAndStart();
  if (!state_->server || port == 0) {
    state_->server.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_addr));
  }
  return port;
}

absl::Status Transport::AddPeer(uint64_t id, const std::vector<std::string>& urls) {
  WriterLock l(&state_->mu);
  if (state_->stopped) return absl::FailedPreconditionError("transport stopped");
  if (state_->peers.count(id)) return absl::OkStatus();
  PeerOptions popts;
  popts.recv_buffer_size = opts_->recv_buf_size;
  popts.max_pending_proposals = opts_->max_pending_proposals;
  popts.on_critical_error = opts_->on_critical_error;
  popts.max_inbound_bytes = opts_->max_inbound_bytes_per_peer;
  popts.inbound_budget_parent = inbound_budget_.get();
  auto peer = Peer::Create(opts_->local_id, id, urls, raft_, *factory_, popts,
                           PeerStatusLogger(opts_, id, "peer"));
  if (!peer.ok()) return peer.status();
  std::shared_ptr<Peer> p(*std::move(peer));
  state_->probers.emplace(
      id, std::make_shared<Prober>(p->env(), opts_, scheduler_.get(), channels_.get()));
  state_->peers.emplace(id, std::move(p));
  return absl::OkStatus();
}

absl::Status Transport::RemovePeer(uint64_t id) {
  std::shared_ptr<Peer> peer;
  std::shared_ptr<Prober> prober;
  {
    WriterLock l(&state_->mu);
    auto it = state_->peers.find(id);
    if (it == state_->peers.end()) {
      return absl::NotFoundError(absl::StrCat("peer ", absl::Hex(id), " not found"));
    }
    peer = std::move(it->second);
    state_->peers.erase(it);
    prober = std::move(state_->probers[id]);
    state_->probers.erase(id);
  }
  // Outside the lock: these wait for calls and workers. The prober uses the
  // peer's status and picker, so it stops first.
  if (prober) prober->Stop();
  peer->Stop();
  // Its calls are gone (Stop waited): its channels go too, unless shared
  // (a Remote of the same id). Kept, a channel would hold its connections
  // to a member that left, and gRPC would redial it while it is down. One
  // still referenced (a Remote's, or a reference gRPC drops a moment after
  // the call's end) is tried again every second, as UpdatePeer's old URLs
  // are, instead of staying until Stop.
  const std::vector<std::string> urls = peer->picker().urls();
  if (!channels_->ReleaseUnused(urls, id)) {
    bool schedule = false;
    {
      WriterLock l(&state_->mu);
      if (!state_->stopped) {
        for (const std::string& url : urls) state_->stale_urls.emplace(id, url);
        schedule = !state_->stale_release_scheduled;
        state_->stale_release_scheduled = true;
      }
    }
    if (schedule) scheduler_->RunAfter(absl::Seconds(1), [this] { ReleaseStaleChannels(); });
  }
  // A member that left will not resume: its kept snapshot prefix goes now,
  // not at the end of its time-to-live.
  if (guarded_store_ != nullptr) guarded_store_->Forget(id);
  return absl::OkStatus();
}

void Transport::RemoveAllPeers() {
  std::map<uint64_t, std::shared_ptr<Peer>> peers;
  std::map<uint64_t, std::shared_ptr<Prober>> probers;
  {
    WriterLock l(&state_->mu);
    peers.swap(state_->peers);
    probers.swap(state_->probers);
  }
  for (auto& [id, p] : probers) p->Stop();
  for (auto& [id, p] : peers) p->Stop();
}

absl::Status Transport::UpdatePeer(uint64_t id, const std::vector<std::string>& urls) {
  std::shared_ptr<Peer> peer = GetPeer(id);
  if (peer == nullptr) return absl::OkStatus();
  const std::vector<std::string> before = peer->picker().urls();
  absl::Status s = peer->Update(urls);
  if (!s.ok()) return s;
  const std::vector<std::string> after = peer->picker().urls();
  bool schedule = false;
  {
    WriterLock l(&state_->mu);
    if (state_->stopped) return absl::OkStatus();
    for (const std::string& url : before) {
      if (std::find(after.begin(), after.end(), url) == after.end()) {
        state_->stale_urls.emplace(id, url);
      }
    }
    schedule = !state_->stale_urls.empty() && !state_->stale_release_scheduled;
    if (schedule) state_->stale_release_scheduled = true;
  }
  // On the timer thread: the caller may be a gRPC callback (a conf change
  // applied there), where the last channel reference must not be dropped.
  if (schedule) scheduler_->RunAfter(absl::ZeroDuration(), [this] { ReleaseStaleChannels(); });
  return absl::OkStatus();
}

void Transport::ReleaseStaleChannels() {
  std::set<std::pair<uint64_t, std::string>> stale;
  {
    WriterLock l(&state_->mu);
    if (state_->stopped) return;
    stale.swap(state_->stale_urls);
  }
  std::set<std::pair<uint64_t, std::string>> in_use;
  for (const auto& [id, url] : stale) {
    if (std::shared_ptr<Peer> peer = GetPeer(id)) {
      const std::vector<std::string> now = peer->picker().urls();
      if (std::find(now.begin(), now.end(), url) != now.end()) continue;  // given back
    }
    if (!channels_->ReleaseUnused({url}, id)) in_use.emplace(id, url);
  }
  {
    WriterLock l(&state_->mu);
    if (state_->stopped) return;
    state_->stale_urls.insert(in_use.begin(), in_use.end());  // and any added meanwhile
    if (state_->stale_urls.empty()) {
      state_->stale_release_scheduled = false;
      return;
    }
  }
  scheduler_->RunAfter(absl::Seconds(1), [this] { ReleaseStaleChannels(); });
}

void Transport::AddRemote(uint64_t id, const std::vector<std::string>& urls) {
  auto valid = ValidatePeerUrls(urls);
  if (!valid.ok() || id == 0 || id == opts_->local_id || raft_->IsIdRemoved(id)) return;
  std::vector<std::shared_ptr<Remote>> evicted;
  {
    WriterLock l(&state_->mu);
    if (state_->stopped || state_->peers.count(id) || state_->remotes.count(id)) return;
    // Senders we do not know can advertise URLs at will: bounded, LRU.
    evicted = state_->EvictRemotes(opts_->remote_idle_timeout, opts_->max_remotes,
                                   /*make_room=*/true);
    state_->remotes.emplace(id, std::make_shared<Remote>(opts_->local_id, id, *std::move(valid),
                                                         raft_, opts_, channels_.get()));
    if (evicted.empty()) return;
    // Usually called by a gRPC handler: stopped on the scheduler thread.
    for (auto& r : evicted) state_->retiring.push_back(std::move(r));
  }
  scheduler_->RunAfter(absl::ZeroDuration(), [this] { StopRetiring(); });
}

void Transport::StopRetiring() {
  std::vector<std::shared_ptr<Remote>> retiring;
  {
    WriterLock l(&state_->mu);
    retiring.swap(state_->retiring);
  }
  Retire(retiring);
}

void Transport::Retire(const std::vector<std::shared_ptr<Remote>>& remotes) {
  for (const auto& r : remotes) {
    r->Stop();
    // Its calls are gone (Stop waited): its channels go too, unless shared.
    channels_->ReleaseUnused(r->urls(), r->id());
  }
}

void Transport::SweepRemotes() {
  std::vector<std::shared_ptr<Remote>> evicted;
  {
    WriterLock l(&state_->mu);
    if (state_->stopped) return;
    evicted = state_->EvictRemotes(opts_->remote_idle_timeout, opts_->max_remotes,
                                   /*make_room=*/false);
  }
  Retire(evicted);
  scheduler_->RunAfter(std::max(absl::Milliseconds(10), opts_->remote_idle_timeout / 4),
                       [this] { SweepRemotes(); });
}

void Transport::SweepPartials() {
  auto* disk = dynamic_cast<DiskSnapshotStore*>(store_.get());
  if (disk == nullptr) return;
  {
    ReaderLock l(&state_->mu);
    if (state_->stopped) return;
  }
  for (uint64_t from : disk->RemoveExpired()) {
    LogLine(*opts_, absl::StrCat("removed the kept snapshot prefix from peer ", absl::Hex(from),
                                 ": older than snapshot_partial_ttl"));
  }
  scheduler_->RunAfter(std::max(absl::Seconds(1), opts_->snapshot_partial_ttl / 4),
                       [this] { SweepPartials(); });
}

void Transport::Send(raftpb::Message m) {
  const uint64_t to = m.to();
  if (to == 0) return;  // etcd: intentionally dropped
  std::shared_ptr<Peer> peer;
  std::shared_ptr<Remote> remote;
  {
    ReaderLock l(&state_->mu);
    if (state_->stopped) {
      dropped_stopped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto it = state_->peers.find(to);
    if (it != state_->peers.end()) {
      peer = it->second;
    } else {
      auto rit = state_->remotes.find(to);
      if (rit != state_->remotes.end()) remote = rit->second;
    }
  }
  if (peer == nullptr && remote == nullptr) {
    dropped_unknown_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (m.ByteSizeLong() > opts_->max_message_bytes) {
    // No channel would carry it; Raft must not think it went out.
    dropped_oversize_.fetch_add(1, std::memory_order_relaxed);
    if (peer) {
      ReportNotSent(peer->env(), m.type() == raftpb::MsgSnap);
    }
    return;
  }
  if (peer) {
    sent_to_peers_.fetch_add(1, std::memory_order_relaxed);
    const raftpb::MessageType type = m.type();
    if (peer->Send(std::move(m)) == Peer::SendOutcome::kFull) {
      // etcd logs each drop; rate-limited here, counted in the metrics.
      drop_log_->Log(*opts_,
                     absl::StrCat("dropped internal Raft message (", raftpb::MessageType_Name(type),
                                  ") to peer ", absl::Hex(to), " since sending buffer is full"));
    }
  } else {
    sent_to_remotes_.fetch_add(1, std::memory_order_relaxed);
    remote->Send(std::move(m));
  }
}

void Transport::Send(std::vector<raftpb::Message> msgs) {
  for (raftpb::Message& m : msgs) Send(std::move(m));
}

void Transport::SendSnapshot(SnapshotMessage snap) {
  // The node's data and on_done run on the sender's thread: guarded.
  if (!GuardSnapshot(&snap, caught_).ok()) {
    raft_->ReportSnapshot(snap.message.to(), SnapshotStatus::kFailure);
    snap.Close(false);
    return;
  }
  std::shared_ptr<Peer> peer = GetPeer(snap.message.to());
  if (peer == nullptr) {
    snap.Close(false);  // etcd: errMemberNotFound
    return;
  }
  peer->SendSnapshot(std::move(snap));
}

std::shared_ptr<Peer> Transport::GetPeer(uint64_t id) const {
  ReaderLock l(&state_->mu);
  auto it = state_->peers.find(id);
  return it == state_->peers.end() ? nullptr : it->second;
}

std::shared_ptr<Prober> Transport::GetProber(uint64_t id) const {
  ReaderLock l(&state_->mu);
  auto it = state_->probers.find(id);
  return it == state_->probers.end() ? nullptr : it->second;
}

absl::Time Transport::ActiveSince(uint64_t id) const {
  std::shared_ptr<Peer> peer = GetPeer(id);
  return peer ? peer->ActiveSince() : absl::Time();
}

int Transport::ActivePeers() const {
  ReaderLock l(&state_->mu);
  int n = 0;
  for (const auto& [id, p] : state_->peers) n += p->status().IsActive();
  return n;
}

void Transport::Pause() {
  ReaderLock l(&state_->mu);
  for (auto& [id, p] : state_->peers) p->Pause();
}

void Transport::Resume() {
  ReaderLock l(&state_->mu);
  for (auto& [id, p] : state_->peers) p->Resume();
}

void Transport::CutPeer(uint64_t id) {
  ReaderLock l(&state_->mu);
  if (auto it = state_->peers.find(id); it != state_->peers.end()) it->second->Pause();
  if (auto it = state_->remotes.find(id); it != state_->remotes.end()) it->second->Pause();
}

void Transport::MendPeer(uint64_t id) {
  ReaderLock l(&state_->mu);
  if (auto it = state_->peers.find(id); it != state_->peers.end()) it->second->Resume();
  if (auto it = state_->remotes.find(id); it != state_->remotes.end()) it->second->Resume();
}

void Transport::Stop() {
  std::map<uint64_t, std::shared_ptr<Peer>> peers;
  std::map<uint64_t, std::shared_ptr<Remote>> remotes;
  std::map<uint64_t, std::shared_ptr<Prober>> probers;
  grpc::Server* server;  // stays owned by state_ until ~Transport
  {
    WriterLock l(&state_->mu);
    if (state_->stopped) return;
    state_->stopped = true;
    peers.swap(state_->peers);
    remotes.swap(state_->remotes);
    probers.swap(state_->probers);
    server = state_->server.get();
  }
  for (auto& [id, p] : probers) p->Stop();
  // Peers first: their writers finish the server-side stream calls, which
  // server shutdown would otherwise wait for.
  for (auto& [id, p] : peers) p->Stop();
  for (auto& [id, r] : remotes) r->Stop();
  StopRetiring();
  // Before the server: a stranger's pipeline call is answered when its
  // message is processed (or dropped here), and the server's shutdown
  // waits for every call's answer.
  strangers_->Stop();
  if (server) server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  scheduler_->Stop();
}

}  // namespace raftgrpc
