#include "peer/inbound_router.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/fake_raft.h"
#include "testing/messages.h"
#include "testing/sanitizers.h"

namespace raftgrpc {
namespace {

raftpb::Message Msg(raftpb::MessageType type, uint64_t index = 0) {
  raftpb::Message m = testing::Msg(type, 2, 1);
  m.set_index(index);
  return m;
}

TEST(InboundRouterTest, DeliversInOrderAndDropsLinkHeartbeats) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 4096, 4096);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(r.Deliver(Msg(raftpb::MsgApp, i)), InboundRouter::Result::kQueued);
  }
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);  // from = to = 0
  EXPECT_EQ(r.Deliver(std::move(hb)), InboundRouter::Result::kLinkHeartbeat);
  ASSERT_TRUE(raft.WaitForMessages(100));
  auto got = raft.messages();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i].index(), static_cast<uint64_t>(i));
  r.Stop();
  EXPECT_EQ(raft.message_count(), 100u);  // the link heartbeat never arrived
}

// Bytes of address space this process maps now (/proc/self/status).
size_t VmSizeBytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  size_t kb = 0;
  while (in >> key) {
    if (key == "VmSize:") {
      in >> kb;
      break;
    }
  }
  return kb * 1024;
}

// The child's part of the test below: 0, or which check failed.
int NoThreadChild() {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 64, 64);
  // Threads get stacks larger than any glibc cached from the parent's
  // earlier threads, so a new one needs a new mapping.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{256} << 20);
  if (pthread_setattr_default_np(&attr) != 0) return 12;
  rlimit old;
  getrlimit(RLIMIT_AS, &old);
  rlimit tight = old;
  tight.rlim_cur = VmSizeBytes() + (16 << 20);  // a worker's stack needs 256 MiB
  if (setrlimit(RLIMIT_AS, &tight) != 0) return 10;
  absl::Status got = absl::OkStatus();
  bool called = false;
  auto res = r.DeliverUnpaused(Msg(raftpb::MsgApp, 1), [&](const absl::Status& s) {
    called = true;
    got = s;
  });
  if (res != InboundRouter::Result::kQueued) return 2;
  if (!called || got.code() != absl::StatusCode::kResourceExhausted) return 3;
  if (r.worker_start_failures() != 1 || r.dropped_full() != 1 || r.pending() != 0) return 4;
  // The limit lifted, the next message starts a worker as usual.
  if (setrlimit(RLIMIT_AS, &old) != 0) return 11;
  if (r.Deliver(Msg(raftpb::MsgApp, 2)) != InboundRouter::Result::kQueued) return 5;
  if (!raft.WaitForMessages(1)) return 6;
  r.Stop();
  return raft.message_count() == 1 ? 0 : 7;
}

// With no thread to be had (here: an address-space limit leaves no room for
// a worker's stack), the message is dropped and counted, and `done` gets
// RESOURCE_EXHAUSTED. Before, std::thread threw out of Deliver, which runs
// in gRPC callbacks: the process ended. A child process takes the limit;
// the exit code says what it saw.
TEST(InboundRouterTest, NoThreadForAWorkerDropsAndCountsInsteadOfThrowing) {
  if (testing::kUnderSanitizer) {
    GTEST_SKIP() << "an address-space limit cannot coexist with a sanitizer's shadow memory";
  }
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child never returns into gtest: an escaped exception is exit 20.
    int code;
    try {
      code = NoThreadChild();
    } catch (...) {
      code = 20;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the exit codes in the test";
}

// Heartbeats and votes pass queued MsgApps (issue 20's priority lane);
// each kind keeps its own order.
TEST(InboundRouterTest, UrgentMessagesPassQueuedAppends) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  InboundRouter r(&raft, 4096, 4096);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 0)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));  // the worker holds #0
  for (int i = 1; i <= 100; ++i) r.Deliver(Msg(raftpb::MsgApp, i));
  r.Deliver(Msg(raftpb::MsgHeartbeat, 1));
  r.Deliver(Msg(raftpb::MsgVote, 2));
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(103));
  const auto got = raft.messages();
  ASSERT_EQ(got.size(), 103u);
  EXPECT_EQ(got[0].type(), raftpb::MsgApp);
  EXPECT_EQ(got[1].type(), raftpb::MsgHeartbeat);
  EXPECT_EQ(got[2].type(), raftpb::MsgVote);
  for (int i = 3; i < 103; ++i) {
    EXPECT_EQ(got[i].type(), raftpb::MsgApp);
    EXPECT_EQ(got[i].index(), static_cast<uint64_t>(i - 2));
  }
  r.Stop();
}

