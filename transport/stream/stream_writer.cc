#include "transport/stream/stream_writer.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/stream/server_stream.h"

namespace raftgrpc {

// ------------------------------------------------------------------- encoders

namespace {

struct MessageEncoder {
  explicit MessageEncoder(size_t /*max_frame_bytes*/) {}
  void Prepare(v1::MessageFrame*) {}
  void Encode(raftpb::Message&& m, v1::MessageFrame* frame) {
    *frame->add_messages() = std::move(m);
  }
  // Cleared messages stay allocated inside the frame for the next Add.
  static void Recycle(v1::MessageFrame* frame) { frame->Clear(); }
};

// Serializes on Send's thread; the message stays with Send's caller, whose
// thread frees it.
struct V2WireEncoder {
  // A frame's bytes go to gRPC without a copy (ToWrite) and come back
  // through `pool` when gRPC lets go of them. A fresh buffer has room for
  // a full frame and its records' framing, so it is not grown copy after
  // copy; up to kKeptFrames full frames' worth are kept: about as many as
  // a fast sender has pending and in gRPC's hands at once (fewer made a
  // new buffer for one frame in seven at 1 KiB; the fresh pages cost more
  // than the copy saved).
  static constexpr size_t kKeptFrames = 8;
  explicit V2WireEncoder(size_t max_frame_bytes)
      : reserve(max_frame_bytes + max_frame_bytes / 16),
        pool(std::make_shared<WireBufferPool>(2 * reserve, kKeptFrames * reserve)) {}
  // A new frame's bytes, before its first message.
  void Prepare(MsgAppV2WireFrame* frame) {
    if (frame->bytes.capacity() < reserve) frame->bytes = pool->Take(reserve);
    frame->pool = pool;
  }
  void Encode(raftpb::Message&& m, MsgAppV2WireFrame* frame) { enc.Encode(m, &frame->bytes); }
  // The bytes are gRPC's until it gives them back to the pool.
  static void Recycle(MsgAppV2WireFrame* frame) {
    frame->bytes.clear();
    frame->buffer.Clear();
  }
  MsgAppV2Encoder enc;
  size_t reserve;
  std::shared_ptr<WireBufferPool> pool;
};

template <class Frame>
struct EncoderFor;
template <>
struct EncoderFor<v1::MessageFrame> {
  using type = MessageEncoder;
};
template <>
struct EncoderFor<MsgAppV2WireFrame> {
  using type = V2WireEncoder;
};

// Finds a conn of type C: visiting leaves `found` null for any other kind.
template <class C>
class ConnMatch final : public OutgoingConnVisitor {
 public:
  void Visit(MessageStreamConn& c) override { Take(&c); }
  void Visit(MsgAppV2StreamConn& c) override { Take(&c); }
  C* found = nullptr;

