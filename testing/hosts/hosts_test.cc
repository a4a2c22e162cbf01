// Real multi-host faults: 5 node processes, each in its own network
// namespace, node 1 a leader streaming MsgApp to the other four. Each test
// asserts what a Raft node relies on, and records the measured detection
// and recovery times as test properties (testing/README.md has a table).
#include "testing/hosts/hosts.h"

#include <dirent.h>

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/sanitizers.h"

namespace raftgrpc::testing {
namespace {

class HostsTest : public ::testing::Test {
 protected:
  static constexpr int kNodes = 5;

  void SetUp() override {
    Hosts::Options o;
    o.label = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto h = Hosts::Create(o);
    if (!h.ok()) GTEST_SKIP() << h.status().message();
    hosts_ = std::move(*h);
    for (int i = 1; i <= kNodes; ++i) ASSERT_TRUE(hosts_->Start(i).ok()) << "node " << i;
    ASSERT_TRUE(hosts_->Ask(1, "flood 2 3 4 5").ok());
    for (int i = 2; i <= kNodes; ++i) {
      ASSERT_TRUE(WaitFor([&] { return Stat(1, P(i, "acked")) > 5000; }, absl::Seconds(30)))
          << "the leader's traffic to " << i << " never flowed";
    }
  }

  static std::string P(int peer, const char* key) { return absl::StrCat("p", peer, ".", key); }

  // -1 if node `id` is not running or lacks `key`. A node that died on
  // its own fails the test, with the cause.
  int64_t Stat(int id, const std::string& key) {
    auto s = hosts_->Stats(id);
    if (absl::IsUnavailable(s.status())) ADD_FAILURE() << s.status().message();
    if (!s.ok()) return -1;
    auto it = s->find(key);
    return it == s->end() ? -1 : it->second;
  }

  // Polls every 20 ms: the stats come from another process.
  static bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (pred()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return pred();
  }

  // MsgApps per second acknowledged by `peer`, over `d`.
  double AckRate(int peer, absl::Duration d) {
    const int64_t a0 = Stat(1, P(peer, "acked"));
    const absl::Time t0 = absl::Now();
    absl::SleepFor(d);
    return (Stat(1, P(peer, "acked")) - a0) / absl::ToDoubleSeconds(absl::Now() - t0);
  }

  // The leader detects `victim` dead (a ReportUnreachable for it) after
  // `fault`; returns the time it took, or -1.
  int64_t DetectionMs(int victim, const std::function<void()>& fault) {
    const int64_t before = Stat(1, P(victim, "unreachable"));
    const absl::Time t0 = absl::Now();
    fault();
    if (!WaitFor([&] { return Stat(1, P(victim, "unreachable")) > before; }, absl::Seconds(30))) {
      return -1;
    }
    return absl::ToInt64Milliseconds(absl::Now() - t0);
  }

  // After the fault is undone, until `victim` acknowledges new traffic.
  int64_t RecoveryMs(int victim, const std::function<void()>& heal) {
    const int64_t acked = Stat(1, P(victim, "acked"));
    const absl::Time t0 = absl::Now();
    heal();
    if (!WaitFor([&] { return Stat(1, P(victim, "acked")) > acked + 1000; }, absl::Seconds(30))) {
      return -1;
    }
    return absl::ToInt64Milliseconds(absl::Now() - t0);
  }

  // How many of the leader's send numbers lo..hi follower `id` received;
  // -1 if unknown.
  int64_t Seen(int id, int64_t lo, int64_t hi) {
    auto a = hosts_->Ask(id, absl::StrCat("seen 1 ", lo, " ", hi));
    int64_t n;
    return a.ok() && absl::SimpleAtoi(*a, &n) ? n : -1;
  }

  void ExpectNoDuplicates() {
    for (int i = 2; i <= kNodes; ++i) {
      EXPECT_EQ(Stat(i, P(1, "duplicates")), 0) << "node " << i;
    }
  }