// Waits (up to 10 s) for `pred`; whether it came true.
template <class Pred>
bool Within10s(Pred pred) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Raft::TryProcessUrgent takes urgent stream messages on the reading
// thread: no queue, no worker. Other messages, link heartbeats and
// pipeline requests are never offered; nor is anything while paused or
// once stopped.
TEST(InboundRouterTest, UrgentTakenAtOnceOnTheReadingThread) {
  testing::FakeRaft raft;
  raft.set_take_urgent(true);
  const std::thread::id me = std::this_thread::get_id();
  std::atomic<int> on_caller{0}, elsewhere{0};
  // Counted before Raft sees it: whatever observes a message in Raft also
  // observes its count (a test reading the stats after Raft got a later
  // message saw this one uncounted).
  std::atomic<InboundRouter*> router{nullptr};
  std::atomic<int> counted_late{0};
  raft.set_on_process([&](const raftpb::Message& m) {
    (std::this_thread::get_id() == me ? on_caller : elsewhere).fetch_add(1);
    InboundRouter* rp = router.load();
    if (rp != nullptr && std::this_thread::get_id() == me && rp->processed_at_once() < m.index()) {
      counted_late.fetch_add(1);
    }
  });
  InboundRouter r(&raft, 16, 16);
  router = &r;
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 1)), InboundRouter::Result::kProcessed);
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgVote, 2)), InboundRouter::Result::kProcessed);
  EXPECT_EQ(raft.message_count(), 2u);  // before Deliver returned
  EXPECT_EQ(on_caller.load(), 2);
  EXPECT_EQ(r.workers_started(), 0u);
  EXPECT_EQ(r.processed_at_once(), 2u);
  EXPECT_EQ(r.delivered(), 2u);
  EXPECT_EQ(counted_late.load(), 0);

  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgApp, 3)), InboundRouter::Result::kQueued);
  raftpb::Message link;
  link.set_type(raftpb::MsgHeartbeat);  // from = to = 0
  EXPECT_EQ(r.Deliver(std::move(link)), InboundRouter::Result::kLinkHeartbeat);
  EXPECT_EQ(r.DeliverUnpaused(Msg(raftpb::MsgHeartbeat, 4)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(4));
  EXPECT_EQ(elsewhere.load(), 2);  // the MsgApp and the pipeline's heartbeat
  r.Pause();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 5)), InboundRouter::Result::kPaused);
  r.Resume();
  r.Stop();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 6)), InboundRouter::Result::kStopped);
  EXPECT_EQ(raft.urgent_offered(), 2u);
  EXPECT_EQ(raft.message_count(), 4u);
  EXPECT_EQ(r.processed_at_once(), 2u);
}

// A Raft that declines (the default) gets the message by Process, on the
// worker, as before.
TEST(InboundRouterTest, UrgentDeclinedGoesToTheWorker) {
  testing::FakeRaft raft;
  const std::thread::id me = std::this_thread::get_id();
  std::atomic<bool> on_caller{false};
  raft.set_on_process([&](const raftpb::Message&) {
    if (std::this_thread::get_id() == me) on_caller = true;
  });
  InboundRouter r(&raft, 16, 16);
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  EXPECT_EQ(raft.urgent_offered(), 1u);
  EXPECT_EQ(r.processed_at_once(), 0u);
  EXPECT_EQ(r.delivered(), 1u);  // counted once: the offer's count was taken back
  EXPECT_EQ(r.workers_started(), 1u);
  EXPECT_FALSE(on_caller.load());
  r.Stop();
}

