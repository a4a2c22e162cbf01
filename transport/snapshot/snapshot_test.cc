// Snapshots end to end: client-streaming RPC, real files, real servers.
#include "transport/snapshot.h"

#include <dirent.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "peer/peer.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/messages.h"
#include "testing/status_macros.h"
#include "transport/internal/wire.h"
#include "transport/server/snapshot_receiver.h"
#include "transport/snapshot/crc32c.h"
#include "transport/snapshot/snapshot_sender.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    closedir(d);
  }
  return out;
}

// No snapshot, at most one kept prefix: its file and its record.
bool OnlyAKeptPrefix(const std::string& dir) {
  const std::vector<std::string> files = Files(dir);
  for (const std::string& f : files) {
    if (f.rfind("raftgrpc-recv-", 0) != 0 && f.rfind("raftgrpc-partial-", 0) != 0) return false;
  }
  return files.size() <= 2;
}

// Writes `size` pseudo-random bytes; returns their CRC-32C.
uint32_t MakeFile(const std::string& path, uint64_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::string buf(1 << 20, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL ^ size;
  uint32_t crc = 0;
  for (uint64_t done = 0; done < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    for (size_t i = 0; i < n; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(&buf[i], &x, std::min<size_t>(8, n - i));
    }
    crc = Crc32cExtend(crc, buf.data(), n);
    std::fwrite(buf.data(), 1, n, f);
    done += n;
  }
  std::fclose(f);
  return crc;
}

uint32_t FileCrc(const std::string& path, uint64_t* size) {
  std::ifstream f(path, std::ios::binary);
  std::string buf(1 << 20, '\0');
  uint32_t crc = 0;
  *size = 0;
  while (f) {
    f.read(&buf[0], buf.size());
    crc = Crc32cExtend(crc, buf.data(), f.gcount());
    *size += f.gcount();
  }
  return crc;
}

raftpb::Message SnapMsg(uint64_t index) {
  raftpb::Message m = testing::SnapMsg(1, 2, 3, index);
  m.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(1);
  return m;
}

// Data from memory that can fail or block at a given offset; records the
// largest single read it was asked for.
class TestData : public SnapshotData {
 public:
  TestData(uint64_t size, uint64_t fail_at = UINT64_MAX, uint64_t block_at = UINT64_MAX)
      : size_(size), fail_at_(fail_at), block_at_(block_at) {}
  uint64_t size() const override { return size_; }
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (max_read_out_ != nullptr) *max_read_out_ = std::max(*max_read_out_, n);
    if (pos_ >= fail_at_) return absl::DataLossError("disk on fire");
    if (pos_ >= block_at_) {
      std::unique_lock<std::mutex> l(mu_);
      blocked_ = true;
      cv_.notify_all();
      cv_.wait(l, [&] { return released_; });
    }
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, size_ - pos_));
    std::memset(buf, 'd', k);
    pos_ += k;
    return k;
  }
  bool WaitBlocked() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(10), [&] { return blocked_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Where to record the largest read: the sender frees this object.
  size_t* max_read_out_ = nullptr;

 private:
  uint64_t size_, fail_at_, block_at_, pos_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false, released_ = false;
};

struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool ok = false;
  bool Wait() {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(120), [&] { return calls > 0; });
  }
};

