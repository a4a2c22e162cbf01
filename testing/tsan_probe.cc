// A deliberate data race inside each kind of gRPC reaction the transport
// implements (a client stream's OnReadDone, a server stream's OnReadDone, a
// unary call's completion callback), each against a plain write from a
// thread of our own. testing/tsan_probe_test.sh runs it under TSan and
// expects all three reported: testing/tsan_suppressions.cc must hide
// gRPC's own accesses, never ours. (Its `race:` entries once named gRPC
// classes whose frames call our reactions, and so hid every race in them.)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"

namespace raftgrpc {
namespace {

// Written by the racer thread and, without synchronisation, by each probe.
// noinline: each probe's frame names it in TSan's report.
long g_client_stream = 0, g_server_stream = 0, g_unary = 0;
std::atomic<bool> g_stop{false};

__attribute__((noinline)) void ClientStreamProbe() { g_client_stream = g_client_stream + 1; }
__attribute__((noinline)) void ServerStreamProbe() { g_server_stream = g_server_stream + 1; }
__attribute__((noinline)) void UnaryProbe() { g_unary = g_unary + 1; }

class Service final : public v1::RaftTransport::CallbackService {
  grpc::ServerBidiReactor<v1::StreamControl, v1::MessageFrame>* MessageStream(
      grpc::CallbackServerContext*) override {
    class Reactor : public grpc::ServerBidiReactor<v1::StreamControl, v1::MessageFrame> {
     public:
      Reactor() {
        frame_.add_messages();
        StartRead(&control_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        ServerStreamProbe();
        StartWrite(&frame_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        StartRead(&control_);
      }
      void OnDone() override { delete this; }

     private:
      v1::StreamControl control_;
      v1::MessageFrame frame_;
    };
    return new Reactor;
  }
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const v1::ProbeRequest*,
                                  v1::ProbeResponse*) override {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

// Pings until told to stop; each answer runs ClientStreamProbe. The next
// ping starts once both the answer and the ping's write are done.
class Client : public grpc::ClientBidiReactor<v1::StreamControl, v1::MessageFrame> {
 public:
  explicit Client(v1::RaftTransport::Stub* stub) {
    stub->async()->MessageStream(&ctx_, this);
    StartRead(&frame_);
    StartWrite(&control_);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok && Done(&wrote_)) Next();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    ClientStreamProbe();
    round_trips_.fetch_add(1);
    if (Done(&read_)) Next();
  }
  void OnDone(const grpc::Status&) override { done_ = true; }
  bool done() const { return done_.load(); }
  int round_trips() const { return round_trips_.load(); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  // Marks one half of a round trip done; true if the other was already.
  bool Done(bool* half) {
    std::lock_guard<std::mutex> l(mu_);
    *half = true;
    if (!read_ || !wrote_) return false;
    read_ = wrote_ = false;
    return true;
  }
  void Next() {
    if (g_stop.load()) {
      StartWritesDone();
      return;
    }
    StartRead(&frame_);
    StartWrite(&control_);
  }

  grpc::ClientContext ctx_;
  v1::StreamControl control_;
  v1::MessageFrame frame_;
  std::mutex mu_;
  bool read_ = false, wrote_ = false;
  std::atomic<bool> done_{false};
  std::atomic<int> round_trips_{0};
};

int Main() {
  Service service;
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (!server || port == 0) return 1;
  auto stub = v1::RaftTransport::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  std::thread racer([] {
    while (!g_stop.load(std::memory_order_relaxed)) {
      g_client_stream = g_client_stream + 1;
      g_server_stream = g_server_stream + 1;
      g_unary = g_unary + 1;
    }
  });
  Client client(stub.get());
  std::atomic<int> unary_done{0};
  grpc::ClientContext uctx;
  v1::ProbeRequest req;
  v1::ProbeResponse resp;
  stub->async()->Probe(&uctx, &req, &resp, [&](grpc::Status) {
    UnaryProbe();
    unary_done = 1;
  });
  const bool ran = testing::WaitUntil(
      [&] { return unary_done.load() == 1 && client.round_trips() >= 20; }, absl::Seconds(60));
  g_stop = true;
  racer.join();
  if (!testing::WaitUntil([&] { return client.done(); })) client.Cancel();
  testing::WaitUntil([&] { return client.done(); });
  server->Shutdown(std::chrono::system_clock::now());
  std::printf("probe: unary call %s, %d stream round trips\n",
              unary_done.load() ? "done" : "not done", client.round_trips());
  return ran && client.done() ? 0 : 1;
}

}  // namespace
}  // namespace raftgrpc

int main() { return raftgrpc::Main(); }