// While an urgent message is queued or in Process, the next one is not
// offered (it would pass it): it queues behind it, and their order holds.
// Once none is unfinished, offering resumes.
TEST(InboundRouterTest, UrgentNotOfferedWhileAnotherIsUnfinished) {
  testing::FakeRaft raft;  // declines the first
  raft.BlockType(raftpb::MsgHeartbeat);
  InboundRouter r(&raft, 16, 16);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgHeartbeat));  // the worker holds #1
  raft.set_take_urgent(true);
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 2)), InboundRouter::Result::kQueued);
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgVote, 3)), InboundRouter::Result::kQueued);
  EXPECT_EQ(raft.urgent_offered(), 1u);
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(3));
  ASSERT_TRUE(Within10s([&] { return r.pending() == 0; }));
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 4)), InboundRouter::Result::kProcessed);
  const auto got = raft.messages();
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i].index(), static_cast<uint64_t>(i + 1));
  EXPECT_EQ(raft.urgent_offered(), 2u);
  EXPECT_EQ(r.processed_at_once(), 1u);
  r.Stop();
}

// Stop promises no call into Raft after it returns: it waits for a
// TryProcessUrgent in flight on a reading thread.
TEST(InboundRouterTest, StopWaitsForATryProcessUrgentInFlight) {
  testing::FakeRaft raft;
  raft.set_take_urgent(true);
  // Blocks inside TryProcessUrgent, which a real Raft must not do: it holds
  // the call in flight for the test.
  raft.BlockType(raftpb::MsgHeartbeat);
  std::atomic<bool> stop_returned{false};
  std::atomic<bool> stop_returned_first{false};
  raft.set_on_process([&](const raftpb::Message&) { stop_returned_first = stop_returned.load(); });
  InboundRouter r(&raft, 16, 16);
  std::thread reader([&] {
    EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat, 1)), InboundRouter::Result::kProcessed);
  });
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgHeartbeat));
  std::thread stopper([&] {
    r.Stop();
    stop_returned = true;
  });
  ASSERT_TRUE(Within10s([&] { return r.stopped(); }));
  // A Stop that did not wait would return now, with nothing else to wait
  // for: give it 50 ms to, then let the call finish.
  const absl::Time until = absl::Now() + absl::Milliseconds(50);
  while (!stop_returned.load() && absl::Now() < until) std::this_thread::yield();
  EXPECT_FALSE(stop_returned.load());
  raft.Unblock();
  stopper.join();
  reader.join();
  EXPECT_FALSE(stop_returned_first.load());
  EXPECT_EQ(raft.message_count(), 1u);
}

TEST(InboundRouterTest, FullQueueDropsAndCountsExactly) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  InboundRouter r(&raft, /*recv=*/8, /*prop=*/4);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 0)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));  // the worker holds #0
  int queued = 1, full = 0;
  for (int i = 1; i < 20; ++i) {
    auto res = r.Deliver(Msg(raftpb::MsgApp, i));
    queued += res == InboundRouter::Result::kQueued;
    full += res == InboundRouter::Result::kFull;
  }
  // The bound covers the message in Process too, as etcd's channel of 8.
  EXPECT_EQ(queued, 8);
  EXPECT_EQ(full, 12);
  EXPECT_EQ(r.dropped_full(), 12u);
  // The proposal lane is independent.
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgProp)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(9));
  r.Stop();
}

// Bounded in bytes as a decoded message costs: with Process stuck, 1 MiB
// messages fill a 4 MiB budget after three (the fourth would exceed it),
// the rest are dropped and counted; processing gives every byte back.
TEST(InboundRouterTest, ByteBudgetBoundsQueuedMemory) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  ByteBudget budget(4 << 20);
  InboundRouter r(&raft, 4096, 4096, std::chrono::seconds(1), &budget);
  auto big = [](uint64_t i) { return testing::App(2, 1, 1, i, std::string(1 << 20, 'b')); };
  int queued = 0, full = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    auto res = r.Deliver(big(i));
    queued += res == InboundRouter::Result::kQueued;
    full += res == InboundRouter::Result::kFull;
  }
  EXPECT_EQ(queued, 3);
  EXPECT_EQ(full, 17);
  EXPECT_EQ(r.dropped_full(), 17u);
  EXPECT_LE(budget.peak(), budget.limit());
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(3));
  r.Stop();  // joins the worker: every Process has returned
  EXPECT_EQ(budget.used(), 0u);
}

