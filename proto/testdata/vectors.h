// Language-neutral test vectors of the wire protocol (proto/testdata/*.json),
// produced by the C++ code itself so that they cannot drift from it:
// //proto/testdata:vectors_test regenerates them and compares with the
// checked-in files; gen_vectors writes them.
//
// Thread-safety: a pure function.
#ifndef RAFT_GRPC_TRANSPORT_PROTO_TESTDATA_VECTORS_H_
#define RAFT_GRPC_TRANSPORT_PROTO_TESTDATA_VECTORS_H_

#include <map>
#include <string>

namespace raftgrpc::vectors {

// File name -> contents (JSON), for every vector file.
std::map<std::string, std::string> Generate();

}  // namespace raftgrpc::vectors

#endif  // RAFT_GRPC_TRANSPORT_PROTO_TESTDATA_VECTORS_H_
