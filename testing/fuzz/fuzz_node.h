// An in-process node (a real Transport on 127.0.0.1, a FakeRaft) for fuzz
// targets that drive the server-side handlers over real gRPC calls. Node 1,
// cluster 0x1000; member 2 is a peer, member 3 is removed.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_NODE_H_
#define RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_NODE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"

namespace raftgrpc {
class Transport;
}

namespace raftgrpc::fuzz {

struct FuzzNode {
  Transport* transport = nullptr;
  std::unique_ptr<v1::RaftTransport::Stub> stub;
  std::string snapshot_dir;
};

// Created on first use; lives until exit.
FuzzNode& GetFuzzNode();

// Identity metadata as sender `from` (selector picks a variant: the peer,
// an unknown sender, the removed member, or a wrong cluster ID).
void AddFuzzIdentity(grpc::ClientContext* ctx, uint8_t selector);

// Files in the node's snapshot directory.
int CountSnapshotFiles();
// Snapshot transfers the node is still receiving (or cleaning up after).
uint64_t SnapshotsInFlight();
// Snapshot calls the node has answered (stored or rejected).
uint64_t SnapshotsAnswered();

}  // namespace raftgrpc::fuzz

#endif  // RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_NODE_H_
