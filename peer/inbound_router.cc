#include "peer/inbound_router.h"

#include <system_error>
#include <utility>

namespace raftgrpc {

size_t InboundCost(const raftpb::Message& m, size_t encoded_size) {
  // Per entry: the Entry object, its slot in the repeated field, and the
  // allocator's overhead for each.
  constexpr size_t kPerEntry = sizeof(raftpb::Entry) + sizeof(void*) + 32;
  return sizeof(raftpb::Message) + (encoded_size != 0 ? encoded_size : m.ByteSizeLong()) +
         static_cast<size_t>(m.entries_size()) * kPerEntry;
}

bool IsUrgent(raftpb::MessageType t) {
  switch (t) {
    case raftpb::MsgHeartbeat:
    case raftpb::MsgHeartbeatResp:
    case raftpb::MsgVote:
    case raftpb::MsgVoteResp:
    case raftpb::MsgPreVote:
    case raftpb::MsgPreVoteResp:
    case raftpb::MsgTimeoutNow:
    case raftpb::MsgReadIndex:
    case raftpb::MsgReadIndexResp:
      return true;
    default:
      return false;
  }
}

InboundArena::InboundArena()
    : arena_([] {
        // Small frames (one heartbeat) cost a small block; a full 256 KiB
        // frame some thirty 64 KiB ones.
        google::protobuf::ArenaOptions o;
        o.start_block_size = 1024;
        o.max_block_size = 64 * 1024;
        return o;
      }()) {}

InboundArena::~InboundArena() {
  if (charged_to_ != nullptr) charged_to_->Release(charged_);
}

InboundRouter::InboundRouter(Raft* raft, size_t recv_capacity, size_t prop_capacity,
                             std::chrono::milliseconds idle_exit, ByteBudget* budget)
    : raft_(raft),
      idle_exit_(idle_exit),
      budget_(budget),
      recv_(recv_capacity),
      prop_(prop_capacity) {}

InboundRouter::~InboundRouter() { Stop(); }

InboundRouter::Result InboundRouter::Deliver(raftpb::Message&& m, size_t encoded_size) {
  // Pause and link heartbeats as Push decides them, before Raft sees any.
  if (IsUrgent(m.type()) && !paused() && !IsLinkHeartbeat(m)) {
    if (std::optional<Result> r = TryAtOnce(m)) return *r;
  }
  return Route(std::move(m), /*honor_pause=*/true, nullptr, encoded_size);
}

std::optional<InboundRouter::Result> InboundRouter::TryAtOnce(const raftpb::Message& m) {
  Lane& lane = recv_;
  if (lane.urgent_unfinished.load(std::memory_order_acquire) != 0) return std::nullopt;
  // Counted before `stopped` is read, and Stop sets `stopped` before it
  // reads the count (both sequentially consistent): either Stop waits for
  // this call, or this call sees Stop and makes none.
  at_once_calls_.fetch_add(1);
  std::optional<Result> result = Result::kStopped;
  if (!lane.stopped.load()) {
    absl::Status status;
    // Counted before the call, as ProcessOne counts: a Raft that observes
    // the message then also observes the count (counted after, a reader
    // could see a later message counted and this one not yet). Taken back
    // if Raft declines it; the queue counts it again when it delivers it.
    delivered_.fetch_add(1, std::memory_order_relaxed);
    processed_at_once_.fetch_add(1, std::memory_order_relaxed);
    // Not guarded here: the transport hands us a GuardedRaft, which makes
    // a throw a taken message with an INTERNAL status (counted below).
    if (raft_->TryProcessUrgent(m, &status)) {
      if (!status.ok()) process_errors_.fetch_add(1, std::memory_order_relaxed);
      result = Result::kProcessed;
    } else {
      delivered_.fetch_sub(1, std::memory_order_relaxed);
      processed_at_once_.fetch_sub(1, std::memory_order_relaxed);
      result = std::nullopt;
    }
  }
  // Last, and under the lock Stop waits with: once the count is 0, Stop
  // may return and the router be destroyed, so nothing of it is touched
  // after this; and the notification cannot fall between Stop's check
  // and its wait.
  MutexLock l(&lane.mu);
  if (at_once_calls_.fetch_sub(1) == 1 && lane.stopped.load()) lane.cv.notify_all();
  return result;
}

InboundRouter::Result InboundRouter::Route(raftpb::Message&& m, bool honor_pause, DoneFn done,
                                           size_t encoded_size) {
  Lane::Queued q;
  q.cost = budget_ != nullptr ? InboundCost(m, encoded_size) : 0;
  q.m = std::move(m);
  q.done = std::move(done);
  return Push(std::move(q), honor_pause);
}

bool InboundRouter::ChargeArena(InboundArena* a, size_t extra) {
  if (budget_ == nullptr || a->charged_to_ != nullptr) return true;
  const size_t cost = static_cast<size_t>(a->arena_.SpaceAllocated()) + extra;
  if (!budget_->TryCharge(cost)) return false;
  a->charged_to_ = budget_;
  a->charged_ = cost;
  return true;
}

InboundRouter::Lane::Queued InboundRouter::InArena(raftpb::Message* m,
                                                   const std::shared_ptr<InboundArena>& arena) {
  Lane::Queued q;
  q.in_arena = m;
  q.arena = arena;
  return q;
}

void InboundRouter::DeliverEncoded(std::unique_ptr<EncodedFrame> frame, size_t reserve) {
  Lane::Queued q;
  q.encoded = std::move(frame);
  if (paused()) {
    q.drop = Lane::Queued::Drop::kPaused;
  } else if (budget_ != nullptr && !budget_->TryCharge(reserve)) {
    q.drop = Lane::Queued::Drop::kFull;
  } else if (budget_ != nullptr) {
    q.cost = reserve;
  }
  Lane& lane = recv_;
  bool start = false, wake = false;
  {
    MutexLock l(&lane.mu);
    if (!lane.stopped.load(std::memory_order_relaxed)) {
      lane.q.push_back(std::move(q));
      lane.pending.fetch_add(1, std::memory_order_relaxed);
      NeedWorkerLocked(lane, &start, &wake);
    }
  }
  // Stopped: still here (its destructor runs outside the lock).
  if (q.encoded != nullptr && budget_ != nullptr) budget_->Release(q.cost);
  if (start) StartWorker(lane);
  if (wake) lane.cv.notify_one();
}

void InboundRouter::Expand(Lane& lane, Lane::Queued&& q, Decoded* out) {
  auto arena = std::make_shared<InboundArena>();
  std::vector<raftpb::Message*>& msgs = out->msgs;  // decoded in place
  size_t bytes = 0;
  q.encoded->Decode(arena.get(), &msgs, &bytes);
  // The reserve gives way to what the messages really cost.
  if (budget_ != nullptr) budget_->Release(q.cost);
  msgs.erase(std::remove_if(msgs.begin(), msgs.end(),
                            [](const raftpb::Message* m) { return IsLinkHeartbeat(*m); }),
             msgs.end());
  size_t dropped = 0;
  if (msgs.empty()) {
    // nothing to deliver
  } else if (q.drop == Lane::Queued::Drop::kPaused) {
    dropped_paused_.fetch_add(msgs.size(), std::memory_order_relaxed);
    msgs.clear();
  } else if (q.drop == Lane::Queued::Drop::kFull || !ChargeArena(arena.get(), bytes)) {
    dropped_full_.fetch_add(msgs.size(), std::memory_order_relaxed);
    dropped = msgs.size();
    msgs.clear();
  } else {
    // Proposals to their own lane, in order; the rest stay, in order.
    size_t kept = 0;
    for (raftpb::Message* m : msgs) {
      if (m->type() != raftpb::MsgProp) {
        msgs[kept++] = m;
      } else if (Push(InArena(m, arena), /*honor_pause=*/false) == Result::kFull) {
        ++dropped;
      }
    }
    // As many as the queue has room for, the frame's own place included;
    // the rest are dropped as for a full queue.
    const size_t pending = lane.pending.load(std::memory_order_relaxed) - 1;
    const size_t room = std::min(kept, lane.capacity > pending ? lane.capacity - pending : 0);
    dropped_full_.fetch_add(kept - room, std::memory_order_relaxed);
    dropped += kept - room;
    msgs.resize(room);
    lane.pending.fetch_add(room, std::memory_order_relaxed);
    // Held until the last is processed; with none to process, the charge
    // goes now (the worker might otherwise wait idle holding it).
    if (room > 0) out->arena = std::move(arena);
  }
  lane.pending.fetch_sub(1, std::memory_order_relaxed);  // the frame itself
  if (dropped > 0) q.encoded->Dropped(dropped);
}

void InboundRouter::ProcessDecoded(Lane& lane, Decoded* d) {
  delivered_.fetch_add(1, std::memory_order_relaxed);
  if (!raft_->Process(*d->msgs[d->next++]).ok()) {
    process_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  lane.pending.fetch_sub(1, std::memory_order_relaxed);
  if (d->next == d->msgs.size()) d->Clear();  // gives the frame's charge back
}

void InboundRouter::Decoded::Clear() {
  msgs.clear();
  next = 0;
  arena.reset();
}

InboundRouter::Result InboundRouter::Push(Lane::Queued&& q, bool honor_pause) {
  if (honor_pause && paused()) {
    dropped_paused_.fetch_add(1, std::memory_order_relaxed);
    return Result::kPaused;
  }
  if (IsLinkHeartbeat(q.msg())) return Result::kLinkHeartbeat;
  Lane& lane = q.msg().type() == raftpb::MsgProp ? prop_ : recv_;
  bool start = false, wake = false;
  {
    MutexLock l(&lane.mu);
    const Result r = EnqueueLocked(lane, std::move(q));
    if (r != Result::kQueued) return r;
    NeedWorkerLocked(lane, &start, &wake);
  }
  if (start) StartWorker(lane);
  if (wake) lane.cv.notify_one();
  return Result::kQueued;
}

InboundRouter::Result InboundRouter::EnqueueLocked(Lane& lane, Lane::Queued&& q) {
  if (lane.stopped.load(std::memory_order_relaxed)) return Result::kStopped;
  if (lane.pending.load(std::memory_order_relaxed) >= lane.capacity ||
      (budget_ != nullptr && q.cost != 0 && !budget_->TryCharge(q.cost))) {
    dropped_full_.fetch_add(1, std::memory_order_relaxed);
    return Result::kFull;
  }
  if (IsUrgent(q.msg().type())) {
    lane.urgent.push_back(std::move(q));
    lane.urgent_unfinished.fetch_add(1, std::memory_order_release);
  } else {
    lane.q.push_back(std::move(q));
  }
  lane.pending.fetch_add(1, std::memory_order_relaxed);
  return Result::kQueued;
}

void InboundRouter::NeedWorkerLocked(Lane& lane, bool* start, bool* wake) {
  if (!lane.running) {
    lane.running = true;
    *start = true;
  } else {
    // Only a sleeping worker needs the (syscall-costly) wake-up.
    *wake = lane.worker_waiting;
  }
}

void InboundRouter::StartWorker(Lane& lane) {
  MutexLock g(&lane.thread_mu);
  // Stop has joined (or is about to join) under thread_mu: start nothing.
  if (lane.stopped.load(std::memory_order_acquire)) return;
  // The previous worker, if any, has left its loop (it cleared running).
  if (lane.worker.joinable()) lane.worker.join();
  workers_.fetch_add(1, std::memory_order_relaxed);
  workers_started_.fetch_add(1, std::memory_order_relaxed);
  try {
    lane.worker = std::thread([this, &lane] {
      Drain(lane);
      workers_.fetch_sub(1, std::memory_order_relaxed);
    });
  } catch (const std::system_error&) {
    // No thread to be had (a process or memory limit). This is called from
    // gRPC callbacks, where an exception would end the process: instead
    // the queued messages are dropped as for a full queue (a pipeline call
    // is answered with the error), and the next message tries again.
    workers_.fetch_sub(1, std::memory_order_relaxed);
    worker_start_failures_.fetch_add(1, std::memory_order_relaxed);
    std::deque<Lane::Queued> dropped;
    {
      MutexLock l(&lane.mu);
      dropped.swap(lane.q);
      for (auto& q : lane.urgent) dropped.push_back(std::move(q));
      lane.urgent_unfinished.fetch_sub(lane.urgent.size(), std::memory_order_release);
      lane.urgent.clear();
      lane.pending.fetch_sub(dropped.size(), std::memory_order_relaxed);
      lane.running = false;
    }
    dropped_full_.fetch_add(dropped.size(), std::memory_order_relaxed);
    Drop(&dropped, absl::ResourceExhaustedError("no thread to process the message"));
  }
}

void InboundRouter::Drain(Lane& lane) {
  std::deque<Lane::Queued> batch, urgent;
  Decoded decoded;
  for (;;) {
    {
      UniqueLock l(&lane.mu);
      lane.worker_waiting = true;
      const bool work =
          lane.cv.wait_for(l, idle_exit_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane.mu) {
            return lane.stopped.load() || !lane.q.empty() || !lane.urgent.empty();
          });
      lane.worker_waiting = false;
      if (lane.stopped.load()) return;  // Stop released the queue
      if (!work) {
        // Idle: exit; the next Push starts a new worker.
        lane.running = false;
        return;
      }
      // Take everything queued: one lock per burst, not per message.
      batch.swap(lane.q);
    }
    for (;;) {
      // Stop drops what is still queued, as etcd's workers exit on stopc.
      if (lane.stopped.load(std::memory_order_acquire)) {
        lane.pending.fetch_sub(decoded.msgs.size() - decoded.next, std::memory_order_relaxed);
        decoded.Clear();
        Drop(&batch, absl::UnavailableError("the receiver stopped"));
        return;
      }
      // Urgent messages first, checked between any two others.
      if (lane.urgent_unfinished.load(std::memory_order_acquire) > 0) {
        {
          MutexLock l(&lane.mu);
          urgent.swap(lane.urgent);
        }
        while (!urgent.empty()) {
          ProcessOne(lane, urgent.front(), /*urgent=*/true);
          urgent.pop_front();
        }
        continue;
      }
      // A decoded frame's messages come before anything queued after it.
      if (decoded.next < decoded.msgs.size()) {
        ProcessDecoded(lane, &decoded);
        continue;
      }
      if (batch.empty()) break;
      if (batch.front().encoded != nullptr) {
        Lane::Queued q = std::move(batch.front());
        batch.pop_front();
        Expand(lane, std::move(q), &decoded);
        continue;
      }
      ProcessOne(lane, batch.front(), /*urgent=*/false);
      batch.pop_front();
    }
  }
}

void InboundRouter::ProcessOne(Lane& lane, Lane::Queued& q, bool urgent) {
  // Counted before the call so a Process that observes the message also
  // observes the count.
  delivered_.fetch_add(1, std::memory_order_relaxed);
  const absl::Status s = raft_->Process(q.msg());
  if (!s.ok()) process_errors_.fetch_add(1, std::memory_order_relaxed);
  // After Process returned (and before pending says so): the next urgent
  // message may now be offered at once.
  if (urgent) lane.urgent_unfinished.fetch_sub(1, std::memory_order_release);
  lane.pending.fetch_sub(1, std::memory_order_relaxed);
  if (budget_ != nullptr) budget_->Release(q.cost);
  if (q.done) q.done(s);
}

void InboundRouter::Drop(std::deque<Lane::Queued>* dropped, const absl::Status& why) {
  for (Lane::Queued& q : *dropped) {
    if (budget_ != nullptr) budget_->Release(q.cost);
    if (q.done) q.done(why);
  }
  dropped->clear();
}

void InboundRouter::Stop() {
  for (Lane* lane : {&recv_, &prop_}) {
    std::deque<Lane::Queued> dropped;
    {
      MutexLock l(&lane->mu);
      lane->stopped.store(true);  // sequentially consistent: see TryAtOnce
      dropped.swap(lane->q);
      for (auto& q : lane->urgent) dropped.push_back(std::move(q));
      lane->urgent_unfinished.fetch_sub(lane->urgent.size(), std::memory_order_release);
      lane->urgent.clear();
    }
    // Outside the lock: `done` may call into gRPC.
    Drop(&dropped, absl::UnavailableError("the receiver stopped"));
    lane->cv.notify_all();
  }
  {
    // No call into Raft after Stop: wait for TryProcessUrgent in flight.
    UniqueLock l(&recv_.mu);
    recv_.cv.wait(
        l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(recv_.mu) { return at_once_calls_.load() == 0; });
  }
  for (Lane* lane : {&recv_, &prop_}) {
    MutexLock g(&lane->thread_mu);
    if (lane->worker.joinable()) lane->worker.join();
  }
}

}  // namespace raftgrpc