SnapshotMessage Wrap(raftpb::Message m, std::unique_ptr<SnapshotData> data, Outcome* out) {
  SnapshotMessage s;
  s.message = std::move(m);
  s.data = std::move(data);
  s.on_done = [out](bool ok) {
    std::lock_guard<std::mutex> l(out->mu);
    ++out->calls;
    out->ok = ok;
    out->cv.notify_all();
  };
  return s;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(c_, Cluster::Start(2, Options()));
    tmp_ = std::getenv("TEST_TMPDIR");
  }
  virtual TransportOptions Options() {
    TransportOptions o;
    o.snapshot_chunk_bytes = 1 << 20;
    return o;
  }

  void SendFileAndCheck(uint64_t size, uint64_t index) {
    std::string src = absl::StrCat(tmp_, "/src-", index);
    uint32_t crc = MakeFile(src, size);
    auto data = FileSnapshotData::Open(src);
    ASSERT_TRUE(data.ok());
    Outcome out;
    size_t reports = c_->raft(1).snapshot_reports().size();
    c_->t(1).SendSnapshot(Wrap(SnapMsg(index), *std::move(data), &out));
    ASSERT_TRUE(out.Wait());
    EXPECT_TRUE(out.ok);
    ASSERT_TRUE(c_->raft(1).WaitForSnapshotReports(reports + 1));
    EXPECT_EQ(c_->raft(1).snapshot_reports().back().second, SnapshotStatus::kFinish);
    // The receiver's Raft saw the MsgSnap, pointing at the stored file.
    auto paths = c_->raft(2).snapshot_paths();
    ASSERT_FALSE(paths.empty());
    EXPECT_EQ(paths.back(),
              absl::StrCat(c_->node(2).snap_dir, "/", DiskSnapshotStore::FileName(index)));
    uint64_t got_size;
    EXPECT_EQ(FileCrc(paths.back(), &got_size), crc);
    EXPECT_EQ(got_size, size);
    std::remove(src.c_str());
  }

  std::unique_ptr<Cluster> c_;
  std::string tmp_;
};

TEST_F(SnapshotTest, EmptyOneChunkAndLargeSnapshotsArriveByteIdentical) {
  SendFileAndCheck(0, 1);
  SendFileAndCheck(1000, 2);
  SnapshotReceiver::ResetPeakBufferedBytes();
  SendFileAndCheck(256ull << 20, 3);
  // Memory stays bounded by a few chunks whatever the size: the queue plus
  // the frame being read.
  EXPECT_LE(SnapshotReceiver::PeakBufferedBytes(),
            (SnapshotReceiver::kMaxQueuedChunks + 1) * (1u << 20));
  // No stray temp files: exactly the three snapshots.
  EXPECT_EQ(Files(c_->node(2).snap_dir).size(), 3u);
  EXPECT_EQ(c_->t(1).GetPeer(2)->stats().snapshots_sent, 3u);
}

// The inodes of this process's sockets: other tests may run beside this
// one, and a connection of theirs may have a port this test's node now has
// (a server's accepted connections outlive its listener).
std::set<std::string> OwnSocketInodes() {
  std::set<std::string> inodes;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return inodes;
  while (dirent* e = readdir(dir)) {
    char target[64];
    const std::string path = absl::StrCat("/proc/self/fd/", e->d_name);
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view link(target, static_cast<size_t>(n));
    if (absl::ConsumePrefix(&link, "socket:[") && absl::ConsumeSuffix(&link, "]")) {
      inodes.emplace(link);
    }
  }
  closedir(dir);
  return inodes;
}

// Established TCP connections of this process to 127.0.0.1:`port`. gRPC
// dials from dual-stack sockets, listed in tcp6 with the IPv4-mapped
// address; addresses and ports are in hex, state 01 is ESTABLISHED, and
// the tenth field is the socket's inode.
int ConnectionsTo(int port) {
  const std::string want =
      absl::AsciiStrToUpper(absl::StrCat("0100007F:", absl::Hex(port, absl::kZeroPad4)));
  const std::set<std::string> own = OwnSocketInodes();
  int n = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream f(table);
    std::string line;
    std::getline(f, line);  // the header
    while (std::getline(f, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      n += absl::EndsWith(absl::AsciiStrToUpper(remote), want) && state == "01" &&
           own.count(inode) > 0;
    }
  }
  return n;
}

TEST_F(SnapshotTest, SnapshotConnectionIsDialledBeforeTheFirstSnapshot) {
  // Node 1 dials node 2 twice: the channel of streams, pipeline and probes,
  // and, though no snapshot was sent, the snapshot channel. Node 1 was
  // started first, so its early dial found no one listening and gRPC dials
  // again on its own.
  const int port = c_->node(2).port;
  EXPECT_TRUE(WaitUntil([&] { return ConnectionsTo(port) >= 2; }, absl::Seconds(30)))
      << ConnectionsTo(port) << " connections to node 2";
  // The first snapshot uses that connection: no third one.
  SendFileAndCheck(1000, 1);
  EXPECT_EQ(ConnectionsTo(port), 2);
}

