#include "testing/cluster.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/peer.h"

namespace raftgrpc::testing {
namespace {

// A free loopback port, kept bound (SO_REUSEADDR, never listening) by
// `hold`. Nodes need their ports before any starts, since each lists the
// others as peers, and a node restarts on its port. Released between the
// pick and a (re)start, the port could go to another test's gRPC server,
// and gRPC's SO_REUSEPORT let our node listen beside it: the kernel split
// our peers' connections between the two (seen in CI, 2026-12-02, as
// dials answered "sender not found" for 10 s). Held, the kernel gives it
// to no socket that binds port 0, while our server, which sets
// SO_REUSEADDR too, may still listen on it.
absl::StatusOr<int> ReservePort(ScopedFd* hold) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::InternalError("socket");
  absl::StatusOr<int> port = BindLoopbackPort(fd.get());
  if (port.ok()) *hold = std::move(fd);
  return port;
}

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

}  // namespace

ScopedFd& ScopedFd::operator=(ScopedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

bool WaitUntil(const std::function<bool()>& pred, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return pred();
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

absl::Status Cluster::AddNodes(int n) {
  const char* scheme = base_.tls.enabled() ? "https" : "http";
  // Distinct snapshot directories for every cluster a process starts.
  static std::atomic<int> instance{0};
  const int this_instance = ++instance;
  for (int i = 1; i <= n; ++i) {
    auto node = std::make_unique<Node>();
    node->id = i;
    auto port = ReservePort(&node->port_hold);
    if (!port.ok()) return port.status();
    node->port = *port;
    node->url = absl::StrCat(scheme, "://127.0.0.1:", *port);
    node->snap_dir =
        absl::StrCat(TempDir(), "/cluster", ::getpid(), "-", this_instance, "-node", i);
    node->raft = std::make_unique<FakeRaft>();
    nodes_.emplace(i, std::move(node));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(int n, TransportOptions base,
                                                        NodeOptionsFn per_node) {
  std::unique_ptr<Cluster> c(new Cluster);
  if (base.cluster_id == 0) base.cluster_id = 0x1000;
  c->base_ = base;
  c->per_node_ = std::move(per_node);
  if (absl::Status s = c->AddNodes(n); !s.ok()) return s;
  for (auto& [id, node] : c->nodes_) {
    absl::Status s = c->StartNode(*node);
    if (!s.ok()) return s;
  }
  return c;
}

Cluster::~Cluster() {
  for (auto& [id, n] : nodes_) {
    if (n->transport) n->transport->Stop();
  }
  proxies_.clear();
}

std::vector<uint64_t> Cluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

absl::Status Cluster::StartNode(Node& n) {
  TransportOptions opts = base_;
  opts.local_id = n.id;
  opts.snapshot_dir = n.snap_dir;
  opts.advertise_urls = {n.url};
  if (per_node_) per_node_(n.id, opts);
  auto t = Transport::Create(opts, n.raft.get());
  if (!t.ok()) return t.status();
  auto port = (*t)->Serve(absl::StrCat("127.0.0.1:", n.port));
  if (!port.ok()) return port.status();
  for (auto& [id, other] : nodes_) {
    if (id == n.id) continue;
    FaultProxy* p = proxy(n.id, id);
    absl::Status s = (*t)->AddPeer(id, {p ? p->url() : other->url});
    if (!s.ok()) return s;
  }
  n.transport = *std::move(t);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::StartWithProxies(int n, TransportOptions base,
                                                                   NodeOptionsFn per_node) {
  // Start with nodes down, add proxies, then start them: proxies need the
  // ports, and nodes need the proxies' URLs.
  auto c = Start(0, base, per_node);
  if (!c.ok()) return c;
  Cluster& cl = **c;
  if (absl::Status s = cl.AddNodes(n); !s.ok()) return s;
  for (auto& [a, na] : cl.nodes_) {
    for (auto& [b, nb] : cl.nodes_) {
      if (a == b) continue;
      auto p = FaultProxy::Start(nb->port);
      if (!p.ok()) return p.status();
      cl.proxies_[{a, b}] = *std::move(p);
    }
  }
  for (auto& [id, node] : cl.nodes_) {
    absl::Status s = cl.StartNode(*node);
    if (!s.ok()) return s;
  }
  return c;
}

FaultProxy* Cluster::proxy(uint64_t a, uint64_t b) {
  auto it = proxies_.find({a, b});
  return it == proxies_.end() ? nullptr : it->second.get();
}

void Cluster::OnLink(uint64_t a, uint64_t b, const std::function<void(FaultProxy&)>& fn) {
  if (FaultProxy* p = proxy(a, b)) fn(*p);
  if (FaultProxy* p = proxy(b, a)) fn(*p);
}

void Cluster::Partition(uint64_t a, uint64_t b) {
  t(a).CutPeer(b);
  t(b).CutPeer(a);
}

void Cluster::Heal(uint64_t a, uint64_t b) {
  t(a).MendPeer(b);
  t(b).MendPeer(a);
}

bool Cluster::WaitActive(uint64_t a, uint64_t b, absl::Duration timeout) {
  return WaitUntil([&] { return node(a).transport && t(a).ActiveSince(b) != absl::Time(); },
                   timeout);
}

void Cluster::StopNode(uint64_t id) {
  Node& n = node(id);
  if (n.transport) n.transport->Stop();
  n.transport.reset();
}

absl::Status Cluster::RestartNode(uint64_t id, bool fresh_raft) {
  Node& n = node(id);
  StopNode(id);
  if (fresh_raft) n.raft = std::make_unique<FakeRaft>();
  return StartNode(n);
}

bool Cluster::StreamUp(uint64_t from, uint64_t to) {
  auto& tr = node(from).transport;
  if (!tr) return false;
  auto peer = tr->GetPeer(to);
  raftpb::Message m;
  m.set_type(raftpb::MsgHeartbeat);
  return peer && peer->Pick(m) == Channel::kStreamMsg;
}

bool Cluster::MsgAppV2Up(uint64_t from, uint64_t to) {
  auto& tr = node(from).transport;
  if (!tr) return false;
  auto peer = tr->GetPeer(to);
  raftpb::Message m;
  m.set_type(raftpb::MsgApp);
  return peer && peer->Pick(m) == Channel::kStreamMsgAppV2;
}

bool Cluster::WaitAllStreams(absl::Duration timeout) {
  return WaitUntil(
      [&] {
        for (auto& [a, na] : nodes_) {
          for (auto& [b, nb] : nodes_) {
            if (a != b && (!StreamUp(a, b) || !MsgAppV2Up(a, b))) return false;
          }
        }
        return true;
      },
      timeout);
}

}  // namespace raftgrpc::testing
