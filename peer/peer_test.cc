#include "peer/peer.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "testing/fake_channels.h"
#include "testing/fake_raft.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

using testing::FakeChannelFactory;
using testing::FakeConn;
using testing::FakeRaft;

constexpr uint64_t kLocal = 1;
constexpr uint64_t kRemote = 2;

raftpb::Message Msg(raftpb::MessageType type, uint64_t index = 0) {
  raftpb::Message m = testing::Msg(type, kLocal, kRemote);
  m.set_term(1);
  m.set_logterm(1);
  m.set_index(index);
  return m;
}

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(FakeChannelFactory()); }

  void Make(FakeChannelFactory f) {
    factory_ = f;
    auto p = Peer::Create(kLocal, kRemote, {"http://127.0.0.1:2380"}, &raft_, factory_);
    ASSERT_TRUE(p.ok()) << p.status();
    peer_ = *std::move(p);
  }

  FakeRaft raft_;
  FakeChannelFactory factory_;
  std::unique_ptr<Peer> peer_;
};

// etcd's pick order over every working combination and message kind.
TEST_F(PeerTest, PickTable) {
  struct Row {
    bool v2_working, v3_working;
    raftpb::MessageType type;
    Channel want;
  } rows[] = {
      {true, true, raftpb::MsgSnap, Channel::kPipeline},
      {true, true, raftpb::MsgApp, Channel::kStreamMsgAppV2},
      {true, true, raftpb::MsgProp, Channel::kStreamMsg},
      {true, true, raftpb::MsgHeartbeat, Channel::kStreamMsg},
      {true, true, raftpb::MsgVote, Channel::kStreamMsg},
      {true, false, raftpb::MsgSnap, Channel::kPipeline},
      {true, false, raftpb::MsgApp, Channel::kStreamMsgAppV2},
      {true, false, raftpb::MsgProp, Channel::kPipeline},
      {true, false, raftpb::MsgHeartbeat, Channel::kPipeline},
      {false, true, raftpb::MsgSnap, Channel::kPipeline},
      {false, true, raftpb::MsgApp, Channel::kStreamMsg},
      {false, true, raftpb::MsgProp, Channel::kStreamMsg},
      {false, true, raftpb::MsgAppResp, Channel::kStreamMsg},
      {false, false, raftpb::MsgSnap, Channel::kPipeline},
      {false, false, raftpb::MsgApp, Channel::kPipeline},
      {false, false, raftpb::MsgProp, Channel::kPipeline},
      {false, false, raftpb::MsgHeartbeat, Channel::kPipeline},
  };
  for (const Row& r : rows) {
    factory_.msgapp_v2->SetWorking(r.v2_working);
    factory_.message->SetWorking(r.v3_working);
    raftpb::Message m = Msg(r.type);
    EXPECT_EQ(peer_->Pick(m), r.want)
        << "v2=" << r.v2_working << " v3=" << r.v3_working << " "
        << raftpb::MessageType_Name(r.type) << " got " << ChannelName(peer_->Pick(m));
  }
  EXPECT_STREQ(ChannelName(Channel::kStreamMsgAppV2), "streamMsgAppV2");
  EXPECT_STREQ(ChannelName(Channel::kStreamMsg), "streamMsg");
  EXPECT_STREQ(ChannelName(Channel::kPipeline), "pipeline");
}

TEST_F(PeerTest, SendFallsBackAsWritersStopWorking) {
  std::unique_ptr<OutgoingConn> v2 = std::make_unique<FakeConn>(StreamType::kMsgAppV2);
  std::unique_ptr<OutgoingConn> v3 = std::make_unique<FakeConn>(StreamType::kMessage);
  ASSERT_TRUE(peer_->AttachOutgoingConn(std::move(v2)).ok());
  ASSERT_TRUE(peer_->AttachOutgoingConn(std::move(v3)).ok());

  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgApp, 1)), Peer::SendOutcome::kQueued);
  factory_.msgapp_v2->SetWorking(false);  // v2 stream lost
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgApp, 2)), Peer::SendOutcome::kQueued);
  factory_.message->SetWorking(false);  // v3 stream lost too
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgApp, 3)), Peer::SendOutcome::kQueued);

  auto on_v2 = factory_.msgapp_v2->Take();
  auto on_v3 = factory_.message->Take();
  auto on_pipe = factory_.pipeline->Take();
  ASSERT_EQ(on_v2.size(), 1u);
  ASSERT_EQ(on_v3.size(), 1u);
  ASSERT_EQ(on_pipe.size(), 1u);
  EXPECT_EQ(on_v2[0].index(), 1u);
  EXPECT_EQ(on_v3[0].index(), 2u);
  EXPECT_EQ(on_pipe[0].index(), 3u);
  PeerStats s = peer_->stats();
  EXPECT_EQ(s.sent[0], 1u);
  EXPECT_EQ(s.sent[1], 1u);
  EXPECT_EQ(s.sent[2], 1u);
  EXPECT_TRUE(raft_.unreachable().empty());
}

