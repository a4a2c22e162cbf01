// End-to-end check of the generated service: a real gRPC server on
// 127.0.0.1:0 and stubs exercising every RPC kind (bidi streams, unary
// pipeline, client-streaming snapshot, unary probe).
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"

namespace raftgrpc::v1 {
namespace {

class EchoService final : public RaftTransport::Service {
 public:
  // Sends two frames, as a writer would, then ends the stream.
  grpc::Status MessageStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<MessageFrame, StreamControl>* stream) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      peer_from_ = FindMeta(*ctx, "x-server-from");
    }
    for (int f = 0; f < 2; ++f) {
      MessageFrame frame;
      for (int i = 0; i < 3; ++i) {
        raftpb::Message* m = frame.add_messages();
        m->set_type(raftpb::MsgHeartbeat);
        m->set_to(1);
        m->set_from(2);
        m->set_commit(f * 3 + i);
      }
      if (!stream->Write(frame)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "write");
    }
    return grpc::Status::OK;
  }

  grpc::Status MsgAppV2Stream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<MsgAppV2Frame, StreamControl>* stream) override {
    MsgAppV2Frame frame;
    frame.add_records()->mutable_link_heartbeat();
    AppEntries* ae = frame.add_records()->mutable_app_entries();
    ae->add_entries()->set_data("e");
    ae->set_commit(9);
    stream->Write(frame);
    return grpc::Status::OK;
  }

  grpc::Status Pipeline(grpc::ServerContext* ctx, const PipelineRequest* req,
                        PipelineResponse*) override {
    if (FindMeta(*ctx, "x-etcd-cluster-id") != "1000") {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
    }
    std::lock_guard<std::mutex> l(mu_);
    last_pipeline_ = req->message();
    return grpc::Status::OK;
  }

  grpc::Status Snapshot(grpc::ServerContext*, grpc::ServerReader<SnapshotFrame>* reader,
                        SnapshotResponse*) override {
    SnapshotFrame frame;
    uint64_t want = 0;
    std::string data;
    bool trailer = false;
    while (reader->Read(&frame)) {
      switch (frame.kind_case()) {
        case SnapshotFrame::kHeader:
          want = frame.header().data_size();
          break;
        case SnapshotFrame::kChunk:
          data += frame.chunk();
          break;
        case SnapshotFrame::kTrailer:
          trailer = true;
          break;
        default:
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty frame");
      }
    }
    if (!trailer || data.size() != want) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, "truncated");
    }
    std::lock_guard<std::mutex> l(mu_);
    snapshot_data_ = data;
    return grpc::Status::OK;
  }

  grpc::Status Probe(grpc::ServerContext*, const ProbeRequest*, ProbeResponse* resp) override {
    resp->set_ok(true);
    resp->set_now_unix_nanos(absl::GetCurrentTimeNanos());
    return grpc::Status::OK;
  }

  static std::string FindMeta(const grpc::ServerContext& ctx, const std::string& key) {
    auto it = ctx.client_metadata().find(key);
    return it == ctx.client_metadata().end() ? ""
                                             : std::string(it->second.data(), it->second.size());
  }

  // Written on gRPC threads, read by the test: gRPC's own ordering is
  // invisible to TSan (uninstrumented libgrpc), so lock.
  std::mutex mu_;
  std::string peer_from_;
  raftpb::Message last_pipeline_;
  std::string snapshot_data_;
  std::string from() {
    std::lock_guard<std::mutex> l(mu_);
    return peer_from_;
  }
  uint64_t last_term() {
    std::lock_guard<std::mutex> l(mu_);
    return last_pipeline_.term();
  }
  std::string snapshot() {
    std::lock_guard<std::mutex> l(mu_);
    return snapshot_data_;
  }
};

class TransportServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                       grpc::InsecureChannelCredentials());
    stub_ = RaftTransport::NewStub(channel);
  }
  void TearDown() override { server_->Shutdown(); }

  EchoService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RaftTransport::Stub> stub_;
};

TEST_F(TransportServiceTest, MessageStreamDeliversBatchedFramesInOrder) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-server-from", "a1");
  auto stream = stub_->MessageStream(&ctx);
  stream->WritesDone();
  MessageFrame frame;
  std::vector<uint64_t> commits;
  while (stream->Read(&frame)) {
    for (const auto& m : frame.messages()) commits.push_back(m.commit());
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(commits, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(service_.from(), "a1");
}

TEST_F(TransportServiceTest, MsgAppV2StreamCarriesRecords) {
  grpc::ClientContext ctx;
  auto stream = stub_->MsgAppV2Stream(&ctx);
  stream->WritesDone();
  MsgAppV2Frame frame;
  ASSERT_TRUE(stream->Read(&frame));
  ASSERT_EQ(frame.records_size(), 2);
  EXPECT_TRUE(frame.records(0).has_link_heartbeat());
  EXPECT_EQ(frame.records(1).app_entries().commit(), 9u);
  EXPECT_FALSE(stream->Read(&frame));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(TransportServiceTest, PipelineIsUnaryWithMetadataValidation) {
  PipelineRequest req;
  req.mutable_message()->set_type(raftpb::MsgVote);
  req.mutable_message()->set_term(42);
  PipelineResponse resp;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-etcd-cluster-id", "1000");
    ASSERT_TRUE(stub_->Pipeline(&ctx, req, &resp).ok());
    EXPECT_EQ(service_.last_term(), 42u);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-etcd-cluster-id", "bad");
    grpc::Status s = stub_->Pipeline(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(), "cluster ID mismatch");
  }
}

TEST_F(TransportServiceTest, SnapshotIsClientStreaming) {
  grpc::ClientContext ctx;
  SnapshotResponse resp;
  auto writer = stub_->Snapshot(&ctx, &resp);
  SnapshotFrame frame;
  frame.mutable_header()->mutable_message()->set_type(raftpb::MsgSnap);
  frame.mutable_header()->set_data_size(6);
  ASSERT_TRUE(writer->Write(frame));
  frame.set_chunk("abc");
  ASSERT_TRUE(writer->Write(frame));
  frame.set_chunk("def");
  ASSERT_TRUE(writer->Write(frame));
  frame.mutable_trailer()->set_crc32c(0);
  ASSERT_TRUE(writer->Write(frame));
  ASSERT_TRUE(writer->WritesDone());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(service_.snapshot(), "abcdef");
}

TEST_F(TransportServiceTest, ProbeAnswersWithServerClock) {
  grpc::ClientContext ctx;
  ProbeResponse resp;
  int64_t before = absl::GetCurrentTimeNanos();
  ASSERT_TRUE(stub_->Probe(&ctx, ProbeRequest(), &resp).ok());
  EXPECT_TRUE(resp.ok());
  EXPECT_GE(resp.now_unix_nanos(), before);
}

}  // namespace
}  // namespace raftgrpc::v1
