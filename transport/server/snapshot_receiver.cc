#include "transport/server/snapshot_receiver.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"
#include "transport/internal/log.h"
#include "transport/internal/metadata.h"
#include "transport/internal/scheduler.h"
#include "transport/server/raw_message.h"
#include "transport/snapshot/crc32c.h"

namespace raftgrpc {
namespace {

std::atomic<int64_t> g_buffered{0};
std::atomic<int64_t> g_peak{0};

}  // namespace

uint64_t SnapshotReceiver::PeakBufferedBytes() { return static_cast<uint64_t>(g_peak.load()); }
void SnapshotReceiver::ResetPeakBufferedBytes() { g_peak.store(g_buffered.load()); }

void SnapshotReceiver::NoteBuffered(int64_t delta) {
  buffered_ += delta;
  int64_t now = g_buffered.fetch_add(delta) + delta;
  int64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

absl::Status SnapshotAdmission::Admit(uint64_t from, std::shared_ptr<ReceiverRef> self,
                                      std::shared_ptr<ReceiverRef>* replaced) {
  MutexLock l(&mu_);
  auto it = senders_.find(from);
  if (it != senders_.end()) {
    *replaced = std::exchange(it->second, std::move(self));
    return absl::OkStatus();
  }
  if (senders_.size() >= limit_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        senders_.size(), " snapshots are being received, the limit (max_snapshot_receives)"));
  }
  senders_.emplace(from, std::move(self));
  return absl::OkStatus();
}

void SnapshotAdmission::Release(uint64_t from, const std::shared_ptr<ReceiverRef>& self) {
  MutexLock l(&mu_);
  auto it = senders_.find(from);
  if (it != senders_.end() && it->second == self) senders_.erase(it);
}

SnapshotReceiver::SnapshotReceiver(const ServerEnv& env, grpc::CallbackServerContext* ctx)
    : env_(env), ctx_(ctx), ref_(std::make_shared<ReceiverRef>()) {}

SnapshotReceiver* SnapshotReceiver::Start(const ServerEnv& env, grpc::CallbackServerContext* ctx,
                                          grpc::ByteBuffer* resp) {
  auto* r = new SnapshotReceiver(env, ctx);
  EncodeRaw(v1::SnapshotResponse(), resp);
  ServiceHost* host = env.host;
  RequestIdentity id;
  grpc::Status s = ValidateRequest(ctx, host->options(), &id);
  if (s.ok()) {
    r->from_ = id.from;
    r->start_ = absl::Now();
    if (!id.peer_urls.empty()) host->AddRemote(id.from, id.peer_urls);
    if (host->raft()->IsIdRemoved(id.from)) s = RemovedMemberStatus(ctx);
  }
  if (s.ok()) {
    env.counters->by_sender.SnapshotStarted(id.from);
    r->counted_ = true;
  }
  r->handoff_.Publish();
  if (!s.ok()) {
    r->Fail(s);
    return r;
  }
  {
    // A client that never sends its header holds this call, and nothing
    // else would end it: the header gets the progress timeout too.
    std::shared_ptr<ReceiverRef> watch = r->ref_;
    MutexLock l(&watch->mu);
    watch->receiver = r;
    r->header_task_ =
        host->scheduler()->RunAfter(host->options().snapshot_progress_timeout, [watch] {
          MutexLock l(&watch->mu);
          if (watch->receiver != nullptr) watch->receiver->OnHeaderTimeout();
        });
  }
  r->StartRead(&r->raw_);
  return r;
}

// Before the answer, not at OnDone: the sender may start its next transfer
// as soon as it has the answer, and the work of this one is over by then.
void SnapshotReceiver::ReleaseAdmission() {
  if (admitted_.exchange(false)) env_.snapshot_admission->Release(from_, ref_);
}

void SnapshotReceiver::Preempt() {
  Fail(grpc::Status(grpc::StatusCode::ABORTED,
                    "replaced by a newer snapshot transfer from the same peer"));
}

void SnapshotReceiver::OnHeaderTimeout() {
  Fail(grpc::Status(
           grpc::StatusCode::DEADLINE_EXCEEDED,
           absl::StrCat("no snapshot header for ",
                        absl::FormatDuration(env_.host->options().snapshot_progress_timeout))),
       /*before_header=*/true);
}

