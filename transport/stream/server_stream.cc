#include "transport/stream/server_stream.h"

#include "transport/internal/wire.h"

namespace raftgrpc {

namespace {

const v1::MessageFrame* ToWrite(v1::MessageFrame* f) { return f; }
const grpc::ByteBuffer* ToWrite(MsgAppV2WireFrame* f) {
  // Lent, not copied: gRPC may hold the slice after the write completes.
  f->buffer = WireBufferPool::Lend(std::move(f->bytes), f->pool);
  return &f->buffer;  // the moved-from bytes are cleared when recycled
}

// The bytes gRPC holds while it writes them.
struct LentBytes {
  std::string bytes;
  std::shared_ptr<WireBufferPool> pool;
  // The bytes were written on Send's thread; gRPC frees the slice on one
  // of its own, through libgrpc, where TSan sees no synchronisation (it
  // reported Give's clear() racing the encoder's writes: hosts_test, 2 of
  // 4 runs under TSan). Published when lent, acquired when given back.
  Handoff handoff;
};

void GiveBack(void* p) {
  std::unique_ptr<LentBytes> lent(static_cast<LentBytes*>(p));
  lent->handoff.Acquire();
  if (lent->pool) lent->pool->Give(std::move(lent->bytes));
}

// Whether a StreamControl arrived whole. Typed, gRPC checked it.
bool ControlParses(v1::StreamControl*) { return true; }
bool ControlParses(grpc::ByteBuffer* raw) {
  v1::StreamControl c;
  return grpc::SerializationTraits<v1::StreamControl>::Deserialize(raw, &c).ok();
}

}  // namespace

grpc::ByteBuffer WireBufferPool::Lend(std::string bytes, std::shared_ptr<WireBufferPool> pool) {
  auto* lent = new LentBytes{std::move(bytes), std::move(pool), {}};
  grpc::Slice slice(lent->bytes.data(), lent->bytes.size(), &GiveBack, lent);
  // After the last touch of `lent` here: TSan reported the data() read
  // above racing GiveBack's move when this came first (reliability_test).
  lent->handoff.Publish();
  return grpc::ByteBuffer(&slice, 1);
}

std::string WireBufferPool::Take(size_t reserve) {
  {
    MutexLock l(&mu_);
    if (!kept_.empty()) {
      std::string b = std::move(kept_.back());
      kept_.pop_back();
      kept_bytes_ -= b.capacity();
      return b;
    }
  }
  std::string b;
  b.reserve(reserve);  // not grown by doubling, copy after copy
  return b;
}

size_t WireBufferPool::kept_bytes() const {
  MutexLock l(&mu_);
  return kept_bytes_;
}

void WireBufferPool::Give(std::string bytes) {
  if (bytes.capacity() > keep_capacity_) return;  // one large message's: freed
  bytes.clear();
  MutexLock l(&mu_);
  if (kept_bytes_ + bytes.capacity() > max_kept_bytes_) return;  // freed here
  kept_bytes_ += bytes.capacity();
  kept_.push_back(std::move(bytes));
}

template <class Frame>
void ServerStream<Frame>::Reject(const grpc::Status& s) {
  handoff_.Publish();
  MutexLock l(&mu_);
  FinishLocked(s);
}

template <class Frame>
std::unique_ptr<typename ServerStream<Frame>::Conn> ServerStream<Frame>::Accept() {
  refs_.fetch_add(1, std::memory_order_relaxed);
  handoff_.Publish();
  // As etcd's stream response header, for the dialler's version check.
  ctx_->AddInitialMetadata(kMetaServerVersion, kServerVersion);
  this->StartSendInitialMetadata();
  this->StartRead(&control_);
  return std::make_unique<Conn>(this);
}

template <class Frame>
void ServerStream<Frame>::SetSink(std::weak_ptr<FrameSink<Frame>> sink) {
  MutexLock l(&mu_);
  sink_ = std::move(sink);
}

template <class Frame>
bool ServerStream<Frame>::Write(std::unique_ptr<Frame> frame) {
  MutexLock l(&mu_);
  if (finished_ || done_) return false;
  inflight_ = std::move(frame);
  this->StartWrite(ToWrite(inflight_.get()));
  return true;
}

template <class Frame>
void ServerStream<Frame>::FinishLocked(const grpc::Status& s) {
  if (finished_) return;
  finished_ = true;
  this->Finish(s);
}

template <class Frame>
void ServerStream<Frame>::Close() {
  MutexLock l(&mu_);
  FinishLocked(grpc::Status::OK);
}

template <class Frame>
void ServerStream<Frame>::Cancel() {
  MutexLock l(&mu_);
  if (done_) return;  // ctx_ is gone after OnDone
  ctx_->TryCancel();
  FinishLocked(grpc::Status::OK);
}

template <class Frame>
void ServerStream<Frame>::OnReadDone(bool ok) {
  handoff_.Acquire();
  if (ok && !ControlParses(&control_)) {
    if (log_) log_("stream control does not parse as StreamControl: stream ended");
    // Finished before the writer is told, unlike a half-close below: the
    // writer's letting go closes the call with OK, which would win.
    std::shared_ptr<FrameSink<Frame>> sink;
    {
      MutexLock l(&mu_);
      sink = sink_.lock();
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "stream control does not parse as StreamControl"));
    }
    if (sink) sink->OnStreamDone(this);
    return;
  }
  if (ok) {
    // The client half carries no traffic, only the reader's stream
    // heartbeats; keep watching it for them and for the end.
    last_control_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
    control_.Clear();
    this->StartRead(&control_);
    return;
  }
  // The dialler half-closed or went away. The writer lets go of this
  // stream before the call ends: a message sent once the dialler has seen
  // the end then takes another path, not this finished stream (where it
  // was lost; conformance's stream_half_close caught that under load).
  // OnDone tells the writer again, which it ignores.
  std::shared_ptr<FrameSink<Frame>> sink;
  {
    MutexLock l(&mu_);
    sink = sink_.lock();
  }
  if (sink) sink->OnStreamDone(this);
  Close();
}

template <class Frame>
bool ServerStream<Frame>::ReaderSilentFor(absl::Duration limit, absl::Time now) const {
  const int64_t last = last_control_ns_.load(std::memory_order_relaxed);
  return last != 0 && now - absl::FromUnixNanos(last) > limit;
}

template <class Frame>
void ServerStream<Frame>::OnWriteDone(bool ok) {
  handoff_.Acquire();
  std::unique_ptr<Frame> frame;
  std::shared_ptr<FrameSink<Frame>> sink;
  {
    MutexLock l(&mu_);
    frame = std::move(inflight_);
    sink = sink_.lock();
  }
  if (sink) sink->OnWriteDone(this, ok, std::move(frame));
}

template <class Frame>
void ServerStream<Frame>::OnDone() {
  handoff_.Acquire();
  std::shared_ptr<FrameSink<Frame>> sink;
  {
    MutexLock l(&mu_);
    done_ = true;
    sink = sink_.lock();
  }
  if (sink) sink->OnStreamDone(this);
  Unref();
}

template <class Frame>
void ServerStream<Frame>::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

template class ServerStream<v1::MessageFrame>;
template class ServerStream<MsgAppV2WireFrame>;

}  // namespace raftgrpc