TEST_F(SnapshotTest, RemovePeerClosesItsConnections) {
  const int port1 = c_->node(1).port, port2 = c_->node(2).port;
  ASSERT_TRUE(WaitUntil([&] { return ConnectionsTo(port2) >= 2; }, absl::Seconds(30)));
  // Both sides: a node that still has the other as its peer keeps
  // dialling it, and the dialled one takes the dialler for a Remote (as
  // etcd does), which may connect back.
  ASSERT_TRUE(c_->t(2).RemovePeer(1).ok());
  ASSERT_TRUE(c_->t(1).RemovePeer(2).ok());
  EXPECT_TRUE(WaitUntil([&] { return ConnectionsTo(port1) + ConnectionsTo(port2) == 0; },
                        absl::Seconds(30)))
      << ConnectionsTo(port1) << " connections to node 1 and " << ConnectionsTo(port2)
      << " to node 2 left; node 1 has " << c_->t(1).Metrics().totals.channels << " channels and "
      << c_->t(1).Metrics().totals.remotes << " remotes, node 2 "
      << c_->t(2).Metrics().totals.channels << " and " << c_->t(2).Metrics().totals.remotes;
}

// The last chunk's worth of a body goes in halves down to 64 KiB, so the
// receiver's final write is short; the chunks add up to the body.
TEST(SnapshotChunkTest, LastChunksHalveAndAddUp) {
  std::vector<size_t> got;
  for (uint64_t left = (5u << 20) / 2; left > 0;) {
    got.push_back(GrpcSnapshotSender::ChunkAt(1 << 20, left));
    left -= got.back();
  }
  const std::vector<size_t> want = {1 << 20, 1 << 20, 256 << 10, 128 << 10, 64 << 10, 64 << 10};
  EXPECT_EQ(got, want);
  // Chunks below the floor are not split.
  EXPECT_EQ(GrpcSnapshotSender::ChunkAt(16 << 10, 40 << 10), 16u << 10);
  EXPECT_EQ(GrpcSnapshotSender::ChunkAt(16 << 10, 10 << 10), 10u << 10);
  EXPECT_EQ(GrpcSnapshotSender::ChunkAt(1 << 20, 1), 1u);
}

TEST_F(SnapshotTest, SenderReadsAtMostOneChunkAtATime) {
  auto* data = new TestData(10 << 20);
  size_t max_read = 0;  // written by the sender thread before on_done
  data->max_read_out_ = &max_read;
  Outcome out;
  c_->t(1).SendSnapshot(Wrap(SnapMsg(5), std::unique_ptr<SnapshotData>(data), &out));
  ASSERT_TRUE(out.Wait());
  EXPECT_TRUE(out.ok);
  EXPECT_GT(max_read, 0u);
  EXPECT_LE(max_read, 1u << 20);
}

// The receiver sees a cancelled call, which may be the link's fault: it
// keeps the verified prefix for a resume (resume_test.cc), never a
// snapshot; the sender's next snapshot of another index replaces it.
TEST_F(SnapshotTest, SenderFailureMidTransferKeepsOnlyAPrefixAndReportsOnce) {
  Outcome out;
  c_->t(1).SendSnapshot(
      Wrap(SnapMsg(6), std::make_unique<TestData>(8 << 20, /*fail_at=*/3 << 20), &out));
  ASSERT_TRUE(out.Wait());
  EXPECT_FALSE(out.ok);
  ASSERT_TRUE(c_->raft(1).WaitForSnapshotReports(1));
  EXPECT_EQ(c_->raft(1).snapshot_reports()[0].second, SnapshotStatus::kFailure);
  // Nothing processed; at most the prefix (its file and its record).
  ASSERT_TRUE(WaitUntil([&] { return OnlyAKeptPrefix(c_->node(2).snap_dir); }));
  EXPECT_TRUE(c_->raft(2).snapshot_paths().empty());
  Outcome next;
  c_->t(1).SendSnapshot(Wrap(SnapMsg(60), std::make_unique<TestData>(1 << 20), &next));
  ASSERT_TRUE(next.Wait());
  EXPECT_TRUE(next.ok);
  // The cancelled receive's disk thread may still be letting go of its file.
  EXPECT_TRUE(WaitUntil([&] {
    return Files(c_->node(2).snap_dir) == std::vector<std::string>{DiskSnapshotStore::FileName(60)};
  })) << Files(c_->node(2).snap_dir).size()
      << " files";
  // The peer keeps working for normal messages.
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);
  hb.set_from(1);
  hb.set_to(2);
  c_->t(1).Send(hb);
  ASSERT_TRUE(c_->raft(2).WaitForMessages(1));
  EXPECT_EQ(c_->raft(1).snapshot_reports().size(), 2u);  // the failure, then index 60
  EXPECT_EQ(c_->raft(1).snapshot_reports()[1].second, SnapshotStatus::kFinish);
  EXPECT_EQ(out.calls, 1);
}

