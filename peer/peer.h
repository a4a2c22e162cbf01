// Peer: everything a node keeps for one remote member (etcd's peer). Routes
// outbound messages to a stream or the pipeline (etcd's pick order), reports
// what it cannot queue, routes inbound stream traffic to Raft, and owns the
// channels that transport/ builds for it through a ChannelFactory.
//
// Thread-safety: every method is safe from any thread. Send, Pick,
// SendSnapshot, Pause/Resume and the accessors never block (beyond short
// internal locks). AttachOutgoingConn may wait for the writer's lock. Stop
// blocks until every channel and worker has stopped, including an in-flight
// Raft::Process call.
#ifndef RAFT_GRPC_TRANSPORT_PEER_PEER_H_
#define RAFT_GRPC_TRANSPORT_PEER_PEER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peer/channels.h"
#include "peer/inbound_router.h"
#include "peer/mutex.h"
#include "peer/peer_env.h"
#include "peer/peer_status.h"
#include "peer/raft.h"
#include "peer/url_picker.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// Where Pick routes a message (etcd's pick names).
enum class Channel { kStreamMsgAppV2 = 0, kStreamMsg = 1, kPipeline = 2 };
inline constexpr int kNumChannels = 3;
// "streamMsgAppV2", "streamMsg", "pipeline".
const char* ChannelName(Channel c);

struct PeerOptions {
  size_t recv_buffer_size = 4096;       // etcd's recvBufSize
  size_t max_pending_proposals = 4096;  // etcd's maxPendingProposals
  CriticalErrorFn on_critical_error;    // PeerEnv::on_critical
  // Bytes both inbound queues may hold (InboundCost), charged also to
  // `inbound_budget_parent` when set (it must outlive the Peer).
  size_t max_inbound_bytes = SIZE_MAX;
  ByteBudget* inbound_budget_parent = nullptr;
};

// Builds a peer's channels; implemented by transport/ (gRPC) and by tests.
// Called from Peer::Create, in etcd's order: pipeline, writers, snapshot
// sender, then readers (which start dialling at once).
class ChannelFactory {
 public:
  virtual ~ChannelFactory() = default;
  virtual std::unique_ptr<MessageChannel> NewPipeline(const PeerEnv& env) = 0;
  virtual std::unique_ptr<StreamWriter> NewStreamWriter(StreamType type, const PeerEnv& env) = 0;
  virtual std::unique_ptr<SnapshotSender> NewSnapshotSender(const PeerEnv& env) = 0;
  // May return nullptr: no reader for that type.
  virtual std::unique_ptr<StreamReader> NewStreamReader(StreamType type, const PeerEnv& env) = 0;
};

// Counters for metrics. Monotonic.
struct PeerStats {
  std::array<uint64_t, kNumChannels> sent{};     // queued, by channel
  std::array<uint64_t, kNumChannels> dropped{};  // channel full, by channel
  uint64_t dropped_paused = 0;                   // Send while paused
  uint64_t snapshots_sent = 0;                   // handed to the snapshot sender
  uint64_t received = 0;                         // delivered to Raft::Process from streams
  uint64_t received_at_once = 0;                 // of those, by Raft::TryProcessUrgent
  uint64_t inbound_dropped_full = 0;             // recv/prop queue full
  uint64_t inbound_dropped_paused = 0;           // read while paused
  uint64_t process_errors = 0;                   // Raft::Process returned an error
};

class Peer {
 public:
  enum class SendOutcome { kQueued, kPaused, kFull, kStopped };

  // Validates `urls` (see ValidatePeerUrls), then starts the inbound workers
  // and builds the channels with `factory` (not retained). `raft` must
  // outlive the Peer. `on_status` is PeerStatus's callback.
  static absl::StatusOr<std::unique_ptr<Peer>> Create(uint64_t local_id, uint64_t peer_id,
                                                      const std::vector<std::string>& urls,
                                                      Raft* raft, ChannelFactory& factory,
                                                      const PeerOptions& options = PeerOptions(),
                                                      PeerStatus::EventFn on_status = nullptr);

