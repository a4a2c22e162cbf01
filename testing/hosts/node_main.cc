// A transport node for the multi-host suite (testing/hosts): one process,
// run by Hosts inside its own network namespace. It behaves as a Raft node
// would towards the transport: a leader streams MsgApp to its followers
// (consecutive indexes per follower, a bounded window acknowledged by
// MsgAppResp), followers answer and check that what arrives is in order
// and never duplicated.
//
// Driven over stdin/stdout, one command per line, one answer line each:
//   flood ID...        start streaming MsgApp to these peers ("ok")
//   stats              "key=value ..." (see Stats())
//   snapshot ID MIB    send a MIB MiB snapshot to peer ID ("ok")
//   quit               stop and exit
//
// Flags: --id=N --listen=IP:PORT --peers=ID=URL,... --snap-dir=DIR
//        --read-timeout-ms=MS (conn_read_timeout; link heartbeats every 1/3)
//        --snapshot-progress-ms=MS (snapshot_progress_timeout)
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "peer/peer.h"
#include "peer/raft.h"
#include "testing/messages.h"
#include "testing/snapshot_file.h"
#include "transport/transport.h"

namespace raftgrpc::hosts {
namespace {

struct Flags {
  uint64_t id = 0;
  std::string listen;
  std::map<uint64_t, std::string> peers;
  std::string snap_dir;
  int64_t read_timeout_ms = 1500;
  int64_t snapshot_progress_ms = 30000;
};

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto val = [&](absl::string_view name) -> const char* {
      const std::string p = absl::StrCat("--", name, "=");
      return absl::StartsWith(a, p) ? argv[i] + p.size() : nullptr;
    };
    if (const char* v = val("id")) {
      f.id = std::strtoull(v, nullptr, 10);
    } else if (const char* v = val("listen")) {
      f.listen = v;
    } else if (const char* v = val("snap-dir")) {
      f.snap_dir = v;
    } else if (const char* v = val("read-timeout-ms")) {
      f.read_timeout_ms = std::strtoll(v, nullptr, 10);
    } else if (const char* v = val("snapshot-progress-ms")) {
      f.snapshot_progress_ms = std::strtoll(v, nullptr, 10);
    } else if (const char* v = val("peers")) {
      for (absl::string_view p : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        std::pair<std::string, std::string> kv = absl::StrSplit(p, absl::MaxSplits('=', 1));
        f.peers[std::strtoull(kv.first.c_str(), nullptr, 10)] = kv.second;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Per peer, what a Raft node would track.
struct PeerState {
  std::atomic<uint64_t> sent{0};   // leader: last index sent
  std::atomic<uint64_t> acked{0};  // leader: highest index acknowledged
  std::atomic<int64_t> acked_moved_ms{0};
  std::atomic<uint64_t> unreachable{0};  // ReportUnreachable calls
  std::atomic<int64_t> last_unreachable_ms{0};
  std::atomic<uint64_t> received{0};  // follower: MsgApps in order
  std::atomic<uint64_t> last_index{0};
  std::atomic<uint64_t> duplicates{0};  // one send delivered twice
  std::mutex seen_mu;
  std::set<uint64_t> seen;            // send numbers (commit), the last 100k or so
  uint64_t max_seen = 0;              // guarded by seen_mu
  uint64_t forgotten = 0;             // guarded by seen_mu: numbers up to it pruned
  std::atomic<uint64_t> reorders{0};  // a number below one already seen
  // Leader: numbers each send Send accepted, 1, 2, ...: `accepted` is the
  // last one (written by the flood thread only).
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> gaps{0};  // an index beyond the next (a loss)
  std::atomic<uint64_t> snapshots_ok{0}, snapshots_failed{0};
};

class NodeRaft : public Raft {
 public:
  explicit NodeRaft(uint64_t id) : id_(id) {}
  void set_transport(Transport* t) { t_ = t; }
  PeerState& peer(uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    auto& p = peers_[id];
    if (!p) p = std::make_unique<PeerState>();
    return *p;
  }

  absl::Status Process(const raftpb::Message& m) override {
    PeerState& p = peer(m.from());
    if (m.type() == raftpb::MsgApp) {
      // A follower: indexes from one leader arrive in order, exactly once;
      // a gap is a loss (Raft would reject it and the leader resend).
      const uint64_t index = m.index() + 1;
      const uint64_t last = p.last_index.load();
      {
        // Each send is numbered (commit): the same number twice is the
        // transport delivering one send twice. A leader's resend after a
        // loss has a new number, and an original overtaken by its resend
        // (it sat in a dead connection) is no duplicate either.
        std::lock_guard<std::mutex> l(p.seen_mu);
        if (!p.seen.insert(m.commit()).second) p.duplicates.fetch_add(1);
        // Overtaken: possible only across channels (a pipeline call racing
        // a stream), never within one stream.
        if (m.commit() < p.max_seen) p.reorders.fetch_add(1);
        p.max_seen = std::max(p.max_seen, m.commit());
        while (p.seen.size() > 100000) {
          p.forgotten = *p.seen.begin();
          p.seen.erase(p.seen.begin());
        }
      }
      if (index <= last) {
        // A resend, or an original that arrived after its resend.
      } else {
        if (index > last + 1 && last != 0) p.gaps.fetch_add(1);
        p.last_index.store(index);
        p.received.fetch_add(1);
      }
      if (index % 64 == 0 && t_ != nullptr) {
        raftpb::Message r;
        r.set_type(raftpb::MsgAppResp);
        r.set_from(id_);
        r.set_to(m.from());
        r.set_index(index);
        t_->Send(std::move(r));
      }
    } else if (m.type() == raftpb::MsgAppResp) {
      uint64_t prev = p.acked.load();
      while (m.index() > prev && !p.acked.compare_exchange_weak(prev, m.index())) {
      }
      p.acked_moved_ms.store(NowMs());
    }
    return absl::OkStatus();
  }
  absl::Status ProcessSnapshot(const raftpb::Message&, const std::string&) override {
    return absl::OkStatus();
  }
  bool IsIdRemoved(uint64_t) override { return false; }
  void ReportUnreachable(uint64_t id) override {
    PeerState& p = peer(id);
    p.unreachable.fetch_add(1);
    p.last_unreachable_ms.store(NowMs());
  }
  void ReportSnapshot(uint64_t id, SnapshotStatus s) override {
    (s == SnapshotStatus::kFinish ? peer(id).snapshots_ok : peer(id).snapshots_failed).fetch_add(1);
  }

 private:
  const uint64_t id_;
  Transport* t_ = nullptr;
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<PeerState>> peers_;
};

int CountDir(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

int64_t Threads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Threads:")) return std::strtoll(line.c_str() + 8, nullptr, 10);
  }
  return -1;
}

int Run(const Flags& f) {
  NodeRaft raft(f.id);
  TransportOptions o;
  o.local_id = f.id;
  o.cluster_id = 0x5eed;
  o.snapshot_dir = f.snap_dir;
  o.advertise_urls = {absl::StrCat("http://", f.listen)};
  o.conn_read_timeout = absl::Milliseconds(f.read_timeout_ms);
  o.conn_write_timeout = absl::Milliseconds(f.read_timeout_ms);
  o.pipeline_timeout = absl::Milliseconds(f.read_timeout_ms);
  o.probe_interval = absl::Milliseconds(f.read_timeout_ms);
  o.snapshot_progress_timeout = absl::Milliseconds(f.snapshot_progress_ms);
  o.log = [id = f.id](const std::string& line) {
    std::fprintf(stderr, "[node %lu] %s\n", id, line.c_str());
  };
  auto t = Transport::Create(o, &raft);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    return 1;
  }
  raft.set_transport(t->get());
  if (auto port = (*t)->Serve(f.listen); !port.ok()) {
    std::fprintf(stderr, "%s\n", port.status().ToString().c_str());
    return 1;
  }
  for (const auto& [id, url] : f.peers) (void)(*t)->AddPeer(id, {url});

  std::atomic<bool> stop{false};
  std::vector<std::thread> floods;
  const std::string payload(128, 'a');
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.empty()) continue;
    if (w[0] == "quit") break;
    if (w[0] == "flood") {
      std::vector<uint64_t> to;
      for (size_t i = 1; i < w.size(); ++i) to.push_back(std::strtoull(w[i].c_str(), nullptr, 10));
      // The peers live as long as the transport: looked up once.
      std::vector<std::pair<uint64_t, std::shared_ptr<Peer>>> peers;
      for (uint64_t id : to) peers.emplace_back(id, (*t)->GetPeer(id));
      floods.emplace_back([&, peers] {
        // A leader's steady state: per follower, at most kWindow sent and
        // not acknowledged; what Send refuses (a full buffer, reported
        // unreachable) is sent again later, as Raft would.
        constexpr uint64_t kWindow = 2048;
        while (!stop.load()) {
          bool sent = false;
          for (const auto& [id, peer] : peers) {
            PeerState& p = raft.peer(id);
            const uint64_t acked = p.acked.load();
            if (p.sent.load() > acked && NowMs() - p.acked_moved_ms.load() > 500) {
              // No progress: messages were lost (a broken link drops what
              // it held); go back to what was acknowledged, as Raft does.
              p.sent.store(acked);
              p.acked_moved_ms.store(NowMs());
            }
            const uint64_t next = p.sent.load() + 1;
            if (next > acked + kWindow) continue;
            raftpb::Message m = testing::App(f.id, id, 1, next - 1, payload);
            m.set_commit(p.accepted.load() + 1);
            if (peer && peer->Send(std::move(m)) == Peer::SendOutcome::kQueued) {
              p.accepted.fetch_add(1);
              p.sent.store(next);
              sent = true;
            }
          }
          if (!sent) absl::SleepFor(absl::Milliseconds(1));
        }
      });
      std::cout << "ok" << std::endl;
    } else if (w[0] == "snapshot" && w.size() == 3) {
      const uint64_t to = std::strtoull(w[1].c_str(), nullptr, 10);
      const std::string path = absl::StrCat(f.snap_dir, "/../body-", f.id);
      {
        std::ofstream out(path, std::ios::binary);
        std::string block(1 << 20, 's');
        for (uint64_t i = 0; i < std::strtoull(w[2].c_str(), nullptr, 10); ++i) {
          out.write(block.data(), block.size());
        }
      }
      auto snap = testing::FileSnapshot(f.id, to, 1000 + NowMs() % 100000, path);
      if (snap.ok()) (*t)->SendSnapshot(*std::move(snap));
      std::cout << (snap.ok() ? "ok" : "error") << std::endl;
    } else if (w[0] == "seen" && w.size() == 4) {
      // seen FROM LO HI: how many of the send numbers LO..HI from FROM
      // were delivered (each at most once: duplicates are counted apart).
      PeerState& p = raft.peer(std::strtoull(w[1].c_str(), nullptr, 10));
      const uint64_t lo = std::strtoull(w[2].c_str(), nullptr, 10);
      const uint64_t hi = std::strtoull(w[3].c_str(), nullptr, 10);
      std::lock_guard<std::mutex> l(p.seen_mu);
      const bool kept = lo > p.forgotten;
      std::cout << (kept ? std::to_string(
                               std::distance(p.seen.lower_bound(lo), p.seen.upper_bound(hi)))
                         : "forgotten")
                << std::endl;
    } else if (w[0] == "stats") {
      std::string out =
          absl::StrCat("now_ms=", NowMs(), " threads=", Threads(),
                       " fds=", CountDir("/proc/self/fd"), " snap_files=", CountDir(f.snap_dir));
      for (const auto& [id, url] : f.peers) {
        PeerState& p = raft.peer(id);
        absl::StrAppend(
            &out, " p", id, ".sent=", p.sent.load(), " p", id, ".acked=", p.acked.load(), " p", id,
            ".unreachable=", p.unreachable.load(), " p", id,
            ".last_unreachable_ms=", p.last_unreachable_ms.load(), " p", id,
            ".active=", (*t)->ActiveSince(id) != absl::Time() ? 1 : 0, " p", id,
            ".received=", p.received.load(), " p", id, ".duplicates=", p.duplicates.load(), " p",
            id, ".gaps=", p.gaps.load(), " p", id, ".accepted=", p.accepted.load(), " p", id,
            ".reorders=", p.reorders.load(), " p", id, ".snapshots_ok=", p.snapshots_ok.load(),
            " p", id, ".snapshots_failed=", p.snapshots_failed.load());
      }
      std::cout << out << std::endl;
    } else {
      std::cout << "error unknown command" << std::endl;
    }
  }
  stop.store(true);
  for (auto& th : floods) th.join();
  (*t)->Stop();
  return 0;
}

}  // namespace
}  // namespace raftgrpc::hosts

int main(int argc, char** argv) { return raftgrpc::hosts::Run(raftgrpc::hosts::Parse(argc, argv)); }
