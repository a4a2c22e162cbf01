// The node's side of the transport: what a Raft implementation gives the
// transport so that inbound messages reach it and send outcomes are reported.
#ifndef RAFT_GRPC_TRANSPORT_PEER_RAFT_H_
#define RAFT_GRPC_TRANSPORT_PEER_RAFT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// Outcome of a snapshot send, as etcd's raft.SnapshotStatus.
enum class SnapshotStatus { kFinish = 1, kFailure = 2 };

// Implemented by the node. Every method may be called concurrently from
// transport threads (inbound workers, gRPC handler threads, sender threads).
class Raft {
 public:
  virtual ~Raft() = default;

  // Hands one inbound message to Raft. May block (a MsgProp while there is no
  // leader): each peer drains proposals and other messages on separate
  // workers so a blocked proposal never stalls heartbeats or appends. Must
  // return eventually: stopping a peer waits for an in-flight call. A non-OK
  // status is logged; on the pipeline and snapshot RPCs it is returned to the
  // sender (PERMISSION_DENIED for a removed member, as etcd's 403).
  virtual absl::Status Process(const raftpb::Message& m) = 0;

  // Hands a received MsgSnap to Raft once its data is durably stored at
  // `data_path` (see SnapshotStore). Defaults to Process(m).
  virtual absl::Status ProcessSnapshot(const raftpb::Message& m, const std::string& data_path) {
    (void)data_path;
    return Process(m);
  }

  // Whether `id` was permanently removed from the cluster. Must not block.
  virtual bool IsIdRemoved(uint64_t id) = 0;

  // A message to `id` probably did not get through. Should be quick.
  virtual void ReportUnreachable(uint64_t id) = 0;

  // Result of a snapshot sent to `id`. Should be quick.
  virtual void ReportSnapshot(uint64_t id, SnapshotStatus status) = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_RAFT_H_
