#include "transport/snapshot/snapshot_sender.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/log.h"
#include "transport/internal/metadata.h"
#include "transport/snapshot/chunk_frame.h"
#include "transport/snapshot/crc32c.h"

namespace raftgrpc {
namespace {

// A read buffer that a gRPC slice may hold after the write that sent it
// completed (the endpoint may still be sending it): shared by the pool and
// the slice, and reused only when the pool alone holds it.
class ChunkBuffer {
 public:
  explicit ChunkBuffer(size_t cap) : mem_(new char[cap]), cap_(cap) {
    // An atomic store, not an initializer: the last Unref may run on a gRPC
    // thread that got the buffer through libgrpc, where TSan sees no
    // synchronisation, and it checks atomic-against-plain accesses.
    refs_.store(1, std::memory_order_release);  // the pool's reference
  }
  char* data() { return mem_.get(); }
  size_t capacity() const { return cap_; }
  bool Free() const { return refs_.load(std::memory_order_acquire) == 1; }
  // Release: what this thread wrote (the data, the counter itself) happens
  // before the last Unref, which may run on a gRPC thread.
  void Ref() { refs_.fetch_add(1, std::memory_order_acq_rel); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // The first n bytes as a slice that holds a reference.
  grpc::Slice Wrap(size_t n) {
    Ref();
    return grpc::Slice(
        mem_.get(), n, [](void* self) { static_cast<ChunkBuffer*>(self)->Unref(); }, this);
  }

 private:
  std::unique_ptr<char[]> mem_;
  const size_t cap_;
  std::atomic<int> refs_;
};

// A few ChunkBuffers, reused: one being written, one being read ahead.
// A buffer gRPC still holds is not reused; one it let go of is.
class ChunkBufferPool {
 public:
  ~ChunkBufferPool() {
    for (ChunkBuffer* b : bufs_) b->Unref();
  }
  ChunkBuffer* Get(size_t n) {
    for (ChunkBuffer* b : bufs_) {
      if (b->Free() && b->capacity() >= n) return b;
    }
    // Free ones here are too small: let them go.
    for (auto it = bufs_.begin(); it != bufs_.end();) {
      if ((*it)->Free()) {
        (*it)->Unref();
        it = bufs_.erase(it);
      } else {
        ++it;
      }
    }
    bufs_.push_back(new ChunkBuffer(n));
    return bufs_.back();
  }

