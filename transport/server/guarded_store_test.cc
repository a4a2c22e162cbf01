#include "transport/server/guarded_store.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

// A store with bugs: Begin throws for index 1, its sinks from Write, and
// ResumeOffset throws what is not a std::exception. Aborts are counted.
class BuggyStore : public SnapshotStore {
 public:
  int aborted = 0;
  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& m, uint64_t) override {
    if (m.snapshot().metadata().index() == 1) throw std::runtime_error("no room at the inn");
    class Sink : public SnapshotSink {
     public:
      explicit Sink(int* aborted) : aborted_(aborted) {}
      absl::Status Write(const char*, size_t) override { throw std::runtime_error("haunted disk"); }
      absl::StatusOr<std::string> Commit() override { return std::string("/committed"); }
      void Abort() override { ++*aborted_; }

     private:
      int* aborted_;
    };
    return std::unique_ptr<SnapshotSink>(new Sink(&aborted));
  }
  uint64_t ResumeOffset(uint64_t, const raftpb::Message&, uint64_t) override { throw 7; }
};

raftpb::Message Snap(uint64_t index) {
  raftpb::Message m = testing::Msg(raftpb::MsgSnap, 2, 1);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  return m;
}

TEST(GuardedSnapshotStoreTest, ThrowsFailTheTransferAndAreCounted) {
  BuggyStore store;
  std::vector<std::string> said;
  GuardedSnapshotStore g(&store, [&](const std::string& what) { said.push_back(what); });

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
  EXPECT_EQ(store.aborted, 1);

  EXPECT_EQ(g.exceptions(), 3u);
  ASSERT_EQ(said.size(), 3u);
  EXPECT_EQ(said[1],
            "SnapshotStore::ResumeOffset threw: an exception not derived from std::exception");
}

}  // namespace
}  // namespace raftgrpc
