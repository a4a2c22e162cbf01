// Server-side validation in etcd's order, with the exact status codes, over
// raw stubs against a real transport on 127.0.0.1.
#include "transport/internal/metadata.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/messages.h"
#include "testing/status_macros.h"
#include "transport/internal/wire.h"
#include "transport/stream/stream_reader.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

struct Meta {
  std::string from = "2";
  std::string to = "1";
  std::string cluster = "1000";
  std::string version = kServerVersion;
  std::string min_version;  // x-min-cluster-version, when set
  std::string peer_urls;
};

void Apply(grpc::ClientContext* ctx, const Meta& m) {
  if (!m.from.empty()) ctx->AddMetadata(kMetaFrom, m.from);
  if (!m.to.empty()) ctx->AddMetadata(kMetaTo, m.to);
  ctx->AddMetadata(kMetaClusterId, m.cluster);
  ctx->AddMetadata(kMetaServerVersion, m.version);
  if (!m.min_version.empty()) ctx->AddMetadata(kMetaMinClusterVersion, m.min_version);
  if (!m.peer_urls.empty()) ctx->AddMetadata(kMetaPeerUrls, m.peer_urls);
}

class MetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(c_, Cluster::Start(2));
    auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", c_->node(1).port),
                                  grpc::InsecureChannelCredentials());
    stub_ = v1::RaftTransport::NewStub(ch);
    generic_ = std::make_unique<grpc::GenericStub>(ch);
  }

  grpc::Status Stream(const Meta& m, grpc::ClientContext* ctx) {
    Apply(ctx, m);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto s = stub_->MessageStream(ctx);
    v1::MessageFrame f;
    s->Read(&f);  // rejected streams end at once
    return s->Finish();
  }

  grpc::Status Pipeline(const Meta& m, const raftpb::Message& msg) {
    grpc::ClientContext ctx;
    Apply(&ctx, m);
    v1::PipelineRequest req;
    *req.mutable_message() = msg;
    v1::PipelineResponse resp;
    return stub_->Pipeline(&ctx, req, &resp);
  }

  std::unique_ptr<Cluster> c_;
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  std::unique_ptr<grpc::GenericStub> generic_;
};

raftpb::Message Heartbeat() { return testing::Heartbeat(2, 1); }

// A member speaks only for itself: a pipeline message whose body names
// another sender (even the receiver itself) or another receiver is refused,
// however valid the header; none of them reaches Raft.
TEST_F(MetadataTest, PipelineBodyMustAgreeWithTheCaller) {
  Meta m;  // from 2 (a peer) to 1
  grpc::Status s = Pipeline(m, testing::Heartbeat(3, 1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "message from 3 in a request from 2");
  s = Pipeline(m, testing::Heartbeat(1, 1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  s = Pipeline(m, testing::Heartbeat(2, 7));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "message to 7 sent to member 1");
  EXPECT_TRUE(Pipeline(m, Heartbeat()).ok());
  ASSERT_TRUE(c_->raft(1).WaitForMessages(1));
  for (const raftpb::Message& got : c_->raft(1).messages()) {
    EXPECT_EQ(got.from(), 2u);
    EXPECT_EQ(got.to(), 1u);
  }
}

// An accepted stream says which version serves it (etcd's stream response
// carries X-Server-Version).
TEST_F(MetadataTest, AcceptedStreamCarriesTheServerVersion) {
  grpc::ClientContext ctx;
  Apply(&ctx, Meta());
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto s = stub_->MessageStream(&ctx);
  s->WaitForInitialMetadata();
  const auto& md = ctx.GetServerInitialMetadata();
  auto it = md.find(kMetaServerVersion);
  ASSERT_NE(it, md.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), kServerVersion);
  ctx.TryCancel();
  s->Finish();
}

// The pipeline answers after Process, with its outcome (etcd: 500 when
// Process fails, 403 for a removed member).
TEST_F(MetadataTest, PipelineAnswerCarriesProcessOutcome) {
  c_->raft(1).SetProcessError(absl::InternalError("raft says no"));
  grpc::Status s = Pipeline(Meta(), Heartbeat());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(s.error_message().find("raft says no"), std::string::npos) << s.error_message();
  c_->raft(1).SetProcessError(absl::PermissionDeniedError("removed"));
  s = Pipeline(Meta(), Heartbeat());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  c_->raft(1).SetProcessError(absl::OkStatus());
  EXPECT_TRUE(Pipeline(Meta(), Heartbeat()).ok());
}

TEST_F(MetadataTest, ClusterIdMismatchIsFailedPrecondition) {
  Meta m;
  m.cluster = "dead";
  grpc::ClientContext ctx;
  grpc::Status s = Stream(m, &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "cluster ID mismatch");
  s = Pipeline(m, Heartbeat());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "cluster ID mismatch");
}

TEST_F(MetadataTest, IncompatibleVersionIsFailedPrecondition) {
  Meta m;
  m.version = "2.0.0";  // below our minimum cluster version 3.0
  grpc::ClientContext ctx;
  grpc::Status s = Stream(m, &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "incompatible version");
}

