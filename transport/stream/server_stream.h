// ServerStream: the server reactor of one accepted MessageStream or
// MsgAppV2Stream call (the remote's reader dialled it). Wrapped in a Handle,
// it is the OutgoingConn a peer's stream writer writes frames on (etcd's
// outgoingConn); completions go back to the writer through a FrameSink.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/channels.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"

namespace raftgrpc {

// Frame buffers kept with their capacity for reuse, bounded in bytes: a
// steady stream allocates no frame buffers. The msgappv2 writer's go to
// gRPC without a copy (Lend) and come back when gRPC lets go of them
// (after the write completes, when the bytes leave for the socket); the
// reader's hold a frame's bytes until the worker has decoded it.
// Thread-safe; Give runs on gRPC's or the worker's threads, Take on Send's
// or gRPC's. Never blocks beyond its own short lock.
class WireBufferPool {
 public:
  // Buffers of up to `keep_capacity` bytes are kept, up to `max_kept_bytes`
  // of capacity in all.
  WireBufferPool(size_t keep_capacity, size_t max_kept_bytes)
      : keep_capacity_(keep_capacity), max_kept_bytes_(max_kept_bytes) {}
  // An empty buffer: a kept one, or a new one with room for `reserve`.
  std::string Take(size_t reserve);
  // Keeps `bytes`' capacity for a later Take, or frees it.
  void Give(std::string bytes);
  // `bytes` as a one-slice buffer for gRPC, without a copy: given back to
  // `pool` (or freed, if null) when the last reference to the slice goes,
  // on whichever thread drops it.
  static grpc::ByteBuffer Lend(std::string bytes, std::shared_ptr<WireBufferPool> pool);
  // Capacity kept now, for tests.
  size_t kept_bytes() const;

 private:
  const size_t keep_capacity_;
  const size_t max_kept_bytes_;
  mutable Mutex mu_;
  std::vector<std::string> kept_ ABSL_GUARDED_BY(mu_);
  size_t kept_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // their capacity
};

// A msgappv2 frame as the writer builds it: the wire bytes of a
// v1::MsgAppV2Frame (MsgAppV2Encoder), written as they are: the stream's
// method is raw on this side.
struct MsgAppV2WireFrame {
  std::string bytes;
  // While gRPC writes it: `bytes`, moved into a slice that gives them back
  // to `pool` (if any) when gRPC lets go of it.
  grpc::ByteBuffer buffer;
  std::shared_ptr<WireBufferPool> pool;
};

// What a stream's reactor reads and writes for a writer's Frame.
template <class Frame>
struct StreamWire;
template <>
struct StreamWire<v1::MessageFrame> {
  using Read = v1::StreamControl;
  using Write = v1::MessageFrame;
};
template <>
struct StreamWire<MsgAppV2WireFrame> {
  using Read = grpc::ByteBuffer;
  using Write = grpc::ByteBuffer;
};

template <class Frame>
class ServerStream;

// Receives a ServerStream's completions. Implemented by the writer core.
template <class Frame>
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void OnWriteDone(ServerStream<Frame>* s, bool ok, std::unique_ptr<Frame> frame) = 0;
  // The stream is over for writing: when the dialler ends its half, and
  // again when the call is done. Must ignore the second call.
  virtual void OnStreamDone(ServerStream<Frame>* s) = 0;
};

// The OutgoingConn given to Peer::AttachOutgoingConn: a reference to one
// accepted call, which ends the call when dropped.
template <class Frame>
class StreamConn : public OutgoingConn {
 public:
  explicit StreamConn(ServerStream<Frame>* s) : s_(s) {}
  ~StreamConn() override;
  StreamType type() const override;
  void Close() override;
  ServerStream<Frame>* stream() const { return s_; }

 private:
  ServerStream<Frame>* const s_;
};