  ~Peer();  // Stop()

  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  uint64_t id() const { return env_.peer_id; }

  // etcd's pick: MsgSnap -> pipeline; MsgApp and the v2 writer working ->
  // v2 stream; the v3 writer working -> v3 stream; otherwise pipeline.
  Channel Pick(const raftpb::Message& m) const;

  // Queues `m` on the picked channel without blocking. Paused or stopped:
  // dropped silently. Channel full: ReportUnreachable(m.to()), plus
  // ReportSnapshot(m.to(), kFailure) for MsgSnap, and the drop is counted.
  SendOutcome Send(raftpb::Message m);

  // Hands a snapshot to the snapshot sender (asynchronous, not affected by
  // Pause). Once stopped: closed with failure and reported as kFailure.
  void SendSnapshot(SnapshotMessage snap);

  // Replaces the peer's URLs (validated); readers and the pipeline use them
  // from their next dial. An established stream is kept.
  absl::Status Update(const std::vector<std::string>& urls);

  // Gives an accepted stream to the writer of its type, which closes and
  // replaces any previous one. The conn is closed if the peer or writer is
  // stopped (FAILED_PRECONDITION) or its type is unknown (INVALID_ARGUMENT).
  absl::Status AttachOutgoingConn(std::unique_ptr<OutgoingConn> conn);

  // Pause drops outbound sends and inbound stream deliveries (etcd's test
  // partition); Resume restores both. Pipeline and snapshot requests the
  // node receives are still processed.
  void Pause();
  void Resume();
  bool paused() const { return paused_.load(std::memory_order_relaxed); }

  // Stops writers, pipeline, snapshot sender, readers and inbound workers,
  // and joins them. Idempotent.
  void Stop();

  absl::Time ActiveSince() const { return status_.ActiveSince(); }
  PeerStatus& status() { return status_; }
  UrlPicker& picker() { return picker_; }
  InboundRouter& inbound() { return inbound_; }
  const ByteBudget& inbound_budget() const { return inbound_budget_; }
  const PeerEnv& env() const { return env_; }
  // What the channels counted (etcd's per-peer metrics).
  const PeerCounters& counters() const { return counters_; }
  // Channels, for metrics and tests; valid while the Peer lives. reader()
  // may be null (the factory built none).
  const StreamWriter* writer(StreamType t) const { return WriterFor(t); }
  const StreamReader* reader(StreamType t) const { return readers_[static_cast<int>(t)].get(); }
  const MessageChannel* pipeline() const { return pipeline_.get(); }
  const SnapshotSender* snapshot_sender() const { return snapshot_sender_.get(); }
  PeerStats stats() const;

 private:
  Peer(uint64_t local_id, uint64_t peer_id, std::vector<std::string> urls, Raft* raft,
       const PeerOptions& options, PeerStatus::EventFn on_status);

  MessageChannel* ChannelFor(Channel c) const;
  StreamWriter* WriterFor(StreamType t) const;

  PeerStatus status_;
  UrlPicker picker_;
  ByteBudget inbound_budget_;
  InboundRouter inbound_;
  PeerCounters counters_;
  PeerEnv env_;

  std::unique_ptr<MessageChannel> pipeline_;
  std::unique_ptr<StreamWriter> msgapp_v2_writer_;
  std::unique_ptr<StreamWriter> message_writer_;
  std::unique_ptr<SnapshotSender> snapshot_sender_;
  std::array<std::unique_ptr<StreamReader>, 2> readers_;  // by StreamType

  // Held shared by Send/SendSnapshot/AttachOutgoingConn while they touch a
  // channel and exclusively by Stop to flip stopped_, so no call is inside a
  // channel once Stop starts tearing channels down.
  mutable SharedMutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::atomic<bool> paused_{false};

  std::array<std::atomic<uint64_t>, kNumChannels> sent_{};
  std::array<std::atomic<uint64_t>, kNumChannels> dropped_{};
  std::atomic<uint64_t> dropped_paused_{0};
  std::atomic<uint64_t> snapshots_sent_{0};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_PEER_H_
