#include "transport/internal/scheduler.h"

#include "absl/time/clock.h"
#include "peer/mutex.h"

namespace raftgrpc {

Scheduler::Scheduler() : thread_([this] { Loop(); }) {}

Scheduler::~Scheduler() { Stop(); }

Scheduler::TaskId Scheduler::RunAfter(absl::Duration delay, std::function<void()> fn) {
  absl::Time due = absl::Now() + delay;
  TaskId id;
  {
    MutexLock l(&mu_);
    if (stopped_) return 0;
    id = next_id_++;
    tasks_.emplace(std::make_pair(due, id), std::move(fn));
    due_.emplace(id, due);
  }
  cv_.notify_one();
  return id;
}

void Scheduler::Cancel(TaskId id) {
  MutexLock l(&mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return;
  tasks_.erase(std::make_pair(it->second, id));
  due_.erase(it);
}

void Scheduler::Stop() {
  {
    MutexLock l(&mu_);
    if (stopped_ && !thread_.joinable()) return;
    stopped_ = true;
    tasks_.clear();
    due_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Scheduler::Loop() {
  UniqueLock l(&mu_);
  while (!stopped_) {
    if (tasks_.empty()) {
      cv_.wait(l);
      continue;
    }
    auto first = tasks_.begin();
    absl::Time now = absl::Now();
    if (first->first.first > now) {
      cv_.wait_for(l, absl::ToChronoNanoseconds(first->first.first - now));
      continue;
    }
    std::function<void()> fn = std::move(first->second);
    due_.erase(first->first.second);
    tasks_.erase(first);
    l.unlock();
    fn();
    l.lock();
  }
}

}  // namespace raftgrpc
