// Log sink and rate limiting.
#include "transport/internal/log.h"

#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Some lines quote a peer's error text: it cannot forge lines of its own
// (a newline), drive a terminal (ESC) or fill the log (a long text).
TEST(LogTest, ControlBytesAreEscapedAndLongLinesCut) {
  Sink sink;
  LogLine(sink.Options(), "failed (no\nraft-grpc-transport: ab: peer 3 became active\x1b[2J\t\r)");
  ASSERT_EQ(sink.lines.size(), 1u);
  EXPECT_EQ(sink.lines[0],
            "raft-grpc-transport: ab: failed (no\\nraft-grpc-transport: ab: peer 3 became "
            "active\\x1b[2J\\t\\r)");
  LogLine(sink.Options(), std::string(kMaxLogLineBytes + 500, 'x'));
  ASSERT_EQ(sink.lines.size(), 2u);
  EXPECT_EQ(sink.lines[1],
            absl::StrCat("raft-grpc-transport: ab: ", std::string(kMaxLogLineBytes, 'x'),
                         "... (500 more bytes)"));
  LogLine(sink.Options(), "caf\xc3\xa9");  // UTF-8 is left alone
  EXPECT_EQ(sink.lines[2], "raft-grpc-transport: ab: caf\xc3\xa9");
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
