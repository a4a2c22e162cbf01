// Mutex spins before it sleeps, and UniqueLock locks through it: both must
// still exclude, and UniqueLock must still work with a condition variable.
#include "peer/mutex.h"

#include <condition_variable>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TEST(MutexTest, ContendedLocksExclude) {
  Mutex mu;
  int count = 0;  // not atomic: a lost update shows a failure to exclude
  constexpr int kThreads = 4, kRounds = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if ((i + t) % 2 == 0) {
          MutexLock l(&mu);
          ++count;
        } else {
          UniqueLock l(&mu);
          ++count;
          l.unlock();
          l.lock();  // locked again, through the spin
          ++count;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  MutexLock l(&mu);
  EXPECT_EQ(count, kThreads * kRounds * 3 / 2);
}

TEST(MutexTest, UniqueLockWaitsOnAConditionVariable) {
  Mutex mu;
  std::condition_variable cv;
  bool ready = false;
  int seen = 0;
  std::thread waiter([&] {
    UniqueLock l(&mu);
    cv.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ready; });
    seen = 1;  // the lock is held again after the wait
  });
  {
    MutexLock l(&mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  MutexLock l(&mu);
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace raftgrpc