// Versions parse strictly: a value that would overflow (2147484.0 made
// major * 1000 + minor overflow an int, and was accepted), or that is not
// major.minor digits, is refused; a missing one still means 2.0, as etcd.
TEST_F(MetadataTest, MalformedVersionsAreInvalidArgument) {
  for (const char* bad : {"2147484.0", "3.5000", "3.x", "-3.0", " 3.5", "3", "3..5", "+3.5"}) {
    Meta m;
    m.min_version = bad;
    EXPECT_EQ(Pipeline(m, Heartbeat()).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    Meta v;
    v.version = bad;
    EXPECT_EQ(Pipeline(v, Heartbeat()).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  Meta ok;
  ok.min_version = "3.0.0-rc.1";
  EXPECT_TRUE(Pipeline(ok, Heartbeat()).ok());
}

TEST_F(MetadataTest, MalformedSenderIsInvalidArgument) {
  for (const char* from : {"", "zz", "0"}) {
    Meta m;
    m.from = from;
    grpc::ClientContext ctx;
    grpc::Status s = Stream(m, &ctx);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << from;
    EXPECT_EQ(s.error_message(), "invalid from");
  }
}

TEST_F(MetadataTest, UnknownSenderIsNotFoundAndBecomesARemote) {
  Meta m;
  m.from = "9";
  m.peer_urls = c_->node(2).url;
  grpc::ClientContext ctx;
  grpc::Status s = Stream(m, &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "error sender not found");
  // etcd's addRemoteFromRequest: 1 can now answer 9 over the pipeline.
  raftpb::Message resp = Heartbeat();
  resp.set_to(9);
  c_->t(1).Send(resp);
  EXPECT_EQ(c_->t(1).Metrics().totals.sent_to_remotes, 1u);
}

TEST_F(MetadataTest, TargetMismatchIsFailedPrecondition) {
  Meta m;
  m.to = "7";
  grpc::ClientContext ctx;
  grpc::Status s = Stream(m, &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "to field mismatch");
}

TEST_F(MetadataTest, RemovedSenderIsPermissionDeniedWithReason) {
  c_->raft(1).SetRemoved(2);
  grpc::ClientContext ctx;
  grpc::Status s = Stream(Meta(), &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(IsRemovedMember(s, ctx));
  EXPECT_EQ(Pipeline(Meta(), Heartbeat()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MetadataTest, OversizeMessageIsResourceExhausted) {
  raftpb::Message big = Heartbeat();
  big.set_context(std::string((2 << 20) + 10, 'x'));  // over the 2 MiB default
  grpc::Status s = Pipeline(Meta(), big);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // A message within the limit still goes through.
  EXPECT_TRUE(Pipeline(Meta(), Heartbeat()).ok());
  ASSERT_TRUE(c_->raft(1).WaitForMessages(1));
}

// A body that does not parse is the sender's bug (proto/README.md's table),
// not gRPC's INTERNAL; the node keeps serving.
TEST_F(MetadataTest, MalformedUnaryBodiesAreInvalidArgument) {
  for (const char* method : {"Pipeline", "SnapshotOffset"}) {
    SCOPED_TRACE(method);
    grpc::ClientContext ctx;
    Apply(&ctx, Meta());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    // Field 1 (the message) claims 2^32 bytes that never come.
    const char garbage[] = "\x0a\xff\xff\xff\xff\x0f\x01\x02";
    grpc::Slice slice(garbage, sizeof(garbage) - 1);
    grpc::ByteBuffer req(&slice, 1);
    grpc::ByteBuffer resp;
    grpc::CompletionQueue cq;
    auto call = generic_->PrepareUnaryCall(
        &ctx, absl::StrCat("/raftgrpc.v1.RaftTransport/", method), req, &cq);
    call->StartCall();
    grpc::Status s;
    call->Finish(&resp, &s, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_EQ(s.error_message(), std::string("malformed ") + (std::string(method) == "Pipeline"
                                                                  ? "pipeline request"
                                                                  : "snapshot offset request"));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  EXPECT_TRUE(Pipeline(Meta(), Heartbeat()).ok());
  ASSERT_TRUE(c_->raft(1).WaitForMessages(1));
  EXPECT_EQ(c_->raft(1).messages().size(), 1u);
}

TEST_F(MetadataTest, UnknownStreamTypeIsUnimplemented) {
  grpc::ClientContext ctx;
  Apply(&ctx, Meta());
  grpc::CompletionQueue cq;
  auto call = generic_->PrepareCall(&ctx, "/raftgrpc.v1.RaftTransport/MsgAppV1Stream", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  grpc::Status s;
  call->Finish(&s, reinterpret_cast<void*>(2));
  void* tag;
  bool ok;
  int done = 0;
  while (done < 2 && cq.Next(&tag, &ok)) ++done;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// A reader told it was removed stops dialling and raises a critical error.
TEST(RemovedMemberTest, ReaderStopsRetryingAndReportsCritical) {
  std::atomic<int> critical{0};
  TransportOptions opts;
  opts.on_critical_error = [&](const absl::Status& s) {
    if (s.code() == absl::StatusCode::kPermissionDenied) critical.fetch_add(1);
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c, Cluster::Start(2, opts));
  ASSERT_TRUE(c->WaitAllStreams());
  c->raft(2).SetRemoved(1);  // 2 now refuses 1
  // Restart 1 so its readers must dial again.
  ASSERT_TRUE(c->RestartNode(1).ok());
  ASSERT_TRUE(WaitUntil([&] { return critical.load() >= 2; }));  // both readers
  int seen = critical.load();
  EXPECT_FALSE(c->StreamUp(2, 1));  // 2 never accepted 1's dial
  // No further retries: the count stays put over many retry intervals.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(critical.load(), seen);
}

}  // namespace
}  // namespace raftgrpc
