// Server side of the Snapshot RPC (etcd's snapshotHandler).
//
// Frames: a header (MsgSnap + data size), data chunks, a trailer (CRC-32C).
// The reactor hands chunks to a per-transfer disk thread through a queue of
// at most kMaxQueuedChunks; reading pauses while it is full, so memory stays
// bounded by a few chunks whatever the snapshot size, and disk writes overlap
// receiving. Only after size and checksum match and the data is durable is
// the MsgSnap handed to Raft::ProcessSnapshot; then the call answers OK.
//
// Status codes: bad identity as every RPC; first frame not a header or not a
// MsgSnap, or a frame protobuf cannot parse -> INVALID_ARGUMENT; message
// over the limit or data beyond the declared size -> RESOURCE_EXHAUSTED;
// removed sender -> PERMISSION_DENIED;
// stream ended before the trailer, size short, or checksum mismatch ->
// DATA_LOSS; no frame for snapshot_progress_timeout -> DEADLINE_EXCEEDED
// (no header within it: the same, so a silent client holds nothing for
// long); more than max_snapshot_receives senders at once, or no thread to
// be had -> RESOURCE_EXHAUSTED; replaced by a newer transfer from the same
// sender (one per sender) -> ABORTED; store or Raft failure -> INTERNAL; a
// resume (header offset) of a prefix the store does not hold ->
// FAILED_PRECONDITION; a chunk whose chunk_crc32c does not match ->
// DATA_LOSS. A failed transfer leaves no file, except that a transfer
// broken on the link (CANCELLED, DEADLINE_EXCEEDED, ABORTED, UNAVAILABLE)
// leaves the verified prefix of a resumable store for the sender's retry.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SNAPSHOT_RECEIVER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SNAPSHOT_RECEIVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"
#include "transport/server/service_host.h"
#include "transport/snapshot/chunk_frame.h"
#include "transport/snapshot_store.h"

namespace raftgrpc {

class SnapshotReceiver;

// A receiver as others may reach it while it lives: OnDone clears
// `receiver` under `mu`, so a holder of the shared_ptr (a timer task, a
// newer transfer preempting this one) never touches a deleted receiver.
struct ReceiverRef {
  Mutex mu;
  SnapshotReceiver* receiver ABSL_GUARDED_BY(mu) = nullptr;
};

// Which snapshot receives may proceed: one per sender, and at most `limit`
// in all. A sender sends one snapshot at a time, so its new transfer means
// the old one is dead (e.g. its connection was reset and this end has not
// noticed yet): the new one replaces it rather than being refused.
// Thread-safe; never blocks beyond a short lock.
class SnapshotAdmission {
 public:
  explicit SnapshotAdmission(size_t limit) : limit_(limit) {}
  // OK (then `*replaced` is the sender's older receive, to be ended by the
  // caller, or null), or RESOURCE_EXHAUSTED when `limit` receives from
  // other senders are in flight. On OK the caller must Release once.
  absl::Status Admit(uint64_t from, std::shared_ptr<ReceiverRef> self,
                     std::shared_ptr<ReceiverRef>* replaced);
  // Frees `from`'s slot if `self` still holds it.
  void Release(uint64_t from, const std::shared_ptr<ReceiverRef>& self);

 private:
  const size_t limit_;
  Mutex mu_;
  std::map<uint64_t, std::shared_ptr<ReceiverRef>> senders_ ABSL_GUARDED_BY(mu_);
};

// Reads raw frames: chunk frames are split without a copy (chunk_frame.h),
// the others parsed with protobuf.
class SnapshotReceiver final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  // Two: the disk writes one chunk while the next arrives. Four held more
  // memory for no speed: with a node's heap kept (README), the receiving
  // process's peak RSS at 1 GiB was 28.9-30.2 MiB against 32.7-33.9, at
  // the same rates (bench/README.md, "Two queued chunks, not four").
  static constexpr size_t kMaxQueuedChunks = 2;

