#include "transport/snapshot/snapshot_sender.h"

#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/log.h"
#include "transport/internal/metadata.h"
#include "transport/snapshot/crc32c.h"

namespace raftgrpc {

GrpcSnapshotSender::GrpcSnapshotSender(const PeerEnv& env,
                                       std::shared_ptr<const TransportOptions> opts,
                                       ChannelPool* channels, Scheduler* scheduler)
    : env_(env), opts_(std::move(opts)), channels_(channels), sched_(scheduler) {}

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

grpc::Status GrpcSnapshotSender::Transfer(SnapshotMessage& snap, const std::string& url,
                                          grpc::ClientContext* ctx, Watch* watch) {
  auto progress = [watch] {
    MutexLock l(&watch->mu);
    watch->last_progress = absl::Now();
  };
  const uint64_t size = snap.data ? snap.data->size() : 0;
  auto stub = v1::RaftTransport::NewStub(channels_->GetForSnapshots(url, env_.peer_id));
  // Resume: what the receiver kept of an earlier attempt at this snapshot
  // is checksummed here (no network) and not sent again.
  LogLine(*opts_, absl::StrCat("start to send database snapshot to peer ", absl::Hex(env_.peer_id),
                               " (index ", snap.message.snapshot().metadata().index(), ", ", size,
                               " bytes)"));
  uint64_t offset = size > 0 && opts_->snapshot_resume ? AskOffset(stub.get(), snap, size) : 0;
  uint32_t crc = 0;
  if (offset > 0) {
    absl::StatusOr<uint32_t> prefix = snap.data->SkipTo(offset);
    if (prefix.ok()) {
      crc = *prefix;
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
  v1::SnapshotResponse resp;
  std::unique_ptr<grpc::ClientWriter<v1::SnapshotFrame>> w = stub->Snapshot(ctx, &resp);
  auto abort = [&](grpc::StatusCode code, std::string why) {
    // Cancel, never half-close: the receiver must not commit a short body.
    ctx->TryCancel();
    w->Finish();
    return grpc::Status(code, why);
  };

  v1::SnapshotFrame frame;
  *frame.mutable_header()->mutable_message() = snap.message;
  frame.mutable_header()->set_data_size(size);
  frame.mutable_header()->set_offset(offset);
  if (!w->Write(frame)) return w->Finish();
  progress();

  uint64_t sent = offset;
  // One buffer, reused for every chunk.
  std::string* buf = frame.mutable_chunk();
  while (sent < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(opts_->snapshot_chunk_bytes, size - sent));
    buf->resize(want);
    absl::StatusOr<size_t> n = snap.data->Read(&(*buf)[0], want);
    if (!n.ok()) {
      return abort(grpc::StatusCode::ABORTED,
                   absl::StrCat("reading snapshot data: ", n.status().ToString()));
    }
    if (*n == 0) {
      return abort(grpc::StatusCode::ABORTED,
                   absl::StrCat("snapshot data ended after ", sent, " of ", size, " bytes"));
    }
    buf->resize(*n);
    // Lets the receiver verify each chunk before it counts towards a
    // resumable prefix; the same pass extends the trailer's checksum.
    const uint32_t chunk_crc = Crc32cExtend(0, buf->data(), *n);
    frame.set_chunk_crc32c(chunk_crc);
    crc = Crc32cCombine(crc, chunk_crc, *n);
    if (!w->Write(frame)) return w->Finish();
    sent += *n;
    progress();
    env_.counters->SnapshotSendProgress(sent, *n);
  }
  char extra;
  if (snap.data) {
    absl::StatusOr<size_t> n = snap.data->Read(&extra, 1);
    if (n.ok() && *n > 0) {
      return abort(grpc::StatusCode::ABORTED, "snapshot data is longer than its declared size");
    }
  }
  frame.clear_chunk_crc32c();
  frame.mutable_trailer()->set_crc32c(crc);
  if (!w->Write(frame)) return w->Finish();
  w->WritesDone();
  progress();
  return w->Finish();
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