 private:
  std::vector<ChunkBuffer*> bufs_;
};

}  // namespace

size_t GrpcSnapshotSender::ChunkAt(size_t chunk_bytes, uint64_t left) {
  // The receiver writes a chunk once all of it has arrived, so writing the
  // last one is not overlapped with the network: the transfer's end waits
  // for it (0.6-1.5 ms for 1 MiB with direct I/O on the bench VM). The last
  // chunk's worth therefore goes in halves, down to kMinTailChunk, and the
  // final write is short.
  constexpr uint64_t kMinTailChunk = 64 * 1024;
  if (left > chunk_bytes) return chunk_bytes;
  return static_cast<size_t>(std::min(left, std::max(left / 2, kMinTailChunk)));
}

GrpcSnapshotSender::GrpcSnapshotSender(const PeerEnv& env,
                                       std::shared_ptr<const TransportOptions> opts,
                                       ChannelPool* channels, Scheduler* scheduler)
    : env_(env), opts_(std::move(opts)), channels_(channels), sched_(scheduler) {
  // Dial the snapshot connection now, in the background: a snapshot's TCP
  // and HTTP/2 handshakes (and TLS's) are then not part of its transfer.
  // Non-blocking; an unreachable peer is dialled again by the transfer.
  channels_->GetForSnapshots(env_.picker->Pick(), env_.peer_id)->GetState(/*try_to_connect=*/true);
}

GrpcSnapshotSender::~GrpcSnapshotSender() { Stop(); }

void GrpcSnapshotSender::Send(SnapshotMessage snap) {
  std::vector<Worker> exited;
  bool accepted = false;
  std::string why = "another snapshot is in flight or the peer stopped";
  {
    MutexLock l(&mu_);
    // Reap threads that have returned: joining them cannot block.
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->exited->load(std::memory_order_acquire)) {
        exited.push_back(std::move(*it));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    if (!stopped_ && !busy_) {
      auto flag = std::make_shared<std::atomic<bool>>(false);
      // Shared, so that the snapshot is still ours to close if no thread
      // can be had.
      auto shared = std::make_shared<SnapshotMessage>(std::move(snap));
      try {
        workers_.push_back(Worker{std::thread([this, flag, shared] {
                                    Run(std::move(*shared));
                                    flag->store(true, std::memory_order_release);
                                  }),
                                  flag});
        accepted = true;
        busy_ = true;
        env_.counters->SnapshotSendStarted();
      } catch (const std::system_error& e) {
        snap = std::move(*shared);
        why = absl::StrCat("no thread for it (", e.what(), ")");
      }
    }
    if (!accepted) env_.counters->SnapshotSendRefused();
  }
  for (Worker& w : exited) w.thread.join();
  if (!accepted) {
    // One snapshot at a time per peer (and none once stopped).
    LogLine(*opts_,
            absl::StrCat("refused database snapshot to peer ", absl::Hex(env_.peer_id), ": ", why));
    snap.Close(false);
    // Both reports, as etcd gives for any failed snapshot send.
    ReportNotSent(env_, /*snapshot=*/true);
  }
}

void GrpcSnapshotSender::Stop() {
  std::vector<Worker> workers;
  {
    MutexLock l(&mu_);
    stopped_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
    workers.swap(workers_);
  }
  for (Worker& w : workers) {
    if (w.thread.get_id() == std::this_thread::get_id()) {
      w.thread.detach();  // Stop called from our own ReportSnapshot: it returns next
    } else {
      w.thread.join();
    }
  }
}

// Shared by a transfer and its watchdog task, which may outlive the transfer.
struct GrpcSnapshotSender::Watch {
  Mutex mu;
  grpc::ClientContext* ctx = nullptr;  // null once the transfer ended
  absl::Time last_progress;
  bool timed_out = false;  // the watchdog cancelled the call
};

void GrpcSnapshotSender::ScheduleWatch(std::shared_ptr<Watch> w) {
  const absl::Duration timeout = opts_->snapshot_progress_timeout;
  Scheduler* sched = sched_;
  sched->RunAfter(std::max(absl::Milliseconds(10), timeout / 4), [this, w, timeout] {
    MutexLock l(&w->mu);
    if (w->ctx == nullptr) return;  // transfer over: `this` may be gone
    if (absl::Now() - w->last_progress > timeout) {
      w->timed_out = true;
      w->ctx->TryCancel();
      return;
    }
    ScheduleWatch(w);
  });
}

void GrpcSnapshotSender::Run(SnapshotMessage snap) {
  grpc::ClientContext ctx;
  AddIdentityMetadata(&ctx, *opts_, env_.peer_id);
  auto watch = std::make_shared<Watch>();
  watch->ctx = &ctx;
  watch->last_progress = absl::Now();
  {
    MutexLock l(&mu_);
    ctx_ = &ctx;
    if (stopped_) ctx.TryCancel();
  }
  ScheduleWatch(watch);
  const absl::Time start = absl::Now();
  const std::string url = env_.picker->Pick();
  grpc::Status s = Transfer(snap, url, &ctx, watch.get());
  bool timed_out;
  {
    MutexLock l(&watch->mu);
    watch->ctx = nullptr;
    timed_out = watch->timed_out && !s.ok();
  }
  if (timed_out) {
    // Our own cancel shows as CANCELLED: name the real cause.
    s = grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("no progress for ", absl::FormatDuration(opts_->snapshot_progress_timeout)));
  }
  if (timed_out || s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // The link stalled or broke: its connection may be dead without our
    // kernel knowing (the receiver gave up on it during a cut), and Raft's
    // retry must not be sent into it. The next transfer dials afresh.
    channels_->ResetForSnapshots(url, env_.peer_id);
  }
  {
    MutexLock l(&mu_);
    ctx_ = nullptr;
  }
  Finish(snap, s, ctx, absl::Now() - start);
}

grpc_connectivity_state GrpcSnapshotSender::AwaitHandshake(grpc::Channel* channel) {
  // The early dial's connection may be made but not yet ready (its HTTP/2,
  // or TLS, handshake under way): a fresh dial would make a second one.
  // Bounded well inside the progress timeout, which is already running;
  // in slices, so that Stop is not held up.
  constexpr absl::Duration kSlice = absl::Milliseconds(50);
  const absl::Time deadline =
      absl::Now() + std::min(absl::Seconds(1), opts_->snapshot_progress_timeout / 4);
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/false);
  while (state == GRPC_CHANNEL_CONNECTING && absl::Now() < deadline) {
    {
      MutexLock l(&mu_);
      if (stopped_) break;
    }
    channel->WaitForStateChange(state,
                                absl::ToChronoTime(std::min(deadline, absl::Now() + kSlice)));
    state = channel->GetState(/*try_to_connect=*/false);
  }
  return state;
}