void SnapshotReceiver::Fail(const grpc::Status& s, bool before_header, bool link) {
  std::unique_ptr<SnapshotSink> sink;
  bool defer;
  {
    MutexLock l(&mu_);
    if (finished_ || (before_header && header_seen_)) return;
    finished_ = true;
    keep_on_fail_ = link || LinkFailure(s.error_code());
    sink = std::move(sink_);
    // While the disk thread owns the sink, it aborts and then answers, so
    // the sender never sees the failure before the partial file is gone.
    defer = disk_owns_sink_ && std::this_thread::get_id() != disk_tid_;
    if (defer) deferred_ = s;
    cv_.notify_all();
  }
  if (sink) sink->Abort();
  env_.counters->snapshots_rejected.fetch_add(1, std::memory_order_relaxed);
  outcome_ok_ = false;  // metrics at OnDone, when the transfer's resources are gone
  env_.failure_log->Log(
      env_.host->options(),
      absl::StrCat("failed to receive database snapshot from peer ", absl::Hex(from_), ": ",
                   static_cast<int>(s.error_code()), ": ", s.error_message()));
  if (!defer) {
    ReleaseAdmission();
    Finish(s);
  }
}

void SnapshotReceiver::FinishDeferred() {
  std::optional<grpc::Status> s;
  {
    MutexLock l(&mu_);
    s.swap(deferred_);
  }
  if (s) {
    ReleaseAdmission();
    Finish(*s);
  }
}

void SnapshotReceiver::HandleHeader() {
  const TransportOptions& opts = env_.host->options();
  v1::SnapshotHeader* h = frame_.mutable_header();
  const raftpb::Message& m = h->message();
  if (m.type() != raftpb::MsgSnap) {
    return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wrong raft message type"));
  }
  // A member speaks only for itself: the MsgSnap must agree with the header.
  grpc::Status identity = CheckMessageIdentity(m, from_, opts.local_id);
  if (!identity.ok()) return Fail(identity);
  size_t size = m.ByteSizeLong();
  if (size > opts.max_message_bytes) {
    return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                             absl::StrCat("raft message of ", size, " bytes exceeds the limit of ",
                                          opts.max_message_bytes)));
  }
  {
    MutexLock l(&mu_);
    if (finished_) return;  // the header timeout won the race
    header_seen_ = true;    // from here on the disk thread's timeout applies
  }
  SnapshotStore* store = env_.host->snapshot_store();
  if (store == nullptr) {
    return Fail(grpc::Status(grpc::StatusCode::INTERNAL, "no snapshot store configured"));
  }
  // Bounded threads and files: one receive per sender, a few in all.
  std::shared_ptr<ReceiverRef> replaced;
  absl::Status admitted = env_.snapshot_admission->Admit(from_, ref_, &replaced);
  if (replaced != nullptr) {
    MutexLock l(&replaced->mu);
    if (replaced->receiver != nullptr) replaced->receiver->Preempt();
  }
  if (!admitted.ok()) {
    return Fail(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(admitted.message())));
  }
  admitted_.store(true);
  if (h->offset() > h->data_size()) {
    return Fail(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("snapshot offset ", h->offset(), " beyond its size ", h->data_size())));
  }
  auto sink = SnapshotResumable(env_.host, from_)
                  ? store->BeginFrom(from_, m, h->data_size(), h->offset())
              : h->offset() != 0
                  ? absl::StatusOr<std::unique_ptr<SnapshotSink>>(absl::FailedPreconditionError(
                        opts.snapshot_resume ? "snapshot resume is only for peers"
                                             : "snapshot resume is off"))
                  : store->Begin(m, h->data_size());
  const bool later = !sink.ok() && sink.status().code() == absl::StatusCode::kUnavailable;
  if (!sink.ok() && !later) {
    if (sink.status().code() == absl::StatusCode::kFailedPrecondition) {
      // A resume of a prefix we no longer hold: the sender starts over.
      return Fail(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               std::string(sink.status().message())));
    }
    return Fail(
        grpc::Status(grpc::StatusCode::INTERNAL,
                     absl::StrCat("failed to save KV snapshot (", sink.status().ToString(), ")")));
  }
  env_.counters->AddReceivedBytes(from_, size);
  have_header_ = true;
  declared_ = h->data_size();
  received_ = h->offset();
  begin_offset_ = h->offset();
  {
    MutexLock l(&mu_);
    msg_ = std::move(*h->mutable_message());
    if (later) {
      begin_later_ = true;
    } else {
      sink_ = *std::move(sink);
    }
  }
  try {
    disk_ = std::thread([this] { DiskLoop(); });
  } catch (const std::system_error& e) {
    // Out of threads (e.g. RLIMIT_NPROC): this call fails, the node serves on.
    return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                             absl::StrCat("cannot start a snapshot disk thread: ", e.what())));
  }
  StartRead(&raw_);
}