// A message of many empty entries is small on the wire and large once
// decoded: it is charged the latter. 200k empty entries (~0.6 MB encoded)
// do not fit an 8 MiB budget; a parent budget bounds several routers.
TEST(InboundRouterTest, EntriesAreChargedAndParentBudgetIsShared) {
  testing::FakeRaft raft;
  raftpb::Message many = testing::App(2, 1, 1, 0, "", /*entries=*/0);
  for (int i = 0; i < 200000; ++i) many.add_entries();  // two bytes each on the wire
  EXPECT_LT(many.ByteSizeLong(), 1u << 20);
  EXPECT_GT(InboundCost(many), 8u << 20);
  ByteBudget total(8 << 20);
  ByteBudget a_budget(6 << 20, &total), b_budget(6 << 20, &total);
  InboundRouter a(&raft, 4096, 4096, std::chrono::seconds(1), &a_budget);
  InboundRouter b(&raft, 4096, 4096, std::chrono::seconds(1), &b_budget);
  EXPECT_EQ(a.Deliver(raftpb::Message(many)), InboundRouter::Result::kFull);
  EXPECT_EQ(total.used(), 0u);

  raft.BlockType(raftpb::MsgApp);
  auto mib = [](uint64_t i) { return testing::App(2, 1, 1, i, std::string(1 << 20, 'p')); };
  int queued = 0;
  for (uint64_t i = 0; i < 10; ++i) queued += a.Deliver(mib(i)) == InboundRouter::Result::kQueued;
  for (uint64_t i = 0; i < 10; ++i) queued += b.Deliver(mib(i)) == InboundRouter::Result::kQueued;
  EXPECT_LE(total.peak(), total.limit());
  EXPECT_EQ(static_cast<size_t>(queued), total.peak() / InboundCost(mib(0)));
  raft.Unblock();
  a.Stop();
  b.Stop();
  EXPECT_EQ(total.used(), 0u);  // Stop gives back what it dropped
}

// A frame queued encoded (DeliverEncoded): decoded when the worker comes to
// it, as a stream reader's frames are. Records its decodes and drops.
class TestFrame final : public EncodedFrame {
 public:
  struct Log {
    std::atomic<int> decoded{0};
    std::atomic<size_t> dropped{0};
  };
  TestFrame(std::vector<raftpb::Message> msgs, Log* log) : msgs_(std::move(msgs)), log_(log) {}
  static std::unique_ptr<EncodedFrame> Make(std::vector<raftpb::Message> msgs, Log* log) {
    return std::make_unique<TestFrame>(std::move(msgs), log);
  }
  void Decode(InboundArena* arena, std::vector<raftpb::Message*>* out, size_t* bytes) override {
    log_->decoded.fetch_add(1);
    for (const raftpb::Message& m : msgs_) {
      auto* p = google::protobuf::Arena::CreateMessage<raftpb::Message>(arena->arena());
      *p = m;
      *bytes += p->ByteSizeLong();
      out->push_back(p);
    }
  }
  void Dropped(size_t n) override { log_->dropped.fetch_add(n); }

 private:
  const std::vector<raftpb::Message> msgs_;
  Log* const log_;
};

