#include "transport/internal/guards.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/buggy_store.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

using testing::BuggyStore;

raftpb::Message Snap(uint64_t index) {
  raftpb::Message m = testing::Msg(raftpb::MsgSnap, 2, 1);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  return m;
}

TEST(GuardedSnapshotStoreTest, ThrowsFailTheTransferAndAreCounted) {
  BuggyStore store;
  std::vector<std::string> said;
  auto caught =
      std::make_shared<CaughtExceptions>([&](const std::string& what) { said.push_back(what); });
  GuardedSnapshotStore g(&store, caught);

  auto failed = g.Begin(Snap(1), 10);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.status().message(), "SnapshotStore::Begin threw: no room at the inn");
  EXPECT_EQ(g.ResumeOffset(2, Snap(2), 10), 0u);  // start over

  auto sink = g.Begin(Snap(2), 10);
  ASSERT_TRUE(sink.ok()) << sink.status();
  absl::Status w = (*sink)->WriteV({"abc", "def"});  // the default WriteV calls Write
  EXPECT_EQ(w.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(w.message(), "SnapshotSink::WriteV threw: haunted disk");
  // Broken from here on: what it wrote is never committed as good.
  auto committed = (*sink)->Commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ((*sink)->Checkpoint().code(), absl::StatusCode::kInternal);
  (*sink)->Abort();  // still reaches the store's sink, to clean up
  EXPECT_EQ(store.aborted.load(), 1);

  EXPECT_EQ(caught->count(), 3u);
  ASSERT_EQ(said.size(), 3u);
  EXPECT_EQ(said[1],
            "SnapshotStore::ResumeOffset threw: an exception not derived from std::exception");
}

// A snapshot's data and on_done with bugs: the size throws at once (the
// caller fails the send), Read and SkipTo fail the transfer, and on_done's
// throw is reported.
TEST(GuardSnapshotTest, DataAndOnDoneThatThrowAreCaught) {
  class BuggyData : public SnapshotData {
   public:
    explicit BuggyData(bool size_throws) : size_throws_(size_throws) {}
    uint64_t size() const override {
      if (size_throws_) throw std::runtime_error("no size");
      return 10;
    }
    absl::StatusOr<size_t> Read(char*, size_t) override { throw std::runtime_error("bad sector"); }
    absl::StatusOr<uint32_t> SkipTo(uint64_t) override { throw std::runtime_error("cannot seek"); }

   private:
    const bool size_throws_;
  };
  std::vector<std::string> said;
  auto caught =
      std::make_shared<CaughtExceptions>([&](const std::string& what) { said.push_back(what); });
  int done_calls = 0;
  SnapshotMessage snap;
  snap.message = Snap(5);
  snap.data = std::make_unique<BuggyData>(false);
  snap.on_done = [&](bool) {
    ++done_calls;
    throw std::runtime_error("on_done broke");
  };
  ASSERT_TRUE(GuardSnapshot(&snap, caught).ok());
  EXPECT_EQ(snap.data->size(), 10u);
  char buf[4];
  absl::StatusOr<size_t> n = snap.data->Read(buf, sizeof buf);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(n.status().message(), "SnapshotData::Read threw: bad sector");
  EXPECT_EQ(snap.data->SkipTo(4).status().code(), absl::StatusCode::kInternal);
  snap.Close(true);
  EXPECT_EQ(done_calls, 1);
  EXPECT_EQ(caught->count(), 3u);

  SnapshotMessage bad;
  bad.data = std::make_unique<BuggyData>(true);
  bad.on_done = [&](bool) { throw std::runtime_error("on_done broke"); };
  absl::Status s = GuardSnapshot(&bad, caught);
  EXPECT_EQ(s.message(), "SnapshotData::size threw: no size");
  bad.Close(false);  // guarded already
  EXPECT_EQ(caught->count(), 5u);
  EXPECT_EQ(said.back(), "SnapshotMessage::on_done threw: on_done broke");
}

}  // namespace
}  // namespace raftgrpc