grpc::Status GrpcSnapshotSender::Transfer(SnapshotMessage& snap, const std::string& url,
                                          grpc::ClientContext* ctx, Watch* watch) {
  auto progress = [watch] {
    MutexLock l(&watch->mu);
    watch->last_progress = absl::Now();
  };
  const uint64_t size = snap.data ? snap.data->size() : 0;
  std::shared_ptr<grpc::Channel> channel = channels_->GetForSnapshots(url, env_.peer_id);
  if (AwaitHandshake(channel.get()) != GRPC_CHANNEL_READY) {
    // Only a ready connection is reused. One in backoff fails calls at
    // once, and one idle may have failed before the peer was up: dial
    // afresh, as every transfer did before the early dial.
    channels_->ResetForSnapshots(url, env_.peer_id);
    channel = channels_->GetForSnapshots(url, env_.peer_id);
  }
  auto stub = v1::RaftTransport::NewStub(channel);
  // Resume: what the receiver kept of an earlier attempt at this snapshot
  // is checksummed here (no network) and not sent again.
  LogLine(*opts_, absl::StrCat("start to send database snapshot to peer ", absl::Hex(env_.peer_id),
                               " (index ", snap.message.snapshot().metadata().index(), ", ", size,
                               " bytes)"));
  uint64_t offset = size > 0 && opts_->snapshot_resume ? AskOffset(stub.get(), snap, size) : 0;
  uint32_t prefix_crc = 0;
  if (offset > 0) {
    absl::StatusOr<uint32_t> prefix = snap.data->SkipTo(offset);
    if (prefix.ok()) {
      prefix_crc = *prefix;
      LogLine(*opts_, absl::StrCat("resuming database snapshot to peer ", absl::Hex(env_.peer_id),
                                   " at offset ", offset, " of ", size, " bytes"));
    } else if (prefix.status().code() == absl::StatusCode::kUnimplemented) {
      offset = 0;  // a source that cannot skip: from the start
    } else {
      return grpc::Status(grpc::StatusCode::ABORTED,
                          absl::StrCat("reading snapshot data: ", prefix.status().ToString()));
    }
  }
  progress();
  env_.counters->SnapshotSendBegin(snap.message.snapshot().metadata().index(), size, offset);

  // A raw call: chunk frames are gRPC slices over our read buffers, so the
  // data is neither copied into a message nor into a fresh 1 MiB
  // serialization buffer per chunk (chunk_frame.h). One op is in flight at
  // a time; while a chunk is written, the next one is read.
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = generic.PrepareCall(
      ctx, absl::StrCat("/", v1::RaftTransport::service_full_name(), "/Snapshot"), &cq);
  // Waits for the one op in flight (a cancel of ctx completes it too).
  auto await = [&cq] {
    void* tag;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  grpc::Status status;
  auto finish = [&] {
    call->Finish(&status, nullptr);
    await();
    return status;
  };
  auto abort = [&](grpc::StatusCode code, std::string why) {
    // Cancel, never half-close: the receiver must not commit a short body.
    ctx->TryCancel();
    finish();
    return grpc::Status(code, why);
  };
  auto write = [&](const grpc::ByteBuffer& frame) {
    call->Write(frame, nullptr);
    return await();
  };
  // The completion queue outlives the call, and is drained before it goes.
  absl::Cleanup drain = [&] {
    call.reset();
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
  };
  call->StartCall(nullptr);
  if (!await()) return finish();

  grpc::ByteBuffer raw;
  bool own;
  v1::SnapshotFrame frame;
  *frame.mutable_header()->mutable_message() = snap.message;
  frame.mutable_header()->set_data_size(size);
  frame.mutable_header()->set_offset(offset);
  (void)grpc::SerializationTraits<v1::SnapshotFrame>::Serialize(frame, &raw, &own);
  if (!write(raw)) return finish();
  progress();

  ChunkBufferPool pool;
  // The next chunk, read ahead: its buffer, length, and checksum; or why
  // it could not be read.
  struct Next {
    ChunkBuffer* buf = nullptr;
    size_t n = 0;
    uint32_t crc = 0;
    std::string error;
  };
  auto read_next = [&](uint64_t at) {
    Next next;
    const size_t want = ChunkAt(opts_->snapshot_chunk_bytes, size - at);
    next.buf = pool.Get(want);
    absl::StatusOr<size_t> n = snap.data->Read(next.buf->data(), want);
    if (!n.ok()) {
      next.error = absl::StrCat("reading snapshot data: ", n.status().ToString());
    } else if (*n == 0) {
      next.error = absl::StrCat("snapshot data ended after ", at, " of ", size, " bytes");
    } else {
      next.n = *n;
      // Lets the receiver verify each chunk before it counts towards a
      // resumable prefix; the same pass extends the trailer's checksum.
      next.crc = Crc32cExtend(0, next.buf->data(), *n);
    }
    return next;
  };
  uint64_t sent = offset;
  uint32_t crc = prefix_crc;
  Next cur;
  if (sent < size) cur = read_next(sent);
  while (sent < size) {
    if (!cur.error.empty()) return abort(grpc::StatusCode::ABORTED, cur.error);
    crc = Crc32cCombine(crc, cur.crc, cur.n);
    call->Write(MakeChunkFrame(cur.buf->Wrap(cur.n), cur.crc), nullptr);
    const uint64_t after = sent + cur.n;
    Next next;
    if (after < size) next = read_next(after);  // overlaps the write
    if (!await()) return finish();
    sent = after;
    progress();
    env_.counters->SnapshotSendProgress(sent, cur.n);
    cur = std::move(next);
  }
  char extra;
  if (snap.data) {
    absl::StatusOr<size_t> n = snap.data->Read(&extra, 1);
    if (n.ok() && *n > 0) {
      return abort(grpc::StatusCode::ABORTED, "snapshot data is longer than its declared size");
    }
  }
  frame.Clear();
  frame.mutable_trailer()->set_crc32c(crc);
  (void)grpc::SerializationTraits<v1::SnapshotFrame>::Serialize(frame, &raw, &own);
  if (!write(raw)) return finish();
  call->WritesDone(nullptr);
  if (!await()) return finish();
  progress();
  call->Read(&raw, nullptr);  // the (empty) response, or nothing on failure
  await();
  return finish();
}

uint64_t GrpcSnapshotSender::AskOffset(v1::RaftTransport::Stub* stub, const SnapshotMessage& snap,
                                       uint64_t size) {
  grpc::ClientContext ctx;
  AddIdentityMetadata(&ctx, *opts_, env_.peer_id);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + opts_->snapshot_progress_timeout));
  v1::SnapshotOffsetRequest req;
  *req.mutable_message() = snap.message;
  req.mutable_message()->mutable_snapshot()->clear_data();
  req.set_data_size(size);
  v1::SnapshotOffsetResponse resp;
  grpc::Status s = stub->SnapshotOffset(&ctx, req, &resp);
  // UNIMPLEMENTED: a receiver without resume; any failure: start from 0,
  // and let the transfer itself find what is wrong.
  if (!s.ok() || resp.offset() > size) return 0;
  return resp.offset();
}

