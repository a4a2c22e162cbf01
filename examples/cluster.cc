// Demo (the README's main command): a 3-node cluster on loopback driven by a
// raft-like workload. Node 1 leads: it streams MsgApp (one 128 B entry each,
// at most 512 in flight per follower, like etcd's MaxInflightMsgs) and
// heartbeats; followers answer. Along the way it pauses a follower, kills
// and restarts one, and sends it a 64 MiB snapshot whose link it resets at
// about 60%, so that the retry resumes. Prints a progress line
// per phase and a final table per follower; exits 0 if every phase did what
// it should.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "peer/peer.h"
#include "testing/fault_proxy.h"
#include "testing/messages.h"
#include "transport/callback_threads.h"
#include "transport/pipeline/prober.h"
#include "transport/snapshot.h"
#include "transport/transport.h"

namespace {

using raftgrpc::SnapshotStatus;
using raftgrpc::Transport;

constexpr uint64_t kLeader = 1;
constexpr int kInflight = 512;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Per-follower numbers kept by the leader.
struct FollowerView {
  std::atomic<uint64_t> acked{0};        // highest index acknowledged
  std::atomic<uint64_t> acks{0};         // MsgAppResp received
  std::atomic<uint64_t> unreachable{0};  // ReportUnreachable calls
  std::atomic<uint64_t> rtt_count{0};
  std::atomic<int64_t> rtt_sum_ns{0};
  std::atomic<int> snapshot{0};  // 0 none, 1 finish, 2 failure
};

// One node's Raft: followers answer, the leader keeps score.
class DemoNode : public raftgrpc::Raft {
 public:
  explicit DemoNode(uint64_t id) : id_(id) {}
  void set_transport(Transport* t) { t_.store(t); }

  absl::Status Process(const raftpb::Message& m) override {
    received_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(m.ByteSizeLong(), std::memory_order_relaxed);
    raftpb::Message r;
    r.set_from(id_);
    r.set_to(m.from());
    r.set_term(m.term());
    switch (m.type()) {
      case raftpb::MsgApp:
        r.set_type(raftpb::MsgAppResp);
        r.set_index(m.entries_size() ? m.entries(m.entries_size() - 1).index() : m.index());
        break;
      case raftpb::MsgHeartbeat:
        r.set_type(raftpb::MsgHeartbeatResp);
        r.set_context(m.context());  // echo the send time for RTT
        break;
      case raftpb::MsgAppResp:
      case raftpb::MsgHeartbeatResp:
        Score(m);
        return absl::OkStatus();
      default:
        return absl::OkStatus();
    }
    if (Transport* t = t_.load()) t->Send(std::move(r));
    return absl::OkStatus();
  }
  absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& path) override {
    snapshot_path_ = path;
    return Process(m);
  }
  bool IsIdRemoved(uint64_t) override { return false; }
  void ReportUnreachable(uint64_t id) override {
    if (auto* f = view(id)) f->unreachable.fetch_add(1);
  }
  void ReportSnapshot(uint64_t id, SnapshotStatus s) override {
    if (auto* f = view(id)) f->snapshot.store(s == SnapshotStatus::kFinish ? 1 : 2);
  }

  FollowerView* view(uint64_t id) {
    auto it = followers_.find(id);
    return it == followers_.end() ? nullptr : it->second.get();
  }
  void AddFollower(uint64_t id) { followers_[id] = std::make_unique<FollowerView>(); }
  uint64_t received() const { return received_.load(); }
  uint64_t bytes() const { return bytes_.load(); }
  std::string snapshot_path_;

