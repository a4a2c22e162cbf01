// OneCallbackThread: while one is held, gRPC runs all of this process's
// callback-API work on one of its threads, and the others are parked.
//
//   // In main, once, before or after the transport starts:
//   std::unique_ptr<raftgrpc::OneCallbackThread> one =
//       raftgrpc::OneCallbackThread::Hold();
//
// Why: gRPC 1.51 (Debian's) runs the callback API, which the transport is
// built on, on a pool of threads of its own ("nexting_thread", at least two)
// that all wait on the process's one epoll set. The thread that the kernel
// wakes for a socket hands its waiting role to another before it reads,
// waking that one too, so every message read costs two thread wake-ups, and
// on a VM each is tens of µs. With one thread left waiting there is no one
// to hand over to: a heartbeat's round trip took about half the time and
// half the CPU, and throughput did not suffer (bench/README.md, "One
// callback thread").
//
// The cost: every callback reaction of the process, the transport's and
// those of any other gRPC service or client the node runs, then runs on
// that one thread, one at a time. A reaction that blocks holds up all the
// others. The transport's own reactions never block.
//
// It is process-wide and counted: the first holder parks the threads, the
// last one destroyed lets them go, and any number may be held at once (a
// test process with many transports). Nothing is parked, and parked() is
// 0, where gRPC runs callbacks on other threads than these (another gRPC
// version); that is logged.
//
// Threading: Hold and the destructor are safe from any thread except
// gRPC's callback threads (a reaction must not call them). Both block:
// Hold for a few ms when it parks (at most 1 s while gRPC's new threads
// name themselves, and 5 s per thread if gRPC runs no callback), the
// destructor until the parked threads run again (at most 5 s). The log
// sink is called with no lock held.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_CALLBACK_THREADS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_CALLBACK_THREADS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace raftgrpc {

class OneCallbackThread {
 public:
  // `log` gets a line when parking or letting go fails (default: stderr); a
  // `log` that throws has its line written to stderr instead.
  static std::unique_ptr<OneCallbackThread> Hold(
      std::function<void(const std::string&)> log = nullptr);
  ~OneCallbackThread();

  OneCallbackThread(const OneCallbackThread&) = delete;
  OneCallbackThread& operator=(const OneCallbackThread&) = delete;

  // How many of gRPC's callback threads are parked now, process-wide.
  static int parked();

 private:
  explicit OneCallbackThread(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

  const std::function<void(const std::string&)> log_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_CALLBACK_THREADS_H_
