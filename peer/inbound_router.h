// InboundRouter: a peer's two inbound queues (etcd's recvc and propc), each
// drained by its own worker thread into Raft::Process, so a proposal blocked
// in Process never stalls heartbeats or appends behind it. A worker starts
// with the first message and exits after `idle_exit` without one, so idle
// peers (only link heartbeats, which are never queued) cost no threads.
//
// Thread-safety: Deliver, Pause/Resume and counters are safe from any thread
// and never block. Stop joins the workers and therefore waits for an
// in-flight Process call to return.
#ifndef RAFT_GRPC_TRANSPORT_PEER_INBOUND_ROUTER_H_
#define RAFT_GRPC_TRANSPORT_PEER_INBOUND_ROUTER_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/arena.h"
#include "peer/byte_budget.h"
#include "peer/mutex.h"
#include "peer/raft.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// Raft never sends a MsgHeartbeat from 0 to 0: that value is the link
// heartbeat that keeps idle streams alive; it is never delivered.
inline bool IsLinkHeartbeat(const raftpb::Message& m) {
  return m.type() == raftpb::MsgHeartbeat && m.from() == 0 && m.to() == 0;
}

// What a decoded message costs in memory: its encoded size plus the
// objects that decoding allocates (a message full of empty entries costs
// far more than its wire bytes). `encoded_size`: m.ByteSizeLong() if the
// caller has it already (0: computed here).
size_t InboundCost(const raftpb::Message& m, size_t encoded_size = 0);

// Messages whose delay Raft feels at once (leader liveness, elections, read
// index): a peer's receive queue lets them pass queued MsgApps.
bool IsUrgent(raftpb::MessageType t);

// A stream frame's messages decoded in one protobuf arena and processed
// without leaving it (InboundRouter::DeliverEncoded): a few arena blocks
// per frame instead of several heap allocations and frees per message.
// The arena's memory is charged to the router's byte budget as a whole
// and given back when the last of its messages has been processed or
// dropped, so that a message never pins more of a frame than was charged.
//
// Thread-safety: filled by one thread, then shared read-only.
class InboundArena {
 public:
  InboundArena();
  ~InboundArena();  // gives back the charge
  InboundArena(const InboundArena&) = delete;
  InboundArena& operator=(const InboundArena&) = delete;
  google::protobuf::Arena* arena() { return &arena_; }

 private:
  friend class InboundRouter;
  google::protobuf::Arena arena_;
  ByteBudget* charged_to_ = nullptr;
  size_t charged_ = 0;
};

// A frame queued still encoded (InboundRouter::DeliverEncoded), which the
// receive worker decodes in queue order. A busy msgappv2 stream is read
// this way: decoded on the reader's gRPC thread, its frames were the
// bottleneck, since gRPC reads a stream one frame at a time (the reader's
// thread did four times the worker's work while the sender waited for its
// window), and every decoded entry's buffer, allocated there and freed on
// the worker, made both threads lock glibc's arena (bench/README.md, "What
// changed the receive path, again").
//
// Thread-safety: made by a reader, then used by one worker at a time.
class EncodedFrame {
 public:
  virtual ~EncodedFrame() = default;
  // Decodes into `arena`, appending the messages (which live there) to
  // `out` in order and adding their encoded size to `bytes`. A frame that
  // does not decode is the implementation's to report (its stream ends);
  // the messages before the fault are still delivered, as they were read.
  virtual void Decode(InboundArena* arena, std::vector<raftpb::Message*>* out, size_t* bytes) = 0;
  // `n` of its messages were dropped for a full queue or budget.
  virtual void Dropped(size_t n) = 0;
};

class InboundRouter {
 public:
  // kProcessed: taken at once by Raft::TryProcessUrgent, on the caller's
  // thread.
  enum class Result { kQueued, kProcessed, kPaused, kLinkHeartbeat, kFull, kStopped };

  // Queue sizes as etcd's recvBufSize and maxPendingProposals (4096 each)
  // by default. Workers start on demand. With a `budget` (not owned; it
  // must outlive the router), both queues together also hold at most its
  // bytes: each message is charged what it costs in memory (InboundCost)
  // until Process has returned, and one that does not fit is dropped as
  // for a full queue.
  InboundRouter(Raft* raft, size_t recv_capacity, size_t prop_capacity,
                std::chrono::milliseconds idle_exit = std::chrono::seconds(1),
                ByteBudget* budget = nullptr);
  ~InboundRouter();  // Stop()

  InboundRouter(const InboundRouter&) = delete;
  InboundRouter& operator=(const InboundRouter&) = delete;

