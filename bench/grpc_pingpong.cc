// Bare gRPC round trips on one bidi stream, to choose the API the
// transport's latency path should use: the callback API (what the
// transport uses today) against the synchronous API on threads of its own,
// which block in the completion queue instead of being woken through
// gRPC's callback executor, and the async (completion-queue) API where the
// thread that waits for the answer polls the queue itself, so no other
// thread is woken on the way. No transport logic at all: the client writes
// a StreamControl, the server answers one MessageFrame holding a heartbeat.
//
//   grpc_pingpong --server=callback|sync|async --client=callback|sync|async
//                 [--n=20000] [--warmup=2000] [--fork] [--spin-us=U]
//                 [--assist=none|client|both] [--mixed]
// --spin-us: each async thread polls its queue without blocking for up to
// U µs before it sleeps in the kernel, as Go's scheduler spins before it
// parks: a thread still awake when the answer comes is not woken on
// another CPU. --assist (an experiment for the callback API): a thread of
// our own polls an empty queue without pause in the client's process (or
// in both); gRPC's pollers share one epoll set, so it runs their I/O.
// Prints p50/p90/p99/max round-trip µs and CPU µs per round trip (both
// processes' CPU from the end of the warm-up), as JSON
// with etcd-anchor's keys (it also takes that tool's --mode=latency, --json
// and --label, so bench/latency_floor.sh can interleave it with etcd).
// --fork puts the server in a child process (as transport_bench does);
// by default both ends share the process (as etcd-anchor does).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"

