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
//
// An exception any method throws is caught by the transport, never left to
// end the process from one of gRPC's threads, then logged and counted
// (TransportCounters::callback_exceptions). Process and ProcessSnapshot then
// fail with INTERNAL, TryProcessUrgent takes the message and fails it
// (both counted as Process errors, the message dropped; Raft sends
// another), IsIdRemoved answers false, and the reports are lost
// (peer/guarded_raft.h).
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

  // Optional: takes an urgent message (IsUrgent in inbound_router.h:
  // heartbeats, votes, read index, MsgTimeoutNow and their responses) on the
  // thread that read it off a stream, instead of Process on the peer's
  // receive worker. That saves a thread hand-off, a sleep and a wake-up,
  // each way of a heartbeat's round trip: on a VM, a large part of it
  // (bench/README.md, "Urgent messages on the reading thread"). Returns true
  // if it took the message (`*status` then as Process's), false to have it
  // queued for Process as usual; the default takes nothing.
  //
  // Must not block: it runs on one of gRPC's threads, and the peer's stream
  // reads nothing meanwhile. Typically it steps the Raft state machine if
  // its lock is free, or queues the message without waiting, and returns
  // false otherwise. Called only while none of the peer's urgent messages
  // is queued or in Process, so their order is kept; never for MsgApp,
  // MsgProp, snapshots or pipeline requests. Must not remove the peer or
  // stop the transport: both wait for this call to return. If it wakes the
  // Raft loop through a condition variable, notify after unlocking: woken
  // under the lock, the loop's thread takes this one's CPU, finds the mutex
  // held and sleeps again, one more wake-up per message (bench/README.md,
  // "The bench's own wake-up").
  virtual bool TryProcessUrgent(const raftpb::Message& m, absl::Status* status) {
    (void)m;
    (void)status;
    return false;
  }

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
