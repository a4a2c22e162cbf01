// A snapshot receive on a disk that fills up: a real ENOSPC from a real file
// system. main() mounts a 2 MiB tmpfs in a private mount namespace before any
// thread starts (every thread of the process then sees it); without the
// privilege to do so, the test skips and says why.
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/messages.h"
#include "testing/status_macros.h"
#include "transport/internal/metadata.h"
#include "transport/internal/wire.h"
#include "transport/snapshot/crc32c.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

constexpr uint64_t kDiskBytes = 2 << 20;

std::string* g_dir = nullptr;      // the small tmpfs, if mounted
std::string* g_no_disk = nullptr;  // else why not

void MountSmallDisk() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/small-disk");
  mkdir(dir.c_str(), 0700);
  const std::string opts = absl::StrCat("size=", kDiskBytes);
  if (unshare(CLONE_NEWNS) != 0) {
    g_no_disk = new std::string(absl::StrCat("unshare(CLONE_NEWNS): ", std::strerror(errno)));
  } else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    g_no_disk = new std::string(absl::StrCat("making / private: ", std::strerror(errno)));
  } else if (mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
    g_no_disk = new std::string(absl::StrCat("mounting a tmpfs: ", std::strerror(errno)));
  } else {
    g_dir = new std::string(dir);
  }
}

struct Lines {
  std::mutex mu;
  std::vector<std::string> lines;
  bool Has(const std::string& s) {
    std::lock_guard<std::mutex> l(mu);
    for (const std::string& line : lines) {
      if (line.find(s) != std::string::npos) return true;
    }
    return false;
  }
};

v1::SnapshotFrame Header(uint64_t index, uint64_t size) {
  v1::SnapshotFrame f;
  *f.mutable_header()->mutable_message() = testing::SnapMsg(1, 2, 3, index);
  f.mutable_header()->set_data_size(size);
  return f;
}

// Sends `size` bytes as node 1 to node 2 (at `port`); returns the answer.
grpc::Status SendSnapshot(int port, uint64_t index, uint64_t size) {
  auto stub = v1::RaftTransport::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata(kMetaFrom, FormatId(1));
  ctx.AddMetadata(kMetaTo, "2");
  ctx.AddMetadata(kMetaClusterId, "1000");
  ctx.AddMetadata(kMetaServerVersion, kServerVersion);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::SnapshotResponse resp;
  auto w = stub->Snapshot(&ctx, &resp);
  uint32_t crc = 0;
  bool ok = w->Write(Header(index, size));
  v1::SnapshotFrame chunk;
  std::string* data = chunk.mutable_chunk();
  for (uint64_t sent = 0; ok && sent < size;) {
    data->assign(static_cast<size_t>(std::min<uint64_t>(256 << 10, size - sent)), 'd');
    crc = Crc32cExtend(crc, data->data(), data->size());
    sent += data->size();
    ok = w->Write(chunk);
  }
  if (ok) {
    v1::SnapshotFrame trailer;
    trailer.mutable_trailer()->set_crc32c(crc);
    if (w->Write(trailer)) w->WritesDone();
  }
  return w->Finish();
}

TEST(DiskFullTest, ReceiveOnAFullDiskIsResourceExhaustedWithTheOsErrorAndLeavesNothing) {
  if (g_dir == nullptr) GTEST_SKIP() << "no small disk for this test: " << *g_no_disk;
  auto lines = std::make_shared<Lines>();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c,
                       Cluster::Start(2, {}, [lines](uint64_t id, TransportOptions& o) {
                         if (id != 2) return;
                         o.snapshot_dir = *g_dir;
                         o.log = [lines](const std::string& line) {
                           std::lock_guard<std::mutex> l(lines->mu);
                           lines->lines.push_back(line);
                         };
                       }));
  Cluster& cl = *c;
  // Four times the disk: the write fails part way.
  grpc::Status s = SendSnapshot(cl.node(2).port, 10, 4 * kDiskBytes);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find(std::strerror(ENOSPC)), std::string::npos) << s.error_message();
  EXPECT_TRUE(lines->Has(std::strerror(ENOSPC))) << "the receiver's log names the OS error";
  EXPECT_FALSE(lines->Has("truncated"));
  // Nothing was handed to Raft, the partial file is gone, and the node
  // still serves: a snapshot that fits is stored.
  EXPECT_TRUE(cl.raft(2).snapshot_paths().empty());
  ASSERT_TRUE(SendSnapshot(cl.node(2).port, 11, kDiskBytes / 4).ok());
  ASSERT_EQ(cl.raft(2).snapshot_paths().size(), 1u);
  EXPECT_NE(cl.raft(2).snapshot_paths()[0].find(*g_dir), std::string::npos);
  int files = 0;
  if (DIR* d = opendir(g_dir->c_str())) {
    while (dirent* e = readdir(d)) files += e->d_name[0] != '.';
    closedir(d);
  }
  EXPECT_EQ(files, 1) << "only the stored snapshot";
}