namespace raftgrpc::bench {
namespace {

using v1::MessageFrame;
using v1::StreamControl;

// How long a thread polling a completion queue keeps polling without
// blocking before it sleeps in the kernel (--spin-us). 0: always block.
int g_spin_us = 0;

// cq.Next, but first polls without blocking for up to g_spin_us: a thread
// that stays awake sees the answer without being woken on another CPU.
bool NextSpin(grpc::CompletionQueue* cq, void** tag, bool* ok) {
  if (g_spin_us > 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(g_spin_us);
    do {
      switch (cq->AsyncNext(tag, ok, gpr_time_0(GPR_CLOCK_MONOTONIC))) {
        case grpc::CompletionQueue::GOT_EVENT:
          return true;
        case grpc::CompletionQueue::SHUTDOWN:
          return false;
        case grpc::CompletionQueue::TIMEOUT:
          break;
      }
    } while (std::chrono::steady_clock::now() < until);
  }
  return cq->Next(tag, ok);
}

MessageFrame Pong() {
  MessageFrame f;
  raftpb::Message* m = f.add_messages();
  m->set_type(raftpb::MsgHeartbeatResp);
  m->set_from(2);
  m->set_to(1);
  m->set_term(7);
  m->set_commit(1000);
  return f;
}

// Blocks in Read and Write on the handler's thread.
class SyncService final : public v1::RaftTransport::Service {
  grpc::Status MessageStream(grpc::ServerContext*,
                             grpc::ServerReaderWriter<MessageFrame, StreamControl>* s) override {
    const MessageFrame pong = Pong();
    StreamControl c;
    while (s->Read(&c)) {
      if (!s->Write(pong)) break;
    }
    return grpc::Status::OK;
  }
};

// Answers from gRPC's callback threads: OnReadDone starts the write,
// OnWriteDone the next read.
class CallbackService final : public v1::RaftTransport::CallbackService {
  grpc::ServerBidiReactor<StreamControl, MessageFrame>* MessageStream(
      grpc::CallbackServerContext*) override {
    class Reactor : public grpc::ServerBidiReactor<StreamControl, MessageFrame> {
     public:
      Reactor() : pong_(Pong()) { StartRead(&c_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        StartWrite(&pong_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        StartRead(&c_);
      }
      void OnDone() override { delete this; }

     private:
      StreamControl c_;
      const MessageFrame pong_;
    };
    return new Reactor;
  }
};

// One thread of its own polls a completion queue and answers the one call
// the client makes: Read, then Write, then Read again.
class AsyncServer {
 public:
  void Register(grpc::ServerBuilder* b) {
    b->RegisterService(&svc_);
    cq_ = b->AddCompletionQueue();
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  // After the server's Shutdown.
  void Stop() {
    if (thread_.joinable()) thread_.join();
    cq_->Shutdown();
    void* tag;
    bool ok;
    while (cq_->Next(&tag, &ok)) {
    }
  }

 private:
  enum Tag : intptr_t { kNew = 1, kRead, kWrite, kFinish };
  void Run() {
    grpc::ServerContext ctx;
    grpc::ServerAsyncReaderWriter<MessageFrame, StreamControl> rw(&ctx);
    const MessageFrame pong = Pong();
    StreamControl c;
    svc_.RequestMessageStream(&ctx, &rw, cq_.get(), cq_.get(), reinterpret_cast<void*>(kNew));
    void* tag;
    bool ok;
    while (NextSpin(cq_.get(), &tag, &ok)) {
      switch (reinterpret_cast<intptr_t>(tag)) {
        case kNew:
          if (!ok) return;  // shut down before any call
          rw.Read(&c, reinterpret_cast<void*>(kRead));
          break;
        case kRead:
          if (!ok) {
            rw.Finish(grpc::Status::OK, reinterpret_cast<void*>(kFinish));
          } else {
            rw.Write(pong, reinterpret_cast<void*>(kWrite));
          }
          break;
        case kWrite:
          if (!ok) {
            rw.Finish(grpc::Status::OK, reinterpret_cast<void*>(kFinish));
          } else {
            rw.Read(&c, reinterpret_cast<void*>(kRead));
          }
          break;
        case kFinish:
          return;
      }
    }
  }

  v1::RaftTransport::AsyncService svc_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::thread thread_;
};

double Now() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Called once, when the warm-up is over: the CPU counted from there.
std::function<void()> g_warm;

// The client's round trips, `n` of them after `warmup`.
std::vector<double> SyncClient(v1::RaftTransport::Stub* stub, int warmup, int n) {
  grpc::ClientContext ctx;
  auto s = stub->MessageStream(&ctx);
  StreamControl c;
  MessageFrame f;
  std::vector<double> us;
  for (int i = 0; i < warmup + n; ++i) {
    if (i == warmup) g_warm();
    const double t0 = Now();
    if (!s->Write(c) || !s->Read(&f)) std::abort();
    if (i >= warmup) us.push_back(Now() - t0);
  }
  s->WritesDone();
  (void)s->Finish();
  return us;
}

// The caller's thread polls the completion queue itself: it is the one
// that reads the socket and sees the answer, no other thread is woken.
std::vector<double> AsyncClient(v1::RaftTransport::Stub* stub, int warmup, int n) {
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  auto wait = [&](intptr_t want) {
    void* tag;
    bool ok;
    if (!cq.Next(&tag, &ok) || !ok || reinterpret_cast<intptr_t>(tag) != want) std::abort();
  };
  auto s = stub->AsyncMessageStream(&ctx, &cq, reinterpret_cast<void*>(1));
  wait(1);
  StreamControl c;
  MessageFrame f;
  std::vector<double> us;
  for (int i = 0; i < warmup + n; ++i) {
    if (i == warmup) g_warm();
    const double t0 = Now();
    s->Write(c, reinterpret_cast<void*>(2));
    s->Read(&f, reinterpret_cast<void*>(3));
    int seen = 0;
    for (int k = 0; k < 2; ++k) {
      void* tag;
      bool ok;
      if (!NextSpin(&cq, &tag, &ok) || !ok) std::abort();
      seen |= 1 << reinterpret_cast<intptr_t>(tag);
    }
    if (seen != 12) std::abort();
    if (i >= warmup) us.push_back(Now() - t0);
  }
  s->WritesDone(reinterpret_cast<void*>(4));
  wait(4);
  grpc::Status st;
  s->Finish(&st, reinterpret_cast<void*>(5));
  wait(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return us;
}

// The caller's thread waits for each answer, as a Raft loop would: the
// reply arrives on a gRPC callback thread and wakes it.
std::vector<double> CallbackClient(v1::RaftTransport::Stub* stub, int warmup, int n) {
  class Reactor : public grpc::ClientBidiReactor<StreamControl, MessageFrame> {
   public:
    explicit Reactor(v1::RaftTransport::Stub* stub) {
      stub->async()->MessageStream(&ctx_, this);
      StartCall();
    }
    void Ping() {
      {
        std::lock_guard<std::mutex> l(mu_);
        got_ = wrote_ = false;
      }
      StartRead(&f_);
      StartWrite(&c_);
      std::unique_lock<std::mutex> l(mu_);
      // The next write may start only once this one is done.
      cv_.wait(l, [&] { return got_ && wrote_; });
    }
    void OnReadDone(bool ok) override {
      if (!ok) std::abort();
      std::lock_guard<std::mutex> l(mu_);
      got_ = true;
      cv_.notify_one();
    }
    void OnWriteDone(bool) override {
      std::lock_guard<std::mutex> l(mu_);
      wrote_ = true;
      cv_.notify_one();
    }
    void End() {
      StartWritesDone();
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return done_; });
    }
    void OnDone(const grpc::Status&) override {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
      cv_.notify_one();
    }

   private:
    grpc::ClientContext ctx_;
    StreamControl c_;
    MessageFrame f_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool got_ = false;
    bool wrote_ = false;
    bool done_ = false;
  };
  Reactor r(stub);
  std::vector<double> us;
  for (int i = 0; i < warmup + n; ++i) {
    if (i == warmup) g_warm();
    const double t0 = Now();
    r.Ping();
    if (i >= warmup) us.push_back(Now() - t0);
  }
  r.End();
  return us;
}

// --assist: a thread of our own that polls an empty completion queue
// without blocking, all the time. An experiment: whether gRPC's shared
// poller lets it run the callback API's I/O without waking gRPC's threads.
std::atomic<bool> g_assist_stop{false};
// --mixed: the client's process also serves an idle callback-API server,
// as every node does (its streams, pipeline and snapshots). Whether the
// completion-queue or sync client keeps its round trip then: gRPC's
// callback threads poll the same epoll set as the client's own thread.
bool g_mixed = false;
void Assist() {
  grpc::CompletionQueue cq;
  void* tag;
  bool ok;
  while (!g_assist_stop.load(std::memory_order_relaxed)) {
    (void)cq.AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

int Main(int argc, char** argv) {
  std::string assist = "none";
  std::string server_api = "callback", client_api = "callback";
  int n = 20000, warmup = 2000;
  bool fork_server = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--server=")) {
      server_api = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--client=")) {
      client_api = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--n=")) {
      if (!absl::SimpleAtoi(a, &n)) return 2;
    } else if (absl::ConsumePrefix(&a, "--warmup=")) {
      if (!absl::SimpleAtoi(a, &warmup)) return 2;
    } else if (absl::ConsumePrefix(&a, "--spin-us=")) {
      if (!absl::SimpleAtoi(a, &g_spin_us)) return 2;
    } else if (absl::ConsumePrefix(&a, "--assist=")) {
      assist = std::string(a);
    } else if (a == "--mixed") {
      g_mixed = true;
    } else if (a == "--fork") {
      fork_server = true;
    } else if (a == "--mode=latency" || a == "--json" || absl::StartsWith(a, "--label=")) {
      // etcd-anchor's flags for its latency workload: this tool has no other.
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (n <= 0 || warmup < 0 || g_spin_us < 0 ||
      (assist != "none" && assist != "client" && assist != "both")) {
    std::fprintf(stderr, "--n > 0, --warmup >= 0, --spin-us >= 0, --assist=none|client|both\n");
    return 2;
  }
  // The server's port travels over a pipe when it runs in a child.
  int fds[2], to_child[2];
  if (pipe(fds) != 0 || pipe(to_child) != 0) return 1;
  pid_t child = -1;
  std::unique_ptr<grpc::Server> server;
  SyncService sync_service;
  CallbackService callback_service;
  AsyncServer async_server;
  auto serve = [&]() -> int {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    if (server_api == "sync") {
      b.RegisterService(&sync_service);
    } else if (server_api == "async") {
      async_server.Register(&b);
    } else {
      b.RegisterService(&callback_service);
    }
    server = b.BuildAndStart();
    if (server_api == "async") async_server.Start();
    return port;
  };
  int port = 0;
  if (fork_server) {
    child = fork();  // before any gRPC state exists in this process
    if (child == 0) {
      const int p = serve();
      if (write(fds[1], &p, sizeof p) != sizeof p) _exit(1);
      if (assist == "both") std::thread(Assist).detach();  // ends with the process
      // The parent's two bytes: the warm-up is over, the round trips are.
      // The child's CPU between them goes back over the pipe.
      char c;
      if (read(to_child[0], &c, 1) != 1) _exit(1);
      const double c0 = CpuSeconds(RUSAGE_SELF);
      if (read(to_child[0], &c, 1) != 1) _exit(1);
      const double used = CpuSeconds(RUSAGE_SELF) - c0;
      if (write(fds[1], &used, sizeof used) != sizeof used) _exit(1);
      pause();  // killed by the parent
      _exit(0);
    }
    if (read(fds[0], &port, sizeof port) != sizeof port) return 1;
  } else {
    port = serve();
  }
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = v1::RaftTransport::NewStub(channel);
  CallbackService idle_service;
  std::unique_ptr<grpc::Server> idle_server;
  if (g_mixed) {
    grpc::ServerBuilder b;
    int unused_port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &unused_port);
    b.RegisterService(&idle_service);
    idle_server = b.BuildAndStart();
  }
  std::thread assist_thread;
  if (assist != "none") assist_thread = std::thread(Assist);
  double cpu0 = 0;
  g_warm = [&] {
    cpu0 = CpuSeconds(RUSAGE_SELF);
    if (child > 0 && write(to_child[1], "w", 1) != 1) std::abort();
  };
  std::vector<double> us = client_api == "sync"    ? SyncClient(stub.get(), warmup, n)
                           : client_api == "async" ? AsyncClient(stub.get(), warmup, n)
                                                   : CallbackClient(stub.get(), warmup, n);
  double cpu = CpuSeconds(RUSAGE_SELF) - cpu0;
  if (child > 0) {
    double child_cpu = 0;
    if (write(to_child[1], "d", 1) != 1 ||
        read(fds[0], &child_cpu, sizeof child_cpu) != sizeof child_cpu) {
      std::abort();
    }
    cpu += child_cpu;
  }
  g_assist_stop = true;
  if (assist_thread.joinable()) assist_thread.join();
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  std::sort(us.begin(), us.end());
  auto q = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1) + 0.5)]; };
  std::printf(
      "{\"mode\": \"latency\", \"server\": \"%s\", \"client\": \"%s\", \"fork\": %s, "
      "\"n\": %d, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
      "\"cpu_us_per_msg\": %.1f}\n",
      server_api.c_str(), client_api.c_str(), fork_server ? "true" : "false", n, q(0.5), q(0.9),
      q(0.99), us.back(), cpu / n * 1e6);
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (server && server_api == "async") async_server.Stop();
  return 0;
}

}  // namespace
}  // namespace raftgrpc::bench

int main(int argc, char** argv) { return raftgrpc::bench::Main(argc, argv); }