TEST_F(PeerTest, PauseDropsSendsAndInboundResumeRestoresBoth) {
  peer_->Pause();
  EXPECT_TRUE(peer_->paused());
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgHeartbeat)), Peer::SendOutcome::kPaused);
  EXPECT_EQ(peer_->inbound().Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kPaused);
  EXPECT_EQ(factory_.pipeline->size(), 0u);
  EXPECT_TRUE(raft_.unreachable().empty());  // a paused drop is silent

  peer_->Resume();
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgHeartbeat)), Peer::SendOutcome::kQueued);
  EXPECT_EQ(peer_->inbound().Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kQueued);
  EXPECT_EQ(factory_.pipeline->size(), 1u);
  ASSERT_TRUE(raft_.WaitForMessages(1));
  PeerStats s = peer_->stats();
  EXPECT_EQ(s.dropped_paused, 1u);
  EXPECT_EQ(s.inbound_dropped_paused, 1u);
  EXPECT_EQ(s.received, 1u);
}

// The pipeline is never drained here: every send past its 64 slots must come
// back at once with exactly one report.
TEST_F(PeerTest, FullChannelReportsEachDropWithoutBlocking) {
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(peer_->Send(Msg(raftpb::MsgHeartbeat, i)), Peer::SendOutcome::kQueued);
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(peer_->Send(Msg(raftpb::MsgHeartbeat, 100 + i)), Peer::SendOutcome::kFull);
  }
  EXPECT_EQ(raft_.unreachable(), std::vector<uint64_t>(10, kRemote));
  EXPECT_TRUE(raft_.snapshot_reports().empty());

  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgSnap)), Peer::SendOutcome::kFull);
  EXPECT_EQ(raft_.unreachable().size(), 11u);
  auto reports = raft_.snapshot_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], std::make_pair(kRemote, SnapshotStatus::kFailure));
  EXPECT_EQ(peer_->stats().dropped[static_cast<int>(Channel::kPipeline)], 11u);
}

TEST_F(PeerTest, FullStreamReportsLikePipeline) {
  Make(FakeChannelFactory(/*stream_capacity=*/2, /*pipeline_capacity=*/64));
  factory_.message->SetWorking(true);
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgVote)), Peer::SendOutcome::kQueued);
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgVote)), Peer::SendOutcome::kQueued);
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgVote)), Peer::SendOutcome::kFull);
  EXPECT_EQ(raft_.unreachable().size(), 1u);
  EXPECT_EQ(peer_->stats().dropped[static_cast<int>(Channel::kStreamMsg)], 1u);
  EXPECT_EQ(factory_.pipeline->size(), 0u);  // no silent fallback on full
}

