#include "transport/callback_threads.h"

#include <dirent.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/support/cpu.h"
#include "grpcpp/grpcpp.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"

namespace raftgrpc {
namespace {

// gRPC 1.51's name for the threads that run the callback API
// (src/cpp/common/completion_queue_cc.cc, CallbackAlternativeCQ).
constexpr char kCallbackThreadName[] = "nexting_thread";
constexpr auto kAnswerWithin = std::chrono::seconds(5);
// A callback thread that has seen no completion for 1 s sleeps 100 ms
// without polling (CallbackAlternativeCQ again). With one thread left, that
// would leave nobody reading sockets for 100 ms after any idle second, so a
// no-op completion comes every kTick.
constexpr auto kTick = std::chrono::milliseconds(500);

bool OnCallbackThread() {
  char name[16] = {};
  return pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
         std::strcmp(name, kCallbackThreadName) == 0;
}

int CountCallbackThreads() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
    std::string name;
    if (std::getline(comm, name) && name == kCallbackThreadName) ++n;
  }
  closedir(d);
  return n;
}

// The size of gRPC's callback thread pool: gRPC 1.51 starts
// clamp(cores / 2, 2, 16) threads when the first call or server needs them
// (CallbackAlternativeCQ). Each names itself once it runs, so the count in
// /proc may lag for a moment; 0 unless it reaches that size within 1 s, so
// that a gRPC with fewer threads never has its last one parked.
int PoolSize() {
  const int expected = std::clamp(static_cast<int>(gpr_cpu_num_cores()) / 2, 2, 16);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    const int n = CountCallbackThreads();
    if (n == expected) return n;
    if (n > expected || std::chrono::steady_clock::now() > until) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The process-wide state behind every OneCallbackThread. Never destroyed:
// a parked thread may outlive main's objects.
class Parker {
 public:
  void Acquire(const std::function<void(const std::string&)>& log);
  void Release(const std::function<void(const std::string&)>& log);
  int parked() {
    MutexLock l(&mu_);
    return parked_;
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    v1::ProbeRequest req;
    v1::ProbeResponse resp;
    Handoff handoff;  // made on one thread, ended on gRPC's
  };

  // Starts a call whose deadline has passed: it fails at once, without
  // touching the network, and gRPC runs `then` on one of its callback
  // threads. Requires channel_.
  void StartCall(std::function<void()> then);
  // `then` of a parking call: parks this thread if it is a callback thread
  // and more are wanted, until Release.
  void MaybePark(uint64_t generation);
  void Tick();

  // Held through Acquire and Release, so that parking and letting go never
  // overlap (a thread woken to go must not find itself wanted again).
  Mutex op_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Mutex mu_;
  std::condition_variable cv_;
  int holders_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // a new one per Acquire that parks
  bool releasing_ ABSL_GUARDED_BY(mu_) = false;
  int want_ ABSL_GUARDED_BY(mu_) = -1;         // threads to park; -1: not known yet
  int parked_ ABSL_GUARDED_BY(mu_) = 0;        // threads parked now
  int answered_ ABSL_GUARDED_BY(mu_) = 0;      // parking calls whose callback ran
  std::string declined_ ABSL_GUARDED_BY(mu_);  // why a callback did not park, if it did not
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;     // calls whose callback has not returned
  bool stop_ticker_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_ ABSL_GUARDED_BY(op_mu_);
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<v1::RaftTransport::Stub> stub_ ABSL_GUARDED_BY(mu_);
};

Parker& TheParker() {
  static Parker* p = new Parker;
  return *p;
}

void DefaultLog(const std::string& line) {
  std::fprintf(stderr, "raft-grpc-transport: %s\n", line.c_str());
}

// The node's sink, which may throw: the destructor calls it too, and an
// exception there would end the process. A throwing sink's line goes to
// stderr instead, as the transport's own log does.
void SafeLog(const std::function<void(const std::string&)>& log, const std::string& line) {
  try {
    log(line);
  } catch (...) {
    DefaultLog(line);
  }
}

void Parker::StartCall(std::function<void()> then) {
  auto* c = new Call;
  // A deadline already past: the call ends at once with DEADLINE_EXCEEDED.
  c->ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  c->handoff.Publish();
  v1::RaftTransport::Stub* stub;
  {
    MutexLock l(&mu_);
    ++in_flight_;
    stub = stub_.get();  // lives until in_flight_ is 0 again (Release)
  }
  stub->async()->Probe(&c->ctx, &c->req, &c->resp, [this, c, then](const grpc::Status&) {
    c->handoff.Acquire();
    then();
    delete c;
    MutexLock l(&mu_);
    --in_flight_;
    cv_.notify_all();
  });
}

void Parker::MaybePark(uint64_t generation) {
  UniqueLock l(&mu_);
  ++answered_;
  cv_.notify_all();
  if (generation != generation_ || releasing_) return;  // given up on, or let go
  if (!OnCallbackThread()) {
    declined_ = "gRPC's callbacks do not run on its nexting threads (another gRPC version?)";
    return;
  }
  // Under mu_ (at most 1 s, once per Acquire): Acquire waits for this answer.
  if (want_ < 0) want_ = PoolSize() - 1;
  if (want_ < 0) {
    declined_ = "gRPC's callback threads are not the pool gRPC 1.51 starts (another version?)";
    return;
  }
  if (parked_ >= want_) return;  // all but this one parked already: Acquire's loop ends
  ++parked_;
  cv_.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return releasing_; });
  --parked_;
  cv_.notify_all();
}

