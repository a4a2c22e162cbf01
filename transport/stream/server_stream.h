// ServerStream: the server reactor of one accepted MessageStream or
// MsgAppV2Stream call (the remote's reader dialled it). Wrapped in a Handle,
// it is the OutgoingConn a peer's stream writer writes frames on (etcd's
// outgoingConn); completions go back to the writer through a FrameSink.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_

#include <atomic>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "peer/channels.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"

namespace raftgrpc {

template <class Frame>
class ServerStream;

// Receives a ServerStream's completions. Implemented by the writer core.
template <class Frame>
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void OnWriteDone(ServerStream<Frame>* s, bool ok, std::unique_ptr<Frame> frame) = 0;
  virtual void OnStreamDone(ServerStream<Frame>* s) = 0;
};

// Server reactor for one accepted stream call. Owned jointly by gRPC (until
// OnDone) and by the OutgoingConn handle that the peer's writer holds; it
// deletes itself when both have let go. Thread-safe.
template <class Frame>
class ServerStream final : public grpc::ServerBidiReactor<v1::StreamControl, Frame> {
 public:
  // The OutgoingConn given to Peer::AttachOutgoingConn.
  class Handle : public OutgoingConn {
   public:
    explicit Handle(ServerStream* s) : s_(s) {}
    ~Handle() override {
      s_->Close();
      s_->Unref();
    }
    StreamType type() const override { return s_->type(); }
    void Close() override { s_->Close(); }
    ServerStream* stream() const { return s_; }

   private:
    ServerStream* const s_;
  };

  ServerStream(grpc::CallbackServerContext* ctx, StreamType type) : ctx_(ctx), type_(type) {}

  // Ends a call that failed validation.
  void Reject(const grpc::Status& s);
  // Sends initial metadata (the dialler's "connected") and starts watching
  // the client half; returns the handle to attach.
  std::unique_ptr<Handle> Accept();

  StreamType type() const { return type_; }
  void SetSink(std::weak_ptr<FrameSink<Frame>> sink);
  // Starts writing `frame`; false (frame dropped) once the stream finished.
  bool Write(std::unique_ptr<Frame> frame);
  // Finishes the call with OK. Idempotent.
  void Close();
  // Cancels the call (the peer sees CANCELLED) and finishes it.
  void Cancel();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override {
    handoff_.Acquire();
    Close();
  }
  void OnDone() override;

 private:
  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unref();

  grpc::CallbackServerContext* const ctx_;
  const StreamType type_;
  std::atomic<int> refs_{1};  // gRPC's; +1 for the handle
  Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::weak_ptr<FrameSink<Frame>> sink_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Frame> inflight_ ABSL_GUARDED_BY(mu_);
  v1::StreamControl control_;
  Handoff handoff_;
};

using MessageServerStream = ServerStream<v1::MessageFrame>;
using MsgAppV2ServerStream = ServerStream<v1::MsgAppV2Frame>;

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_SERVER_STREAM_H_
