// A tiny Raft node built against @raft_grpc_transport//transport from
// another workspace: two transports on loopback exchange a heartbeat and its
// response. Exits 0 on success.
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "transport/transport.h"

namespace {

class Node : public raftgrpc::Raft {
 public:
  absl::Status Process(const raftpb::Message& m) override {
    std::lock_guard<std::mutex> l(mu_);
    last_ = m;
    ++got_;
    cv_.notify_all();
    return absl::OkStatus();
  }
  bool IsIdRemoved(uint64_t) override { return false; }
  void ReportUnreachable(uint64_t) override {}
  void ReportSnapshot(uint64_t, raftgrpc::SnapshotStatus) override {}

  bool Wait(raftpb::Message* out) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, std::chrono::seconds(10), [&] { return got_ > 0; })) return false;
    *out = last_;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int got_ = 0;
  raftpb::Message last_;
};

}  // namespace

int main() {
  Node a, b;
  raftgrpc::TransportOptions oa, ob;
  oa.local_id = 1;
  ob.local_id = 2;
  oa.cluster_id = ob.cluster_id = 0xc0ffee;
  oa.log = ob.log = [](const std::string&) {};
  auto ta = raftgrpc::Transport::Create(oa, &a);
  auto tb = raftgrpc::Transport::Create(ob, &b);
  if (!ta.ok() || !tb.ok()) return 1;
  auto pa = (*ta)->Serve("127.0.0.1:0");
  auto pb = (*tb)->Serve("127.0.0.1:0");
  if (!pa.ok() || !pb.ok()) return 1;
  (void)(*ta)->AddPeer(2, {"http://127.0.0.1:" + std::to_string(*pb)});
  (void)(*tb)->AddPeer(1, {"http://127.0.0.1:" + std::to_string(*pa)});

  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);
  hb.set_from(1);
  hb.set_to(2);
  hb.set_term(1);
  (*ta)->Send(hb);
  raftpb::Message got;
  if (!b.Wait(&got)) {
    std::fprintf(stderr, "node 2 got nothing\n");
    return 1;
  }
  raftpb::Message resp;
  resp.set_type(raftpb::MsgHeartbeatResp);
  resp.set_from(2);
  resp.set_to(1);
  resp.set_term(got.term());
  (*tb)->Send(resp);
  if (!a.Wait(&got) || got.type() != raftpb::MsgHeartbeatResp) {
    std::fprintf(stderr, "node 1 got no response\n");
    return 1;
  }
  std::printf("consumer: heartbeat and response crossed the transport\n");
  return 0;
}