void Parker::Tick() {
  UniqueLock l(&mu_);
  while (
      !cv_.wait_for(l, kTick, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ticker_; })) {
    l.unlock();
    StartCall([] {});
    l.lock();
  }
}

void Parker::Acquire(const std::function<void(const std::string&)>& log) {
  MutexLock op(&op_mu_);
  std::string problem;
  {
    UniqueLock l(&mu_);
    if (holders_++ > 0) return;
    // Not the network: a call through it fails before it would dial.
    channel_ = grpc::CreateChannel("unix:/dev/null/raft-grpc-transport-no-such-socket",
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::RaftTransport::NewStub(channel_);
    const uint64_t generation = ++generation_;
    releasing_ = false;
    want_ = -1;
    declined_.clear();
    answered_ = 0;
    // One call at a time: each callback runs on a thread not yet parked, so
    // the last one is never taken.
    while (declined_.empty() && (want_ < 0 || parked_ < want_)) {
      const int asked = answered_ + 1;
      l.unlock();
      StartCall([this, generation] { MaybePark(generation); });
      l.lock();
      if (!cv_.wait_for(l, kAnswerWithin,
                        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return answered_ >= asked; })) {
        ++generation_;  // a late answer must not park
        problem =
            absl::StrCat("gRPC ran no callback within 5 s; ", parked_, " callback threads parked");
        break;
      }
    }
    if (!declined_.empty()) problem = absl::StrCat(declined_, "; nothing parked");
    if (parked_ > 0) {
      stop_ticker_ = false;
      ticker_ = std::thread([this] { Tick(); });
    }
  }
  // Not under mu_: a log sink may ask parked().
  if (!problem.empty()) SafeLog(log, absl::StrCat("OneCallbackThread: ", problem));
}

void Parker::Release(const std::function<void(const std::string&)>& log) {
  MutexLock op(&op_mu_);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::RaftTransport::Stub> stub;
  std::string problem;
  {
    UniqueLock l(&mu_);
    if (--holders_ > 0) return;
    stop_ticker_ = true;
    releasing_ = true;
    cv_.notify_all();
    l.unlock();
    if (ticker_.joinable()) ticker_.join();
    l.lock();
    if (cv_.wait_for(l, kAnswerWithin, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return parked_ == 0 && in_flight_ == 0;
        })) {
      stub = std::move(stub_);
      channel = std::move(channel_);
    } else {
      // Destroying the channel could then wait for good on a thread still
      // parked (gRPC joins its callback threads with their last user): it
      // is kept, and so is the stub a late callback's call went through.
      problem = absl::StrCat(parked_, " parked threads and ", in_flight_,
                             " calls did not return within 5 s; their channel is kept");
      (void)stub_.release();
      new std::shared_ptr<grpc::Channel>(std::move(channel_));
    }
  }
  if (!problem.empty()) SafeLog(log, absl::StrCat("OneCallbackThread: ", problem));
  // Outside the lock: the last user of gRPC's callback threads joins them.
  stub.reset();
  channel.reset();
}

}  // namespace

std::unique_ptr<OneCallbackThread> OneCallbackThread::Hold(
    std::function<void(const std::string&)> log) {
  if (!log) log = DefaultLog;
  TheParker().Acquire(log);
  return std::unique_ptr<OneCallbackThread>(new OneCallbackThread(std::move(log)));
}

OneCallbackThread::~OneCallbackThread() { TheParker().Release(log_); }

int OneCallbackThread::parked() { return TheParker().parked(); }

}  // namespace raftgrpc
