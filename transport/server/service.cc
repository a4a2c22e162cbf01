#include "transport/server/service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transport/internal/metadata.h"
#include "transport/server/raw_message.h"
#include "transport/server/snapshot_receiver.h"
#include "transport/stream/server_stream.h"

namespace raftgrpc {

grpc::Status TransportService::ValidateStream(grpc::CallbackServerContext* ctx,
                                              std::shared_ptr<Peer>* peer) {
  ServiceHost* host = env_.host;
  const TransportOptions& opts = host->options();
  RequestIdentity id;
  grpc::Status s = ValidateRequest(ctx, opts, &id);
  if (!s.ok()) return s;
  if (host->raft()->IsIdRemoved(id.from)) return RemovedMemberStatus(ctx);
  *peer = host->FindPeer(id.from);
  if (*peer == nullptr) {
    if (!id.peer_urls.empty()) host->AddRemote(id.from, id.peer_urls);
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "error sender not found");
  }
  if (!id.to || *id.to != opts.local_id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "to field mismatch");
  }
  return grpc::Status::OK;
}

template <class Frame>
ServerStream<Frame>* TransportService::AcceptStream(grpc::CallbackServerContext* ctx,
                                                    StreamType type) {
  ready_.Acquire();
  std::shared_ptr<Peer> peer;
  grpc::Status s = ValidateStream(ctx, &peer);
  const uint64_t from = peer != nullptr ? peer->id() : 0;
  auto* stream = new ServerStream<Frame>(ctx, type, [this, from, type](const std::string& why) {
    failure_log_.Log(env_.host->options(), absl::StrCat("rejected input on ", StreamTypeName(type),
                                                        " from peer ", absl::Hex(from), ": ", why));
  });
  if (!s.ok()) {
    counters_.streams_rejected.fetch_add(1, std::memory_order_relaxed);
    stream->Reject(s);
    return stream;
  }
  counters_.streams_accepted.fetch_add(1, std::memory_order_relaxed);
  // The peer's writer takes the accepted call as its outgoing connection.
  absl::Status attached = peer->AttachOutgoingConn(stream->Accept());
  (void)attached;  // a rejected conn is closed by the peer
  return stream;
}

grpc::ServerBidiReactor<v1::StreamControl, v1::MessageFrame>* TransportService::MessageStream(
    grpc::CallbackServerContext* ctx) {
  return AcceptStream<v1::MessageFrame>(ctx, StreamType::kMessage);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* TransportService::MsgAppV2Stream(
    grpc::CallbackServerContext* ctx) {
  return AcceptStream<MsgAppV2WireFrame>(ctx, StreamType::kMsgAppV2);
}

grpc::ServerUnaryReactor* TransportService::Pipeline(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* raw,
                                                     grpc::ByteBuffer* resp) {
  ready_.Acquire();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RequestIdentity id;
  bool identified = false;  // per-sender counters only for valid identities
  auto reject = [&](const grpc::Status& s) {
    counters_.pipeline_rejected.fetch_add(1, std::memory_order_relaxed);
    if (identified) counters_.by_sender.AddFailure(id.from);
    reactor->Finish(s);
    return reactor;
  };
  ServiceHost* host = env_.host;
  const TransportOptions& opts = host->options();
  grpc::Status s = ValidateRequest(ctx, opts, &id);
  if (!s.ok()) return reject(s);
  identified = true;
  if (!id.peer_urls.empty()) host->AddRemote(id.from, id.peer_urls);
  v1::PipelineRequest request;
  if (!DecodeRaw(*raw, &request)) {
    failure_log_.Log(opts, absl::StrCat("rejected a pipeline request from peer ",
                                        absl::Hex(id.from), ": it did not parse"));
    return reject(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed pipeline request"));
  }
  if (!request.has_message()) {
    return reject(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "missing raft message"));
  }
  // A member speaks only for itself: the body must agree with the header.
  s = CheckMessageIdentity(request.message(), id.from, opts.local_id);
  if (!s.ok()) {
    failure_log_.Log(opts, absl::StrCat("rejected a pipeline message from peer ",
                                        absl::Hex(id.from), ": ", s.error_message()));
    return reject(s);
  }
  const size_t size = request.message().ByteSizeLong();
  if (size > opts.max_message_bytes) {
    return reject(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("raft message of ", size, " bytes exceeds the limit of ",
                                  opts.max_message_bytes)));
  }
  // etcd's Process rejects removed members with 403; we check up front so
  // the handler need not wait for Process.
  if (host->raft()->IsIdRemoved(id.from)) return reject(RemovedMemberStatus(ctx));
  counters_.AddReceivedBytes(id.from, size);

  raftpb::Message m = std::move(*request.mutable_message());
  EncodeRaw(v1::PipelineResponse(), resp);
  std::shared_ptr<Peer> peer = host->FindPeer(id.from);
  InboundRouter* inbound = peer ? &peer->inbound() : host->stranger_inbound();
  // As etcd's pipeline handler, the answer waits for Process (on the inbound
  // worker; no gRPC thread waits) and carries its outcome: a removed member
  // is PERMISSION_DENIED, another error INTERNAL.
  const uint64_t from = id.from;
  auto answer = [this, ctx, reactor, from](const absl::Status& ps) {
    if (ps.ok()) {
      counters_.pipeline_received.fetch_add(1, std::memory_order_relaxed);
      reactor->Finish(grpc::Status::OK);
      return;
    }
    counters_.pipeline_rejected.fetch_add(1, std::memory_order_relaxed);
    counters_.by_sender.AddFailure(from);
    // UNAVAILABLE: dropped at stop (InboundRouter), not refused by Raft.
    reactor->Finish(ps.code() == absl::StatusCode::kUnavailable
                        ? grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(ps.message()))
                        : ProcessErrorStatus(ps, ctx));
  };
  switch (inbound->DeliverUnpaused(std::move(m), answer, size)) {
    case InboundRouter::Result::kQueued:
      return reactor;  // `answer` finishes it
    // Pipeline requests are never offered to TryProcessUrgent.
    case InboundRouter::Result::kProcessed:
    case InboundRouter::Result::kLinkHeartbeat:
    case InboundRouter::Result::kPaused:
      counters_.pipeline_received.fetch_add(1, std::memory_order_relaxed);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    case InboundRouter::Result::kFull:
      return reject(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "receiving buffer is full"));
    case InboundRouter::Result::kStopped:
      break;
  }
  return reject(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stopped"));
}