TEST_F(SnapshotTest, ReceiverStoppedMidTransferFailsOnceAndKeepsOnlyAPrefix) {
  auto* data = new TestData(8 << 20, UINT64_MAX, /*block_at=*/2 << 20);
  Outcome out;
  c_->t(1).SendSnapshot(Wrap(SnapMsg(7), std::unique_ptr<SnapshotData>(data), &out));
  ASSERT_TRUE(data->WaitBlocked());
  c_->StopNode(2);
  data->Release();
  ASSERT_TRUE(out.Wait());
  EXPECT_FALSE(out.ok);
  ASSERT_TRUE(c_->raft(1).WaitForSnapshotReports(1));
  EXPECT_EQ(c_->raft(1).snapshot_reports().size(), 1u);
  EXPECT_EQ(c_->raft(1).snapshot_reports()[0].second, SnapshotStatus::kFailure);
  // A receiver that stops keeps at most the verified prefix, for a resume.
  EXPECT_TRUE(OnlyAKeptPrefix(c_->node(2).snap_dir));
}

TEST_F(SnapshotTest, SecondConcurrentSnapshotFailsFirstUnaffected) {
  auto* first = new TestData(4 << 20, UINT64_MAX, /*block_at=*/1 << 20);
  Outcome out1, out2;
  c_->t(1).SendSnapshot(Wrap(SnapMsg(8), std::unique_ptr<SnapshotData>(first), &out1));
  ASSERT_TRUE(first->WaitBlocked());
  c_->t(1).SendSnapshot(Wrap(SnapMsg(9), std::make_unique<TestData>(10), &out2));
  ASSERT_TRUE(out2.Wait());
  EXPECT_FALSE(out2.ok);
  ASSERT_TRUE(c_->raft(1).WaitForSnapshotReports(1));
  EXPECT_EQ(c_->raft(1).snapshot_reports()[0].second, SnapshotStatus::kFailure);
  EXPECT_FALSE(c_->raft(1).unreachable().empty());  // etcd reports both
  first->Release();
  ASSERT_TRUE(out1.Wait());
  EXPECT_TRUE(out1.ok);
  ASSERT_TRUE(c_->raft(1).WaitForSnapshotReports(2));
  EXPECT_EQ(c_->raft(1).snapshot_reports()[1].second, SnapshotStatus::kFinish);
  EXPECT_EQ(Files(c_->node(2).snap_dir), std::vector<std::string>{DiskSnapshotStore::FileName(8)});
}

TEST_F(SnapshotTest, UnknownPeerClosesWithFailure) {
  Outcome out;
  raftpb::Message m = SnapMsg(10);
  m.set_to(77);
  c_->t(1).SendSnapshot(Wrap(m, std::make_unique<TestData>(1), &out));
  ASSERT_TRUE(out.Wait());
  EXPECT_FALSE(out.ok);
}