 private:
  void Take(C* c) { found = c; }
  template <class Other>
  void Take(Other*) {}
};

raftpb::Message LinkHeartbeat() {
  raftpb::Message m;
  m.set_type(raftpb::MsgHeartbeat);
  return m;
}

}  // namespace

// ----------------------------------------------------------------------- core

class GrpcStreamWriter::CoreBase {
 public:
  virtual ~CoreBase() = default;
  virtual void Start() = 0;
  virtual bool Working() const = 0;
  virtual bool TrySend(raftpb::Message&& m) = 0;
  virtual void Stop() = 0;
  virtual bool Attach(std::unique_ptr<OutgoingConn>& conn) = 0;
  virtual StreamWriterStats stats() const = 0;
};

template <class Frame>
class GrpcStreamWriter::Core final : public CoreBase,
                                     public FrameSink<Frame>,
                                     public std::enable_shared_from_this<Core<Frame>> {
 public:
  using Stream = ServerStream<Frame>;
  using Conn = typename Stream::Conn;

  Core(StreamType type, const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
       Scheduler* sched)
      : type_(type),
        env_(env),
        opts_(std::move(opts)),
        cap_(opts_->stream_buf_size),
        cap_bytes_(opts_->stream_buf_bytes),
        max_frame_bytes_(opts_->max_frame_bytes),
        max_message_bytes_(opts_->max_message_bytes),
        heartbeat_interval_(opts_->conn_read_timeout / 3),
        sched_(sched),
        enc_(opts_->max_frame_bytes) {}

  void Start() override {
    MutexLock l(&mu_);
    ScheduleTickLocked();
  }

  // Read on every Send (Peer::Pick), so without mu_: Send then takes the
  // lock once, in TrySend, not twice.
  bool Working() const override { return working_.load(std::memory_order_acquire); }

  bool TrySend(raftpb::Message&& m) override {
    const size_t size = m.ByteSizeLong();
    if (size > max_message_bytes_) return false;
    std::shared_ptr<Conn> conn;
    std::unique_ptr<Frame> frame;
    {
      MutexLock l(&mu_);
      // Bounded in messages (etcd's streamBufSize) and in bytes: a reader
      // that stops reading must not make us buffer without limit.
      if (stopped_ || conn_ == nullptr || pending_msgs_ >= cap_ ||
          pending_bytes_ + (writing_ ? inflight_bytes_ : 0) + size > cap_bytes_) {
        return false;
      }
      EncodeLocked(std::move(m), size);
      if (!writing_) TakeNextLocked(&conn, &frame);
    }
    if (frame) StartWrite(conn, std::move(frame));
    return true;
  }

  bool Attach(std::unique_ptr<OutgoingConn>& conn) override {
    // The conn's concrete type, by visiting it (no cast).
    ConnMatch<Conn> match;
    conn->Accept(match);
    Conn* h = match.found;
    if (h == nullptr) {  // a conn of the other stream type: not ours to keep
      conn->Close();
      conn.reset();
      return true;
    }
    std::shared_ptr<Conn> old;
    size_t dropped;
    {
      MutexLock l(&mu_);
      if (stopped_) return false;
      conn.release();
      h->stream()->SetSink(this->weak_from_this());
      old = std::move(conn_);
      dropped = DropPendingLocked();
      conn_.reset(h);
      working_.store(true, std::memory_order_release);
      enc_ = Encoder(max_frame_bytes_);
      last_write_ = absl::Now();
      ++stats_.attaches;
      ++busy_;
    }
    if (old) old->Close();
    env_.status->Activate();
    // etcd: replacing a conn drops its unsent messages with one report.
    if (dropped > 0) {
      env_.counters->AddDroppedUnsent(dropped);
      env_.raft->ReportUnreachable(env_.peer_id);
    }
    Unbusy();
    return true;
  }

  void Stop() override {
    std::shared_ptr<Conn> old;
    {
      UniqueLock l(&mu_);
      if (stopped_) return;
      stopped_ = true;
      sched_->Cancel(tick_id_);
      old = std::move(conn_);
      working_.store(false, std::memory_order_release);
      DropPendingLocked();
      // Callbacks already running finish before Stop returns; later ones
      // see stopped_ and touch nothing of the peer.
      idle_.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return busy_ == 0; });
    }
    if (old) old->stream()->Cancel();
  }

  StreamWriterStats stats() const override {
    MutexLock l(&mu_);
    return stats_;
  }

  void OnWriteDone(Stream* s, bool ok, std::unique_ptr<Frame> frame) override {
    std::shared_ptr<Conn> conn;
    std::unique_ptr<Frame> next;
    bool keep = false;
    {
      MutexLock l(&mu_);
      if (stopped_ || conn_ == nullptr || conn_->stream() != s) return;  // stale conn
      if (ok) {
        ++stats_.frames;
        stats_.messages += inflight_msgs_;
        stats_.bytes += inflight_bytes_;
        env_.counters->AddSent(inflight_bytes_);
        writing_ = false;
        last_write_ = absl::Now();
        // A frame that carried one large message is not kept: its cleared
        // objects (or bytes) would keep that message's memory.
        keep = frame && spare_.size() < kMaxSpareFrames && inflight_bytes_ <= max_frame_bytes_;
        if (!pending_.empty()) TakeNextLocked(&conn, &next);
      }
    }
    if (next) {
      StartWrite(conn, std::move(next));
    } else if (!ok) {
      Fail(s, "write", "stream write failed");
    }
    if (keep) {
      // Outside the lock: Send, which takes it, never waits for that.
      Encoder::Recycle(frame.get());
      MutexLock l(&mu_);
      if (spare_.size() < kMaxSpareFrames) spare_.push_back(std::move(frame));
    }
  }

  void OnStreamDone(Stream* s) override {
    std::shared_ptr<Conn> old;
    size_t dropped;
    bool report;
    {
      MutexLock l(&mu_);
      if (stopped_ || conn_ == nullptr || conn_->stream() != s) return;
      old = std::move(conn_);
      working_.store(false, std::memory_order_release);
      // Read before the drop clears it: a frame in flight may be lost too.
      const bool was_writing = writing_;
      dropped = DropPendingLocked();
      report = dropped > 0 || was_writing;
      if (report) ++busy_;
    }
    // The dialler went away (it redials or stopped): not working until it
    // attaches again.
    if (report) {
      if (dropped > 0) env_.counters->AddDroppedUnsent(dropped);
      env_.raft->ReportUnreachable(env_.peer_id);
      Unbusy();
    }
  }

 private:
  using Encoder = typename EncoderFor<Frame>::type;
  struct Pending {
    std::unique_ptr<Frame> frame;
    size_t msgs = 0;
    size_t bytes = 0;
  };

  void EncodeLocked(raftpb::Message&& m, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty() ||
        (pending_.back().msgs > 0 && pending_.back().bytes + size > max_frame_bytes_)) {
      Pending p;
      if (!spare_.empty()) {
        p.frame = std::move(spare_.back());
        spare_.pop_back();
      } else {
        p.frame = std::make_unique<Frame>();
      }
      enc_.Prepare(p.frame.get());
      pending_.push_back(std::move(p));
    }
    Pending& p = pending_.back();
    enc_.Encode(std::move(m), p.frame.get());
    ++p.msgs;
    p.bytes += size;
    ++pending_msgs_;
    pending_bytes_ += size;
  }

  void TakeNextLocked(std::shared_ptr<Conn>* conn, std::unique_ptr<Frame>* frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Pending& p = pending_.front();
    *frame = std::move(p.frame);
    inflight_msgs_ = p.msgs;
    inflight_bytes_ = p.bytes;
    pending_msgs_ -= p.msgs;
    pending_bytes_ -= p.bytes;
    pending_.pop_front();
    *conn = conn_;
    writing_ = true;
    write_started_ = absl::Now();
  }

  // Drops the queued messages not yet begun; returns how many. Counted
  // (PeerCounters::AddDroppedUnsent) by callers other than Stop, whose
  // peer is going away. The frame in flight, which the remote may or may
  // not have got, is not among them.
  size_t DropPendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t dropped = pending_msgs_;
    pending_.clear();
    pending_msgs_ = 0;
    pending_bytes_ = 0;
    writing_ = false;
    return dropped;
  }

  void StartWrite(const std::shared_ptr<Conn>& conn, std::unique_ptr<Frame> frame) {
    if (!conn->stream()->Write(std::move(frame))) Fail(conn->stream(), "write", "stream closed");
  }

  // A write on `s` failed or stalled: etcd deactivates the peer, drops the
  // conn, and reports the peer unreachable; Pick then falls back.
  void Fail(Stream* s, const char* action, const std::string& why) {
    std::shared_ptr<Conn> old;
    size_t dropped;
    {
      MutexLock l(&mu_);
      if (stopped_ || conn_ == nullptr || conn_->stream() != s) return;
      old = std::move(conn_);
      working_.store(false, std::memory_order_release);
      dropped = DropPendingLocked();
      ++stats_.failures;
      ++busy_;
    }
    old->stream()->Cancel();
    env_.counters->AddSendFailure();
    if (dropped > 0) env_.counters->AddDroppedUnsent(dropped);
    ChannelFailure f;
    f.source = {StreamTypeName(type_), action};
    f.reason = why;
    ReportChannelFailure(env_, f);
    Unbusy();
  }

  void Unbusy() {
    MutexLock l(&mu_);
    if (--busy_ == 0) idle_.notify_all();
  }

  void ScheduleTickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::weak_ptr<Core> weak = this->weak_from_this();
    tick_id_ = sched_->RunAfter(heartbeat_interval_, [weak] {
      if (auto self = weak.lock()) self->Tick();
    });
  }

  // Link heartbeat on an idle stream; failure of a stalled write or of a
  // reader whose stream heartbeats stopped.
  void Tick() {
    std::shared_ptr<Conn> conn;
    std::unique_ptr<Frame> frame;
    Stream* stalled = nullptr;
    std::string stall_reason;
    Stream* silent = nullptr;
    {
      MutexLock l(&mu_);
      if (stopped_) return;
      ScheduleTickLocked();
      if (conn_ == nullptr) return;
      const absl::Time now = absl::Now();
      // Our writes succeed into socket buffers even when the reader is
      // frozen or its link silently cut; its heartbeats stopping is what
      // shows it. Two intervals of silence, checked every interval: found
      // within three, like the reader's own idle timeout. Per stream, so a
      // stalled link does not also fail the snapshots sharing it.
      if (conn_->stream()->ReaderSilentFor(2 * heartbeat_interval_, now)) {
        silent = conn_->stream();
      } else if (writing_) {
        // A write waiting while the reader beats is flow control: the
        // reader paused for room, its Process slower than our sends, and
        // reads on when there is room. Failing it would drop what is
        // queued and flap the stream for as long as the reader is slow (a
        // window of messages at a slow Process easily outlasts the
        // timeout). Whether our writes still arrive is then the reader's
        // to judge (its idle timeout, while it reads). One that beats and
        // never reads holds what a full queue holds (Send drops and
        // reports) until the progress timeout: without it, a hostile or
        // stuck reader would keep the stream for good. A reader that sends
        // no heartbeats (an older or other-language node) leaves only the
        // write to judge: etcd's write timeout.
        const absl::Duration waited = now - write_started_;
        if (waited > opts_->conn_write_timeout && !conn_->stream()->ReaderBeats()) {
          stalled = conn_->stream();
          stall_reason = "write timed out";
        } else if (waited > opts_->stream_progress_timeout) {
          stalled = conn_->stream();
          stall_reason = absl::StrCat("write made no progress for ", absl::FormatDuration(waited),
                                      " while the reader beat");
        }
      } else if (pending_.empty() && now - last_write_ >= heartbeat_interval_ / 2) {
        EncodeLocked(LinkHeartbeat(), 2);
        ++stats_.link_heartbeats;
        TakeNextLocked(&conn, &frame);
      }
    }
    if (silent != nullptr) {
      Fail(silent, "read",
           absl::StrCat("the reader sent no stream heartbeat for ",
                        absl::FormatDuration(2 * heartbeat_interval_)));
    }
    if (stalled != nullptr) Fail(stalled, "write", stall_reason);
    if (frame) StartWrite(conn, std::move(frame));
  }

  const StreamType type_;
  const PeerEnv env_;
  const std::shared_ptr<const TransportOptions> opts_;
  // Copied from opts_: read on every Send.
  const size_t cap_;
  const size_t cap_bytes_;
  const size_t max_frame_bytes_;
  const size_t max_message_bytes_;
  const absl::Duration heartbeat_interval_;
  Scheduler* const sched_;

  mutable Mutex mu_;
  std::condition_variable idle_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<Conn> conn_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> working_{false};  // conn_ != nullptr; written under mu_
  Encoder enc_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_msgs_ ABSL_GUARDED_BY(mu_) = 0;
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // message bytes of pending_
  // Cleared frames, reused with their messages (message stream), so that
  // steady traffic allocates nothing per message; msgappv2's bytes come
  // back through the encoder's pool instead. A fast sender keeps several
  // frames pending, hence more than two.
  static constexpr size_t kMaxSpareFrames = 4;
  std::vector<std::unique_ptr<Frame>> spare_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  size_t inflight_msgs_ ABSL_GUARDED_BY(mu_) = 0;
  size_t inflight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  absl::Time last_write_ ABSL_GUARDED_BY(mu_);
  Scheduler::TaskId tick_id_ ABSL_GUARDED_BY(mu_) = 0;
  StreamWriterStats stats_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------ GrpcStreamWriter

GrpcStreamWriter::GrpcStreamWriter(StreamType type, const PeerEnv& env,
                                   std::shared_ptr<const TransportOptions> opts,
                                   Scheduler* scheduler) {
  if (type == StreamType::kMsgAppV2) {
    core_ = std::make_shared<Core<MsgAppV2WireFrame>>(type, env, opts, scheduler);
  } else {
    core_ = std::make_shared<Core<v1::MessageFrame>>(type, env, opts, scheduler);
  }
  core_->Start();
}

GrpcStreamWriter::~GrpcStreamWriter() { Stop(); }

bool GrpcStreamWriter::Working() const { return core_->Working(); }
bool GrpcStreamWriter::TrySend(raftpb::Message&& m) { return core_->TrySend(std::move(m)); }
void GrpcStreamWriter::Stop() { core_->Stop(); }
bool GrpcStreamWriter::Attach(std::unique_ptr<OutgoingConn>& conn) { return core_->Attach(conn); }
StreamWriterStats GrpcStreamWriter::stats() const { return core_->stats(); }

}  // namespace raftgrpc
