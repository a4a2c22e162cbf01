// The pipeline end to end: unary RPCs when no stream works.
#include "transport/pipeline/pipeline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "peer/peer.h"
#include "testing/cluster.h"
#include "testing/fake_raft.h"
#include "testing/messages.h"
#include "transport/transport.h"

namespace raftgrpc {
namespace {

using testing::FakeRaft;
using testing::WaitUntil;

std::unique_ptr<Transport> Make(uint64_t id, FakeRaft* raft, int* port) {
  TransportOptions o;
  o.local_id = id;
  o.cluster_id = 0x1000;
  o.pipeline_timeout = absl::Seconds(2);
  auto t = Transport::Create(o, raft);
  EXPECT_TRUE(t.ok()) << t.status();
  auto p = (*t)->Serve("127.0.0.1:0");
  EXPECT_TRUE(p.ok()) << p.status();
  *port = *p;
  return *std::move(t);
}

std::string Url(int port) { return absl::StrCat("http://127.0.0.1:", port); }

// Nodes 1 and 2, with 2 a peer of 1 (and 1 a peer of 2 when `both`).
struct Pair {
  explicit Pair(bool both = false) {
    t1 = Make(1, &r1, &p1);
    t2 = Make(2, &r2, &p2);
    EXPECT_TRUE(t1->AddPeer(2, {Url(p2)}).ok());
    if (both) {
      EXPECT_TRUE(t2->AddPeer(1, {Url(p1)}).ok());
    }
  }
  FakeRaft r1, r2;
  int p1 = 0, p2 = 0;
  std::unique_ptr<Transport> t1, t2;
};

raftpb::Message Msg(raftpb::MessageType type, uint64_t index) {
  raftpb::Message m = testing::Msg(type, 1, 2);
  m.set_term(2);
  m.set_index(index);
  m.add_entries()->set_data("e");
  return m;
}

// Node 2 does not list 1 as a peer, so it never dials 1's streams: every
// message from 1 must travel by pipeline, and 2 still delivers it.
TEST(PipelineTest, WithNoStreamsEveryMessageTypeArrives) {
  Pair n;
  auto peer = n.t1->GetPeer(2);
  const auto* desc = raftpb::MessageType_descriptor();
  std::vector<raftpb::Message> sent;
  for (int i = 0; i < desc->value_count(); ++i) {
    raftpb::Message m = Msg(static_cast<raftpb::MessageType>(desc->value(i)->number()), i);
    ASSERT_EQ(peer->Pick(m), Channel::kPipeline);
    sent.push_back(m);
    // 4 in flight + 64 queued: 24 messages always fit.
    ASSERT_EQ(peer->Send(m), Peer::SendOutcome::kQueued);
  }
  ASSERT_TRUE(n.r2.WaitForMessages(sent.size()));
  std::map<uint64_t, raftpb::Message> got;
  for (auto& m : n.r2.messages()) got[m.index()] = m;
  for (auto& m : sent) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got[m.index()], m))
        << m.ShortDebugString();
  }
  // MsgSnap over the pipeline is reported finished once 2 accepted it.
  ASSERT_TRUE(n.r1.WaitForSnapshotReports(1));
  EXPECT_EQ(n.r1.snapshot_reports()[0], std::make_pair(uint64_t{2}, SnapshotStatus::kFinish));
  EXPECT_TRUE(n.r1.unreachable().empty());
  // (ActiveSince is not checked: 2 refuses 1's stream dials, since 1 is not
  // its peer, and each refusal deactivates the shared status, as in etcd.)
}

TEST(PipelineTest, ReceiverDownYieldsOneReportPerMessage) {
  FakeRaft r1;
  int p1;
  auto t1 = Make(1, &r1, &p1);
  // Nothing listens on p1 + ... : use a port we just freed.
  int dead;
  {
    FakeRaft tmp;
    auto t = Make(9, &tmp, &dead);
    t->Stop();
  }
  ASSERT_TRUE(t1->AddPeer(2, {Url(dead)}).ok());
  for (int i = 0; i < 10; ++i) t1->Send(Msg(raftpb::MsgHeartbeat, i));
  t1->Send(Msg(raftpb::MsgSnap, 99));
  ASSERT_TRUE(r1.WaitForUnreachable(11));
  ASSERT_TRUE(r1.WaitForSnapshotReports(1));
  EXPECT_EQ(r1.snapshot_reports()[0].second, SnapshotStatus::kFailure);
  auto stats = t1->GetPeer(2)->stats();
  EXPECT_EQ(stats.sent[static_cast<int>(Channel::kPipeline)], 11u);
  t1->Stop();
  // Exactly one report per message: nothing more after the pipeline stopped.
  EXPECT_EQ(r1.unreachable().size(), 11u);
  EXPECT_EQ(r1.snapshot_reports().size(), 1u);
  EXPECT_EQ(t1->ActiveSince(2), absl::Time());
}

// Once skipped under TSan: it crashed about 1 run in 5 inside libgrpc while
// the server shut down. The cause was ours: a call object deleted after
// Stop had returned dropped the last grpc::Channel reference on gRPC's
// callback thread (grpc/grpc#32584). 60 TSan runs after the fix: no crash.
TEST(PipelineTest, StopCancelsCallsInFlight) {
  Pair n;
  for (int i = 0; i < 60; ++i) n.t1->Send(Msg(raftpb::MsgVote, i));
  absl::Time start = absl::Now();
  ASSERT_TRUE(n.t1->RemovePeer(2).ok());  // joins the pipeline
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(n.t1->RemovePeer(2).code(), absl::StatusCode::kNotFound);
}

// A MsgSnap still in flight when RemovePeer cancels the pipeline is a
// failed snapshot to Raft (etcd reports it), not silence: Raft's snapshot
// state for that follower waits for an outcome.
TEST(PipelineTest, MsgSnapCancelledByRemovePeerIsReportedAsFailure) {
  // A "peer" that accepts TCP connections and never says a word: the call
  // stays in flight until its deadline.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  FakeRaft r1;
  int p1;
  auto t1 = Make(1, &r1, &p1);
  ASSERT_TRUE(t1->AddPeer(2, {Url(ntohs(addr.sin_port))}).ok());
  t1->Send(Msg(raftpb::MsgSnap, 7));
  ASSERT_EQ(t1->GetPeer(2)->stats().sent[static_cast<int>(Channel::kPipeline)], 1u);
  ASSERT_TRUE(t1->RemovePeer(2).ok());  // cancels the call in flight
  const auto reports = r1.snapshot_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].first, 2u);
  EXPECT_EQ(reports[0].second, SnapshotStatus::kFailure);
  EXPECT_FALSE(r1.unreachable().empty());
  ::close(fd);
}

// A MsgSnap sent through the pipeline is reported kFinish only once the
// receiver's Raft has processed it: the answer waits for Process.
TEST(PipelineTest, MsgSnapFinishesOnlyAfterTheReceiverProcessedIt) {
  Pair n(/*both=*/true);
  n.r2.BlockType(raftpb::MsgSnap);
  n.t1->Send(Msg(raftpb::MsgSnap, 3));
  ASSERT_TRUE(n.r2.WaitForProcessing(raftpb::MsgSnap));
  EXPECT_TRUE(n.r1.snapshot_reports().empty());  // not while Process runs
  n.r2.Unblock();
  ASSERT_TRUE(n.r1.WaitForSnapshotReports(1));
  EXPECT_EQ(n.r1.snapshot_reports()[0].second, SnapshotStatus::kFinish);
}

}  // namespace
}  // namespace raftgrpc