// Hand-made frames against the receiver: each bad transfer gets its precise
// code and leaves no file.
class RawSnapshotTest : public SnapshotTest {
 protected:
  // A Snapshot call to node 2 from member `from`, left open.
  struct Call {
    grpc::ClientContext ctx;
    v1::SnapshotResponse resp;
    std::unique_ptr<grpc::ClientWriter<v1::SnapshotFrame>> w;
  };
  std::unique_ptr<Call> Open(uint64_t from = 1) {
    if (stub_ == nullptr) {
      stub_ = v1::RaftTransport::NewStub(grpc::CreateChannel(
          absl::StrCat("127.0.0.1:", c_->node(2).port), grpc::InsecureChannelCredentials()));
    }
    auto call = std::make_unique<Call>();
    call->ctx.AddMetadata(kMetaFrom, FormatId(from));
    call->ctx.AddMetadata(kMetaTo, "2");
    call->ctx.AddMetadata(kMetaClusterId, "1000");
    call->ctx.AddMetadata(kMetaServerVersion, kServerVersion);
    call->w = stub_->Snapshot(&call->ctx, &call->resp);
    return call;
  }
  grpc::Status Send(const std::vector<v1::SnapshotFrame>& frames, bool writes_done = true) {
    std::unique_ptr<Call> call = Open();
    for (const auto& f : frames) {
      if (!call->w->Write(f)) break;
    }
    if (writes_done) call->w->WritesDone();
    return call->w->Finish();
  }
  uint64_t SnapshotsInFlight(uint64_t node) {
    uint64_t n = 0;
    for (const PeerMetrics& p : c_->t(node).Metrics().peers) n += p.snapshot_receive_inflight;
    return n;
  }
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  static v1::SnapshotFrame Header(uint64_t size, raftpb::MessageType t = raftpb::MsgSnap,
                                  uint64_t from = 1) {
    v1::SnapshotFrame f;
    *f.mutable_header()->mutable_message() = SnapMsg(11);
    f.mutable_header()->mutable_message()->set_type(t);
    f.mutable_header()->mutable_message()->set_from(from);
    f.mutable_header()->set_data_size(size);
    return f;
  }
  static v1::SnapshotFrame ToOther(v1::SnapshotFrame f) {
    f.mutable_header()->mutable_message()->set_to(5);
    return f;
  }
  static v1::SnapshotFrame Chunk(const std::string& d) {
    v1::SnapshotFrame f;
    f.set_chunk(d);
    return f;
  }
  static v1::SnapshotFrame Trailer(uint32_t crc) {
    v1::SnapshotFrame f;
    f.mutable_trailer()->set_crc32c(crc);
    return f;
  }
};

