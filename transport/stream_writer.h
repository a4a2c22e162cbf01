// The sending side of a stream channel (etcd's streamWriter) over gRPC.
//
// The remote's reader dials our MessageStream/MsgAppV2Stream RPC; the
// service accepts it as a ServerStream (a server reactor) and attaches it to
// the peer's GrpcStreamWriter, which then writes frames on it. Messages that
// arrive while a write is in flight are batched into the next frame (up to
// max_frame_bytes), so batching adapts to load with no thread per stream.
// Link heartbeats keep idle streams alive; a write that does not complete
// within conn_write_timeout fails the stream.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_WRITER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/channels.h"
#include "peer/peer.h"
#include "proto/transport.grpc.pb.h"
#include "transport/handoff.h"
#include "transport/msgappv2_codec.h"
#include "transport/options.h"
#include "transport/scheduler.h"

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
  void FinishLocked(const grpc::Status& s);
  void Unref();

  grpc::CallbackServerContext* const ctx_;
  const StreamType type_;
  std::atomic<int> refs_{1};  // gRPC's; +1 for the handle
  std::mutex mu_;
  bool finished_ = false;
  bool done_ = false;
  std::weak_ptr<FrameSink<Frame>> sink_;
  std::unique_ptr<Frame> inflight_;
  v1::StreamControl control_;
  Handoff handoff_;
};

using MessageServerStream = ServerStream<v1::MessageFrame>;
using MsgAppV2ServerStream = ServerStream<v1::MsgAppV2Frame>;

// Counters of one writer. Monotonic.
struct StreamWriterStats {
  uint64_t frames = 0;          // frames written successfully
  uint64_t messages = 0;        // Raft messages in them
  uint64_t bytes = 0;           // serialized frame bytes
  uint64_t link_heartbeats = 0; // heartbeats sent
  uint64_t failures = 0;        // write errors and stalls
  uint64_t attaches = 0;        // conns attached
};

// A peer's writer for one stream type. Thread-safe; TrySend never blocks.
class GrpcStreamWriter : public StreamWriter {
 public:
  GrpcStreamWriter(StreamType type, const PeerEnv& env, const TransportOptions& opts,
                   Scheduler* scheduler);
  ~GrpcStreamWriter() override;  // Stop()

  bool Working() const override;
  bool TrySend(raftpb::Message&& m) override;
  void Stop() override;
  bool Attach(std::unique_ptr<OutgoingConn>& conn) override;

  StreamWriterStats stats() const;

 private:
  class CoreBase;
  template <class Frame>
  class Core;

  const StreamType type_;
  std::shared_ptr<CoreBase> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_WRITER_H_