// An encoded frame holds its reserve until decoded; then its messages are
// charged what they cost, as a whole, until the last has been processed.
// A frame whose reserve does not fit is still decoded (a codec's state
// follows every record) and its messages dropped, counted and reported.
TEST(InboundRouterTest, EncodedFramesHoldTheirReserveThenTheirCost) {
  testing::FakeRaft raft;
  ByteBudget budget(5 << 20);
  InboundRouter r(&raft, 4096, 4096, std::chrono::seconds(1), &budget);
  std::vector<size_t> used_at_process;
  raft.set_on_process([&](const raftpb::Message& m) {
    if (m.type() == raftpb::MsgApp && m.entries_size() > 0)
      used_at_process.push_back(budget.used());
  });
  auto two_mib = [](uint64_t first) {
    std::vector<raftpb::Message> ms;
    for (uint64_t i = first; i < first + 2; ++i) {
      ms.push_back(testing::App(2, 1, 1, i, std::string(1 << 20, static_cast<char>('a' + i))));
    }
    return ms;
  };
  // A message without entries holds the worker while the frames queue.
  raft.BlockType(raftpb::MsgApp);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 100)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));
  const size_t blocker = budget.used();
  TestFrame::Log a_log, b_log;
  const size_t reserve = InboundRouter::EncodedReserve(2 << 20);
  r.DeliverEncoded(TestFrame::Make(two_mib(0), &a_log), reserve);
  EXPECT_EQ(budget.used(), blocker + reserve);
  EXPECT_EQ(a_log.decoded.load(), 0);  // not before the worker gets to it
  // The second's reserve does not fit the 5 MiB beside the first's.
  r.DeliverEncoded(TestFrame::Make(two_mib(2), &b_log), reserve);
  EXPECT_EQ(budget.used(), blocker + reserve);

  // After both frames: processed once they are.
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 101)), InboundRouter::Result::kQueued);
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(4));
  EXPECT_EQ(a_log.decoded.load(), 1);
  EXPECT_EQ(b_log.decoded.load(), 1);
  EXPECT_EQ(a_log.dropped.load(), 0u);
  EXPECT_EQ(b_log.dropped.load(), 2u);
  EXPECT_EQ(r.dropped_full(), 2u);
  r.Stop();
  const std::vector<raftpb::Message> got = raft.messages();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1].index(), 0u);
  EXPECT_EQ(got[2].entries(0).data(), std::string(1 << 20, 'b'));
  // Charged as decoded (more than the encoded bytes, less than the
  // reserve), and held until the second was processed (recorded as each
  // Process began); then all given back.
  ASSERT_EQ(used_at_process.size(), 2u);
  EXPECT_EQ(used_at_process[0], used_at_process[1]);
  EXPECT_GT(used_at_process[0], size_t{2} << 20);
  EXPECT_LT(used_at_process[0], reserve);
  EXPECT_EQ(budget.used(), 0u);
}

// An encoded frame's messages are processed in its place: in order, after
// what was queued before it, link heartbeats left out, proposals on their
// own lane; urgent messages queued meanwhile pass the rest of them; what
// does not fit is counted; nothing while paused, though it is decoded.
TEST(InboundRouterTest, EncodedFrameIsProcessedInItsPlace) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, /*recv_capacity=*/8, /*prop_capacity=*/4);
  auto indexes = [&] {
    std::vector<uint64_t> got;
    for (const raftpb::Message& m : raft.messages()) got.push_back(m.index());
    return got;
  };
  raftpb::Message link;
  link.set_type(raftpb::MsgHeartbeat);  // from = to = 0
  const std::vector<raftpb::Message> frame = {
      Msg(raftpb::MsgApp, 2),  link,
      Msg(raftpb::MsgProp, 3), Msg(raftpb::MsgHeartbeat, 4),
      Msg(raftpb::MsgApp, 5),  Msg(raftpb::MsgApp, 6),
  };

  TestFrame::Log paused_log;
  r.Pause();
  r.DeliverEncoded(TestFrame::Make(frame, &paused_log), 0);
  r.Resume();
  // Processed after the frame, so once the frame was decoded.
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  EXPECT_EQ(paused_log.decoded.load(), 1);
  EXPECT_EQ(r.dropped_paused(), frame.size() - 1);  // not the link heartbeat
  EXPECT_EQ(paused_log.dropped.load(), 0u);
  EXPECT_EQ(indexes(), (std::vector<uint64_t>{1}));

  // While 2 is processed, an urgent message arrives: it passes 4, 5 and 6.
  raft.set_on_process([&](const raftpb::Message& m) {
    if (m.type() == raftpb::MsgApp && m.index() == 2) {
      EXPECT_EQ(r.Deliver(Msg(raftpb::MsgVote, 8)), InboundRouter::Result::kQueued);
    }
  });
  TestFrame::Log log;
  raft.BlockType(raftpb::MsgApp);  // 1 holds the worker: the frame queues behind it
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));
  r.DeliverEncoded(TestFrame::Make(frame, &log), 0);
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(8));
  std::vector<uint64_t> got = indexes();
  // The proposal (3) ran on its own lane, in any order with the others.
  auto prop = std::find(got.begin(), got.end(), 3u);
  ASSERT_NE(prop, got.end());
  got.erase(prop);
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 1, 2, 8, 4, 5, 6}));
  EXPECT_EQ(log.dropped.load(), 0u);

  // Nine MsgApps, and one queued behind them: seven fit the eight places.
  raft.set_on_process(nullptr);
  std::vector<raftpb::Message> nine;
  for (uint64_t i = 21; i <= 29; ++i) nine.push_back(Msg(raftpb::MsgApp, i));
  TestFrame::Log full_log;
  raft.BlockType(raftpb::MsgApp);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 20)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));
  r.DeliverEncoded(TestFrame::Make(nine, &full_log), 0);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 30)), InboundRouter::Result::kQueued);
  raft.Unblock();
  ASSERT_TRUE(raft.WaitForMessages(17));
  r.Stop();
  EXPECT_EQ(full_log.dropped.load(), 2u);
  EXPECT_EQ(r.dropped_full(), 2u);
  got = indexes();
  EXPECT_EQ(std::vector<uint64_t>(got.end() - 9, got.end()),
            (std::vector<uint64_t>{20, 21, 22, 23, 24, 25, 26, 27, 30}));
}

