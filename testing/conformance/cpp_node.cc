// The C++ node under test for the conformance suite (proto/CONFORMANCE.md),
// and the reference server other languages' runners can be pointed at.
//
// A raft-grpc-transport Transport with an echo Raft: every message it
// receives from a peer goes back to that peer through Send (to and from
// swapped), so a runner sees what the node decoded; a message from member 0
// (a link heartbeat, which must never be delivered) goes to every peer. A received snapshot is
// answered with MsgAppResp{index: its index, context: "snapshot <crc32c of
// the stored data, 8 hex> <size>"}. A message whose context is
// "conformance-fail" makes Process fail (the pipeline answers INTERNAL).
//
// Flags (IDs in hex, as on the wire):
//   --listen=HOST:PORT   (port 0: any; "PORT <n>" is printed once serving)
//   --id=1 --cluster-id=c1 --peer=2=http://HOST:PORT --removed=3 --dir=DIR
// Runs until stdin closes (the runner owns the pipe) or SIGTERM.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "peer/raft.h"
#include "transport/snapshot/crc32c.h"
#include "transport/transport.h"

namespace raftgrpc::conformance {
namespace {

constexpr char kFailContext[] = "conformance-fail";

class EchoRaft : public Raft {
 public:
  EchoRaft(std::set<uint64_t> removed, std::set<uint64_t> peers)
      : removed_(std::move(removed)), peers_(std::move(peers)) {}
  void set_transport(Transport* t) { transport_ = t; }

  absl::Status Process(const raftpb::Message& m) override {
    if (m.context() == kFailContext) return absl::InternalError("conformance: Process fails");
    raftpb::Message echo = m;
    echo.set_from(transport_->id());
    if (m.from() == 0) {
      // A link heartbeat must never get here: tell every peer if one did.
      for (uint64_t p : peers_) {
        echo.set_to(p);
        transport_->Send(echo);
      }
      return absl::OkStatus();
    }
    echo.set_to(m.from());
    transport_->Send(std::move(echo));
    return absl::OkStatus();
  }

  absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    uint32_t crc = 0;
    uint64_t size = 0;
    while (in) {
      in.read(buf.data(), buf.size());
      crc = Crc32cExtend(crc, buf.data(), in.gcount());
      size += in.gcount();
    }
    raftpb::Message ack;
    ack.set_type(raftpb::MsgAppResp);
    ack.set_to(m.from());
    ack.set_from(m.to());
    ack.set_term(m.term());
    ack.set_index(m.snapshot().metadata().index());
    ack.set_context(absl::StrFormat("snapshot %08x %d", crc, size));
    transport_->Send(std::move(ack));
    return absl::OkStatus();
  }

  bool IsIdRemoved(uint64_t id) override { return removed_.count(id) > 0; }
  void ReportUnreachable(uint64_t) override {}
  void ReportSnapshot(uint64_t, SnapshotStatus) override {}

 private:
  const std::set<uint64_t> removed_;
  const std::set<uint64_t> peers_;
  Transport* transport_ = nullptr;
};

bool ParseHex(absl::string_view s, uint64_t* out) { return absl::SimpleHexAtoi(s, out); }

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", dir;
  uint64_t id = 1, cluster = 0xc1;
  std::map<uint64_t, std::string> peers;
  std::set<uint64_t> removed;
  for (int i = 1; i < argc; ++i) {
    const std::vector<std::string> kv = absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string v = kv.size() > 1 ? kv[1] : "";
    bool ok = true;
    if (kv[0] == "--listen") {
      listen = v;
    } else if (kv[0] == "--dir") {
      dir = v;
    } else if (kv[0] == "--id") {
      ok = ParseHex(v, &id);
    } else if (kv[0] == "--cluster-id") {
      ok = ParseHex(v, &cluster);
    } else if (kv[0] == "--removed") {
      uint64_t r = 0;
      ok = ParseHex(v, &r);
      removed.insert(r);
    } else if (kv[0] == "--peer") {
      const std::vector<std::string> p = absl::StrSplit(v, absl::MaxSplits('=', 1));
      uint64_t pid = 0;
      ok = p.size() == 2 && ParseHex(p[0], &pid);
      if (ok) peers[pid] = p[1];
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "cpp_node: bad flag %s\n", argv[i]);
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "cpp_node: --dir is required\n");
    return 2;
  }
  std::set<uint64_t> peer_ids;
  for (const auto& [pid, url] : peers) peer_ids.insert(pid);
  EchoRaft raft(removed, peer_ids);
  TransportOptions o;
  o.local_id = id;
  o.cluster_id = cluster;
  o.snapshot_dir = dir;
  auto t = Transport::Create(o, &raft);
  if (!t.ok()) {
    std::fprintf(stderr, "cpp_node: %s\n", t.status().ToString().c_str());
    return 1;
  }
  raft.set_transport(t->get());
  auto port = (*t)->Serve(listen);
  if (!port.ok()) {
    std::fprintf(stderr, "cpp_node: %s\n", port.status().ToString().c_str());
    return 1;
  }
  for (const auto& [pid, url] : peers) {
    if (absl::Status s = (*t)->AddPeer(pid, {url}); !s.ok()) {
      std::fprintf(stderr, "cpp_node: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("PORT %d\n", *port);
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  (*t)->Stop();
  return 0;
}

}  // namespace
}  // namespace raftgrpc::conformance

int main(int argc, char** argv) { return raftgrpc::conformance::Main(argc, argv); }