TEST_F(PeerTest, BlockedProposalDoesNotDelayHeartbeat) {
  raft_.BlockType(raftpb::MsgProp);
  ASSERT_EQ(peer_->inbound().Deliver(Msg(raftpb::MsgProp)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft_.WaitForProcessing(raftpb::MsgProp));
  ASSERT_EQ(peer_->inbound().Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft_.WaitForMessages(1));
  EXPECT_EQ(raft_.messages()[0].type(), raftpb::MsgHeartbeat);
  raft_.Unblock();
  ASSERT_TRUE(raft_.WaitForMessages(2));
  EXPECT_EQ(raft_.messages()[1].type(), raftpb::MsgProp);
}

TEST_F(PeerTest, AttachRoutesByTypeReplacesAndRejects) {
  std::atomic<int> closes{0};
  ASSERT_TRUE(
      peer_->AttachOutgoingConn(std::make_unique<FakeConn>(StreamType::kMessage, &closes)).ok());
  EXPECT_EQ(factory_.message->attaches(), 1);
  EXPECT_EQ(factory_.msgapp_v2->attaches(), 0);
  EXPECT_TRUE(factory_.message->Working());
  // A newer conn of the same type replaces (and closes) the old one.
  ASSERT_TRUE(
      peer_->AttachOutgoingConn(std::make_unique<FakeConn>(StreamType::kMessage, &closes)).ok());
  EXPECT_EQ(closes.load(), 1);
  ASSERT_TRUE(
      peer_->AttachOutgoingConn(std::make_unique<FakeConn>(StreamType::kMsgAppV2, &closes)).ok());
  EXPECT_EQ(factory_.msgapp_v2->attaches(), 1);

  // Unknown type: rejected and closed.
  auto bogus = std::make_unique<FakeConn>(static_cast<StreamType>(7), &closes);
  EXPECT_EQ(peer_->AttachOutgoingConn(std::move(bogus)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(closes.load(), 2);

  peer_->Stop();  // writers close their conns
  EXPECT_EQ(closes.load(), 4);
  // After stop: rejected and closed.
  EXPECT_EQ(
      peer_->AttachOutgoingConn(std::make_unique<FakeConn>(StreamType::kMessage, &closes)).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(closes.load(), 5);
}

TEST_F(PeerTest, SnapshotsBypassPauseAndFailOnceStopped) {
  int done_ok = 0, done_fail = 0;
  auto snap = [&] {
    SnapshotMessage s;
    s.message = Msg(raftpb::MsgSnap);
    s.on_done = [&](bool ok) { ++(ok ? done_ok : done_fail); };
    return s;
  };
  peer_->Pause();
  peer_->SendSnapshot(snap());
  EXPECT_EQ(factory_.snapshot->held(), 1u);
  factory_.snapshot->CompleteAll(&raft_, kRemote, true);
  EXPECT_EQ(done_ok, 1);

  peer_->Stop();
  peer_->SendSnapshot(snap());
  EXPECT_EQ(done_fail, 1);
  auto reports = raft_.snapshot_reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].second, SnapshotStatus::kFailure);
}

TEST_F(PeerTest, UpdateValidatesAndResetsPicker) {
  peer_->picker().Unreachable(peer_->picker().Pick());
  ASSERT_TRUE(peer_->Update({"http://127.0.0.1:9", "http://127.0.0.1:8"}).ok());
  EXPECT_EQ(peer_->picker().Pick(), "http://127.0.0.1:8");
  EXPECT_EQ(peer_->Update({"127.0.0.1:9"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(peer_->picker().Pick(), "http://127.0.0.1:8");  // unchanged
}

TEST(PeerCreateTest, RejectsBadArguments) {
  FakeRaft raft;
  FakeChannelFactory f;
  EXPECT_EQ(Peer::Create(1, 2, {"nope"}, &raft, f).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Peer::Create(1, 0, {"http://a:1"}, &raft, f).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Peer::Create(1, 2, {"http://a:1"}, nullptr, f).status().code(),
            absl::StatusCode::kInvalidArgument);
  PeerOptions zero;
  zero.recv_buffer_size = 0;
  EXPECT_EQ(Peer::Create(1, 2, {"http://a:1"}, &raft, f, zero).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PeerTest, StopWhileSendingFromSeveralThreads) {
  factory_.message->SetWorking(true);
  std::atomic<bool> go{false};
  std::atomic<int> queued{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (;;) {
        auto out = peer_->Send(Msg(t % 2 ? raftpb::MsgApp : raftpb::MsgHeartbeat));
        if (out == Peer::SendOutcome::kStopped) return;
        if (out == Peer::SendOutcome::kQueued) queued.fetch_add(1);
        peer_->inbound().Deliver(Msg(raftpb::MsgAppResp));
      }
    });
  }
  go.store(true);
  while (queued.load() < 1000) std::this_thread::yield();
  peer_->Stop();
  for (auto& s : senders) s.join();
  EXPECT_TRUE(factory_.message->stopped());
  EXPECT_TRUE(factory_.msgapp_v2->stopped());
  EXPECT_TRUE(factory_.pipeline->stopped());
  EXPECT_TRUE(factory_.snapshot->stopped());
  ASSERT_EQ(factory_.readers.size(), 2u);
  for (auto* r : factory_.readers) EXPECT_TRUE(r->stopped());
  EXPECT_EQ(peer_->Send(Msg(raftpb::MsgApp)), Peer::SendOutcome::kStopped);
  peer_->Stop();  // idempotent
}

}  // namespace
}  // namespace raftgrpc
