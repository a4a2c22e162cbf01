#include "peer/inbound_router.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/fake_raft.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

raftpb::Message Msg(raftpb::MessageType type, uint64_t index = 0) {
  raftpb::Message m = testing::Msg(type, 2, 1);
  m.set_index(index);
  return m;
}

TEST(InboundRouterTest, DeliversInOrderAndDropsLinkHeartbeats) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 4096, 4096);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(r.Deliver(Msg(raftpb::MsgApp, i)), InboundRouter::Result::kQueued);
  }
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);  // from = to = 0
  EXPECT_EQ(r.Deliver(std::move(hb)), InboundRouter::Result::kLinkHeartbeat);
  ASSERT_TRUE(raft.WaitForMessages(100));
  auto got = raft.messages();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i].index(), static_cast<uint64_t>(i));
  r.Stop();
  EXPECT_EQ(raft.message_count(), 100u);  // the link heartbeat never arrived
}

TEST(InboundRouterTest, FullQueueDropsAndCountsExactly) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  InboundRouter r(&raft, /*recv=*/8, /*prop=*/4);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 0)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));  // the worker holds #0
  int queued = 1, full = 0;
  for (int i = 1; i < 20; ++i) {
    auto res = r.Deliver(Msg(raftpb::MsgApp, i));
    queued += res == InboundRouter::Result::kQueued;
    full += res == InboundRouter::Result::kFull;
  }
  // The bound covers the message in Process too, as etcd's channel of 8.
  EXPECT_EQ(queued, 8);
  EXPECT_EQ(full, 12);
  EXPECT_EQ(r.dropped_full(), 12u);
  // The proposal lane is independent.
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgProp)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(9));
  r.Stop();
}

// Bounded in bytes as a decoded message costs: with Process stuck, 1 MiB
// messages fill a 4 MiB budget after three (the fourth would exceed it),
// the rest are dropped and counted; processing gives every byte back.
TEST(InboundRouterTest, ByteBudgetBoundsQueuedMemory) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  ByteBudget budget(4 << 20);
  InboundRouter r(&raft, 4096, 4096, std::chrono::seconds(1), &budget);
  auto big = [](uint64_t i) { return testing::App(2, 1, 1, i, std::string(1 << 20, 'b')); };
  int queued = 0, full = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    auto res = r.Deliver(big(i));
    queued += res == InboundRouter::Result::kQueued;
    full += res == InboundRouter::Result::kFull;
  }
  EXPECT_EQ(queued, 3);
  EXPECT_EQ(full, 17);
  EXPECT_EQ(r.dropped_full(), 17u);
  EXPECT_LE(budget.peak(), budget.limit());
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(3));
  r.Stop();  // joins the worker: every Process has returned
  EXPECT_EQ(budget.used(), 0u);
}

// A message of many empty entries is small on the wire and large once
// decoded: it is charged the latter. 200k empty entries (~0.6 MB encoded)
// do not fit an 8 MiB budget; a parent budget bounds several routers.
TEST(InboundRouterTest, EntriesAreChargedAndParentBudgetIsShared) {
  testing::FakeRaft raft;
  raftpb::Message many = testing::App(2, 1, 1, 0, "", /*entries=*/0);
  for (int i = 0; i < 200000; ++i) many.add_entries();  // two bytes each on the wire
  EXPECT_LT(many.ByteSizeLong(), 1u << 20);
  EXPECT_GT(InboundCost(many), 8u << 20);
  ByteBudget total(8 << 20);
  ByteBudget a_budget(6 << 20, &total), b_budget(6 << 20, &total);
  InboundRouter a(&raft, 4096, 4096, std::chrono::seconds(1), &a_budget);
  InboundRouter b(&raft, 4096, 4096, std::chrono::seconds(1), &b_budget);
  EXPECT_EQ(a.Deliver(raftpb::Message(many)), InboundRouter::Result::kFull);
  EXPECT_EQ(total.used(), 0u);

  raft.BlockType(raftpb::MsgApp);
  auto mib = [](uint64_t i) { return testing::App(2, 1, 1, i, std::string(1 << 20, 'p')); };
  int queued = 0;
  for (uint64_t i = 0; i < 10; ++i) queued += a.Deliver(mib(i)) == InboundRouter::Result::kQueued;
  for (uint64_t i = 0; i < 10; ++i) queued += b.Deliver(mib(i)) == InboundRouter::Result::kQueued;
  EXPECT_LE(total.peak(), total.limit());
  EXPECT_EQ(static_cast<size_t>(queued), total.peak() / InboundCost(mib(0)));
  raft.Unblock();
  a.Stop();
  b.Stop();
  EXPECT_EQ(total.used(), 0u);  // Stop gives back what it dropped
}

TEST(InboundRouterTest, PauseDropsAndResumeRestores) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 16, 16);
  r.Pause();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kPaused);
  EXPECT_EQ(r.dropped_paused(), 1u);
  r.Resume();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  r.Stop();
  EXPECT_EQ(raft.message_count(), 1u);
}

TEST(InboundRouterTest, StopDropsQueuedAndRefusesMore) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  InboundRouter r(&raft, 16, 16);
  r.Deliver(Msg(raftpb::MsgApp, 1));
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));
  r.Deliver(Msg(raftpb::MsgApp, 2));
  // Stop waits for the in-flight Process: unblock it once Stop has begun.
  std::thread stopper([&] { r.Stop(); });
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!r.stopped() && absl::Now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(r.stopped());
  raft.Unblock();
  stopper.join();
  EXPECT_EQ(raft.message_count(), 1u);  // #2 was dropped by Stop
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgApp, 3)), InboundRouter::Result::kStopped);
}

TEST(InboundRouterTest, WorkersStartOnDemandExitWhenIdleAndRestart) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 4096, 4096, std::chrono::milliseconds(20));
  EXPECT_EQ(r.workers(), 0);  // no thread for a peer that sent nothing
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);  // link heartbeats start nothing
  r.Deliver(std::move(hb));
  EXPECT_EQ(r.workers_started(), 0u);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  EXPECT_EQ(r.workers_started(), 1u);
  // Idle: the worker exits on its own ...
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (r.workers() > 0 && absl::Now() < deadline) std::this_thread::yield();
  ASSERT_EQ(r.workers(), 0);
  // ... and the next message starts a new one, in order with the rest.
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 2)), InboundRouter::Result::kQueued);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgProp, 3)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(3));
  EXPECT_EQ(r.workers_started(), 3u);  // recv restarted, prop started
  r.Stop();
  EXPECT_EQ(r.workers(), 0);
}

// Deliveries racing with idle exits and Stop: every queued message is
// processed exactly once, and nothing is left running.
TEST(InboundRouterTest, DeliverRacingIdleExitLosesNothing) {
  testing::FakeRaft raft;
  raft.set_keep_messages(false);
  InboundRouter r(&raft, 1 << 20, 1 << 20, std::chrono::milliseconds(1));
  uint64_t queued = 0;
  for (int i = 0; i < 2000; ++i) {
    queued += r.Deliver(Msg(i % 2 ? raftpb::MsgApp : raftpb::MsgProp, i)) ==
              InboundRouter::Result::kQueued;
    if (i % 50 == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let workers idle out
  }
  ASSERT_TRUE(raft.WaitForMessages(queued));
  EXPECT_EQ(raft.message_count(), queued);
  EXPECT_GT(r.workers_started(), 2u);
  r.Stop();
  EXPECT_EQ(r.workers(), 0);
}

}  // namespace
}  // namespace raftgrpc
