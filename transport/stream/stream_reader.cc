#include "transport/stream/stream_reader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"
#include "transport/internal/metadata.h"
#include "transport/stream/frame_decoder.h"
#include "transport/stream/msgappv2_codec.h"
#include "transport/stream/server_stream.h"

namespace raftgrpc {

// One dial: a client reactor that lives until its OnDone.
class CallBase {
 public:
  virtual ~CallBase() = default;
  virtual void Cancel() = 0;
  std::string url;
  absl::Time started;
  absl::Time last_read;       // guarded by the core's mutex
  bool connected = false;     // guarded by the core's mutex
  std::string cancel_reason;  // guarded by the core's mutex; set when we cancel
  // Lifetime (guarded by the core's mutex): a thread that cancels the call
  // outside the lock pins it first, so that OnDone cannot delete it under
  // that thread's feet; whoever drops the last interest deletes it.
  int pins = 0;
  bool done = false;
  uint64_t seq = 0;  // set once, before the call starts
  // Back-pressure (guarded by the core's mutex): reading stopped with a
  // hold on the reactor, which ResumeRead releases (reading again if
  // `read`). Whoever clears the flag calls ResumeRead, exactly once.
  bool read_paused = false;
  absl::Time paused_at;
  virtual void ResumeRead(bool read) = 0;
  // Writes a stream heartbeat (an empty StreamControl) unless one is still
  // in flight or the call is ending. Called with the call pinned.
  virtual void SendHeartbeat() = 0;
};

class GrpcStreamReader::Core : public std::enable_shared_from_this<Core> {
 public:
  // How long a call may stay open after a failed read before it counts as
  // an unparseable frame: a server's end of stream brings its status at
  // once, so this only needs to cover scheduling delays.
  static constexpr absl::Duration kReadFailureGrace = absl::Milliseconds(500);

  Core(StreamType type, const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
       Scheduler* sched, ChannelPool* channels)
      : type_(type), env_(env), opts_(std::move(opts)), sched_(sched), channels_(channels) {}

  void Start() {
    Dial();
    MutexLock l(&mu_);
    ScheduleIdleCheckLocked();
  }