// The names in the small disk's directory that start with `prefix`.
std::vector<std::string> Named(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(g_dir->c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

// A transfer the link breaks while the disk is full: the receiver's last
// checkpoint cannot write its record, so nothing is kept for a resume, and
// nothing is left behind either (no temporary file, no half-written
// record); the node then stores a snapshot that fits.
TEST(DiskFullTest, ALinkBreakOnAFullDiskKeepsNothingAndLeavesNothing) {
  if (g_dir == nullptr) GTEST_SKIP() << "no small disk for this test: " << *g_no_disk;
  for (const std::string& n : Named("")) {
    if (n != "." && n != "..") unlink((*g_dir + "/" + n).c_str());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c,
                       Cluster::Start(2, {}, [](uint64_t id, TransportOptions& o) {
                         if (id == 2) o.snapshot_dir = *g_dir;
                       }));
  Cluster& cl = *c;
  auto received = [&] {
    for (const PeerMetrics& p : cl.t(2).Metrics().peers) {
      if (p.id == 1)
        return std::make_pair(p.snapshot_received_data_bytes, p.snapshot_receive_failures);
    }
    return std::make_pair(uint64_t{0}, uint64_t{0});
  };
  auto stub = v1::RaftTransport::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", cl.node(2).port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata(kMetaFrom, FormatId(1));
  ctx.AddMetadata(kMetaTo, "2");
  ctx.AddMetadata(kMetaClusterId, "1000");
  ctx.AddMetadata(kMetaServerVersion, kServerVersion);
  v1::SnapshotResponse resp;
  auto w = stub->Snapshot(&ctx, &resp);
  // Half of a 1 MiB snapshot, every chunk checksummed (so resumable), and
  // below the first periodic checkpoint (1 MiB): no record exists yet.
  ASSERT_TRUE(w->Write(Header(12, 1 << 20)));
  v1::SnapshotFrame chunk;
  chunk.set_chunk(std::string(128 << 10, 'h'));
  chunk.set_chunk_crc32c(Crc32cExtend(0, chunk.chunk().data(), chunk.chunk().size()));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(w->Write(chunk));
  ASSERT_TRUE(WaitUntil([&] { return received().first >= 512u << 10; }));
  ASSERT_EQ(Named("raftgrpc-recv-").size(), 1u);
  ASSERT_TRUE(Named("raftgrpc-partial-").empty());
  // Fill the disk to the last byte.
  {
    FILE* f = std::fopen((*g_dir + "/filler").c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string block(4096, 'f');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  ctx.TryCancel();  // the link breaks
  EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitUntil([&] { return received().second == 1; }));
  EXPECT_TRUE(Named("raftgrpc-").empty()) << Named("raftgrpc-")[0];
  // Space again: a snapshot that fits is stored, and resumes nothing.
  unlink((*g_dir + "/filler").c_str());
  ASSERT_TRUE(SendSnapshot(cl.node(2).port, 13, kDiskBytes / 4).ok());
  std::vector<std::string> files;
  for (const std::string& n : Named("")) {
    if (n[0] != '.') files.push_back(n);
  }
  EXPECT_EQ(files, std::vector<std::string>{"000000000000000d.snap.db"});
}

}  // namespace
}  // namespace raftgrpc

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  raftgrpc::MountSmallDisk();  // before any thread exists
  return RUN_ALL_TESTS();
}