  std::unique_ptr<Hosts> hosts_;
};

// Three link-heartbeat intervals (conn_read_timeout / 3 each), plus 0.5 s
// for this 2-core machine's scheduling and the 20 ms polls. Under
// sanitizers the nodes run several times slower: the times are recorded,
// and only bounded by the plain run.
const absl::Duration kDetectionBound = Hosts::Options().read_timeout + absl::Milliseconds(500);
constexpr bool kTimed = !kUnderSanitizer;

// Records a detection time as `property` and holds a measured one to the
// bound (plain builds).
void CheckDetection(int64_t ms, const char* property) {
  ::testing::Test::RecordProperty(property, std::to_string(ms));
  if (kTimed && ms >= 0) {
    EXPECT_LE(ms, absl::ToInt64Milliseconds(kDetectionBound)) << property;
  }
}

TEST_F(HostsTest, FrozenFollowerIsDetectedAndOthersKeepTheirPace) {
  const double before = AckRate(2, absl::Seconds(1));
  const int64_t ms = DetectionMs(3, [&] { hosts_->Freeze(3); });
  CheckDetection(ms, "detection_ms");
  ASSERT_GE(ms, 0) << "a frozen follower was never reported unreachable";
  // The others are not held back by the frozen one.
  const double during = AckRate(2, absl::Seconds(1));
  ::testing::Test::RecordProperty("rate_before", std::to_string(static_cast<int64_t>(before)));
  ::testing::Test::RecordProperty("rate_during", std::to_string(static_cast<int64_t>(during)));
  if (kTimed) {
    EXPECT_GE(during, before * 0.5);
  }
  const int64_t recovery = RecoveryMs(3, [&] { hosts_->Thaw(3); });
  ::testing::Test::RecordProperty("recovery_ms", std::to_string(recovery));
  EXPECT_GE(recovery, 0) << "no traffic after the thaw";
  ExpectNoDuplicates();
}

TEST_F(HostsTest, SilentlyDroppingLinkIsDetected) {
  const int64_t ms = DetectionMs(4, [&] { ASSERT_TRUE(hosts_->Cut(4).ok()); });
  CheckDetection(ms, "detection_ms");
  ASSERT_GE(ms, 0) << "a silently dropping link was never reported";
  const int64_t recovery = RecoveryMs(4, [&] { ASSERT_TRUE(hosts_->Restore(4).ok()); });
  ::testing::Test::RecordProperty("recovery_ms", std::to_string(recovery));
  EXPECT_GE(recovery, 0) << "no traffic after the link came back";
  ExpectNoDuplicates();
}

// Temporary files of receives, less the one a kept prefix's record names
// (snapshot resume keeps that one on purpose, one per sender): leftovers.
int TempFiles(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      n += name.rfind("raftgrpc-recv-", 0) == 0;
      n -= name.rfind("raftgrpc-partial-", 0) == 0;
    }
    closedir(d);
  }
  return n;
}

TEST_F(HostsTest, FollowerKilledAndRestartedFiveTimesUnderTraffic) {
  int64_t fds_after_first = 0, threads_after_first = 0;
  for (int round = 1; round <= 5; ++round) {
    // A snapshot in flight when the follower dies.
    ASSERT_TRUE(hosts_->Ask(1, "snapshot 2 64").ok());
    const int64_t ms = DetectionMs(2, [&] { hosts_->Kill(2); });
    ASSERT_GE(ms, 0) << "round " << round << ": the crash was never reported";
    const int64_t recovery = RecoveryMs(2, [&] { ASSERT_TRUE(hosts_->Start(2).ok()); });
    ::testing::Test::RecordProperty(absl::StrCat("round", round, "_detection_ms"),
                                    std::to_string(ms));
    ::testing::Test::RecordProperty(absl::StrCat("round", round, "_recovery_ms"),
                                    std::to_string(recovery));
    ASSERT_GE(recovery, 0) << "round " << round << ": the leader never reconnected";
    // A killed receive leaves its temporary file; the restart removes it,
    // unless it is a verified prefix a record names (kept for a resume).
    EXPECT_EQ(TempFiles(hosts_->snap_dir(2)), 0) << "round " << round;
    if (round == 1) {
      fds_after_first = Stat(1, "fds");
      threads_after_first = Stat(1, "threads");
    }
  }
  const int64_t fds = Stat(1, "fds"), threads = Stat(1, "threads");
  ::testing::Test::RecordProperty("leader_fds_first_last", absl::StrCat(fds_after_first, "/", fds));
  ::testing::Test::RecordProperty("leader_threads_first_last",
                                  absl::StrCat(threads_after_first, "/", threads));
  EXPECT_LE(fds, fds_after_first + 8);
  EXPECT_LE(threads, threads_after_first + 4);
  ExpectNoDuplicates();
}

