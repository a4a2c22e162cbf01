// The sending side of a stream channel (etcd's streamWriter) over gRPC.
//
// The remote's reader dials our MessageStream/MsgAppV2Stream RPC; the
// service accepts it as a ServerStream (a server reactor) and attaches it to
// the peer's GrpcStreamWriter, which then writes frames on it. Messages that
// arrive while a write is in flight are batched into the next frame (up to
// max_frame_bytes), so batching adapts to load with no thread per stream.
// Link heartbeats keep idle streams alive. A reader whose stream
// heartbeats stop fails the stream; so does a write not completed within
// conn_write_timeout, unless the reader still beats (then it is flow
// control: the reader's Process is slower than our sends).
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_WRITER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "absl/time/time.h"
#include "peer/channels.h"
#include "peer/peer.h"
#include "transport/internal/scheduler.h"
#include "transport/options.h"
#include "transport/stream/msgappv2_codec.h"

namespace raftgrpc {

// Counters of one writer. Monotonic.
struct StreamWriterStats {
  uint64_t frames = 0;           // frames written successfully
  uint64_t messages = 0;         // Raft messages in them
  uint64_t bytes = 0;            // serialized frame bytes
  uint64_t link_heartbeats = 0;  // heartbeats sent
  uint64_t failures = 0;         // write errors and stalls
  uint64_t attaches = 0;         // conns attached
};

// A peer's writer for one stream type. Thread-safe; TrySend never blocks.
class GrpcStreamWriter : public StreamWriter {
 public:
  GrpcStreamWriter(StreamType type, const PeerEnv& env,
                   std::shared_ptr<const TransportOptions> opts, Scheduler* scheduler);
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

  std::shared_ptr<CoreBase> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_WRITER_H_
