#include "peer/peer_status.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TEST(PeerStatusTest, TransitionsStampAndClearActiveSince) {
  std::vector<std::pair<bool, std::string>> log;
  PeerStatus s(0x1f, [&](bool active, const std::string& why) { log.emplace_back(active, why); });
  EXPECT_FALSE(s.IsActive());
  EXPECT_EQ(s.ActiveSince(), absl::Time());

  absl::Time before = absl::Now();
  s.Activate();
  EXPECT_TRUE(s.IsActive());
  absl::Time since = s.ActiveSince();
  EXPECT_GE(since, before);
  EXPECT_LE(since, absl::Now());

  s.Activate();  // already active: since unchanged, no callback
  EXPECT_EQ(s.ActiveSince(), since);

  s.Deactivate({"pipeline", "write"}, "connection refused");
  EXPECT_FALSE(s.IsActive());
  EXPECT_EQ(s.ActiveSince(), absl::Time());
  s.Deactivate({"pipeline", "write"}, "again");  // already inactive: no callback
  EXPECT_EQ(s.disconnects(), 1u);

  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(log[0].first);
  EXPECT_FALSE(log[1].first);
  EXPECT_EQ(log[1].second, "failed to write 1f on pipeline (connection refused)");

  s.Activate();
  EXPECT_GT(s.ActiveSince(), absl::Time());
  EXPECT_EQ(log.size(), 3u);
}

TEST(PeerStatusTest, ConcurrentFlapsKeepTransitionsAlternating) {
  std::atomic<int> ups{0}, downs{0};
  PeerStatus s(2, [&](bool active, const std::string&) { (active ? ups : downs)++; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if ((i + t) % 2) {
          s.Activate();
        } else {
          s.Deactivate({"stream Message", "read"}, "eof");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every deactivation follows an activation.
  EXPECT_EQ(static_cast<uint64_t>(downs.load()), s.disconnects());
  EXPECT_EQ(ups.load() - downs.load(), s.IsActive() ? 1 : 0);
}

}  // namespace
}  // namespace raftgrpc