 private:
  void Score(const raftpb::Message& m) {
    FollowerView* f = view(m.from());
    if (f == nullptr) return;
    if (m.type() == raftpb::MsgAppResp) {
      f->acks.fetch_add(1, std::memory_order_relaxed);
      uint64_t prev = f->acked.load();
      while (m.index() > prev && !f->acked.compare_exchange_weak(prev, m.index())) {
      }
    } else if (m.context().size() == sizeof(int64_t)) {
      int64_t sent;
      std::memcpy(&sent, m.context().data(), sizeof(sent));
      f->rtt_sum_ns.fetch_add(NowNanos() - sent);
      f->rtt_count.fetch_add(1);
    }
  }

  const uint64_t id_;
  std::atomic<Transport*> t_{nullptr};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> bytes_{0};
  std::map<uint64_t, std::unique_ptr<FollowerView>> followers_;  // fixed before traffic
};

struct Node {
  uint64_t id;
  int port;
  std::unique_ptr<DemoNode> raft;
  std::unique_ptr<Transport> transport;
};

std::string Url(int port) { return absl::StrCat("http://127.0.0.1:", port); }

std::unique_ptr<Transport> StartTransport(uint64_t id, int port, DemoNode* raft,
                                          const std::vector<Node>& all, const std::string& dir,
                                          int* bound) {
  raftgrpc::TransportOptions o;
  o.local_id = id;
  o.cluster_id = 0xdead;
  o.snapshot_dir = dir;
  o.probe_interval = absl::Milliseconds(500);  // a short demo still shows probe RTTs
  auto t = Transport::Create(o, raft);
  if (!t.ok()) return nullptr;
  auto p = (*t)->Serve(absl::StrCat("127.0.0.1:", port));
  if (!p.ok()) return nullptr;
  *bound = *p;
  raft->set_transport(t->get());
  for (const Node& n : all) {
    if (n.id != id && n.port != 0) (*t)->AddPeer(n.id, {Url(n.port)}).IgnoreError();
  }
  return *std::move(t);
}

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace

int main() {
  // README's latency setting: gRPC runs every callback of this process on
  // one thread (transport/callback_threads.h); held for the whole demo.
  auto one_callback_thread = raftgrpc::OneCallbackThread::Hold();
  // A fresh directory (PIDs repeat across sandboxes, so no PID-based name).
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/raft-grpc-demo-XXXXXX");
  if (::mkdtemp(&tmpl[0]) == nullptr) return std::fprintf(stderr, "mkdtemp failed\n"), 1;
  const std::string dir = tmpl;
  std::vector<Node> nodes(3);
  for (int i = 0; i < 3; ++i) {
    nodes[i].id = i + 1;
    nodes[i].port = 0;
    nodes[i].raft = std::make_unique<DemoNode>(i + 1);
  }
  DemoNode& leader = *nodes[0].raft;
  leader.AddFollower(2);
  leader.AddFollower(3);
  // Bind all first (port 0), then connect everyone.
  for (Node& n : nodes) {
    n.transport = StartTransport(n.id, 0, n.raft.get(), {}, absl::StrCat(dir, "/n", n.id), &n.port);
    if (!n.transport) return std::fprintf(stderr, "cannot start node %lu\n", n.id), 1;
  }
  // What the leader sends follower 2 itself (pipeline, snapshots) crosses a
  // TCP proxy, so that the snapshot phase can break that link.
  auto link2 = raftgrpc::testing::FaultProxy::Start(nodes[1].port);
  if (!link2.ok()) return std::fprintf(stderr, "cannot start the proxy\n"), 1;
  for (Node& n : nodes) {
    for (Node& o : nodes) {
      if (o.id == n.id) continue;
      const std::string url = n.id == kLeader && o.id == 2 ? (*link2)->url() : Url(o.port);
      n.transport->AddPeer(o.id, {url}).IgnoreError();
    }
  }
  std::printf("3 nodes on 127.0.0.1:%d,%d,%d\n", nodes[0].port, nodes[1].port, nodes[2].port);
  Transport& lt = *nodes[0].transport;
  bool ok = WaitFor([&] { return lt.ActivePeers() == 2; }, absl::Seconds(10));
  std::printf("[%s] peers active: %d\n", ok ? "ok" : "FAIL", lt.ActivePeers());

  // The leader's replication loop: MsgApp with one 128 B entry, at most
  // kInflight unacknowledged per follower; a heartbeat every 100 ms.
  std::atomic<bool> stop{false};
  // Per-follower replication state, as Raft's progress tracking: replicate
  // while acks flow; after an unreachable report or 300 ms without ack
  // progress, probe with one MsgApp per 100 ms from the acked index.
  struct Progress {
    uint64_t next = 1;
    bool probing = false;
    uint64_t unreachable_seen = 0;
    uint64_t acked_seen = 0;
    absl::Time ack_moved = absl::Now();
    absl::Time last_probe;
  };
  std::map<uint64_t, Progress> progress_of = {{2, {}}, {3, {}}};
  std::atomic<uint64_t> appends_sent{0};
  std::thread replicator([&] {
    const std::string payload(128, 'e');
    int64_t last_hb = 0;
    auto append = [&](uint64_t to, uint64_t index) {
      raftpb::Message m = raftgrpc::testing::App(kLeader, to, 1, index - 1, payload);
      m.set_commit(index - 1);
      lt.Send(std::move(m));
      appends_sent.fetch_add(1, std::memory_order_relaxed);
    };
    while (!stop.load()) {
      bool sent_any = false;
      absl::Time now_t = absl::Now();
      for (auto& [id, p] : progress_of) {
        FollowerView* f = leader.view(id);
        uint64_t acked = f->acked.load();
        if (acked != p.acked_seen) {
          p.acked_seen = acked;
          p.ack_moved = now_t;
          if (p.probing) {
            p.probing = false;
            p.next = acked + 1;
          }
        }
        uint64_t unreachable = f->unreachable.load();
        bool stalled = p.next > acked + 1 && now_t - p.ack_moved > absl::Milliseconds(300);
        if (!p.probing && (unreachable != p.unreachable_seen || stalled)) {
          p.probing = true;  // lost messages: go back to what was acked
          p.next = acked + 1;
        }
        p.unreachable_seen = unreachable;
        if (p.probing) {
          if (now_t - p.last_probe > absl::Milliseconds(100)) {
            p.last_probe = now_t;
            append(id, acked + 1);
            sent_any = true;
          }
          continue;
        }
        for (int k = 0; k < 64 && p.next <= acked + kInflight; ++k) {
          append(id, p.next++);
          sent_any = true;
        }
      }
      int64_t now = NowNanos();
      if (now - last_hb > 100'000'000) {
        last_hb = now;
        for (uint64_t id : {2, 3}) {
          raftpb::Message hb;
          hb.set_type(raftpb::MsgHeartbeat);
          hb.set_from(kLeader);
          hb.set_to(id);
          hb.set_term(1);
          hb.set_context(std::string(reinterpret_cast<char*>(&now), sizeof(now)));
          lt.Send(std::move(hb));
        }
      }
      // Nothing to send until acks arrive: a short sleep, not a spin that
      // would take one of a small machine's cores from the transport.
      if (!sent_any) absl::SleepFor(absl::Microseconds(50));
    }
  });

  auto progress = [&](const char* phase, absl::Duration d) {
    uint64_t a0 = appends_sent.load();
    absl::Time t0 = absl::Now();
    absl::SleepFor(d);
    double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    std::printf("  %-28s %9.0f MsgApp/s  acked: n2=%lu n3=%lu\n", phase,
                (appends_sent.load() - a0) / secs, leader.view(2)->acked.load(),
                leader.view(3)->acked.load());
  };
  progress("steady replication", absl::Seconds(2));

  // Pause follower 3 (both directions), as etcd's CutPeer partitions.
  uint64_t before_pause = leader.view(3)->acked.load();
  lt.CutPeer(3);
  nodes[2].transport->CutPeer(kLeader);
  progress("follower 3 cut off", absl::Seconds(1));
  bool paused_ok = leader.view(3)->acked.load() <= before_pause + kInflight;
  lt.MendPeer(3);
  nodes[2].transport->MendPeer(kLeader);
  bool resumed =
      WaitFor([&] { return leader.view(3)->acked.load() > before_pause + 2 * kInflight; },
              absl::Seconds(10));
  std::printf("[%s] pause held follower 3 back, resume caught it up\n",
              paused_ok && resumed ? "ok" : "FAIL");
  ok &= paused_ok && resumed;

  // Kill follower 2 and restart it on the same port.
  uint64_t unreachable_before = leader.view(2)->unreachable.load();
  nodes[1].transport->Stop();
  nodes[1].transport.reset();
  progress("follower 2 down", absl::Seconds(1));
  nodes[1].raft = std::make_unique<DemoNode>(2);
  int bound = 0;
  nodes[1].transport = StartTransport(2, nodes[1].port, nodes[1].raft.get(), nodes,
                                      absl::StrCat(dir, "/n2"), &bound);
  uint64_t acked_at_restart = leader.view(2)->acked.load();
  bool back = nodes[1].transport &&
              WaitFor([&] { return leader.view(2)->acked.load() > acked_at_restart + kInflight; },
                      absl::Seconds(10));
  std::printf("[%s] follower 2 restarted: %lu unreachable reports while down, traffic resumed\n",
              back ? "ok" : "FAIL", leader.view(2)->unreachable.load() - unreachable_before);
  ok &= back;
  progress("all followers back", absl::Seconds(1));

  // A 64 MiB snapshot to follower 2, its link reset at about 60%; Raft's
  // retry (the same snapshot again) resumes where the break left it, from
  // the prefix follower 2 kept on disk.
  std::string src = absl::StrCat(dir, "/snapshot.src");
  {
    std::FILE* f = std::fopen(src.c_str(), "wb");
    std::string block(1 << 20, 's');
    for (int i = 0; f && i < 64; ++i) std::fwrite(block.data(), 1, block.size(), f);
    if (f) std::fclose(f);
  }
  auto send_snapshot = [&] {
    auto data = raftgrpc::FileSnapshotData::Open(src);
    raftgrpc::SnapshotMessage snap;
    snap.message.set_type(raftpb::MsgSnap);
    snap.message.set_from(kLeader);
    snap.message.set_to(2);
    snap.message.set_term(1);
    snap.message.mutable_snapshot()->mutable_metadata()->set_index(1000);
    snap.message.mutable_snapshot()->mutable_metadata()->set_term(1);
    if (data.ok()) snap.data = *std::move(data);
    leader.view(2)->snapshot.store(0);
    lt.SendSnapshot(std::move(snap));
  };
  auto sending = [&] {
    for (const raftgrpc::PeerMetrics& p : lt.Metrics().peers) {
      if (p.id == 2) return p;
    }
    return raftgrpc::PeerMetrics();
  };
  // What follower 2 has written (its Metrics()): the sender's count runs
  // ahead by what gRPC's flow-control windows hold.
  auto receiving = [&] {
    if (nodes[1].transport) {
      for (const raftgrpc::PeerMetrics& p : nodes[1].transport->Metrics().peers) {
        if (p.id == kLeader) return p.snapshot_receiving;
      }
    }
    return raftgrpc::SnapshotProgress();
  };
  // One progress line per quarter of the data.
  auto watch = [&](int* next_quarter, uint64_t stop_at) {
    for (;;) {
      const raftgrpc::SnapshotProgress p = receiving();
      if (p.active && p.total_bytes > 0) {
        while (*next_quarter <= 4 && p.done_bytes * 4 >= *next_quarter * p.total_bytes) {
          std::printf(
              "      snapshot to follower 2: %5.1f of %.1f MiB (%3.0f%%), %.0f MB/s%s\n",
              p.done_bytes / 1048576.0, p.total_bytes / 1048576.0,
              100.0 * p.done_bytes / p.total_bytes, p.bytes_per_second() / 1e6,
              p.resumed_bytes
                  ? absl::StrFormat(", %.1f MiB resumed", p.resumed_bytes / 1048576.0).c_str()
                  : "");
          ++*next_quarter;
        }
        if (p.done_bytes >= stop_at) return true;
      }
      if (leader.view(2)->snapshot.load() != 0) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
  };
  constexpr uint64_t kSnapBytes = 64ull << 20;
  // A 32 MB/s link, as to another site: the receiver checkpoints what it
  // has every 250 ms at most, so a quick loopback transfer would keep
  // nothing worth resuming.
  (*link2)->SetBandwidth(32 << 20);
  absl::Time s0 = absl::Now();
  send_snapshot();
  int quarter = 1;
  const bool reached = watch(&quarter, kSnapBytes * 6 / 10);
  (*link2)->SetMode(raftgrpc::testing::FaultProxy::Mode::kReset);
  const bool failed =
      WaitFor([&] { return leader.view(2)->snapshot.load() != 0; }, absl::Seconds(30)) &&
      leader.view(2)->snapshot.load() == 2;
  (*link2)->Heal();
  std::printf("[%s] link to follower 2 reset at 60%% of the snapshot: one failure reported\n",
              reached && failed ? "ok" : "FAIL");
  ok &= reached && failed;
  send_snapshot();  // Raft's retry
  watch(&quarter, UINT64_MAX);
  bool snap_ok = WaitFor([&] { return leader.view(2)->snapshot.load() != 0; }, absl::Seconds(30)) &&
                 leader.view(2)->snapshot.load() == 1;
  const raftgrpc::PeerMetrics m = sending();
  double snap_secs = absl::ToDoubleSeconds(absl::Now() - s0);
  snap_ok &= m.snapshot_send_resumed_bytes > 0;
  std::printf(
      "[%s] 64 MiB snapshot to follower 2 in %.2f s with the break; %.1f MiB resumed, %.1f MiB "
      "sent twice; stored at %s\n",
      snap_ok ? "ok" : "FAIL", snap_secs, m.snapshot_send_resumed_bytes / 1048576.0,
      (static_cast<double>(m.snapshot_sent_data_bytes) - kSnapBytes) / 1048576.0,
      nodes[1].raft->snapshot_path_.c_str());
  ok &= snap_ok;

  stop.store(true);
  replicator.join();

  std::printf("\n%-9s %11s %13s %9s %12s %14s %15s\n", "follower", "received", "bytes", "acked",
              "unreachable", "RTT(us,loaded)", "probe srtt(us)");
  for (uint64_t id : {2, 3}) {
    FollowerView* f = leader.view(id);
    auto peer = lt.GetPeer(id);
    double rtt = f->rtt_count.load() ? f->rtt_sum_ns.load() / 1e3 / f->rtt_count.load() : 0;
    auto prober = lt.GetProber(id);
    const double srtt = prober ? absl::ToDoubleMicroseconds(prober->stats().srtt) : 0;
    std::printf("%-9lu %11lu %13lu %9lu %12lu %14.0f %15.0f\n", id, nodes[id - 1].raft->received(),
                nodes[id - 1].raft->bytes(), f->acked.load(), f->unreachable.load(), rtt, srtt);
    if (peer) {
      raftgrpc::PeerStats s = peer->stats();
      std::printf("          sent v2/v3/pipeline %lu/%lu/%lu, dropped %lu/%lu/%lu\n", s.sent[0],
                  s.sent[1], s.sent[2], s.dropped[0], s.dropped[1], s.dropped[2]);
    }
  }
  for (Node& n : nodes) {
    if (n.transport) n.transport->Stop();
  }
  std::string rm = absl::StrCat("rm -rf ", dir);
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
