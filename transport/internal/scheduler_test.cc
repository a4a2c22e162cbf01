#include "transport/internal/scheduler.h"

#include <condition_variable>
#include <mutex>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TEST(SchedulerTest, RunsInDueOrderAndCancels) {
  Scheduler s;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> ran;
  auto record = [&](int v) {
    return [&, v] {
      std::lock_guard<std::mutex> l(mu);
      ran.push_back(v);
      cv.notify_all();
    };
  };
  s.RunAfter(absl::Milliseconds(30), record(3));
  s.RunAfter(absl::Milliseconds(10), record(1));
  Scheduler::TaskId cancelled = s.RunAfter(absl::Milliseconds(20), record(99));
  s.RunAfter(absl::Milliseconds(20), record(2));
  s.Cancel(cancelled);
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return ran.size() == 3; }));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(SchedulerTest, TasksMayRescheduleAndStopDropsTheRest) {
  Scheduler s;
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  std::function<void()> tick = [&] {
    std::lock_guard<std::mutex> l(mu);
    if (++count < 5) s.RunAfter(absl::Milliseconds(1), tick);
    cv.notify_all();
  };
  s.RunAfter(absl::ZeroDuration(), tick);
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return count == 5; }));
  }
  bool late_ran = false;
  s.RunAfter(absl::Hours(1), [&] { late_ran = true; });
  s.Stop();
  EXPECT_FALSE(late_ran);
  EXPECT_EQ(s.RunAfter(absl::ZeroDuration(), [] {}), 0u);  // refused once stopped
}

}  // namespace
}  // namespace raftgrpc
