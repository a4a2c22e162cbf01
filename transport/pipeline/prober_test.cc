// Prober: periodic Probe RPCs, RTT histogram with etcd's buckets, health.
#include "transport/pipeline/prober.h"

#include "gtest/gtest.h"
#include "testing/cluster.h"
#include "testing/status_macros.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

TEST(ProberTest, ProbesFillHistogramAndDetectDownPeer) {
  TransportOptions o;
  o.probe_interval = absl::Milliseconds(20);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c, Cluster::Start(2, o));
  Cluster& cl = *c;
  auto prober = cl.t(1).GetProber(2);
  ASSERT_NE(prober, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return prober->stats().rtt.count() >= 5; }));
  ProbeStats s = prober->stats();
  EXPECT_TRUE(s.healthy);
  EXPECT_GT(s.srtt, absl::ZeroDuration());
  EXPECT_LT(s.srtt, absl::Seconds(1));
  // Same host, same clock: the estimated difference is within the RTT.
  EXPECT_LT(absl::AbsDuration(s.clock_diff), absl::Milliseconds(100));
  EXPECT_GT(s.rtt.sum(), 0);
  // Loopback RTTs fit the largest bucket (3.3 s).
  EXPECT_EQ(s.rtt.CumulativeCount(s.rtt.bounds().size() - 1), s.rtt.count());
  EXPECT_EQ(s.probes, s.rtt.count() + s.failures);

  cl.StopNode(2);
  const uint64_t failures = s.failures;
  ASSERT_TRUE(WaitUntil([&] { return prober->stats().failures > failures; }));
  EXPECT_FALSE(prober->stats().healthy);

  ASSERT_TRUE(cl.RestartNode(2).ok());
  ASSERT_TRUE(WaitUntil([&] { return prober->stats().healthy; }));
}

TEST(ProberTest, RemovePeerStopsProber) {
  TransportOptions o;
  o.probe_interval = absl::Milliseconds(10);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c, Cluster::Start(2, o));
  Cluster& cl = *c;
  auto prober = cl.t(1).GetProber(2);
  ASSERT_NE(prober, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return prober->stats().probes >= 2; }));
  ASSERT_TRUE(cl.t(1).RemovePeer(2).ok());
  EXPECT_EQ(cl.t(1).GetProber(2), nullptr);
  // Stopped: no probe completes afterwards. A further wait of several
  // intervals is bounded by the scheduler having cancelled the task; the
  // count must stay put.
  const uint64_t n = prober->stats().probes;
  EXPECT_FALSE(WaitUntil([&] { return prober->stats().probes > n; }, absl::Milliseconds(100)));
}

}  // namespace
}  // namespace raftgrpc
