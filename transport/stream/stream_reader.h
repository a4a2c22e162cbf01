// The receiving side of a stream channel (etcd's streamReader) over gRPC.
//
// Keeps one call of MessageStream or MsgAppV2Stream open to the remote peer
// (we dial; the remote writes what it sends us), delivers what it reads to
// the peer's inbound router, and redials at most once per
// dial_retry_interval. Receipt of the server's initial metadata is "dial
// succeeded" (status activated); dial or read errors deactivate the peer and
// rotate its URL. A stream silent for conn_read_timeout (no link heartbeat
// either) is cancelled and redialled. A removed-member answer stops the
// reader for good and is reported through the env's on_critical. Received
// bytes and decode failures also go to the env's PeerCounters.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_READER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_READER_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "peer/channels.h"
#include "peer/peer_env.h"
#include "transport/internal/channel_pool.h"
#include "transport/internal/scheduler.h"
#include "transport/options.h"

namespace raftgrpc {

struct StreamReaderStats {
  uint64_t dials = 0;     // calls started
  uint64_t connects = 0;  // calls the server accepted
  uint64_t frames = 0;
  uint64_t messages = 0;       // decoded, before pause/heartbeat filtering
  uint64_t bytes = 0;          // decoded message bytes
  uint64_t decode_errors = 0;  // garbage or oversize: stream torn down
  uint64_t idle_timeouts = 0;
  // Times reading stopped because the inbound queues were (nearly) full,
  // and the time spent so, summed (back-pressure instead of drops).
  uint64_t read_pauses = 0;
  absl::Duration paused_for;
  // msgappv2: bytes of frames read and not yet decoded (or dropped) by
  // the receive worker. Now, not monotonic.
  uint64_t undecoded_bytes = 0;
};

// Thread-safety: Stop and stats are safe from any thread. Stop cancels the
// call in flight and waits for it to end.
class GrpcStreamReader : public StreamReader {
 public:
  GrpcStreamReader(StreamType type, const PeerEnv& env,
                   std::shared_ptr<const TransportOptions> opts, Scheduler* scheduler,
                   ChannelPool* channels);
  ~GrpcStreamReader() override;  // Stop()

  void Stop() override;
  StreamReaderStats stats() const;

  class Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_STREAM_STREAM_READER_H_
