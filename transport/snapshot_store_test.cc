#include "transport/snapshot_store.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  return out;
}

raftpb::Message Snap(uint64_t index) {
  raftpb::Message m;
  m.set_type(raftpb::MsgSnap);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  return m;
}

TEST(DiskSnapshotStoreTest, CommitRenamesToEtcdNameAndAbortLeavesNothing) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/store";
  DiskSnapshotStore store(dir);
  EXPECT_EQ(DiskSnapshotStore::FileName(0x1a), "000000000000001a.snap.db");

  auto sink = store.Begin(Snap(0x1a), 5);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write("hello", 5).ok());
  auto path = (*sink)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, dir + "/000000000000001a.snap.db");
  std::ifstream f(*path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "hello");

  auto aborted = store.Begin(Snap(0x2b), 3);
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE((*aborted)->Write("abc", 3).ok());
  EXPECT_EQ(List(dir).size(), 2u);  // the committed file and a temp file
  (*aborted)->Abort();
  EXPECT_EQ(List(dir), std::vector<std::string>{"000000000000001a.snap.db"});

  // Dropping an uncommitted sink aborts it too.
  { auto dropped = store.Begin(Snap(0x3c), 1); }
  EXPECT_EQ(List(dir).size(), 1u);
}

TEST(DiskSnapshotStoreTest, NoDirectoryIsAClearError) {
  DiskSnapshotStore store("");
  EXPECT_EQ(store.Begin(Snap(1), 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace raftgrpc