void SnapshotReceiver::HandleChunk(ChunkFrame chunk) {
  if (!have_header_) {
    return Fail(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "snapshot data before the header"));
  }
  received_ += chunk.size;
  if (received_ > declared_) {
    return Fail(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("snapshot data exceeds its declared size of ", declared_, " bytes")));
  }
  bool read_more;
  {
    MutexLock l(&mu_);
    NoteBuffered(static_cast<int64_t>(chunk.size));
    chunks_.push_back(std::move(chunk));
    cv_.notify_all();
    // Back-pressure: stop reading while the disk is behind.
    read_more = chunks_.size() < kMaxQueuedChunks;
    read_paused_ = !read_more;
  }
  if (read_more) StartRead(&raw_);
}

void SnapshotReceiver::OnReadDone(bool ok) {
  handoff_.Acquire();
  ReadDone(ok);
  handoff_.Publish();
}

void SnapshotReceiver::ReadDone(bool ok) {
  if (!ok) {
    // Client half ended. Without a trailer the transfer is truncated.
    bool truncated;
    {
      MutexLock l(&mu_);
      eof_ = true;
      truncated = !trailer_;
      cv_.notify_all();
    }
    if (truncated) {
      // A sender never half-closes early, but a reset or a cancel often
      // shows as just this: what was verified is kept.
      Fail(grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("truncated snapshot: stream ended after ", received_, " of ",
                                     declared_, " bytes")),
           /*before_header=*/false, /*link=*/true);
    }
    return;
  }
  {
    MutexLock l(&mu_);
    if (finished_) return;  // reading stops; OnDone follows the Finish
  }
  {
    ChunkFrame chunk;
    // The common frame, data and checksum, is queued as the slices it came
    // in: no copy, no allocation of its size.
    const bool split = SplitChunkFrame(raw_, &chunk);
    if (!split) {
      frame_.Clear();
      if (!grpc::SerializationTraits<v1::SnapshotFrame>::Deserialize(&raw_, &frame_).ok()) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed snapshot frame"));
      }
    }
    raw_.Clear();  // the queued slices keep what they need of it
    if (split) return HandleChunk(std::move(chunk));
  }
  switch (frame_.kind_case()) {
    case v1::SnapshotFrame::kHeader:
      if (have_header_) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "duplicate snapshot header"));
      }
      return HandleHeader();
    case v1::SnapshotFrame::kChunk: {
      // A chunk frame with other fields too (e.g. a newer sender's): copied.
      ChunkFrame chunk;
      chunk.size = frame_.chunk().size();
      chunk.data.emplace_back(frame_.chunk().data(), chunk.size);
      chunk.has_crc = frame_.has_chunk_crc32c();
      chunk.crc = frame_.chunk_crc32c();
      frame_.Clear();
      return HandleChunk(std::move(chunk));
    }
    case v1::SnapshotFrame::kTrailer: {
      if (!have_header_) {
        return Fail(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "snapshot trailer before the header"));
      }
      if (received_ != declared_) {
        return Fail(grpc::Status(
            grpc::StatusCode::DATA_LOSS,
            absl::StrCat("truncated snapshot: ", received_, " of ", declared_, " bytes")));
      }
      {
        MutexLock l(&mu_);
        trailer_ = true;
        want_crc_ = frame_.trailer().crc32c();
        cv_.notify_all();
      }
      StartRead(&raw_);  // expect the end of the client half
      return;
    }
    case v1::SnapshotFrame::KIND_NOT_SET:
      break;
  }
  Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty snapshot frame"));
}

void SnapshotReceiver::OnCancel() {
  handoff_.Acquire();
  Cancelled();
  handoff_.Publish();
}

