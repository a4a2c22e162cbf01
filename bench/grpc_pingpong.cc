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
//   grpc_pingpong --node [--mixed] [--idle-queue] [--n=20000] [--warmup=2000] [--spin-us=U]
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
// --node: two processes shaped as two nodes of the transport, with every
// call on the completion-queue API: each serves the stream and dials the
// other's (the receiving side dials), the ping goes out on the stream the
// other dialled and the answer comes back on the one this process dialled,
// and one thread per process polls one queue for its server and client
// calls. Whether a node rebuilt on that API would beat etcd's round trip.
// --idle-queue: and a second thread per process waits on an empty queue of
// its own (would one queue for client calls and another for the server's
// do as well?).
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
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"

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
      // handoff_: each reaction runs on whichever gRPC thread, and hands
      // the call to the next through libgrpc, which TSan does not see
      // (smoke_test runs this under TSan).
      Reactor() : pong_(Pong()) {
        handoff_.Publish();
        StartRead(&c_);
      }
      void OnReadDone(bool ok) override {
        handoff_.Acquire();
        if (!ok) return Finish(grpc::Status::OK);
        handoff_.Publish();
        StartWrite(&pong_);
      }
      void OnWriteDone(bool ok) override {
        handoff_.Acquire();
        if (!ok) return Finish(grpc::Status::OK);
        handoff_.Publish();
        StartRead(&c_);
      }
      void OnDone() override {
        handoff_.Acquire();
        delete this;
      }

     private:
      StreamControl c_;
      const MessageFrame pong_;
      Handoff handoff_;
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

// --mixed's idle callback-API server, on a port nobody dials.
std::unique_ptr<grpc::Server> ServeIdle(grpc::Service* service) {
  grpc::ServerBuilder b;
  int unused_port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &unused_port);
  b.RegisterService(service);
  return b.BuildAndStart();
}

// A child's side of the CPU count: the parent's two bytes mark the end of
// the warm-up and of the round trips; the CPU between them goes back.
// Then waits to be killed.
[[noreturn]] void ReportChildCpu(int from_parent, int to_parent) {
  char c;
  if (read(from_parent, &c, 1) != 1) _exit(1);
  const double c0 = CpuSeconds(RUSAGE_SELF);
  if (read(from_parent, &c, 1) != 1) _exit(1);
  const double used = CpuSeconds(RUSAGE_SELF) - c0;
  if (write(to_parent, &used, sizeof used) != sizeof used) _exit(1);
  pause();  // killed by the parent
  _exit(0);
}

// The JSON line, with etcd-anchor's keys; `shape_json` adds fields.
void PrintLatency(std::vector<double> us, int n, double cpu, const std::string& shape_json) {
  std::sort(us.begin(), us.end());
  auto q = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1) + 0.5)]; };
  std::printf(
      "{\"mode\": \"latency\", %s, \"n\": %d, \"p50_us\": %.1f, \"p90_us\": %.1f, "
      "\"p99_us\": %.1f, \"max_us\": %.1f, \"cpu_us_per_msg\": %.1f}\n",
      shape_json.c_str(), n, q(0.5), q(0.9), q(0.99), us.back(), cpu / n * 1e6);
}

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
// With --node, each of the two processes serves one.
bool g_mixed = false;
// --node --idle-queue: a thread of the end's own waits on a second, empty
// completion queue: whether a split design (one queue for the client
// calls, one for the server's) loses what one queue wins.
bool g_idle_queue = false;
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

// --node: one end, one completion queue polled by one thread for the
// stream it accepted (it writes there) and the one it dialled (it reads).
class NodeEnd {
 public:
  ~NodeEnd() {
    if (!idle_poller_.joinable()) return;  // Stop joined it, or none
    idle_cq_.Shutdown();
    idle_poller_.join();
  }