  void Stop() {
    CallBase* call;
    {
      MutexLock l(&mu_);
      if (stopped_) return;
      stopped_ = true;
      sched_->Cancel(dial_task_);
      sched_->Cancel(idle_task_);
      call = current_;
      if (call != nullptr) {
        call->cancel_reason = "stopped";
        ++call->pins;
      }
    }
    if (call != nullptr) CancelPinned(call);
    UniqueLock l(&mu_);
    done_.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return current_ == nullptr && busy_ == 0 && live_ == 0;
    });
  }

  StreamReaderStats stats() const {
    MutexLock l(&mu_);
    StreamReaderStats s = stats_;
    s.undecoded_bytes = undecoded_.load(std::memory_order_relaxed);
    return s;
  }

  // ---- called by calls
  void OnConnected(CallBase* call) {
    {
      MutexLock l(&mu_);
      if (stopped_ || call != current_) return;
      call->connected = true;
      call->last_read = absl::Now();
      ++stats_.connects;
      ++busy_;
    }
    env_.status->Activate();
    Unbusy();
  }

  // A failed read: if the call is still open a moment later, a frame did
  // not parse (gRPC leaves such a call open); end it then, counted and
  // logged, so the reader redials now rather than at the idle timeout. A
  // stream the server ended has its OnDone by then.
  void OnReadFailed(CallBase* call) {
    MutexLock l(&mu_);
    if (stopped_ || call != current_) return;
    const uint64_t seq = call->seq;
    std::weak_ptr<Core> weak = weak_from_this();
    sched_->RunAfter(kReadFailureGrace, [weak, seq] {
      if (auto self = weak.lock()) self->CancelIfStillOpen(seq);
    });
  }

  void CancelIfStillOpen(uint64_t seq) {
    CallBase* call;
    {
      MutexLock l(&mu_);
      call = current_;
      if (stopped_ || call == nullptr || call->seq != seq || !call->cancel_reason.empty()) return;
      call->cancel_reason = "a frame did not parse (the read failed, the stream stayed open)";
      ++stats_.decode_errors;
      ++call->pins;
    }
    env_.counters->AddReceiveFailure();
    CancelPinned(call);
  }

  // Delivers a v3 frame; false tears the stream down (reason recorded).
  bool OnFrame(CallBase* call, v1::MessageFrame* frame) {
    {
      MutexLock l(&mu_);
      if (stopped_ || call != current_) return false;
      call->last_read = absl::Now();
      ++busy_;
    }
    uint64_t msgs = 0, bytes = 0;
    absl::Status err = DecodeMessageFrame(frame, opts_->max_message_bytes, [&](raftpb::Message* m) {
      ++msgs;
      const size_t size = m->GetCachedSize();  // computed by the decoder's size check
      bytes += size;
      absl::Status s = CheckStreamSender(*m, env_.peer_id);
      if (!s.ok()) return s;
      if (env_.inbound->Deliver(std::move(*m), size) == InboundRouter::Result::kFull) {
        // A full queue (or budget) drops it; etcd counts that as a receive
        // failure.
        env_.counters->AddReceiveFailure();
      }
      return absl::OkStatus();
    });
    env_.counters->AddReceived(bytes);
    if (!err.ok()) env_.counters->AddReceiveFailure();
    MutexLock l(&mu_);
    ++stats_.frames;
    stats_.messages += msgs;
    stats_.bytes += bytes;
    if (!err.ok()) {
      ++stats_.decode_errors;
      call->cancel_reason = err.ToString();
    }
    if (--busy_ == 0) done_.notify_all();
    return err.ok();
  }

  // A v2 frame, still encoded: queued for the receive worker, which decodes
  // it (EncodedFrame; FrameDone below). False if the call is no longer ours.
  bool OnEncodedFrame(CallBase* call, std::unique_ptr<EncodedFrame> frame, size_t size) {
    {
      MutexLock l(&mu_);
      // Until the frame is gone (FrameDone), even if refused here: its
      // destructor gives it back either way.
      undecoded_.fetch_add(size, std::memory_order_relaxed);
      if (stopped_ || call != current_) return false;
      call->last_read = absl::Now();
      ++stats_.frames;
      ++busy_;
    }
    env_.inbound->DeliverEncoded(std::move(frame), InboundRouter::EncodedReserve(size));
    Unbusy();
    return true;
  }

  // A v2 frame of call `seq`, `size` bytes as read, is gone: decoded by the
  // receive worker (`decoded`) or dropped unread. One lock for all a frame
  // leaves to do: its counts; a frame that did not decode tears its call
  // down if still open; and the call, if paused for frames not yet
  // decoded, reads on if there is room now.
  void FrameDone(uint64_t seq, size_t size, bool decoded, uint64_t msgs, uint64_t bytes,
                 const absl::Status& err) {
    if (decoded) {
      env_.counters->AddReceived(bytes);
      if (!err.ok()) env_.counters->AddReceiveFailure();
    }
    CallBase* cancel = nullptr;
    bool resume = false;
    {
      MutexLock l(&mu_);
      const size_t undecoded = undecoded_.fetch_sub(size, std::memory_order_relaxed) - size;
      stats_.messages += msgs;
      stats_.bytes += bytes;
      CallBase* call = current_;
      const bool ours = !stopped_ && call != nullptr && call->seq == seq;
      if (!err.ok()) {
        ++stats_.decode_errors;
        if (ours && call->cancel_reason.empty()) {
          call->cancel_reason = err.ToString();
          ++call->pins;
          cancel = call;
        }
      }
      resume = cancel == nullptr && ours && call->read_paused && undecoded < kMaxUndecoded;
    }
    if (cancel != nullptr) CancelPinned(cancel);
    if (resume) ResumeIfRoom(seq, /*poll=*/false);
  }

  void AddReceiveFailures(size_t n) { env_.counters->AddReceiveFailures(n); }

  // Buffers for v2 frames, reused. A frame's bytes are copied out of
  // gRPC's read buffers on the reader's thread, which then frees those
  // there at once; the worker gives the copy back here when it has
  // decoded it. Handed to the worker, gRPC's buffers were freed on its
  // thread, a while later: glibc then returned the reader's heap to the
  // kernel and faulted it in again (perf: page faults, a tenth of node 2's
  // CPU). Kept up to kMaxPooled bytes of capacity in all.
  std::string TakeBuffer() { return buffers_.Take(0); }
  void GiveBack(std::string&& b) { buffers_.Give(std::move(b)); }

  // After a frame: false if the inbound queues have room for another, so
  // the call reads on at once. Otherwise records `call` (which holds
  // itself open) as paused and checks again shortly; reading resumes once
  // there is room, so HTTP/2 flow control slows the sender meanwhile.
  bool PauseIfFull(CallBase* call) {
    const bool room = env_.inbound->HasRoom(RoomForAFrame());
    if (room && undecoded_.load(std::memory_order_relaxed) < kMaxUndecoded) return false;
    bool release = false;
    {
      MutexLock l(&mu_);
      // Again under the lock, which FrameDone takes to see a pause.
      if (room && undecoded_.load(std::memory_order_relaxed) < kMaxUndecoded) return false;
      call->read_paused = true;
      call->paused_at = absl::Now();
      ++stats_.read_pauses;
      if (stopped_ || call != current_ || !call->cancel_reason.empty()) {
        call->read_paused = false;
        release = true;  // ending anyway
      } else {
        ScheduleResumeLocked(call->seq);
      }
    }
    if (release) call->ResumeRead(false);
    return true;
  }

  void OnCallDone(CallBase* call, const grpc::Status& s, const grpc::ClientContext& ctx) {
    const bool removed = IsRemovedMember(s, ctx);
    ChannelFailure f;  // nothing to do unless a field is set below
    f.deactivate = false;
    f.report = false;  // etcd's reader reports nothing to Raft
    {
      MutexLock l(&mu_);
      if (call != current_) return;
      current_ = nullptr;
      if (stopped_) {
        done_.notify_all();
        return;
      }
      if (removed) {
        removed_ = true;
        f.removed_member = true;
      } else if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        // The remote does not serve this stream type: not a failure (etcd).
        env_.picker->Unreachable(call->url);
      } else if (!call->cancel_reason.empty() || !s.ok()) {
        f.deactivate = true;
        f.source = {StreamTypeName(type_), call->connected ? "read" : "dial"};
        f.reason = call->cancel_reason.empty()
                       ? absl::StrCat(grpc_code_name(s.error_code()), ": ", s.error_message())
                       : call->cancel_reason;
        // Rotated here, before the redial below can pick the same URL.
        env_.picker->Unreachable(call->url);
      }
      // else: the remote finished the stream cleanly (its writer was
      // replaced or stopped), as etcd's EOF: just redial.
      ++busy_;
    }
    ReportChannelFailure(env_, f);
    // The redial is scheduled only after the report, as etcd deactivates
    // before it redials: a redial that connected first would have its
    // Activate undone by this Deactivate, leaving a working stream's peer
    // marked inactive. Stop cannot pass (busy_); it may have begun.
    MutexLock l(&mu_);
    if (!stopped_ && !removed) ScheduleDialLocked();
    UnbusyLocked();
  }

 private:
  static const char* grpc_code_name(grpc::StatusCode c) {
    switch (c) {
      case grpc::StatusCode::OK:
        return "OK";
      case grpc::StatusCode::CANCELLED:
        return "CANCELLED";
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::NOT_FOUND:
        return "NOT_FOUND";
      case grpc::StatusCode::PERMISSION_DENIED:
        return "PERMISSION_DENIED";
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::FAILED_PRECONDITION:
        return "FAILED_PRECONDITION";
      case grpc::StatusCode::INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
      case grpc::StatusCode::UNAVAILABLE:
        return "UNAVAILABLE";
      case grpc::StatusCode::UNAUTHENTICATED:
        return "UNAUTHENTICATED";
      default:
        return "ERROR";
    }
  }

  void Dial();

  void ScheduleDialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Duration wait =
        std::max(absl::ZeroDuration(), last_dial_ + opts_->dial_retry_interval - absl::Now());
    std::weak_ptr<Core> weak = weak_from_this();
    dial_task_ = sched_->RunAfter(wait, [weak] {
      if (auto self = weak.lock()) self->Dial();
    });
  }

  void ScheduleIdleCheckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::weak_ptr<Core> weak = weak_from_this();
    idle_task_ =
        sched_->RunAfter(std::max(absl::Milliseconds(10), opts_->conn_read_timeout / 5), [weak] {
          if (auto self = weak.lock()) self->CheckIdle();
        });
  }

  // etcd's per-read deadline: gRPC has none, so a silent call is cancelled.
  // Also the beat of our stream heartbeats to the writer (see
  // ServerStream::ReaderSilentFor): five per conn_read_timeout, so that a
  // late one or two never look like a frozen reader.
  void CheckIdle() {
    CallBase* call;
    bool idle;
    {
      MutexLock l(&mu_);
      if (stopped_) return;
      ScheduleIdleCheckLocked();
      call = current_;
      if (call == nullptr || !call->cancel_reason.empty()) return;
      // A paused call is alive (it beats) and silent because we stopped
      // reading, not the peer.
      const absl::Time since = call->connected ? call->last_read : call->started;
      idle = !call->read_paused && absl::Now() - since > opts_->conn_read_timeout;
      if (idle) {
        call->cancel_reason = call->connected
                                  ? absl::StrCat("no data received for ",
                                                 absl::FormatDuration(opts_->conn_read_timeout))
                                  : "dial timed out";
        ++stats_.idle_timeouts;
      }
      ++call->pins;
    }
    if (idle) {
      CancelPinned(call);
    } else {
      call->SendHeartbeat();
      Unpin(call);
    }
  }

  // A paused call holds itself open: cancelling it must also let go.
  void CancelPinned(CallBase* call) {
    call->Cancel();
    bool release;
    {
      MutexLock l(&mu_);
      release = TakePausedLocked(call);
    }
    if (release) call->ResumeRead(false);
    Unpin(call);
  }

  void Unpin(CallBase* call) {
    bool last;
    {
      MutexLock l(&mu_);
      last = --call->pins == 0 && call->done;
    }
    if (last) Delete(call);
  }

  bool TakePausedLocked(CallBase* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!call->read_paused) return false;
    call->read_paused = false;
    stats_.paused_for += absl::Now() - call->paused_at;
    return true;
  }

  // What the next frame may need of the inbound budget: a v2 frame is
  // held at its decoded estimate until the worker decodes it.
  size_t RoomForAFrame() const {
    const size_t frame = std::max(opts_->max_frame_bytes, opts_->max_message_bytes);
    return type_ == StreamType::kMsgAppV2 ? InboundRouter::EncodedReserve(frame) : frame;
  }

  // Polls for room: the queues drain at Process's pace, and a short poll
  // costs less than waking readers from the workers' hot path.
  void ScheduleResumeLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::weak_ptr<Core> weak = weak_from_this();
    sched_->RunAfter(absl::Milliseconds(2), [weak, seq] {
      if (auto self = weak.lock()) self->ResumeIfRoom(seq);
    });
  }

  // `poll`: from the poll ScheduleResumeLocked started, which goes on
  // while there is no room; FrameDone's tries leave it to that.
  void ResumeIfRoom(uint64_t seq, bool poll = true) {
    const bool room = env_.inbound->HasRoom(RoomForAFrame());
    CallBase* call;
    bool read;
    {
      MutexLock l(&mu_);
      call = current_;
      if (call == nullptr || call->seq != seq || !call->read_paused) return;
      read = !stopped_ && call->cancel_reason.empty();
      if (read && (!room || undecoded_.load(std::memory_order_relaxed) >= kMaxUndecoded)) {
        if (poll) ScheduleResumeLocked(seq);
        return;
      }
      TakePausedLocked(call);
      call->last_read = absl::Now();  // the idle clock restarts
      ++call->pins;
    }
    call->ResumeRead(read);
    Unpin(call);
  }

 public:
  // Called by a call's OnDone after OnCallDone: true if it may delete itself.
  bool Retire(CallBase* call) {
    MutexLock l(&mu_);
    call->done = true;
    return call->pins == 0;
  }

  // Deletes a call, then lets Stop return. In this order because a call's
  // ClientContext holds a reference to its grpc::Channel: dropping the last
  // one on a gRPC callback thread makes gRPC join that very thread and free
  // the completion queue it still polls (a double free, grpc/grpc#32584).
  // Stop returning first would let ~Transport release the pool's reference.
  void Delete(CallBase* call) {
    delete call;
    MutexLock l(&mu_);
    if (--live_ == 0) done_.notify_all();
  }

 private:
  void Unbusy() {
    MutexLock l(&mu_);
    UnbusyLocked();
  }
  void UnbusyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (--busy_ == 0) done_.notify_all();
  }

  const StreamType type_;
  const PeerEnv env_;
  const std::shared_ptr<const TransportOptions> opts_;
  Scheduler* const sched_;
  ChannelPool* const channels_;

  mutable Mutex mu_;
  std::condition_variable done_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool removed_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  int live_ ABSL_GUARDED_BY(mu_) = 0;  // calls not yet deleted
  CallBase* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t dials_ ABSL_GUARDED_BY(mu_) = 0;  // numbers the calls (CallBase::seq)
  absl::Time last_dial_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Scheduler::TaskId dial_task_ ABSL_GUARDED_BY(mu_) = 0;
  Scheduler::TaskId idle_task_ ABSL_GUARDED_BY(mu_) = 0;
  StreamReaderStats stats_ ABSL_GUARDED_BY(mu_);
  // Bytes of v2 frames queued but not yet decoded by the receive worker.
  // Reading pauses from kMaxUndecoded on: enough that the worker decodes
  // while the next frames are read, little enough that what their reserves
  // (EncodedReserve) miss of entry-heavy frames' decoded cost stays small
  // (an empty entry: 2 bytes on the wire, about 90 decoded).
  static constexpr size_t kMaxUndecoded = 1 << 20;
  // Written under mu_; read without it on the fast path of PauseIfFull.
  std::atomic<size_t> undecoded_{0};
  // About what kMaxUndecoded lets be in flight, and a frame more.
  static constexpr size_t kMaxPooled = kMaxUndecoded + (256 << 10);
  WireBufferPool buffers_{kMaxPooled, kMaxPooled};
};

