// TLS and mTLS: certificates generated at test time by
// testing/gen_test_certs.sh (openssl); real servers on 127.0.0.1:0.
#include "transport/tls.h"

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/log_lines.h"
#include "testing/snapshot_file.h"
#include "testing/status_macros.h"
#include "transport/internal/metadata.h"
#include "transport/transport.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::FakeRaft;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    const std::string script =
        absl::StrCat(std::getenv("TEST_SRCDIR"), "/raft_grpc_transport/testing/gen_test_certs.sh");
    ASSERT_EQ(std::system(absl::StrCat(script, " ", *dir_).c_str()), 0) << "openssl failed";
  }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  static TlsOptions Member(uint64_t id, bool mtls = true) {
    TlsOptions t;
    t.cert_file = F(absl::StrCat("member-", id, ".pem"));
    t.key_file = F(absl::StrCat("member-", id, ".key"));
    t.ca_file = F("ca.pem");
    t.require_client_cert = mtls;
    t.verify_member_identity = mtls;
    return t;
  }

  // A Pipeline call claiming to come from member `from`, with `creds`.
  static grpc::Status Post(int port, std::shared_ptr<grpc::ChannelCredentials> creds,
                           uint64_t from) {
    auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), creds);
    auto stub = v1::RaftTransport::NewStub(ch);
    grpc::ClientContext ctx;
    TransportOptions o;
    o.local_id = from;
    o.cluster_id = 0x1000;
    AddIdentityMetadata(&ctx, o, 1);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::PipelineRequest req;
    req.mutable_message()->set_type(raftpb::MsgHeartbeat);
    req.mutable_message()->set_from(from);
    req.mutable_message()->set_to(1);
    v1::PipelineResponse resp;
    return stub->Pipeline(&ctx, req, &resp);
  }

  static std::shared_ptr<grpc::ChannelCredentials> Client(const std::string& cert,
                                                          const std::string& key) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Read(F("ca.pem"));
    if (!cert.empty()) {
      o.pem_cert_chain = Read(F(cert));
      o.pem_private_key = Read(F(key));
    }
    return grpc::SslCredentials(o);
  }

  static std::string* dir_;
};
std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, OptionsAreValidated) {
  TlsOptions t;
  t.require_client_cert = true;
  EXPECT_EQ(t.Validate().code(), absl::StatusCode::kInvalidArgument);  // no files
  t = Member(1);
  t.ca_file.clear();
  EXPECT_EQ(t.Validate().code(), absl::StatusCode::kInvalidArgument);  // mTLS without CA
  t = Member(1);
  t.key_file.clear();
  EXPECT_EQ(t.Validate().code(), absl::StatusCode::kInvalidArgument);
  t = Member(1, false);
  t.verify_member_identity = true;
  EXPECT_EQ(t.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Member(1).Validate().ok());

  // Unreadable or non-PEM files fail Create, naming the file.
  FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 1;
  o.tls = Member(1);
  o.tls.ca_file = F("missing.pem");
  auto t1 = Transport::Create(o, &raft);
  EXPECT_EQ(t1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t1.status().message().find("missing.pem"), std::string::npos);
  o.tls.ca_file = F("ca.srl");
  EXPECT_EQ(Transport::Create(o, &raft).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsTest, MutualTlsClusterExchangesEverything) {
  TransportOptions base;
  base.tls = Member(1);  // replaced per node; enables https URLs
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Cluster> c,
      Cluster::Start(3, base, [](uint64_t id, TransportOptions& o) { o.tls = Member(id); }));
  Cluster& cl = *c;
  ASSERT_TRUE(cl.WaitAllStreams());
  for (uint64_t from : cl.ids()) {
    for (uint64_t to : cl.ids()) {
      if (from == to) continue;
      raftpb::Message m;
      m.set_type(raftpb::MsgHeartbeat);
      m.set_from(from);
      m.set_to(to);
      m.set_commit(from * 10 + to);
      cl.t(from).Send(m);
    }
  }
  for (uint64_t id : cl.ids()) ASSERT_TRUE(cl.raft(id).WaitForMessages(2)) << id;
  for (uint64_t id : cl.ids()) {
    for (const raftpb::Message& m : cl.raft(id).messages()) {
      EXPECT_EQ(m.commit(), m.from() * 10 + id);
    }
  }
  EXPECT_EQ(cl.t(1).Metrics().totals.streams_rejected, 0u);

  // A snapshot over its own TLS channel.
  const std::string path = F("snap.data");
  { std::ofstream(path) << std::string(300 * 1024, 'z'); }
  auto snap = testing::FileSnapshot(1, 2, 9, path);
  ASSERT_TRUE(snap.ok());
  cl.t(1).SendSnapshot(*std::move(snap));
  ASSERT_TRUE(cl.raft(1).WaitForSnapshotReports(1));
  EXPECT_EQ(cl.raft(1).snapshot_reports()[0].second, SnapshotStatus::kFinish);
  ASSERT_EQ(cl.raft(2).snapshot_paths().size(), 1u);
  EXPECT_EQ(Read(cl.raft(2).snapshot_paths()[0]), Read(path));
}

