// Scheduler: one thread that runs short callbacks at given times. Shared by
// a transport's stream readers (redials, idle checks) and writers (link
// heartbeats, stalled-write checks), so timers cost no thread per stream.
//
// Thread-safety: RunAfter/Cancel are safe from any thread, including from a
// callback. Callbacks run one at a time on the scheduler thread and must not
// block. Stop runs no further callbacks and joins.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_SCHEDULER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "peer/mutex.h"

namespace raftgrpc {

class Scheduler {
 public:
  using TaskId = uint64_t;

  Scheduler();
  ~Scheduler();  // Stop()

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `fn` once, `delay` from now. Returns an id for Cancel (0 once
  // stopped: the task will never run).
  TaskId RunAfter(absl::Duration delay, std::function<void()> fn);
  // Best effort: a task already running is not waited for.
  void Cancel(TaskId id);
  void Stop();

 private:
  void Loop();

  Mutex mu_;
  std::condition_variable cv_;
  // Ordered by (due time, id) so equal times run in submission order.
  std::map<std::pair<absl::Time, TaskId>, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<TaskId, absl::Time> due_ ABSL_GUARDED_BY(mu_);
  TaskId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_SCHEDULER_H_