void GrpcSnapshotSender::Finish(SnapshotMessage& snap, const grpc::Status& s,
                                const grpc::ClientContext& ctx, absl::Duration took) {
  const uint64_t to = env_.peer_id;
  const uint64_t size = snap.data ? snap.data->size() : 0;
  if (s.ok()) env_.counters->AddSent(size);
  env_.counters->SnapshotSendEnded(s.ok(), absl::ToDoubleSeconds(took));
  {
    // Free before reporting, so Raft may send the next snapshot at once.
    MutexLock l(&mu_);
    busy_ = false;
  }
  if (s.ok()) {
    LogLine(*opts_, absl::StrCat("sent database snapshot to peer ", absl::Hex(to), " (index ",
                                 snap.message.snapshot().metadata().index(), ", ", size,
                                 " bytes, took ", absl::FormatDuration(took), ")"));
    env_.status->Activate();
    env_.raft->ReportSnapshot(to, SnapshotStatus::kFinish);
  } else {
    LogLine(*opts_,
            absl::StrCat("failed to send database snapshot to peer ", absl::Hex(to), " (index ",
                         snap.message.snapshot().metadata().index(), ", ", size,
                         " bytes): ", static_cast<int>(s.error_code()), ": ", s.error_message()));
    ChannelFailure f;
    f.source = {"sendMsgSnap", "post"};
    f.reason = absl::StrCat(static_cast<int>(s.error_code()), ": ", s.error_message());
    f.url = env_.picker->Pick();
    f.snapshot = true;
    f.removed_member = IsRemovedMember(s, ctx);
    ReportChannelFailure(env_, f);
  }
  snap.Close(s.ok());
}

}  // namespace raftgrpc