TEST_F(TlsTest, RejectionsHavePreciseCodes) {
  FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 0x1000;
  o.tls = Member(1);
  auto t = Transport::Create(o, &raft);
  ASSERT_TRUE(t.ok()) << t.status();
  auto port = (*t)->Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();

  // The right certificate for the claimed member.
  EXPECT_EQ(Post(*port, Client("member-2.pem", "member-2.key"), 2).error_code(),
            grpc::StatusCode::OK);
  // No client certificate.
  grpc::Status s = Post(*port, Client("", ""), 2);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  // A valid certificate of another member than the one claimed.
  s = Post(*port, Client("member-3.pem", "member-3.key"), 2);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("member-2"), std::string::npos) << s.error_message();
  // A certificate from another CA: the handshake fails, no RPC starts.
  s = Post(*port, Client("rogue-1.pem", "rogue-1.key"), 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // Plaintext against a TLS server.
  s = Post(*port, grpc::InsecureChannelCredentials(), 2);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // Only the one good request reached Raft.
  ASSERT_TRUE(raft.WaitForMessages(1));
  EXPECT_EQ(raft.message_count(), 1u);

  // With the identity check off, any CA-signed certificate may claim any ID.
  FakeRaft raft2;
  o.tls.verify_member_identity = false;
  auto t2 = Transport::Create(o, &raft2);
  ASSERT_TRUE(t2.ok());
  auto port2 = (*t2)->Serve("127.0.0.1:0");
  ASSERT_TRUE(port2.ok());
  EXPECT_TRUE(Post(*port2, Client("member-3.pem", "member-3.key"), 2).ok());
  EXPECT_EQ(Post(*port2, Client("", ""), 2).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TlsTest, StreamsFromAnImpostorAreRefused) {
  // Node 2 presents member-3's certificate: node 1 refuses the streams node
  // 2 dials, so node 1 never gets a working writer to 2.
  TransportOptions base;
  base.tls = Member(1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c,
                       Cluster::Start(2, base, [](uint64_t id, TransportOptions& o) {
                         o.tls = Member(id == 2 ? 3 : id);
                       }));
  Cluster& cl = *c;
  ASSERT_TRUE(testing::WaitUntil([&] { return cl.t(1).Metrics().totals.streams_rejected >= 2; }));
  EXPECT_FALSE(cl.StreamUp(1, 2));
  EXPECT_FALSE(cl.MsgAppV2Up(1, 2));
}

// The dialling side checks the server too: node 1 is told that member 2
// lives at node 3's URL (a stolen URL, a changed DNS record). Node 3 holds a
// valid certificate of the same CA, but it names member 3: node 1's TLS
// handshake fails, so none of the traffic meant for 2 reaches node 3 (before:
// node 3 received node 1's stream dials and pipeline posts for member 2 and
// only refused them on their headers).
TEST_F(TlsTest, ADialledServerMustBeTheMemberMeant) {
  TransportOptions base;
  base.tls = Member(1);
  testing::LogLines log1;  // node 1's; outlives the cluster
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c,
                       Cluster::Start(3, base, [&](uint64_t id, TransportOptions& o) {
                         o.tls = Member(id);
                         if (id == 1) o.log = log1.Sink();
                       }));
  Cluster& cl = *c;
  ASSERT_TRUE(cl.WaitAllStreams());
  const TransportCounters before = cl.t(3).Metrics().totals;
  ASSERT_TRUE(cl.t(1).UpdatePeer(2, {cl.node(3).url}).ok());
  // Node 2 goes away, so its streams end and are redialled at node 3.
  cl.StopNode(2);
  ASSERT_TRUE(testing::WaitUntil([&] { return cl.t(1).ActiveSince(2) == absl::Time(); }));
  // Messages for 2 go by the pipeline to node 3, each refused in the
  // handshake: waited for (the peer was active a moment ago), then reported.
  for (uint64_t i = 1; i <= 5; ++i) {
    raftpb::Message m;
    m.set_type(raftpb::MsgHeartbeat);
    m.set_from(1);
    m.set_to(2);
    m.set_commit(i);
    cl.t(1).Send(m);
  }
  ASSERT_TRUE(cl.raft(1).WaitForUnreachable(5, absl::Seconds(20)));
  const TransportCounters after = cl.t(3).Metrics().totals;
  EXPECT_EQ(after.streams_rejected, before.streams_rejected);
  EXPECT_EQ(after.pipeline_rejected, before.pipeline_rejected);
  EXPECT_EQ(after.pipeline_received, before.pipeline_received);
  for (const raftpb::Message& m : cl.raft(3).messages()) EXPECT_NE(m.to(), 2u);
  // Node 1's log names why, though peer 2 was inactive already (its
  // streams broke when node 2 stopped): once per channel, not per dial.
  EXPECT_TRUE(testing::WaitUntil([&] {
    return log1.Has("peer 2 is inactive: failed to dial 2 on stream MsgApp v2 (") &&
           log1.Has("does not name member 2");
  })) << log1.Joined();

  // The reason, as a caller sees it: node 1's credentials for member 2
  // against node 3.
  ASSERT_OK_AND_ASSIGN(MemberChannelCredentials creds, MakeMemberChannelCredentials(Member(1)));
  grpc::Status s = Post(cl.node(3).port, creds(2), 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("does not name member 2"), std::string::npos)
      << s.error_message();
  // Member 3's credentials pass the handshake (node 3 then refuses the
  // body, addressed to member 1, on its own).
  s = Post(cl.node(3).port, creds(3), 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

}  // namespace
}  // namespace raftgrpc
