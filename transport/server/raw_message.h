// The service's raw methods (service.h) decode their requests and encode
// their answers themselves.
//
// Thread-safety: plain functions; any thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_RAW_MESSAGE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_RAW_MESSAGE_H_

#include "grpcpp/grpcpp.h"

namespace raftgrpc {

// Decodes a request gRPC still owns; false if it does not parse.
template <class Request>
bool DecodeRaw(const grpc::ByteBuffer& raw, Request* out) {
  grpc::ByteBuffer wire(raw);  // Deserialize consumes it; the copy shares the slices
  return grpc::SerializationTraits<Request>::Deserialize(&wire, out).ok();
}

// A raw method answers raw: an empty message is a valid, empty buffer.
template <class Response>
void EncodeRaw(const Response& r, grpc::ByteBuffer* out) {
  bool own;
  (void)grpc::SerializationTraits<Response>::Serialize(r, out, &own);
}

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_RAW_MESSAGE_H_