// Delivery across a 10 s partition, accounted by send number (each message
// the leader's Send accepted has the next one): what was accepted before the
// cut and already on its way is delivered, or lost with its broken stream
// (etcd's streams lose the same; Raft resends), never twice; after the heal
// everything accepted arrives.
TEST_F(HostsTest, TenSecondPartitionHealsWithinTheRedialBoundExactlyOnce) {
  // Read once the cut is in place: everything accepted until then counts.
  int64_t accepted_at_cut = 0;
  const int64_t ms = DetectionMs(5, [&] {
    ASSERT_TRUE(hosts_->Cut(5).ok());
    accepted_at_cut = Stat(1, P(5, "accepted"));
  });
  ASSERT_GE(ms, 0) << "the partition was never reported";
  // The rest of the 10 s: the others carry on meanwhile.
  const int64_t acked2 = Stat(1, P(2, "acked"));
  absl::SleepFor(absl::Seconds(10) - absl::Milliseconds(ms));
  EXPECT_GT(Stat(1, P(2, "acked")), acked2 + 1000) << "follower 2 starved during the partition";
  const int64_t recovery = RecoveryMs(5, [&] { ASSERT_TRUE(hosts_->Restore(5).ok()); });
  ::testing::Test::RecordProperty("detection_ms", std::to_string(ms));
  ::testing::Test::RecordProperty("recovery_ms", std::to_string(recovery));
  ASSERT_GE(recovery, 0) << "no traffic after the partition healed";
  // gRPC's reconnect backoff tops out at 1 s (channel_pool.cc), then one
  // dial: 3 s leaves room for a loaded machine.
  if (kTimed) {
    EXPECT_LE(recovery, 3000);
  }
  // After the heal: the next 2000 accepted sends all arrive.
  const int64_t healed = Stat(1, P(5, "accepted"));
  ASSERT_TRUE(
      WaitFor([&] { return Seen(5, healed + 1, healed + 2000) == 2000; }, absl::Seconds(20)))
      << "accepted after the heal, not delivered: " << 2000 - Seen(5, healed + 1, healed + 2000);
  // Before the cut: the leader keeps at most kWindow (2048) sends
  // unacknowledged, so no more than that can have been in the link when it
  // went silent. Older ones were acknowledged, hence delivered.
  constexpr int64_t kSpan = 4096;
  const int64_t lo = std::max<int64_t>(1, accepted_at_cut - kSpan + 1);
  const int64_t seen = Seen(5, lo, accepted_at_cut);
  ASSERT_GE(seen, 0) << "the follower forgot the numbers";
  const int64_t lost = accepted_at_cut - lo + 1 - seen;
  ::testing::Test::RecordProperty("accepted_before_cut_lost", std::to_string(lost));
  ::testing::Test::RecordProperty("reorders", std::to_string(Stat(5, P(1, "reorders"))));
  EXPECT_LE(lost, 2048) << "more lost than can have been in flight";
  ExpectNoDuplicates();
}

TEST_F(HostsTest, AsymmetricPartitionLeavesNothingHalfOpenAndConverges) {
  // Node 3 receives but cannot send: TCP needs both ways, so both ends
  // must notice, each on its own.
  const int64_t ms = DetectionMs(3, [&] { ASSERT_TRUE(hosts_->CutOutbound(3).ok()); });
  CheckDetection(ms, "leader_detection_ms");
  ASSERT_GE(ms, 0) << "the leader never noticed";
  ASSERT_TRUE(WaitFor([&] { return Stat(3, P(1, "active")) == 0; }, absl::Seconds(10)))
      << "node 3 kept a half-open view of the leader";
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(hosts_->Restore(3).ok());
  const int64_t acked = Stat(1, P(3, "acked"));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Stat(1, P(3, "acked")) > acked + 1000 && Stat(3, P(1, "active")) == 1 &&
               Stat(1, P(3, "active")) == 1;
      },
      absl::Seconds(30)))
      << "the two sides did not converge";
  const int64_t converge = absl::ToInt64Milliseconds(absl::Now() - t0);
  ::testing::Test::RecordProperty("converge_ms", std::to_string(converge));
  ExpectNoDuplicates();
}