  // Serves on 127.0.0.1:0; returns the port. With --mixed, an idle
  // callback-API server too, as a node whose other services use it.
  int Serve() {
    if (g_mixed) idle_ = ServeIdle(&idle_service_);
    if (g_idle_queue) {
      idle_poller_ = std::thread([this] {
        void* tag;
        bool ok;
        while (idle_cq_.Next(&tag, &ok)) {
        }
      });
    }
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&svc_);
    cq_ = b.AddCompletionQueue();
    server_ = b.BuildAndStart();
    return port;
  }

  // Accepts the other end's dial and dials it; returns once both are open.
  void Connect(int other_port) {
    stub_ = v1::RaftTransport::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(other_port), grpc::InsecureChannelCredentials()));
    svc_.RequestMessageStream(&sctx_, &accepted_, cq_.get(), cq_.get(), Tag(kAccept));
    dialled_ = stub_->AsyncMessageStream(&cctx_, cq_.get(), Tag(kDial));
    int seen = 0;
    while (seen != (1 << kAccept | 1 << kDial)) seen |= 1 << Next();
  }

  // The answering end: each ping read on the dialled stream is answered
  // on the accepted one. Returns when a read fails (the other end left).
  void Answer() {
    const MessageFrame pong = Pong();
    MessageFrame in;
    bool writing = false;
    int owed = 0;  // pings read while a pong was still being written
    dialled_->Read(&in, Tag(kRead));
    void* tag;
    bool ok;
    while (NextSpin(cq_.get(), &tag, &ok) && ok) {
      if (reinterpret_cast<intptr_t>(tag) == kRead) {
        if (writing) {
          ++owed;
        } else {
          accepted_.Write(pong, Tag(kWrite));
          writing = true;
        }
        dialled_->Read(&in, Tag(kRead));
      } else if (owed > 0) {  // kWrite
        --owed;
        accepted_.Write(pong, Tag(kWrite));
      } else {
        writing = false;
      }
    }
  }

  // The measuring end: `warmup + n` pings out on the accepted stream, each
  // answer in on the dialled one; the last n round trips in µs.
  std::vector<double> Ping(int warmup, int n) {
    MessageFrame ping;
    raftpb::Message* m = ping.add_messages();
    m->set_type(raftpb::MsgHeartbeat);
    m->set_from(1);
    m->set_to(2);
    m->set_term(7);
    m->set_commit(1000);
    MessageFrame in;
    std::vector<double> us;
    for (int i = 0; i < warmup + n; ++i) {
      if (i == warmup) g_warm();
      const double t0 = Now();
      accepted_.Write(ping, Tag(kWrite));
      dialled_->Read(&in, Tag(kRead));
      int seen = 0;
      while (seen != (1 << kWrite | 1 << kRead)) seen |= 1 << Next(/*spin=*/true);
      if (i >= warmup) us.push_back(Now() - t0);
    }
    return us;
  }

  // Ends both calls and the server, then drains the queue.
  void Stop() {
    cctx_.TryCancel();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (idle_) idle_->Shutdown(std::chrono::system_clock::now());
    cq_->Shutdown();
    void* tag;
    bool ok;
    while (cq_->Next(&tag, &ok)) {
    }
    idle_cq_.Shutdown();
    if (idle_poller_.joinable()) idle_poller_.join();
  }

 private:
  enum : intptr_t { kAccept = 1, kDial, kRead, kWrite };
  static void* Tag(intptr_t t) { return reinterpret_cast<void*>(t); }
  // The next event's tag; every event here must succeed.
  int Next(bool spin = false) {
    void* tag;
    bool ok;
    if (!(spin ? NextSpin(cq_.get(), &tag, &ok) : cq_->Next(&tag, &ok)) || !ok) std::abort();
    return static_cast<int>(reinterpret_cast<intptr_t>(tag));
  }

  v1::RaftTransport::AsyncService svc_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  CallbackService idle_service_;
  std::unique_ptr<grpc::Server> idle_;
  grpc::ServerContext sctx_;
  grpc::ServerAsyncReaderWriter<MessageFrame, StreamControl> accepted_{&sctx_};
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  grpc::ClientContext cctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<StreamControl, MessageFrame>> dialled_;
  grpc::CompletionQueue idle_cq_;
  std::thread idle_poller_;
};

// --node's two processes: the child answers, this one measures. Prints
// the same JSON as Main.
int NodeMain(int warmup, int n) {
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  const pid_t child = fork();  // before any gRPC state exists
  if (child < 0) return 1;
  if (child == 0) {
    NodeEnd b;
    const int port = b.Serve();
    int other = 0;
    if (write(to_parent[1], &port, sizeof port) != sizeof port ||
        read(to_child[0], &other, sizeof other) != sizeof other) {
      _exit(1);
    }
    b.Connect(other);
    std::thread([&b] { b.Answer(); }).detach();  // ends with the process
    ReportChildCpu(to_child[0], to_parent[1]);
  }
  int other = 0;
  if (read(to_parent[0], &other, sizeof other) != sizeof other) return 1;
  NodeEnd a;
  const int port = a.Serve();
  if (write(to_child[1], &port, sizeof port) != sizeof port) return 1;
  a.Connect(other);
  double cpu0 = 0;
  g_warm = [&] {
    cpu0 = CpuSeconds(RUSAGE_SELF);
    if (write(to_child[1], "w", 1) != 1) std::abort();
  };
  std::vector<double> us = a.Ping(warmup, n);
  double cpu = CpuSeconds(RUSAGE_SELF) - cpu0, child_cpu = 0;
  if (write(to_child[1], "d", 1) != 1 ||
      read(to_parent[0], &child_cpu, sizeof child_cpu) != sizeof child_cpu) {
    std::abort();
  }
  cpu += child_cpu;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  a.Stop();
  PrintLatency(std::move(us), n, cpu,
               "\"server\": \"async\", \"client\": \"async\", \"fork\": true, \"shape\": \"node\"");
  return 0;
}

int Main(int argc, char** argv) {
  std::string assist = "none";
  std::string server_api = "callback", client_api = "callback";
  int n = 20000, warmup = 2000;
  bool fork_server = false, node = false;
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
    } else if (a == "--idle-queue") {
      g_idle_queue = true;
    } else if (a == "--fork") {
      fork_server = true;
    } else if (a == "--node") {
      node = true;
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
  if (node) return NodeMain(warmup, n);
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
      ReportChildCpu(to_child[0], fds[1]);
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
  if (g_mixed) idle_server = ServeIdle(&idle_service);
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
  PrintLatency(std::move(us), n, cpu,
               "\"server\": \"" + server_api + "\", \"client\": \"" + client_api +
                   "\", \"fork\": " + (fork_server ? "true" : "false"));
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (server && server_api == "async") async_server.Stop();
  return 0;
}

}  // namespace
}  // namespace raftgrpc::bench

int main(int argc, char** argv) { return raftgrpc::bench::Main(argc, argv); }