  // Routes a message read from a stream: dropped while paused and for link
  // heartbeats; an urgent one offered to Raft::TryProcessUrgent on this
  // thread first, if none is queued or in Process; MsgProp to the proposal
  // queue, everything else to the receive queue; dropped and counted when
  // that queue is full. Blocks only as long as TryProcessUrgent (which must
  // not). `encoded_size` as for InboundCost.
  Result Deliver(raftpb::Message&& m, size_t encoded_size = 0);
  // Queues a frame still encoded on the receive queue (EncodedFrame). The
  // worker decodes it when it comes to it and processes its messages in
  // its place: in order, after everything queued before it and before
  // anything queued after it. Urgent messages pass them as they pass queued
  // ones, but not a frame being decoded. Until decoded it counts as one
  // message and holds `reserve` bytes of the budget (EncodedReserve); then
  // its messages are charged what they cost, as a whole until the last is
  // processed (InboundArena). While paused or when the budget is full, it
  // is still decoded, since a codec's state must follow every record, and
  // its messages are dropped. Never blocks.
  void DeliverEncoded(std::unique_ptr<EncodedFrame> frame, size_t reserve);
  // What a frame of `encoded` bytes is expected to cost once decoded: up to
  // about 4x for small entries (an entry of 128 bytes: some 400 bytes of
  // objects besides its data), little more for large ones.
  static size_t EncodedReserve(size_t encoded) {
    return encoded + std::min(3 * encoded, size_t{1} << 20);
  }

  // Called with Process's status once it has returned, or UNAVAILABLE if
  // Stop drops the message first. Runs on the worker (or Stop's) thread.
  using DoneFn = std::function<void(const absl::Status&)>;
  // The same for messages that arrived by pipeline RPC, which Pause does
  // not stop (etcd pauses only the stream readers). On kQueued, `done` (if
  // any) is called exactly once, as above; otherwise never.
  Result DeliverUnpaused(raftpb::Message&& m, DoneFn done = nullptr, size_t encoded_size = 0) {
    return Route(std::move(m), false, std::move(done), encoded_size);
  }

  // While paused, Deliver drops everything (etcd pauses the stream readers;
  // inbound pipeline and snapshot requests are not affected).
  void Pause() { paused_.store(true, std::memory_order_relaxed); }
  void Resume() { paused_.store(false, std::memory_order_relaxed); }
  bool paused() const { return paused_.load(std::memory_order_relaxed); }

  // Whether messages costing `bytes` would fit now in the byte budget, with
  // the receive queue (which heartbeats and appends share) under 3/4 full.
  // A stream reader that gets false stops reading for a while, so that
  // HTTP/2 flow control slows the sender rather than this node dropping.
  // The proposal queue does not count: a proposal stuck in Process must
  // not hold up heartbeats. A hint, lock-free.
  bool HasRoom(size_t bytes) const {
    return (budget_ == nullptr || budget_->HasRoom(bytes)) &&
           recv_.pending.load(std::memory_order_relaxed) < recv_.capacity / 4 * 3;
  }

  // Drops queued messages, waits for TryProcessUrgent calls in flight and
  // joins both workers. Idempotent.
  void Stop();
  // True once Stop has begun (workers may still be finishing a Process).
  bool stopped() const { return recv_.stopped.load(std::memory_order_acquire); }

  // Messages queued or taken but not yet processed, both lanes.
  size_t pending() const {
    return recv_.pending.load(std::memory_order_relaxed) +
           prop_.pending.load(std::memory_order_relaxed);
  }
  // Messages handed to Raft. Counted before the call, so whatever observes
  // a message in Raft observes its count; a TryProcessUrgent that Raft
  // declines is counted for its duration only.
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  // Of those, taken by Raft::TryProcessUrgent on the reading thread.
  uint64_t processed_at_once() const { return processed_at_once_.load(std::memory_order_relaxed); }
  uint64_t dropped_full() const { return dropped_full_.load(std::memory_order_relaxed); }
  uint64_t dropped_paused() const { return dropped_paused_.load(std::memory_order_relaxed); }
  uint64_t process_errors() const { return process_errors_.load(std::memory_order_relaxed); }
  // Worker threads alive now (0, 1 or 2), and started so far.
  int workers() const { return workers_.load(std::memory_order_relaxed); }
  uint64_t workers_started() const { return workers_started_.load(std::memory_order_relaxed); }
  // Times a worker thread could not be created (its queue was dropped).
  uint64_t worker_start_failures() const {
    return worker_start_failures_.load(std::memory_order_relaxed);
  }

