// Demo (the README's main command). Until the Transport facade lands this is
// a real gRPC round trip between two in-process nodes on loopback: node 2
// pipelines a MsgHeartbeat to node 1, node 1 answers with a MsgHeartbeatResp
// over the pipeline, and each probes the other for RTT.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"
#include "transport/wire.h"

namespace {

using raftgrpc::v1::PipelineRequest;
using raftgrpc::v1::PipelineResponse;
using raftgrpc::v1::ProbeRequest;
using raftgrpc::v1::ProbeResponse;
using raftgrpc::v1::RaftTransport;

class Node final : public RaftTransport::Service {
 public:
  explicit Node(uint64_t id) : id_(id) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~Node() override { server_->Shutdown(); }

  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

  grpc::Status Pipeline(grpc::ServerContext*, const PipelineRequest* req,
                        PipelineResponse*) override {
    std::lock_guard<std::mutex> l(mu_);
    last_ = req->message();
    ++received_;
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status Probe(grpc::ServerContext*, const ProbeRequest*, ProbeResponse* r) override {
    r->set_ok(true);
    r->set_now_unix_nanos(absl::GetCurrentTimeNanos());
    return grpc::Status::OK;
  }

  bool Send(const std::string& to_addr, uint64_t to, const raftpb::Message& m) {
    auto stub = RaftTransport::NewStub(grpc::CreateChannel(to_addr, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata(raftgrpc::kMetaFrom, raftgrpc::FormatId(id_));
    ctx.AddMetadata(raftgrpc::kMetaTo, raftgrpc::FormatId(to));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    PipelineRequest req;
    *req.mutable_message() = m;
    PipelineResponse resp;
    return stub->Pipeline(&ctx, req, &resp).ok();
  }

  double ProbeUs(const std::string& to_addr) {
    auto stub = RaftTransport::NewStub(grpc::CreateChannel(to_addr, grpc::InsecureChannelCredentials()));
    ProbeResponse r;
    grpc::ClientContext warm;
    stub->Probe(&warm, ProbeRequest(), &r);  // connect first; time the second
    grpc::ClientContext ctx;
    auto t0 = std::chrono::steady_clock::now();
    if (!stub->Probe(&ctx, ProbeRequest(), &r).ok()) return -1;
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }

  raftpb::Message WaitOne() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::seconds(5), [&] { return received_ > 0; });
    return last_;
  }
  int received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }

 private:
  uint64_t id_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  raftpb::Message last_;
  int received_ = 0;
};

}  // namespace

int main() {
  Node n1(1), n2(2);
  std::printf("node 1 on %s, node 2 on %s\n", n1.addr().c_str(), n2.addr().c_str());

  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);
  hb.set_from(2);
  hb.set_to(1);
  hb.set_term(1);
  if (!n2.Send(n1.addr(), 1, hb)) return std::fprintf(stderr, "pipeline 2->1 failed\n"), 1;
  raftpb::Message got = n1.WaitOne();

  raftpb::Message resp;
  resp.set_type(raftpb::MsgHeartbeatResp);
  resp.set_from(1);
  resp.set_to(2);
  resp.set_term(got.term());
  if (!n1.Send(n2.addr(), 2, resp)) return std::fprintf(stderr, "pipeline 1->2 failed\n"), 1;
  raftpb::Message back = n2.WaitOne();

  double rtt12 = n1.ProbeUs(n2.addr()), rtt21 = n2.ProbeUs(n1.addr());
  std::printf("%-6s %-10s %-22s %-10s\n", "node", "received", "last message", "probe RTT");
  std::printf("%-6d %-10d %-22s %.0f us\n", 1, n1.received(),
              raftpb::MessageType_Name(got.type()).c_str(), rtt12);
  std::printf("%-6d %-10d %-22s %.0f us\n", 2, n2.received(),
              raftpb::MessageType_Name(back.type()).c_str(), rtt21);
  bool ok = got.type() == raftpb::MsgHeartbeat && back.type() == raftpb::MsgHeartbeatResp &&
            rtt12 > 0 && rtt21 > 0;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
