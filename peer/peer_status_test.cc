#include "peer/peer_status.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

using Kind = PeerStatus::Event::Kind;

TEST(PeerStatusTest, TransitionsStampAndClearActiveSince) {
  std::vector<std::pair<bool, std::string>> log;
  PeerStatus s(0x1f, [&](const PeerStatus::Event& e) {
    if (e.kind != Kind::kFailedAgain) log.emplace_back(e.kind == Kind::kActivated, e.reason);
  });
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
  s.Deactivate({"pipeline", "write"}, "again");  // already inactive: no transition
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
  PeerStatus s(2, [&](const PeerStatus::Event& e) {
    if (e.kind == Kind::kActivated) ups++;
    if (e.kind == Kind::kDeactivated) downs++;
  });
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

// A peer never reached (or down since) is named once per cause of
// failure, not once per redial: a repeat is counted and passed with the
// next new cause. An activation forgets the last cause, so the same one
// after the next deactivation is told again.
TEST(PeerStatusTest, FailuresWhileInactiveAreToldOncePerCause) {
  std::vector<PeerStatus::Event> events;
  PeerStatus s(
      2, [&](const PeerStatus::Event& e) { events.push_back(e); }, absl::ZeroDuration());
  // Two channels redialling in turn, each refused every time.
  for (int i = 0; i < 5; ++i) {
    s.Deactivate({"stream MsgApp v2", "dial"}, "connection refused");
    s.Deactivate({"stream Message", "dial"}, "connection refused");
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kFailedAgain);
  EXPECT_EQ(events[0].reason, "failed to dial 2 on stream MsgApp v2 (connection refused)");
  EXPECT_EQ(events[0].repeats, 0u);
  EXPECT_EQ(events[1].reason, "failed to dial 2 on stream Message (connection refused)");

  s.Deactivate({"stream MsgApp v2", "dial"}, "certificate names member 3");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, Kind::kFailedAgain);
  EXPECT_EQ(events[2].reason, "failed to dial 2 on stream MsgApp v2 (certificate names member 3)");
  EXPECT_EQ(events[2].repeats, 4u);  // the four refusals after the first
  EXPECT_EQ(s.disconnects(), 0u);    // never active: no transition

  s.Activate();
  s.Deactivate({"stream MsgApp v2", "dial"}, "certificate names member 3");
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[3].kind, Kind::kActivated);
  EXPECT_EQ(events[4].kind, Kind::kDeactivated);
  s.Deactivate({"stream MsgApp v2", "dial"}, "certificate names member 3");  // a repeat
  s.Deactivate({"stream Message", "dial"}, "connection refused");  // forgotten: told again
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[5].kind, Kind::kFailedAgain);
  EXPECT_EQ(events[5].reason, "failed to dial 2 on stream Message (connection refused)");
  EXPECT_EQ(events[5].repeats, 0u);
  s.Deactivate({"stream MsgApp v2", "read"}, "deadline exceeded");
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[6].repeats, 1u);  // MsgApp v2's repeated certificate failure
  EXPECT_EQ(s.disconnects(), 1u);
}

// A hostile peer can vary its error text at every dial: a channel's new
// causes are told at most once per interval, the rest counted; another
// channel's are not held back by it.
TEST(PeerStatusTest, NewCausesOnAChannelAreToldAtMostOncePerInterval) {
  std::vector<PeerStatus::Event> events;
  PeerStatus s(
      2, [&](const PeerStatus::Event& e) { events.push_back(e); }, absl::Hours(1));
  for (int i = 0; i < 50; ++i) {
    s.Deactivate({"stream Message", "dial"}, absl::StrCat("forged text ", i));
  }
  s.Deactivate({"pipeline", "write"}, "refused");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].reason, "failed to dial 2 on stream Message (forged text 0)");
  EXPECT_EQ(events[1].reason, "failed to write 2 on pipeline (refused)");

  // Past the interval, a channel's new cause is told with the count.
  const absl::Duration interval = absl::Milliseconds(20);
  std::vector<PeerStatus::Event> later;
  PeerStatus t(
      2, [&](const PeerStatus::Event& e) { later.push_back(e); }, interval);
  t.Deactivate({"stream Message", "dial"}, "a");
  const absl::Time told = absl::Now();
  t.Deactivate({"stream Message", "dial"}, "b");  // within the interval
  if (absl::Now() - told >= interval) GTEST_SKIP() << "too slow to be within the interval";
  absl::SleepFor(interval);  // what is tested: the interval passing
  t.Deactivate({"stream Message", "dial"}, "c");
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[1].reason, "failed to dial 2 on stream Message (c)");
  EXPECT_EQ(later[1].repeats, 1u);
}

}  // namespace
}  // namespace raftgrpc
