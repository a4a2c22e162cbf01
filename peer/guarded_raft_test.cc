#include "peer/guarded_raft.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "peer/inbound_router.h"
#include "testing/fake_raft.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

// Every method of a Raft with a bug: what a throw becomes, counted and
// named, and the node's own work (recorded before the throw) still done.
TEST(GuardedRaftTest, EveryThrowBecomesItsDocumentedOutcome) {
  testing::FakeRaft raft;
  raft.set_throw(true);
  raft.SetRemoved(3);
  std::vector<std::string> said;
  auto caught =
      std::make_shared<CaughtExceptions>([&](const std::string& what) { said.push_back(what); });
  GuardedRaft g(&raft, caught);
  const raftpb::Message hb = testing::Heartbeat(2, 1);

  absl::Status s = g.Process(hb);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "Raft::Process threw: FakeRaft::Process told to throw");
  EXPECT_EQ(raft.message_count(), 1u);

  absl::Status urgent;
  EXPECT_TRUE(g.TryProcessUrgent(hb, &urgent));  // taken: dropped, not queued
  EXPECT_EQ(urgent.code(), absl::StatusCode::kInternal);

  s = g.ProcessSnapshot(hb, "/nowhere");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "Raft::ProcessSnapshot threw: FakeRaft::Process told to throw");

  EXPECT_FALSE(g.IsIdRemoved(3));  // unknown: the call goes on to Process
  g.ReportUnreachable(2);
  g.ReportSnapshot(2, SnapshotStatus::kFailure);
  EXPECT_EQ(raft.unreachable().size(), 1u);
  EXPECT_EQ(raft.snapshot_reports().size(), 1u);

  EXPECT_EQ(caught->count(), 6u);
  ASSERT_EQ(said.size(), 6u);
  EXPECT_EQ(said[1], "Raft::TryProcessUrgent threw: FakeRaft::TryProcessUrgent told to throw");
  EXPECT_EQ(said[3], "Raft::IsIdRemoved threw: FakeRaft::IsIdRemoved told to throw");
  EXPECT_EQ(said[4], "Raft::ReportUnreachable threw: FakeRaft::ReportUnreachable told to throw");
  EXPECT_EQ(said[5], "Raft::ReportSnapshot threw: FakeRaft::ReportSnapshot told to throw");
}

// Without a throw, every answer and status is the node's own.
TEST(GuardedRaftTest, PassesThroughWhatDoesNotThrow) {
  testing::FakeRaft raft;
  raft.SetRemoved(3);
  raft.SetProcessError(absl::PermissionDeniedError("removed"));
  auto caught = std::make_shared<CaughtExceptions>(nullptr);
  GuardedRaft g(&raft, caught);
  EXPECT_EQ(g.Process(testing::Heartbeat(2, 1)).code(), absl::StatusCode::kPermissionDenied);
  absl::Status urgent;
  EXPECT_FALSE(g.TryProcessUrgent(testing::Heartbeat(2, 1), &urgent));
  raft.set_take_urgent(true);
  EXPECT_TRUE(g.TryProcessUrgent(testing::Heartbeat(2, 1), &urgent));
  EXPECT_EQ(urgent.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(g.IsIdRemoved(3));
  EXPECT_FALSE(g.IsIdRemoved(2));
  EXPECT_EQ(caught->count(), 0u);
}

// Anything thrown, not only std::exception.
TEST(GuardedRaftTest, CatchesWhatIsNotAStdException) {
  class ThrowsAnInt : public testing::FakeRaft {
   public:
    void ReportUnreachable(uint64_t) override { throw 42; }
  } raft;
  std::string said;
  auto caught = std::make_shared<CaughtExceptions>([&](const std::string& what) { said = what; });
  GuardedRaft g(&raft, caught);
  g.ReportUnreachable(2);
  EXPECT_EQ(said, "Raft::ReportUnreachable threw: an exception not derived from std::exception");
  EXPECT_EQ(caught->count(), 1u);
}

// Through the router, a throwing TryProcessUrgent stays off the reading
// thread (in a gRPC callback it would end the process): the message is
// dropped and counted as a Process error, and the router goes on.
TEST(GuardedRaftTest, AThrowingTryProcessUrgentIsCountedByTheRouter) {
  testing::FakeRaft raft;
  raft.set_throw(true);
  GuardedRaft g(&raft, std::make_shared<CaughtExceptions>(nullptr));
  InboundRouter r(&g, 16, 16);
  EXPECT_EQ(r.Deliver(testing::Msg(raftpb::MsgHeartbeat, 2, 1)), InboundRouter::Result::kProcessed);
  EXPECT_EQ(r.process_errors(), 1u);
  EXPECT_EQ(raft.message_count(), 0u);
  raft.set_throw(false);
  EXPECT_EQ(r.Deliver(testing::Msg(raftpb::MsgApp, 2, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  r.Stop();
}

}  // namespace
}  // namespace raftgrpc