grpc::ServerReadReactor<grpc::ByteBuffer>* TransportService::Snapshot(
    grpc::CallbackServerContext* ctx, grpc::ByteBuffer* resp) {
  ready_.Acquire();
  return SnapshotReceiver::Start(env_, ctx, resp);
}

grpc::ServerUnaryReactor* TransportService::SnapshotOffset(grpc::CallbackServerContext* ctx,
                                                           const grpc::ByteBuffer* raw,
                                                           grpc::ByteBuffer* resp) {
  ready_.Acquire();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ServiceHost* host = env_.host;
  const TransportOptions& opts = host->options();
  RequestIdentity id;
  grpc::Status s = ValidateRequest(ctx, opts, &id);
  v1::SnapshotOffsetRequest req;
  if (s.ok() && !DecodeRaw(*raw, &req)) {
    failure_log_.Log(opts, absl::StrCat("rejected a snapshot offset request from peer ",
                                        absl::Hex(id.from), ": it did not parse"));
    s = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed snapshot offset request");
  }
  if (s.ok() && req.message().type() != raftpb::MsgSnap) {
    s = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wrong raft message type");
  }
  // Only the sender's own prefix: the MsgSnap must agree with the header.
  if (s.ok()) s = CheckMessageIdentity(req.message(), id.from, opts.local_id);
  if (s.ok() && host->raft()->IsIdRemoved(id.from)) s = RemovedMemberStatus(ctx);
  if (s.ok()) {
    SnapshotStore* store = host->snapshot_store();
    v1::SnapshotOffsetResponse out;
    // A stat and a small file read: short enough for this thread.
    out.set_offset(store && SnapshotResumable(host, id.from)
                       ? store->ResumeOffset(id.from, req.message(), req.data_size())
                       : 0);
    EncodeRaw(out, resp);
  }
  reactor->Finish(s);
  return reactor;
}

grpc::ServerUnaryReactor* TransportService::Probe(grpc::CallbackServerContext* ctx,
                                                  const v1::ProbeRequest*,
                                                  v1::ProbeResponse* resp) {
  ready_.Acquire();
  resp->set_ok(true);
  resp->set_now_unix_nanos(absl::GetCurrentTimeNanos());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace raftgrpc