// The two concrete conns (peer/channels.h declares them for its visitor).
class MessageStreamConn final : public StreamConn<v1::MessageFrame> {
 public:
  using StreamConn::StreamConn;
  void Accept(OutgoingConnVisitor& v) override { v.Visit(*this); }
};
class MsgAppV2StreamConn final : public StreamConn<MsgAppV2WireFrame> {
 public:
  using StreamConn::StreamConn;
  void Accept(OutgoingConnVisitor& v) override { v.Visit(*this); }
};

template <class Frame>
struct ConnFor;
template <>
struct ConnFor<v1::MessageFrame> {
  using type = MessageStreamConn;
};
template <>
struct ConnFor<MsgAppV2WireFrame> {
  using type = MsgAppV2StreamConn;
};

// Server reactor for one accepted stream call. Owned jointly by gRPC (until
// OnDone) and by the StreamConn that the peer's writer holds; it deletes
// itself when both have let go. Thread-safe.
template <class Frame>
class ServerStream final : public grpc::ServerBidiReactor<typename StreamWire<Frame>::Read,
                                                          typename StreamWire<Frame>::Write> {
 public:
  using Conn = typename ConnFor<Frame>::type;

  // `log` (may be empty) gets a line for a call ended for bad input; it is
  // called on gRPC's thread before the call is done.
  using LogFn = std::function<void(const std::string&)>;
  ServerStream(grpc::CallbackServerContext* ctx, StreamType type, LogFn log = nullptr)
      : ctx_(ctx), type_(type), log_(std::move(log)) {}

  // Ends a call that failed validation.
  void Reject(const grpc::Status& s);
  // Sends initial metadata (the dialler's "connected") and starts watching
  // the client half; returns the conn to attach.
  std::unique_ptr<Conn> Accept();

  StreamType type() const { return type_; }
  void SetSink(std::weak_ptr<FrameSink<Frame>> sink);
  // Starts writing `frame`; false (frame dropped) once the stream finished.
  bool Write(std::unique_ptr<Frame> frame);
  // Finishes the call with OK. Idempotent.
  void Close();
  // Cancels the call (the peer sees CANCELLED) and finishes it.
  void Cancel();
  // True if the dialler announced stream heartbeats (it sent a
  // StreamControl) and then sent none for longer than `limit`: its process
  // is frozen or its link silently cut. A dialler that never sent one (an
  // older or other-language reader) is never silent here; HTTP/2
  // keepalive and the writer's write timeout cover it. Thread-safe,
  // non-blocking.
  bool ReaderSilentFor(absl::Duration limit, absl::Time now) const;
  // True once the dialler has announced stream heartbeats (sent a
  // StreamControl). Thread-safe, non-blocking.
  bool ReaderBeats() const { return last_control_ns_.load(std::memory_order_relaxed) != 0; }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override {
    handoff_.Acquire();
    Close();
  }
  void OnDone() override;

 private:
  friend class StreamConn<Frame>;
  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unref();

  grpc::CallbackServerContext* const ctx_;
  const StreamType type_;
  const LogFn log_;
  std::atomic<int> refs_{1};  // gRPC's; +1 for the handle
  Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::weak_ptr<FrameSink<Frame>> sink_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Frame> inflight_ ABSL_GUARDED_BY(mu_);
  typename StreamWire<Frame>::Read control_;
  // When the last StreamControl arrived (ns since the epoch); 0: never.
  std::atomic<int64_t> last_control_ns_{0};
  Handoff handoff_;
};

using MessageServerStream = ServerStream<v1::MessageFrame>;
using MsgAppV2ServerStream = ServerStream<MsgAppV2WireFrame>;

template <class Frame>
StreamConn<Frame>::~StreamConn() {
  s_->Close();
  s_->Unref();
}
template <class Frame>
StreamType StreamConn<Frame>::type() const {
  return s_->type();
}
template <class Frame>
void StreamConn<Frame>::Close() {
  s_->Close();
}

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_
