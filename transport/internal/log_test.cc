// Log sink and rate limiting.
#include "transport/internal/log.h"

#include <mutex>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

struct Sink {
  std::mutex mu;
  std::vector<std::string> lines;
  TransportOptions Options() {
    TransportOptions o;
    o.local_id = 0xab;
    o.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> g(mu);
      lines.push_back(l);
    };
    return o;
  }
};

TEST(LogTest, LinesGoToTheSinkWithPrefix) {
  Sink sink;
  LogLine(sink.Options(), "hello");
  ASSERT_EQ(sink.lines.size(), 1u);
  EXPECT_EQ(sink.lines[0], "raft-grpc-transport: ab: hello");
}

TEST(LogTest, RateLimiterKeepsOneLinePerPeriodAndCountsTheRest) {
  Sink sink;
  const TransportOptions o = sink.Options();
  LogRateLimiter limiter(absl::Milliseconds(50));
  for (int i = 0; i < 1000; ++i) limiter.Log(o, "peer flapped");
  ASSERT_EQ(sink.lines.size(), 1u);
  // After the period the next line reports what was held back.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sink.lines.size() < 2 && absl::Now() < deadline) limiter.Log(o, "peer flapped");
  ASSERT_EQ(sink.lines.size(), 2u);
  EXPECT_NE(sink.lines[1].find("similar suppressed"), std::string::npos) << sink.lines[1];
}

}  // namespace
}  // namespace raftgrpc