TEST(InboundRouterTest, PauseDropsAndResumeRestores) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 16, 16);
  r.Pause();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kPaused);
  EXPECT_EQ(r.dropped_paused(), 1u);
  r.Resume();
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgHeartbeat)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  r.Stop();
  EXPECT_EQ(raft.message_count(), 1u);
}

TEST(InboundRouterTest, StopDropsQueuedAndRefusesMore) {
  testing::FakeRaft raft;
  raft.BlockType(raftpb::MsgApp);
  InboundRouter r(&raft, 16, 16);
  r.Deliver(Msg(raftpb::MsgApp, 1));
  ASSERT_TRUE(raft.WaitForProcessing(raftpb::MsgApp));
  r.Deliver(Msg(raftpb::MsgApp, 2));
  // Stop waits for the in-flight Process: unblock it once Stop has begun.
  std::thread stopper([&] { r.Stop(); });
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!r.stopped() && absl::Now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(r.stopped());
  raft.Unblock();
  stopper.join();
  EXPECT_EQ(raft.message_count(), 1u);  // #2 was dropped by Stop
  EXPECT_EQ(r.Deliver(Msg(raftpb::MsgApp, 3)), InboundRouter::Result::kStopped);
}

TEST(InboundRouterTest, WorkersStartOnDemandExitWhenIdleAndRestart) {
  testing::FakeRaft raft;
  InboundRouter r(&raft, 4096, 4096, std::chrono::milliseconds(20));
  EXPECT_EQ(r.workers(), 0);  // no thread for a peer that sent nothing
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);  // link heartbeats start nothing
  r.Deliver(std::move(hb));
  EXPECT_EQ(r.workers_started(), 0u);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 1)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(1));
  EXPECT_EQ(r.workers_started(), 1u);
  // Idle: the worker exits on its own ...
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (r.workers() > 0 && absl::Now() < deadline) std::this_thread::yield();
  ASSERT_EQ(r.workers(), 0);
  // ... and the next message starts a new one, in order with the rest.
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgApp, 2)), InboundRouter::Result::kQueued);
  ASSERT_EQ(r.Deliver(Msg(raftpb::MsgProp, 3)), InboundRouter::Result::kQueued);
  ASSERT_TRUE(raft.WaitForMessages(3));
  EXPECT_EQ(r.workers_started(), 3u);  // recv restarted, prop started
  r.Stop();
  EXPECT_EQ(r.workers(), 0);
}

// Deliveries racing with idle exits and Stop: every queued message is
// processed exactly once, and nothing is left running.
TEST(InboundRouterTest, DeliverRacingIdleExitLosesNothing) {
  testing::FakeRaft raft;
  raft.set_keep_messages(false);
  InboundRouter r(&raft, 1 << 20, 1 << 20, std::chrono::milliseconds(1));
  uint64_t queued = 0;
  for (int i = 0; i < 2000; ++i) {
    queued += r.Deliver(Msg(i % 2 ? raftpb::MsgApp : raftpb::MsgProp, i)) ==
              InboundRouter::Result::kQueued;
    if (i % 50 == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let workers idle out
  }
  ASSERT_TRUE(raft.WaitForMessages(queued));
  EXPECT_EQ(raft.message_count(), queued);
  EXPECT_GT(r.workers_started(), 2u);
  r.Stop();
  EXPECT_EQ(r.workers(), 0);
}

}  // namespace
}  // namespace raftgrpc