  // `resp` is the call's response: an empty SnapshotResponse.
  static SnapshotReceiver* Start(const ServerEnv& env, grpc::CallbackServerContext* ctx,
                                 grpc::ByteBuffer* resp);

  // Each reaction acquires, and publishes when it returns, for OnDone:
  // gRPC runs OnDone after every reaction has returned (see Handoff).
  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Most chunk bytes ever buffered by any receiver in this process (queue
  // plus the frame being read): lets tests assert bounded memory.
  static uint64_t PeakBufferedBytes();
  static void ResetPeakBufferedBytes();

 private:
  SnapshotReceiver(const ServerEnv& env, grpc::CallbackServerContext* ctx);

  void ReadDone(bool ok);  // OnReadDone's body
  void Cancelled();        // OnCancel's body

  // Finishes once; aborts the sink. `before_header`: only if the header has
  // not arrived (the header timeout, racing with the header).
  // `link`: the failure may be the link's (also for codes that do not say
  // so, e.g. a reset that ends the stream without a trailer): a verified
  // prefix is kept for a resume.
  void Fail(const grpc::Status& s, bool before_header = false, bool link = false);
  void FinishDeferred();  // disk thread: answers a deferred Fail
  void HandleHeader();
  // Queues a chunk for the disk thread, or fails the transfer.
  void HandleChunk(ChunkFrame chunk);
  void OnHeaderTimeout();
  // A newer transfer from the same sender took this one's place.
  void Preempt();
  void ReleaseAdmission();  // idempotent
  void DiskLoop();
  // Whether a failure with `code` may be the link's (not the data's).
  static bool LinkFailure(grpc::StatusCode code);
  void NoteBuffered(int64_t delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerEnv env_;
  grpc::CallbackServerContext* const ctx_;
  grpc::ByteBuffer raw_;     // the frame being read
  v1::SnapshotFrame frame_;  // raw_ parsed, unless it was a chunk frame
  uint64_t from_ = 0;
  absl::Time start_;
  bool counted_ = false;                    // SnapshotStarted was recorded for from_
  std::atomic<bool> admitted_{false};       // holds a SnapshotAdmission slot for from_
  const std::shared_ptr<ReceiverRef> ref_;  // for timer tasks and preemption
  uint64_t header_task_ = 0;
  // Set once, by whoever finishes the call (before Finish); read in OnDone.
  bool outcome_ok_ = false;
  double outcome_seconds_ = 0;

  // Reactor-side state (OnReadDone calls are serialized).
  bool have_header_ = false;
  uint64_t declared_ = 0;
  uint64_t received_ = 0;

  Mutex mu_;
  std::condition_variable cv_;
  std::deque<ChunkFrame> chunks_ ABSL_GUARDED_BY(mu_);
  // The Fail that finished the transfer was the link's: the verified
  // prefix is kept for a resume; otherwise discarded.
  bool keep_on_fail_ ABSL_GUARDED_BY(mu_) = false;
  bool trailer_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t want_crc_ ABSL_GUARDED_BY(mu_) = 0;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool header_seen_ ABSL_GUARDED_BY(mu_) = false;
  bool disk_owns_sink_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id disk_tid_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> deferred_
      ABSL_GUARDED_BY(mu_);  // a Fail to answer after the disk thread aborts
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;  // the client half ended (maybe early)
  raftpb::Message msg_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SnapshotSink> sink_ ABSL_GUARDED_BY(mu_);
  // The resumed prefix was still in use by the sender's earlier transfer
  // (this one preempted it): the disk thread opens the sink once it is free.
  bool begin_later_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t begin_offset_ = 0;  // set before the disk thread starts
  std::thread disk_;
  int64_t buffered_ ABSL_GUARDED_BY(mu_) = 0;
  Handoff handoff_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SERVER_SNAPSHOT_RECEIVER_H_