void SnapshotReceiver::Cancelled() {
  {
    MutexLock l(&mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  Fail(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot transfer cancelled"));
}

void SnapshotReceiver::DiskLoop() {
  const absl::Duration timeout = env_.host->options().snapshot_progress_timeout;
  // The disk thread owns the sink from here on: Fail() elsewhere only marks
  // the transfer finished, and this thread aborts what it wrote.
  std::unique_ptr<SnapshotSink> sink;
  bool later;
  raftpb::Message msg;  // the MsgSnap: set before this thread started
  {
    MutexLock l(&mu_);
    msg = msg_;
    sink = std::move(sink_);
    later = begin_later_ && !finished_;
    disk_owns_sink_ = sink != nullptr || later;
    disk_tid_ = std::this_thread::get_id();
  }
  if (!sink && !later) return;  // failed (and answered) before we started
  // A failure the reactor saw meanwhile is answered once this thread is
  // done with the file, whatever the exit.
  absl::Cleanup answer_deferred = [this] { FinishDeferred(); };
  if (later) {
    // The earlier transfer this one preempted is letting go of the prefix:
    // that takes its disk thread a moment, not more than a few seconds.
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<SnapshotSink>> s;
    for (;;) {
      s = env_.host->snapshot_store()->BeginFrom(from_, msg, declared_, begin_offset_);
      if (s.ok() || s.status().code() != absl::StatusCode::kUnavailable || absl::Now() > give_up) {
        break;
      }
      UniqueLock l(&mu_);
      if (cv_.wait_for(l, std::chrono::milliseconds(10),
                       [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_; })) {
        return;  // failed meanwhile (answered by the cleanup)
      }
    }
    if (!s.ok()) {
      Fail(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("the kept prefix did not become free: ", s.status().ToString())));
      return;
    }
    sink = *std::move(s);
  }
  uint32_t crc = 0;
  uint64_t written = sink->offset();
  env_.counters->by_sender.SnapshotReceiveBegin(from_, msg.snapshot().metadata().index(), declared_,
                                                written);
  if (written == 0) {
    LogLine(env_.host->options(), absl::StrCat("start to receive database snapshot from peer ",
                                               absl::Hex(from_), " (", declared_, " bytes)"));
  } else {
    LogLine(env_.host->options(),
            absl::StrCat("resuming database snapshot from peer ", absl::Hex(from_), " at offset ",
                         written, " of ", declared_, " bytes"));
    // Re-read, not remembered: a prefix that rotted on disk between the
    // attempts then fails the end-to-end checksum.
    absl::StatusOr<uint32_t> prefix = sink->PrefixCrc32c();
    if (!prefix.ok()) {
      sink->Abort();
      Fail(grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("reading the kept prefix: ", prefix.status().ToString())));
      return;
    }
    crc = *prefix;
  }
  // Checkpoints (fdatasync, then the recorded verified length) every 1/64
  // of the data, but at most four a second: a break costs at most that much
  // again, and a fast transfer (where a restart costs little) pays no more
  // than a few syncs. Each sync made snapshots to ext4 3x slower when they
  // came every MiB (etcd-anchor's compare).
  const uint64_t checkpoint_every =
      std::clamp<uint64_t>(declared_ / 64, uint64_t{1} << 20, uint64_t{64} << 20);
  constexpr absl::Duration kCheckpointGap = absl::Milliseconds(250);
  absl::Time last_checkpoint = absl::Now();
  uint64_t since_checkpoint = 0;
  bool all_checked = true;  // every chunk carried its checksum: resumable
  // The link, not the data, failed: everything written was checked chunk by
  // chunk, so record it all (one sync), not just the last periodic
  // checkpoint, and keep it for a resume.
  auto keep_verified = [&] {
    if (all_checked && written > 0 && written < declared_) (void)sink->Checkpoint();
    sink->Keep();
  };
  for (;;) {
    ChunkFrame chunk;
    bool resume_read = false;
    {
      UniqueLock l(&mu_);
      bool progressed = cv_.wait_for(l, absl::ToChronoNanoseconds(timeout),
                                     [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                       return finished_ || !chunks_.empty() || trailer_;
                                     });
      if (finished_) {
        const bool keep = keep_on_fail_;
        l.unlock();
        if (keep) {
          keep_verified();
        } else {
          sink->Abort();
        }
        return;
      }
      if (!progressed) {
        l.unlock();
        keep_verified();  // the sender or the link went silent
        // Answered, not cancelled: the sender must see the real cause.
        Fail(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("no snapshot data for ", absl::FormatDuration(timeout))));
        return;
      }
      if (chunks_.empty()) break;  // the trailer came after the last chunk
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
      if (read_paused_) {
        read_paused_ = false;
        resume_read = true;
      }
    }
    if (resume_read) StartRead(&raw_);
    const size_t n = chunk.size;
    // One pass: the chunk's own checksum, checked, also extends the whole's.
    std::vector<absl::string_view> pieces;
    pieces.reserve(chunk.data.size());
    for (const grpc::Slice& piece : chunk.data) {
      pieces.emplace_back(reinterpret_cast<const char*>(piece.begin()), piece.size());
    }
    const uint32_t chunk_crc = Crc32cExtend(0, pieces);
    if (chunk.has_crc && chunk_crc != chunk.crc) {
      sink->Abort();
      Fail(grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("snapshot chunk checksum mismatch at offset ", written)));
      return;
    }
    all_checked = all_checked && chunk.has_crc;
    crc = Crc32cCombine(crc, chunk_crc, n);
    absl::Status s = sink->WriteV(pieces);
    written += n;
    since_checkpoint += n;
    env_.counters->by_sender.SnapshotReceiveProgress(from_, written, n);
    {
      MutexLock l(&mu_);
      NoteBuffered(-static_cast<int64_t>(n));
    }
    if (s.ok() && all_checked && since_checkpoint >= checkpoint_every && written < declared_ &&
        absl::Now() - last_checkpoint >= kCheckpointGap) {
      since_checkpoint = 0;
      last_checkpoint = absl::Now();
      s = sink->Checkpoint();
    }
    if (!s.ok()) {
      sink->Abort();
      // Answered with the store's error (a full disk is RESOURCE_EXHAUSTED),
      // not cancelled: the sender and the log must name the real cause.
      Fail(grpc::Status(s.code() == absl::StatusCode::kResourceExhausted
                            ? grpc::StatusCode::RESOURCE_EXHAUSTED
                            : grpc::StatusCode::INTERNAL,
                        absl::StrCat("failed to save KV snapshot (", s.ToString(), ")")));
      return;
    }
  }
  bool crc_ok;
  {
    MutexLock l(&mu_);
    if (finished_) {
      sink->Abort();
      return;
    }
    crc_ok = crc == want_crc_;
  }
  if (!crc_ok) {
    sink->Abort();
    Fail(grpc::Status(grpc::StatusCode::DATA_LOSS, "snapshot checksum mismatch"));
    return;
  }
  absl::StatusOr<std::string> path = sink->Commit();
  if (!path.ok()) {
    sink->Abort();
    Fail(grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat("failed to save KV snapshot (", path.status().ToString(), ")")));
    return;
  }
  env_.counters->AddReceivedBytes(from_, declared_);
  // Only now, with the data durable, does Raft learn of the snapshot.
  absl::Status ps = env_.host->raft()->ProcessSnapshot(msg, *path);
  if (!ps.ok()) {
    sink->Discard();  // a rejected snapshot must not stay as if it were good
    Fail(ProcessErrorStatus(ps, ctx_));
    return;
  }
  {
    MutexLock l(&mu_);
    if (finished_) return;
    finished_ = true;
  }
  env_.counters->snapshots_received.fetch_add(1, std::memory_order_relaxed);
  const absl::Duration took = absl::Now() - start_;
  outcome_ok_ = true;
  outcome_seconds_ = absl::ToDoubleSeconds(took);
  LogLine(env_.host->options(),
          absl::StrCat("received and saved database snapshot from peer ", absl::Hex(from_),
                       " (index ", msg.snapshot().metadata().index(), ", ", declared_,
                       " bytes, took ", absl::FormatDuration(took), ")"));
  ReleaseAdmission();
  Finish(grpc::Status::OK);
}

bool SnapshotReceiver::LinkFailure(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::UNAVAILABLE:
      return true;
    default:
      return false;
  }
}

void SnapshotReceiver::OnDone() {
  handoff_.Acquire();
  {
    MutexLock l(&ref_->mu);
    ref_->receiver = nullptr;  // timer tasks and newer transfers must not touch us now
  }
  if (header_task_ != 0) env_.host->scheduler()->Cancel(header_task_);
  // The disk thread calls Finish as its last step (or has nothing left).
  if (disk_.joinable()) disk_.join();
  ReleaseAdmission();
  {
    MutexLock l(&mu_);
    NoteBuffered(-buffered_);
    if (sink_) sink_->Abort();
  }
  // Counted here, so "in flight" covers the whole transfer, partial file
  // removal included.
  if (counted_) env_.counters->by_sender.SnapshotEnded(from_, outcome_ok_, outcome_seconds_);
  delete this;
}

}  // namespace raftgrpc