namespace {

using Core = GrpcStreamReader::Core;

// A v2 call's codec state, which its frames go through on the receive
// worker, one after another in queue order.
struct V2CodecState {
  V2CodecState(uint64_t local, uint64_t remote) : dec(local, remote) {}
  MsgAppV2Decoder dec;
  bool failed = false;  // a frame did not decode: the call's later ones are not
};

// A v2 frame as read, decoded by the receive worker (EncodedFrame).
class V2Frame final : public EncodedFrame {
 public:
  // Takes `buf`'s bytes, copied into a buffer from `core`'s pool (see
  // Core::TakeBuffer), and frees `buf`'s.
  V2Frame(const std::shared_ptr<Core>& core, uint64_t seq, std::shared_ptr<V2CodecState> state,
          grpc::ByteBuffer* buf, size_t max_message_bytes, uint64_t peer_id)
      : core_(core),
        seq_(seq),
        state_(std::move(state)),
        max_message_bytes_(max_message_bytes),
        peer_id_(peer_id),
        bytes_in_(core->TakeBuffer()) {
    std::vector<grpc::Slice> slices;
    (void)buf->Dump(&slices);
    bytes_in_.reserve(buf->Length());
    for (const grpc::Slice& sl : slices) {
      bytes_in_.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    buf->Clear();
  }
  ~V2Frame() override {
    if (auto core = core_.lock()) {
      const size_t size = bytes_in_.size();
      core->GiveBack(std::move(bytes_in_));
      core->FrameDone(seq_, size, decoded_, msgs_, bytes_, err_);
    }
  }
  size_t size() const { return bytes_in_.size(); }

  void Decode(InboundArena* arena, std::vector<raftpb::Message*>* out, size_t* bytes) override {
    if (state_->failed) return;  // the call is being torn down
    decoded_ = true;
    auto* frame = google::protobuf::Arena::CreateMessage<v1::MsgAppV2Frame>(arena->arena());
    // Parsed here, on the worker.
    if (!frame->ParseFromString(bytes_in_)) {
      err_ = absl::InvalidArgumentError("a frame did not parse");
    } else {
      err_ = DecodeMsgAppV2Frame(frame, &state_->dec, max_message_bytes_, [&](raftpb::Message* m) {
        ++msgs_;
        bytes_ += m->GetCachedSize();  // computed by the decoder's size check
        absl::Status s = CheckStreamSender(*m, peer_id_);
        if (s.ok()) out->push_back(m);
        return s;
      });
    }
    *bytes += bytes_;
    if (!err_.ok()) state_->failed = true;
    // The rest is reported when this is destroyed, next (FrameDone).
  }

  void Dropped(size_t n) override {
    // etcd counts a message its full queue drops as a receive failure.
    if (auto core = core_.lock()) core->AddReceiveFailures(n);
  }

 private:
  const std::weak_ptr<Core> core_;
  const uint64_t seq_;
  const std::shared_ptr<V2CodecState> state_;
  const size_t max_message_bytes_;
  const uint64_t peer_id_;
  std::string bytes_in_;  // the frame as read
  // What Decode found, for FrameDone.
  bool decoded_ = false;
  uint64_t msgs_ = 0, bytes_ = 0;
  absl::Status err_;
};

// What a call reads: v3 frames parsed by gRPC on its thread; v2 frames as
// bytes, for the receive worker to parse (EncodedFrame).
template <class Frame>
using WireFrame =
    std::conditional_t<std::is_same_v<Frame, v1::MsgAppV2Frame>, grpc::ByteBuffer, Frame>;

template <class Frame>
class Call final : public grpc::ClientBidiReactor<v1::StreamControl, WireFrame<Frame>>,
                   public CallBase {
 public:
  static constexpr bool kV2 = std::is_same_v<Frame, v1::MsgAppV2Frame>;

  Call(std::shared_ptr<Core> core, const PeerEnv& env, const TransportOptions& opts)
      : core_(std::move(core)),
        peer_id_(env.peer_id),
        max_message_bytes_(opts.max_message_bytes),
        v2_(kV2 ? std::make_shared<V2CodecState>(env.local_id, env.peer_id) : nullptr) {}

  grpc::ClientContext* context() { return &ctx_; }

  void Start(const std::shared_ptr<grpc::Channel>& channel) {
    if constexpr (kV2) {
      // Generic, to read the frames as bytes; the path is the generated
      // service's.
      grpc::TemplatedGenericStub<v1::StreamControl, grpc::ByteBuffer> stub(channel);
      stub.PrepareBidiStreamingCall(
          &ctx_, absl::StrCat("/", v1::RaftTransport::service_full_name(), "/MsgAppV2Stream"),
          grpc::StubOptions(), this);
    } else {
      stub_ = v1::RaftTransport::NewStub(channel);
      stub_->async()->MessageStream(&ctx_, this);
    }
    ReadNext();
    // Stream heartbeats hold the call open (gRPC forbids a write after
    // OnDone) until it ends; the first one, at once, tells the writer this
    // reader beats.
    this->AddHold();
    {
      MutexLock l(&beat_mu_);
      beat_hold_ = true;
      beat_writing_ = true;
    }
    this->StartWrite(&control_);
    handoff_.Publish();
    this->StartCall();
  }

  void Cancel() override {
    ctx_.TryCancel();
    EndHeartbeats();
  }

  void SendHeartbeat() override {
    {
      MutexLock l(&beat_mu_);
      if (!beat_hold_ || beat_ending_ || beat_writing_) return;
      // The hold cannot go while a write is in flight: safe to start it
      // outside the lock, which its completion takes.
      beat_writing_ = true;
    }
    this->StartWrite(&control_);
  }

  void OnWriteDone(bool ok) override {
    bool release = false;
    {
      MutexLock l(&beat_mu_);
      beat_writing_ = false;
      if (!ok) beat_ending_ = true;  // the call is broken
      if (beat_ending_ && beat_hold_) {
        beat_hold_ = false;
        release = true;
      }
    }
    if (release) this->RemoveHold();
  }

  void OnReadInitialMetadataDone(bool ok) override {
    handoff_.Acquire();
    if (ok) core_->OnConnected(this);
  }

  void OnReadDone(bool ok) override {
    handoff_.Acquire();
    if (!ok) {
      // Either the server ended the stream (OnDone follows once the
      // heartbeats let go) or a frame did not parse, which gRPC reports as a
      // failed read but leaves the call open. The core tells them apart.
      EndHeartbeats();
      core_->OnReadFailed(this);
      return;
    }
    bool keep;
    if constexpr (kV2) {
      auto frame = std::make_unique<V2Frame>(core_, seq, v2_, &in_, max_message_bytes_, peer_id_);
      const size_t size = frame->size();
      keep = core_->OnEncodedFrame(this, std::move(frame), size);
    } else {
      keep = core_->OnFrame(this, &frame_);
    }
    if (!keep) {
      Cancel();
      return;
    }
    // Held before the core may hand the call to another thread to resume.
    this->AddHold();
    if (core_->PauseIfFull(this)) return;
    this->RemoveHold();
    ReadNext();
  }

  void ResumeRead(bool read) override {
    if (read) {
      ReadNext();
    } else {
      EndHeartbeats();  // not reading on: the call is ending
    }
    this->RemoveHold();
  }

  void OnDone(const grpc::Status& s) override {
    handoff_.Acquire();
    core_->OnCallDone(this, s, ctx_);
    // A local reference: Delete destroys this call and its core_.
    std::shared_ptr<Core> core = core_;
    if (core->Retire(this)) core->Delete(this);
  }

 private:
  std::shared_ptr<Core> core_;
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  // No more heartbeats; lets go of their hold once none is in flight.
  void EndHeartbeats() {
    bool release = false;
    {
      MutexLock l(&beat_mu_);
      beat_ending_ = true;
      if (beat_hold_ && !beat_writing_) {
        beat_hold_ = false;
        release = true;
      }
    }
    if (release) this->RemoveHold();
  }

  // v3: into frame_, cleared and reused. v2: into in_, whose bytes the
  // core hands to the worker (V2Frame).
  // Publishes first: the next OnReadDone, on another thread, parses into
  // what this one cleared.
  void ReadNext() {
    if constexpr (kV2) {
      handoff_.Publish();
      this->StartRead(&in_);
    } else {
      frame_.Clear();
      handoff_.Publish();
      this->StartRead(&frame_);
    }
  }

  const uint64_t peer_id_;
  const size_t max_message_bytes_;
  grpc::ClientContext ctx_;
  Frame frame_;                             // v3 only
  grpc::ByteBuffer in_;                     // v2 only
  const std::shared_ptr<V2CodecState> v2_;  // v2 only: fresh state per call
  Handoff handoff_;
  Mutex beat_mu_;
  bool beat_hold_ ABSL_GUARDED_BY(beat_mu_) = false;  // the heartbeats' hold is held
  bool beat_writing_ ABSL_GUARDED_BY(beat_mu_) = false;
  bool beat_ending_ ABSL_GUARDED_BY(beat_mu_) = false;
  const v1::StreamControl control_;  // what every heartbeat writes
};

}  // namespace

void GrpcStreamReader::Core::Dial() {
  CallBase* call;
  std::shared_ptr<grpc::Channel> channel;
  {
    MutexLock l(&mu_);
    if (stopped_ || removed_ || current_ != nullptr) return;
    std::string url = env_.picker->Pick();
    channel = channels_->Get(url, env_.peer_id);
    grpc::ClientContext* ctx;
    if (type_ == StreamType::kMessage) {
      auto* c = new Call<v1::MessageFrame>(shared_from_this(), env_, *opts_);
      call = c;
      ctx = c->context();
    } else {
      auto* c = new Call<v1::MsgAppV2Frame>(shared_from_this(), env_, *opts_);
      call = c;
      ctx = c->context();
    }
    AddIdentityMetadata(ctx, *opts_, env_.peer_id);
    call->url = url;
    call->started = absl::Now();
    last_dial_ = call->started;
    call->seq = ++dials_;
    current_ = call;
    ++live_;
    ++stats_.dials;
  }
  // Started outside the lock: reactions take it.
  if (type_ == StreamType::kMessage) {
    static_cast<Call<v1::MessageFrame>*>(call)->Start(channel);
  } else {
    static_cast<Call<v1::MsgAppV2Frame>*>(call)->Start(channel);
  }
}

GrpcStreamReader::GrpcStreamReader(StreamType type, const PeerEnv& env,
                                   std::shared_ptr<const TransportOptions> opts,
                                   Scheduler* scheduler, ChannelPool* channels)
    : core_(std::make_shared<Core>(type, env, std::move(opts), scheduler, channels)) {
  core_->Start();
}

GrpcStreamReader::~GrpcStreamReader() { Stop(); }

void GrpcStreamReader::Stop() { core_->Stop(); }

StreamReaderStats GrpcStreamReader::stats() const { return core_->stats(); }

}  // namespace raftgrpc