TEST_F(HostsTest, FrozenLeaderIsNoticedByAllFollowersAndRecoversOnThaw) {
  const absl::Time t0 = absl::Now();
  hosts_->Freeze(1);
  // Followers notice through their readers' idle timeout (no link
  // heartbeats from the leader).
  const bool noticed = WaitFor(
      [&] {
        for (int i = 2; i <= kNodes; ++i) {
          if (Stat(i, P(1, "active")) != 0) return false;
        }
        return true;
      },
      absl::Seconds(20));
  const int64_t detect = absl::ToInt64Milliseconds(absl::Now() - t0);
  ::testing::Test::RecordProperty("followers_detection_ms", std::to_string(detect));
  hosts_->Thaw(1);
  ASSERT_TRUE(noticed) << "a follower still thinks the frozen leader is active";
  if (kTimed) {
    EXPECT_LE(detect, absl::ToInt64Milliseconds(kDetectionBound));
  }
  // Everything recovers without a restart.
  std::vector<int64_t> acked;
  for (int i = 2; i <= kNodes; ++i) acked.push_back(Stat(1, P(i, "acked")));
  const absl::Time t1 = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 2; i <= kNodes; ++i) {
          if (Stat(1, P(i, "acked")) <= acked[i - 2] + 1000) return false;
        }
        return true;
      },
      absl::Seconds(30)))
      << "traffic did not resume to every follower after the thaw";
  ::testing::Test::RecordProperty("recovery_ms",
                                  std::to_string(absl::ToInt64Milliseconds(absl::Now() - t1)));
  ExpectNoDuplicates();
}

// A snapshot on a 4 MB/s link, cut mid-way. For 1 s, well within the
// progress timeout (5 s here): the transfer rides it out (TCP retransmits,
// nothing times out) and completes, no failure reported. (TCP's doubling
// retransmission timeout leaves the receiver without data for up to about
// twice the cut: a 2 s cut came to the 5 s timeout and failed, 1 CI run in
// several under ASan and in runs with the machine loaded.) For longer than the
// progress timeout: it fails, reported exactly once, leaves no file, and the
// retry succeeds.
TEST_F(HostsTest, SnapshotRidesOutAShortCutAndFailsOnceOnALongOne) {
  ASSERT_TRUE(hosts_->Limit(2, 4 << 20).ok());
  auto outcome = [&] {
    return std::make_pair(Stat(1, P(2, "snapshots_ok")), Stat(1, P(2, "snapshots_failed")));
  };
  auto cut_midway = [&](absl::Duration cut) {
    ASSERT_TRUE(hosts_->Ask(1, "snapshot 2 8").ok());  // about 2 s at 4 MB/s
    absl::SleepFor(absl::Milliseconds(700));
    ASSERT_TRUE(hosts_->Cut(2).ok());
    absl::SleepFor(cut);
    ASSERT_TRUE(hosts_->Restore(2).ok());
    ASSERT_TRUE(hosts_->Limit(2, 4 << 20).ok());
  };

  const auto start = outcome();
  absl::Time t0 = absl::Now();
  cut_midway(absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return outcome() != start; }, absl::Seconds(60)));
  ::testing::Test::RecordProperty("short_cut_total_ms",
                                  std::to_string(absl::ToInt64Milliseconds(absl::Now() - t0)));
  EXPECT_EQ(outcome(), std::make_pair(start.first + 1, start.second))
      << "a 1 s cut failed the snapshot";

  const auto before_long = outcome();
  const absl::Duration long_cut = Hosts::Options().snapshot_progress_timeout + absl::Seconds(2);
  cut_midway(long_cut);
  ASSERT_TRUE(WaitFor([&] { return outcome() != before_long; }, absl::Seconds(60)));
  // A second report would show within a second.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(outcome(), std::make_pair(before_long.first, before_long.second + 1));
  EXPECT_NE(hosts_->Log(1).find("no progress for"), std::string::npos)
      << "the sender's log does not name the stall";
  // Raft sends it again once the peer is back: it goes through.
  ASSERT_TRUE(WaitFor([&] { return Stat(1, P(2, "active")) == 1; }, absl::Seconds(30)));
  const auto failed_once = outcome();
  t0 = absl::Now();
  ASSERT_TRUE(hosts_->Ask(1, "snapshot 2 8").ok());
  ASSERT_TRUE(WaitFor([&] { return outcome() != failed_once; }, absl::Seconds(60)));
  ::testing::Test::RecordProperty("retry_ms",
                                  std::to_string(absl::ToInt64Milliseconds(absl::Now() - t0)));
  EXPECT_EQ(outcome(), std::make_pair(failed_once.first + 1, failed_once.second));
  EXPECT_EQ(TempFiles(hosts_->snap_dir(2)), 0);
}

}  // namespace
}  // namespace raftgrpc::testing
