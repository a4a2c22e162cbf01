// The channels a Peer writes to and reads from, as small interfaces. The
// transport/ package implements them over gRPC; tests use the fakes in
// testing/. Nothing here depends on gRPC.
#ifndef RAFT_GRPC_TRANSPORT_PEER_CHANNELS_H_
#define RAFT_GRPC_TRANSPORT_PEER_CHANNELS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "proto/raftpb/raft.pb.h"
#include "transport/snapshot.h"

namespace raftgrpc {

// The two stream channels (etcd's streamType).
enum class StreamType {
  kMsgAppV2,  // "msgappv2": MsgApp only, v2-compressed
  kMessage,   // "message": any message type
};

// etcd's names: "stream MsgApp v2" / "stream Message" (log and failure source).
const char* StreamTypeName(StreamType t);

// Something a Peer queues outbound messages into: a stream writer or the
// pipeline.
class MessageChannel {
 public:
  virtual ~MessageChannel() = default;

  // Whether the channel carries traffic now. A stream writer works while an
  // outgoing connection is attached; the pipeline always works.
  // Non-blocking; safe from any thread.
  virtual bool Working() const = 0;

  // Queues `m` without blocking. Returns false when the queue is full or the
  // channel does not accept messages (stopped, or a stream with no
  // connection); `m` is left untouched then. On true `m` may be moved from.
  // Safe from any thread.
  virtual bool TrySend(raftpb::Message&& m) = 0;

  // Stops the channel and joins whatever it runs. Queued messages are
  // dropped. Idempotent; may block until in-flight work is cancelled.
  virtual void Stop() = 0;
};

// The concrete conns of the two stream types: declared here, defined by the
// stream implementation (transport/stream/server_stream.h). A writer learns
// which one it was given by visiting it (OutgoingConn::Accept), not by a
// cast, and nothing here depends on how they are built.
class MessageStreamConn;
class MsgAppV2StreamConn;

class OutgoingConnVisitor {
 public:
  virtual ~OutgoingConnVisitor() = default;
  virtual void Visit(MessageStreamConn& conn) = 0;
  virtual void Visit(MsgAppV2StreamConn& conn) = 0;
};

// An accepted inbound stream that a peer's stream writer will write on (etcd's
// outgoingConn). Owned by whoever holds the unique_ptr.
class OutgoingConn {
 public:
  virtual ~OutgoingConn() = default;
  virtual StreamType type() const = 0;
  // Ends the stream. Idempotent; non-blocking.
  virtual void Close() = 0;
  // Calls the Visit overload of this conn's concrete type; conns of other
  // kinds (tests' fakes) visit nothing. Non-blocking.
  virtual void Accept(OutgoingConnVisitor& visitor) { (void)visitor; }
};

// A stream writer: a MessageChannel that works while a conn is attached.
class StreamWriter : public MessageChannel {
 public:
  // Takes over `conn` (closing and replacing any previous one) and starts
  // working. Returns false, leaving `conn` with the caller, once stopped.
  virtual bool Attach(std::unique_ptr<OutgoingConn>& conn) = 0;
};

// A stream reader: dials the remote for one stream type and delivers what it
// reads through the peer's inbound router. Runs until Stop().
class StreamReader {
 public:
  virtual ~StreamReader() = default;
  // Cancels the stream and joins. Idempotent.
  virtual void Stop() = 0;
};

// Sends snapshots asynchronously and reports the outcome to Raft.
class SnapshotSender {
 public:
  virtual ~SnapshotSender() = default;
  // Starts sending; never blocks. Reports ReportSnapshot(to, ...) and closes
  // `snap` when done (failure at once if one is already in flight or the
  // sender is stopped).
  virtual void Send(SnapshotMessage snap) = 0;
  // Cancels an in-flight send (reported as failure) and joins. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_CHANNELS_H_