 private:
  // One bounded queue and the worker that drains it.
  struct Lane {
    explicit Lane(size_t cap) : capacity(cap) {}
    const size_t capacity;
    Mutex mu;
    std::condition_variable cv;
    struct Queued {
      raftpb::Message m;
      size_t cost = 0;  // charged to the budget
      DoneFn done;
      // Instead of m: a message in an InboundArena, which this holds.
      raftpb::Message* in_arena = nullptr;
      std::shared_ptr<InboundArena> arena;
      // Instead of a message: a frame to decode (DeliverEncoded). `cost`
      // is its reserve; `drop` says its messages are to be dropped.
      std::unique_ptr<EncodedFrame> encoded;
      enum class Drop : uint8_t { kNone, kPaused, kFull } drop = Drop::kNone;
      const raftpb::Message& msg() const { return in_arena != nullptr ? *in_arena : m; }
    };
    std::deque<Queued> q ABSL_GUARDED_BY(mu);
    // Heartbeats, votes and the like (IsUrgent): processed before anything
    // else queued, even in the middle of a batch, so that they never wait
    // behind thousands of MsgApps. Raft tolerates reordering between
    // message types; order within each kind is kept.
    std::deque<Queued> urgent ABSL_GUARDED_BY(mu);
    // Urgent messages queued or taken but not yet processed, read without
    // the lock: while any is, none is offered to TryProcessUrgent (it would
    // pass them). Between two messages of its own, the worker has none in
    // hand, so there this is urgent.size().
    std::atomic<size_t> urgent_unfinished{0};
    // Queued plus taken by the worker but not yet processed: the bound
    // applies to both, as for etcd's channel.
    std::atomic<size_t> pending{0};
    std::atomic<bool> stopped{false};
    bool worker_waiting ABSL_GUARDED_BY(mu) = false;
    bool running ABSL_GUARDED_BY(mu) = false;  // a worker exists and will drain the queue
    // Serializes starting, replacing (joining an exited one) and joining the
    // worker; never held while Process runs.
    Mutex thread_mu;
    std::thread worker ABSL_GUARDED_BY(thread_mu);
  };

  Result Route(raftpb::Message&& m, bool honor_pause, DoneFn done, size_t encoded_size);
  // Offers `m` (urgent, from a stream) to Raft::TryProcessUrgent if no
  // urgent message is unfinished: kProcessed if taken, kStopped after
  // Stop, nothing if it is to be queued.
  std::optional<Result> TryAtOnce(const raftpb::Message& m);
  // Queues `q` (its cost already set) on the lane its message's type picks;
  // drops it while paused (if `honor_pause`) and for a link heartbeat.
  Result Push(Lane::Queued&& q, bool honor_pause);
  // Push's part under lane.mu: queues `q` on `lane`, or says why not.
  Result EnqueueLocked(Lane& lane, Lane::Queued&& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu);
  // After queueing: whether the lane needs a worker started, or woken.
  static void NeedWorkerLocked(Lane& lane, bool* start, bool* wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu);
  // Processes one message (`urgent`: from lane.urgent) and settles its
  // accounts.
  void ProcessOne(Lane& lane, Lane::Queued& q, bool urgent);
  // A worker's decoded frame: its messages, processed in order from `next`
  // without a queue entry each, and its arena, released after the last.
  struct Decoded {
    std::shared_ptr<InboundArena> arena;
    std::vector<raftpb::Message*> msgs;
    size_t next = 0;
    void Clear();
  };
  // On the worker: decodes `q`'s frame into `out` (empty), charging it and
  // counting its messages as queued; drops what does not fit (leaving `out`
  // empty if nothing is left).
  void Expand(Lane& lane, Lane::Queued&& q, Decoded* out);
  void ProcessDecoded(Lane& lane, Decoded* d);
  // Charges `a`'s memory now (its frame fully decoded) plus `extra` bytes
  // (what its messages hold outside the arena: string buffers) to the byte
  // budget, once. False if that does not fit (its messages are to be
  // dropped, as for a full queue).
  bool ChargeArena(InboundArena* a, size_t extra);
  static Lane::Queued InArena(raftpb::Message* m, const std::shared_ptr<InboundArena>& arena);
  // Gives back the budget of, and fails with `why`, dropped messages.
  void Drop(std::deque<Lane::Queued>* dropped, const absl::Status& why);
  void Drain(Lane& lane);
  void StartWorker(Lane& lane);

  Raft* const raft_;
  const std::chrono::milliseconds idle_exit_;
  ByteBudget* const budget_;
  Lane recv_;
  Lane prop_;
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> processed_at_once_{0};
  // TryProcessUrgent calls in flight, which Stop waits for (on recv_.cv).
  std::atomic<int> at_once_calls_{0};
  std::atomic<uint64_t> dropped_full_{0};
  std::atomic<uint64_t> worker_start_failures_{0};
  std::atomic<uint64_t> dropped_paused_{0};
  std::atomic<uint64_t> process_errors_{0};
  std::atomic<int> workers_{0};
  std::atomic<uint64_t> workers_started_{0};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_INBOUND_ROUTER_H_