TEST_F(RawSnapshotTest, EachBadTransferGetsItsCodeAndLeavesNoFile) {
  const std::string data = "snapshot-bytes";
  const uint32_t crc = Crc32cExtend(0, data.data(), data.size());
  struct Case {
    const char* name;
    std::vector<v1::SnapshotFrame> frames;
    grpc::StatusCode want;
  } cases[] = {
      {"corrupt checksum",
       {Header(data.size()), Chunk(data), Trailer(crc ^ 1)},
       grpc::StatusCode::DATA_LOSS},
      {"truncated, no trailer",
       {Header(data.size()), Chunk(data.substr(0, 5))},
       grpc::StatusCode::DATA_LOSS},
      {"short data then trailer",
       {Header(data.size()), Chunk(data.substr(0, 5)), Trailer(crc)},
       grpc::StatusCode::DATA_LOSS},
      {"oversize data", {Header(4), Chunk(data)}, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {"data before header", {Chunk(data)}, grpc::StatusCode::INVALID_ARGUMENT},
      {"not a MsgSnap", {Header(1, raftpb::MsgApp)}, grpc::StatusCode::INVALID_ARGUMENT},
      {"empty frame", {Header(1), v1::SnapshotFrame()}, grpc::StatusCode::INVALID_ARGUMENT},
      {"MsgSnap from another member than the caller",
       {Header(data.size(), raftpb::MsgSnap, 3), Chunk(data), Trailer(crc)},
       grpc::StatusCode::PERMISSION_DENIED},
      {"MsgSnap to another member",
       {ToOther(Header(data.size())), Chunk(data), Trailer(crc)},
       grpc::StatusCode::PERMISSION_DENIED},
  };
  for (const Case& c : cases) {
    grpc::Status s = Send(c.frames);
    EXPECT_EQ(s.error_code(), c.want) << c.name << ": " << s.error_message();
    EXPECT_TRUE(WaitUntil([&] { return Files(c_->node(2).snap_dir).empty(); })) << c.name;
  }
  EXPECT_TRUE(c_->raft(2).snapshot_paths().empty());
  // And a well-formed one is accepted.
  EXPECT_TRUE(Send({Header(data.size()), Chunk(data), Trailer(crc)}).ok());
  EXPECT_EQ(Files(c_->node(2).snap_dir).size(), 1u);
}

// Only a peer's broken transfer is kept for a resume: a stranger (any ID
// a caller claims) could otherwise leave a prefix under each of them, for
// an hour, and fill the disk. A removed peer's prefix goes at once.
TEST_F(RawSnapshotTest, OnlyPeersKeepAPrefixAndARemovedPeerLosesIt) {
  const std::string dir = c_->node(2).snap_dir;
  const std::string piece(256 << 10, 'p');
  const uint32_t piece_crc = Crc32cExtend(0, piece.data(), piece.size());
  auto metrics_of = [&](uint64_t from) {
    for (const PeerMetrics& p : c_->t(2).Metrics().peers) {
      if (p.id == from) return p;
    }
    return PeerMetrics();
  };
  // Sends 1 MiB of a 4 MiB snapshot from `from`, every chunk checksummed
  // (resumable), then breaks the call; returns once the receiver is done.
  auto break_after_1mib = [&](uint64_t from) {
    const uint64_t failures = metrics_of(from).snapshot_receive_failures;
    std::unique_ptr<Call> call = Open(from);
    ASSERT_TRUE(call->w->Write(Header(4 << 20, raftpb::MsgSnap, from)));
    v1::SnapshotFrame chunk = Chunk(piece);
    chunk.set_chunk_crc32c(piece_crc);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(call->w->Write(chunk));
    ASSERT_TRUE(WaitUntil([&] { return metrics_of(from).snapshot_received_data_bytes >= 1 << 20; }))
        << from;
    call->ctx.TryCancel();
    EXPECT_EQ(call->w->Finish().error_code(), grpc::StatusCode::CANCELLED);
    ASSERT_TRUE(
        WaitUntil([&] { return metrics_of(from).snapshot_receive_failures == failures + 1; }));
  };
  auto offset_for = [&](uint64_t from) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kMetaFrom, FormatId(from));
    ctx.AddMetadata(kMetaTo, "2");
    ctx.AddMetadata(kMetaClusterId, "1000");
    ctx.AddMetadata(kMetaServerVersion, kServerVersion);
    v1::SnapshotOffsetRequest req;
    *req.mutable_message() = Header(4 << 20, raftpb::MsgSnap, from).header().message();
    req.set_data_size(4 << 20);
    v1::SnapshotOffsetResponse resp;
    grpc::Status s = stub_->SnapshotOffset(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.offset();
  };

  break_after_1mib(9);  // not a peer of node 2
  EXPECT_TRUE(Files(dir).empty());
  EXPECT_EQ(offset_for(9), 0u);
  // Nor may a stranger claim a prefix (were one planted).
  std::unique_ptr<Call> claim = Open(9);
  v1::SnapshotFrame resume = Header(4 << 20, raftpb::MsgSnap, 9);
  resume.mutable_header()->set_offset(1 << 20);
  claim->w->Write(resume);
  grpc::Status s = claim->w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("only for peers"), std::string::npos) << s.error_message();

  break_after_1mib(1);  // a peer: its prefix and record stay
  EXPECT_EQ(Files(dir).size(), 2u);
  EXPECT_GE(offset_for(1), 1u << 20);
  ASSERT_TRUE(c_->t(2).RemovePeer(1).ok());
  EXPECT_TRUE(Files(dir).empty());
  EXPECT_EQ(offset_for(1), 0u);
}

