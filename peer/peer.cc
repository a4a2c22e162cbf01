#include "peer/peer.h"

#include <utility>

namespace raftgrpc {

const char* StreamTypeName(StreamType t) {
  switch (t) {
    case StreamType::kMsgAppV2:
      return "stream MsgApp v2";
    case StreamType::kMessage:
      return "stream Message";
  }
  return "stream unknown";
}

const char* ChannelName(Channel c) {
  switch (c) {
    case Channel::kStreamMsgAppV2:
      return "streamMsgAppV2";
    case Channel::kStreamMsg:
      return "streamMsg";
    case Channel::kPipeline:
      return "pipeline";
  }
  return "unknown";
}

Peer::Peer(uint64_t local_id, uint64_t peer_id, std::vector<std::string> urls, Raft* raft,
           const PeerOptions& options, PeerStatus::EventFn on_status)
    : status_(peer_id, std::move(on_status)),
      picker_(std::move(urls)),
      inbound_budget_(options.max_inbound_bytes, options.inbound_budget_parent),
      inbound_(raft, options.recv_buffer_size, options.max_pending_proposals,
               std::chrono::seconds(1), &inbound_budget_) {
  env_.local_id = local_id;
  env_.peer_id = peer_id;
  env_.raft = raft;
  env_.status = &status_;
  env_.picker = &picker_;
  env_.inbound = &inbound_;
  env_.counters = &counters_;
  env_.on_critical = options.on_critical_error;
}

absl::StatusOr<std::unique_ptr<Peer>> Peer::Create(uint64_t local_id, uint64_t peer_id,
                                                   const std::vector<std::string>& urls, Raft* raft,
                                                   ChannelFactory& factory,
                                                   const PeerOptions& options,
                                                   PeerStatus::EventFn on_status) {
  if (raft == nullptr) return absl::InvalidArgumentError("peer needs a Raft");
  if (peer_id == 0) return absl::InvalidArgumentError("peer ID 0 is reserved");
  if (options.recv_buffer_size == 0 || options.max_pending_proposals == 0) {
    return absl::InvalidArgumentError("inbound queue sizes must be positive");
  }
  absl::StatusOr<std::vector<std::string>> valid = ValidatePeerUrls(urls);
  if (!valid.ok()) return valid.status();
  std::unique_ptr<Peer> p(
      new Peer(local_id, peer_id, *std::move(valid), raft, options, std::move(on_status)));
  p->pipeline_ = factory.NewPipeline(p->env_);
  p->msgapp_v2_writer_ = factory.NewStreamWriter(StreamType::kMsgAppV2, p->env_);
  p->message_writer_ = factory.NewStreamWriter(StreamType::kMessage, p->env_);
  p->snapshot_sender_ = factory.NewSnapshotSender(p->env_);
  if (!p->pipeline_ || !p->msgapp_v2_writer_ || !p->message_writer_ || !p->snapshot_sender_) {
    p->Stop();
    return absl::InternalError("channel factory returned no channel");
  }
  for (StreamType t : {StreamType::kMsgAppV2, StreamType::kMessage}) {
    p->readers_[static_cast<int>(t)] = factory.NewStreamReader(t, p->env_);
  }
  return p;
}

Peer::~Peer() { Stop(); }

MessageChannel* Peer::ChannelFor(Channel c) const {
  switch (c) {
    case Channel::kStreamMsgAppV2:
      return msgapp_v2_writer_.get();
    case Channel::kStreamMsg:
      return message_writer_.get();
    case Channel::kPipeline:
      return pipeline_.get();
  }
  return pipeline_.get();
}

StreamWriter* Peer::WriterFor(StreamType t) const {
  switch (t) {
    case StreamType::kMsgAppV2:
      return msgapp_v2_writer_.get();
    case StreamType::kMessage:
      return message_writer_.get();
  }
  return nullptr;
}

Channel Peer::Pick(const raftpb::Message& m) const {
  // A snapshot would hold a stream for its whole transfer: pipeline.
  if (m.type() == raftpb::MsgSnap) return Channel::kPipeline;
  if (m.type() == raftpb::MsgApp && msgapp_v2_writer_->Working()) return Channel::kStreamMsgAppV2;
  if (message_writer_->Working()) return Channel::kStreamMsg;
  return Channel::kPipeline;
}

Peer::SendOutcome Peer::Send(raftpb::Message m) {
  const bool is_snap = m.type() == raftpb::MsgSnap;
  Channel picked;
  {
    ReaderLock l(&stop_mu_);
    if (stopped_) return SendOutcome::kStopped;
    if (paused()) {
      dropped_paused_.fetch_add(1, std::memory_order_relaxed);
      return SendOutcome::kPaused;
    }
    picked = Pick(m);
    if (ChannelFor(picked)->TrySend(std::move(m))) {
      sent_[static_cast<int>(picked)].fetch_add(1, std::memory_order_relaxed);
      return SendOutcome::kQueued;
    }
  }
  // Reported outside the lock: Raft may call back into the transport.
  dropped_[static_cast<int>(picked)].fetch_add(1, std::memory_order_relaxed);
  ReportNotSent(env_, is_snap);
  return SendOutcome::kFull;
}

void Peer::SendSnapshot(SnapshotMessage snap) {
  {
    ReaderLock l(&stop_mu_);
    if (!stopped_) {
      snapshots_sent_.fetch_add(1, std::memory_order_relaxed);
      snapshot_sender_->Send(std::move(snap));
      return;
    }
  }
  snap.Close(false);
  env_.raft->ReportSnapshot(env_.peer_id, SnapshotStatus::kFailure);
}

absl::Status Peer::Update(const std::vector<std::string>& urls) {
  absl::StatusOr<std::vector<std::string>> valid = ValidatePeerUrls(urls);
  if (!valid.ok()) return valid.status();
  picker_.Update(*std::move(valid));
  return absl::OkStatus();
}

absl::Status Peer::AttachOutgoingConn(std::unique_ptr<OutgoingConn> conn) {
  if (conn == nullptr) return absl::InvalidArgumentError("null conn");
  absl::Status result;
  {
    ReaderLock l(&stop_mu_);
    StreamWriter* w = WriterFor(conn->type());
    if (w == nullptr) {
      result = absl::InvalidArgumentError("unsupported stream type");
    } else if (stopped_ || !w->Attach(conn)) {
      result = absl::FailedPreconditionError("peer stopped");
    }
  }
  if (conn != nullptr) conn->Close();  // not taken by a writer
  return result;
}

void Peer::Pause() {
  paused_.store(true, std::memory_order_relaxed);
  inbound_.Pause();
}

void Peer::Resume() {
  paused_.store(false, std::memory_order_relaxed);
  inbound_.Resume();
}

void Peer::Stop() {
  {
    WriterLock l(&stop_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  // etcd's order: inbound workers, writers, pipeline, snapshot sender, readers.
  inbound_.Stop();
  if (msgapp_v2_writer_) msgapp_v2_writer_->Stop();
  if (message_writer_) message_writer_->Stop();
  if (pipeline_) pipeline_->Stop();
  if (snapshot_sender_) snapshot_sender_->Stop();
  for (auto& r : readers_) {
    if (r) r->Stop();
  }
}

PeerStats Peer::stats() const {
  PeerStats s;
  for (int i = 0; i < kNumChannels; ++i) {
    s.sent[i] = sent_[i].load(std::memory_order_relaxed);
    s.dropped[i] = dropped_[i].load(std::memory_order_relaxed);
  }
  s.dropped_paused = dropped_paused_.load(std::memory_order_relaxed);
  s.snapshots_sent = snapshots_sent_.load(std::memory_order_relaxed);
  s.received = inbound_.delivered();
  s.received_at_once = inbound_.processed_at_once();
  s.inbound_dropped_full = inbound_.dropped_full();
  s.inbound_dropped_paused = inbound_.dropped_paused();
  s.process_errors = inbound_.process_errors();
  return s;
}

}  // namespace raftgrpc