// The store never hands Raft anything but this transfer's verified data: a
// snapshot Raft rejects is removed, and the real one of the same index
// then replaces nothing stale (before: the rejected junk stayed, and the
// real transfer was answered OK while Raft was handed the junk file).
TEST_F(RawSnapshotTest, RejectedSnapshotIsRemovedAndTheRealOneIsStored) {
  const std::string junk = "planted junk", real = "the real snapshot";
  const uint32_t junk_crc = Crc32cExtend(0, junk.data(), junk.size());
  const uint32_t real_crc = Crc32cExtend(0, real.data(), real.size());
  c_->raft(2).SetProcessError(absl::InternalError("not a snapshot I want"));
  grpc::Status s = Send({Header(junk.size()), Chunk(junk), Trailer(junk_crc)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL) << s.error_message();
  EXPECT_TRUE(Files(c_->node(2).snap_dir).empty());
  c_->raft(2).SetProcessError(absl::OkStatus());
  ASSERT_TRUE(Send({Header(real.size()), Chunk(real), Trailer(real_crc)}).ok());
  const std::vector<std::string> paths = c_->raft(2).snapshot_paths();
  ASSERT_EQ(paths.size(), 2u);
  std::ifstream f(paths.back());
  std::stringstream got;
  got << f.rdbuf();
  EXPECT_EQ(got.str(), real);
}

// The receiver splits chunk frames without protobuf (chunk_frame.h) and
// leaves every other shape to protobuf: raw frames of both kinds, through
// a real call, are stored (or refused) exactly as protobuf reads them.
TEST_F(RawSnapshotTest, RawChunkFramesOfAnyShapeAreReadAsProtobufReadsThem) {
  // A generic call: these frames are bytes no generated stub would send.
  auto send_raw = [&](const std::vector<std::string>& frames) {
    grpc::GenericStub generic(grpc::CreateChannel(absl::StrCat("127.0.0.1:", c_->node(2).port),
                                                  grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata(kMetaFrom, "1");
    ctx.AddMetadata(kMetaTo, "2");
    ctx.AddMetadata(kMetaClusterId, "1000");
    ctx.AddMetadata(kMetaServerVersion, kServerVersion);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    grpc::CompletionQueue cq;
    auto call = generic.PrepareCall(&ctx, "/raftgrpc.v1.RaftTransport/Snapshot", &cq);
    auto wait = [&] {
      void* tag;
      bool ok = false;
      return cq.Next(&tag, &ok) && ok;
    };
    call->StartCall(nullptr);
    bool ok = wait();
    for (const std::string& f : frames) {
      if (!ok) break;
      grpc::Slice slice(f);
      call->Write(grpc::ByteBuffer(&slice, 1), nullptr);
      ok = wait();
    }
    if (ok) {
      call->WritesDone(nullptr);
      wait();
    }
    grpc::ByteBuffer resp;
    call->Read(&resp, nullptr);
    wait();
    grpc::Status status;
    call->Finish(&status, nullptr);
    wait();
    call.reset();
    cq.Shutdown();
    void* tag;
    bool drained;
    while (cq.Next(&tag, &drained)) {
    }
    return status;
  };
  const std::string a = "first part, ", b = "second part";
  const std::string data = a + b;
  const uint32_t crc = Crc32cExtend(0, data.data(), data.size());
  auto chunk_bytes = [](const std::string& d) {
    v1::SnapshotFrame f;
    f.set_chunk(d);
    f.set_chunk_crc32c(Crc32cExtend(0, d.data(), d.size()));
    return f.SerializeAsString();
  };
  const std::string header = Header(data.size()).SerializeAsString();
  const std::string trailer = Trailer(crc).SerializeAsString();
  // The checksum field first, then the chunk: split without protobuf.
  v1::SnapshotFrame crc_only;
  crc_only.set_chunk_crc32c(Crc32cExtend(0, a.data(), a.size()));
  v1::SnapshotFrame chunk_only;
  chunk_only.set_chunk(a);
  const std::string crc_first = crc_only.SerializeAsString() + chunk_only.SerializeAsString();
  // An unknown field (number 9, varint) after a chunk: protobuf's path.
  const std::string with_unknown = chunk_bytes(b) + std::string("\x48\x01", 2);
  grpc::Status s = send_raw({header, crc_first, with_unknown, trailer});
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<std::string> paths = c_->raft(2).snapshot_paths();
  ASSERT_EQ(paths.size(), 1u);
  std::ifstream f(paths.back(), std::ios::binary);
  std::stringstream got;
  got << f.rdbuf();
  EXPECT_EQ(got.str(), data);

  // A chunk frame whose checksum does not match, in either path.
  v1::SnapshotFrame bad;
  bad.set_chunk(data);
  bad.set_chunk_crc32c(crc ^ 1);
  for (const std::string& frame :
       {bad.SerializeAsString(), bad.SerializeAsString() + std::string("\x48\x01", 2)}) {
    s = send_raw({header, frame, trailer});
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  }
  // A frame protobuf cannot parse (its length runs past its end).
  s = send_raw({header, std::string("\x12\x10"
                                    "abc")});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("malformed snapshot frame"), std::string::npos);
  // A chunk frame over gRPC's receive limit (max_message_bytes, 2 MiB, plus
  // framing slack) is refused by gRPC before the raw method sees it.
  const std::string big(3 << 20, 'b');
  s = send_raw({Header(big.size()).SerializeAsString(), chunk_bytes(big)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(WaitUntil([&] { return Files(c_->node(2).snap_dir).size() == 1; }));
  EXPECT_EQ(c_->raft(2).snapshot_paths().size(), 1u);
}

// Bounded receives: one per sender and max_snapshot_receives in all. A
// sender's newer transfer replaces its older one (which a reset link may
// have left behind); other senders beyond the limit are refused at their
// header; a freed slot is usable again.
class AdmissionTest : public RawSnapshotTest {
 protected:
  TransportOptions Options() override {
    TransportOptions o = RawSnapshotTest::Options();
    o.max_snapshot_receives = 2;
    return o;
  }
};

TEST_F(AdmissionTest, OnePerSenderAndALimitInAll) {
  uint64_t in_flight_at_start = SnapshotsInFlight(2);
  // Two stalled receives (header sent, then nothing) hold both slots.
  std::unique_ptr<Call> a = Open(1);
  std::unique_ptr<Call> b = Open(3);
  ASSERT_TRUE(a->w->Write(Header(100)));
  ASSERT_TRUE(b->w->Write(Header(100, raftpb::MsgSnap, 3)));
  ASSERT_TRUE(WaitUntil([&] { return Files(c_->node(2).snap_dir).size() == 2; }));

  // Another sender beyond the limit: refused at its header, no file.
  std::unique_ptr<Call> third = Open(4);
  third->w->Write(Header(100, raftpb::MsgSnap, 4));
  grpc::Status s = third->w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("max_snapshot_receives"), std::string::npos);
  EXPECT_EQ(Files(c_->node(2).snap_dir).size(), 2u);

  // Sender 1 again: its new transfer takes the place of the stalled one,
  // which ends ABORTED and leaves no file; the new one completes.
  const std::string data = "after";
  const uint32_t crc = Crc32cExtend(0, data.data(), data.size());
  EXPECT_TRUE(Send({Header(data.size()), Chunk(data), Trailer(crc)}).ok());
  s = a->w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  // b's temp file and the committed snapshot.
  EXPECT_TRUE(WaitUntil([&] { return Files(c_->node(2).snap_dir).size() == 2; }));

  // Ending b frees its slot: sender 4 gets in now.
  b->ctx.TryCancel();
  b->w->Finish();
  EXPECT_TRUE(WaitUntil([&] {
    std::unique_ptr<Call> again = Open(4);
    again->w->Write(Header(data.size(), raftpb::MsgSnap, 4));
    again->w->Write(Chunk(data));
    again->w->Write(Trailer(crc));
    again->w->WritesDone();
    return again->w->Finish().ok();
  }));
  EXPECT_TRUE(WaitUntil([&] { return SnapshotsInFlight(2) == in_flight_at_start; }));
}

class HeaderTimeoutTest : public RawSnapshotTest {
 protected:
  TransportOptions Options() override {
    TransportOptions o = RawSnapshotTest::Options();
    o.snapshot_progress_timeout = absl::Milliseconds(300);
    return o;
  }
};

// A client that opens the call and never sends its header is answered
// DEADLINE_EXCEEDED by the server itself, not held until it gives up.
TEST_F(HeaderTimeoutTest, SilentCallerIsTimedOutByTheServer) {
  std::unique_ptr<Call> silent = Open(1);
  const absl::Time start = absl::Now();
  grpc::Status s = silent->w->Finish();  // never writes: only the server can end it
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("no snapshot header"), std::string::npos);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

// A transfer that stalls after its header is answered DEADLINE_EXCEEDED by
// the receiver (before: CANCELLED, as the receiver cancelled first).
TEST_F(HeaderTimeoutTest, StalledTransferIsDeadlineExceeded) {
  std::unique_ptr<Call> stalled = Open(1);
  ASSERT_TRUE(stalled->w->Write(Header(100)));
  grpc::Status s = stalled->w->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("no snapshot data"), std::string::npos) << s.error_message();
  EXPECT_TRUE(WaitUntil([&] { return Files(c_->node(2).snap_dir).empty(); }));
}

}  // namespace
}  // namespace raftgrpc
