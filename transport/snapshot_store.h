// Where received snapshots go. The default store writes each snapshot to a
// temporary file in a directory (`raftgrpc-recv-XXXXXX.tmp`), fsyncs it, and
// renames it to etcd's name `<index as %016x>.snap.db` only once size and
// checksum are verified; anything that fails leaves no file behind. A
// process killed in the middle of a receive does leave its temporary file:
// RemoveLeftovers, which Transport::Create runs for the default store,
// deletes those (and only those) at start-up.
//
// Resumable receives (BeginFrom): a transfer that breaks on the link (reset,
// cancel, timeout, the sender gone) keeps the durable, checksum-verified
// prefix of its temporary file, with a record of what it belongs to
// (`raftgrpc-partial-<sender %016x>.rec`: sender, index, term, size, the
// verified length, its creation time). At most one per sender; it goes
// when that sender starts another snapshot, when it is older than its
// time-to-live, when the data turns out corrupt, and at start-up when its
// record no longer matches its file. The sender's retry of the same
// snapshot continues from the verified length (ResumeOffset). The kept
// prefixes of all senders together stay within a byte budget: a prefix
// that would exceed it first evicts the oldest ones not in use, and is not
// kept if that is not enough (the retry then starts from 0). The transport
// keeps prefixes only for its peers (not for remotes or strangers), and
// drops a peer's when it is removed (Forget).
//
// Thread-safety: a store may be used by several receivers at once; each
// SnapshotSink is used by one thread.
//
// Failures are returned as statuses. An exception a store's or sink's
// method throws is caught by the transport all the same (it fails the
// transfer and is logged and counted; transport/internal/guards.h),
// but a sink's destructor must not throw.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/raftpb/raft.pb.h"

namespace raftgrpc {

// One incoming snapshot's data.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;  // aborts unless committed
  // Appends data. May block on disk I/O.
  virtual absl::Status Write(const char* data, size_t n) = 0;
  // Appends the pieces in order. The transport's receiver calls this (not
  // Write), on the transfer's disk thread, with a chunk as the pieces it
  // arrived in; a sink may write them with one writev. May block on disk
  // I/O. The default calls Write for each piece.
  virtual absl::Status WriteV(const std::vector<absl::string_view>& pieces) {
    for (absl::string_view p : pieces) {
      absl::Status s = Write(p.data(), p.size());
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  // Makes the data durable and visible; returns where it lies. Replaces
  // whatever was there (a snapshot of the same index): what Raft is handed
  // is always this transfer's data.
  virtual absl::StatusOr<std::string> Commit() = 0;
  // After Commit, when Raft rejected the snapshot: removes what Commit made
  // visible, so no later transfer or reader takes it for a good one.
  virtual void Discard() {}
  // Discards what was written. Idempotent.
  virtual void Abort() = 0;

  // Resumable sinks only (the defaults suit any other). Makes what was
  // written so far durable and records it as the verified prefix (the
  // caller checked its checksum first). May block on disk I/O.
  virtual absl::Status Checkpoint() { return absl::OkStatus(); }
  // The transfer broke on the link, not on its data: keeps the prefix of
  // the last Checkpoint for a resume; without one, as Abort.
  virtual void Keep() { Abort(); }
  // Where this sink's data starts (BeginFrom's offset) and the CRC-32C of
  // the bytes before it, re-read from disk: the end-to-end checksum then
  // also catches a prefix that rotted between attempts. Blocks on reading
  // `offset` bytes.
  virtual uint64_t offset() const { return 0; }
  virtual absl::StatusOr<uint32_t> PrefixCrc32c() { return 0u; }
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // Starts receiving the data of `msg` (a MsgSnap), `size` bytes.
  virtual absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                              uint64_t size) = 0;

  // Resume support; the defaults (no resume) suit any store.
  // The verified length of the prefix kept from member `from`'s earlier
  // attempt at this very snapshot (same index, term and size), 0 if none.
  // Drops a kept prefix of another snapshot, or one past its time-to-live.
  virtual uint64_t ResumeOffset(uint64_t from, const raftpb::Message& msg, uint64_t size) {
    (void)from, (void)msg, (void)size;
    return 0;
  }
  // As Begin, for member `from`, with the data that follows starting at
  // `offset` (0, or ResumeOffset's answer): FAILED_PRECONDITION if that
  // prefix is not (or no longer) kept; UNAVAILABLE while an earlier
  // transfer of that sender still writes it (try again once it ended).
  virtual absl::StatusOr<std::unique_ptr<SnapshotSink>> BeginFrom(uint64_t from,
                                                                  const raftpb::Message& msg,
                                                                  uint64_t size, uint64_t offset) {
    (void)from;
    if (offset != 0) return absl::FailedPreconditionError("this store does not resume");
    return Begin(msg, size);
  }
  // Drops what is kept for member `from` (it left the cluster). Blocks on
  // a file removal.
  virtual void Forget(uint64_t from) { (void)from; }
};

class DiskSnapshotStore : public SnapshotStore {
 public:
  // `dir` (and its parents) are created when the first snapshot arrives. A
  // kept prefix lives at most `partial_ttl`; all kept prefixes together
  // hold at most `partial_max_bytes` verified bytes (0: none is kept).
  // How data reaches the disk. Direct I/O (O_DIRECT, from a 1 MiB staging
  // buffer per sink) applies where the file system takes it and is not
  // tmpfs; elsewhere all goes through the page cache.
  enum class IoMode {
    kBuffered,  // through the page cache, as etcd
    kDirect,    // direct I/O
    // Through the page cache first; from 64 MiB on, measures both ways
    // now and then and keeps the one that costs less (TransportOptions::
    // snapshot_io_adaptive).
    kAdaptive,
  };
  explicit DiskSnapshotStore(std::string dir, absl::Duration partial_ttl = absl::Hours(1),
                             uint64_t partial_max_bytes = kDefaultPartialMaxBytes,
                             IoMode io = IoMode::kBuffered);
  static constexpr uint64_t kDefaultPartialMaxBytes = uint64_t{4} << 30;
  ~DiskSnapshotStore() override;

  absl::StatusOr<std::unique_ptr<SnapshotSink>> Begin(const raftpb::Message& msg,
                                                      uint64_t size) override;
  uint64_t ResumeOffset(uint64_t from, const raftpb::Message& msg, uint64_t size) override;
  absl::StatusOr<std::unique_ptr<SnapshotSink>> BeginFrom(uint64_t from, const raftpb::Message& msg,
                                                          uint64_t size, uint64_t offset) override;
  void Forget(uint64_t from) override;
  // Removes kept prefixes past their time-to-live (not ones in use).
  // Returns the senders whose prefix went. Blocks on the directory scan.
  std::vector<uint64_t> RemoveExpired();
  // etcd's file name for a snapshot at `index`.
  static std::string FileName(uint64_t index);
  // Whether `name` is one of this store's temporary files.
  static bool IsTempName(const std::string& name);
  // Deletes the temporary files of interrupted receives from dir(), except
  // the kept prefixes whose record matches them (the newest, within the
  // byte budget); never another file.
  // Returns the names removed. Call before receiving (it would delete a
  // receive in progress). Blocks on the directory scan.
  std::vector<std::string> RemoveLeftovers();
  const std::string& dir() const { return dir_; }
  // IoMode::kAdaptive's measures (transport/snapshot/io_chooser.h): the
  // window a cost is taken over, where probing starts, and how often.
  struct AdaptiveIo {
    uint64_t window = uint64_t{16} << 20;
    uint64_t first_probe = uint64_t{64} << 20;
    uint64_t probe_every = uint64_t{128} << 20;
  };
  // For sinks begun after the call; tests make them small. Not
  // thread-safe: call before receiving.
  void set_adaptive_io_for_testing(const AdaptiveIo& a) { adaptive_ = a; }

  struct State;  // shared with its sinks, which may outlive the store

 private:
  const std::string dir_;
  const absl::Duration partial_ttl_;
  const uint64_t partial_max_bytes_;
  const IoMode io_;
  AdaptiveIo adaptive_;
  const std::shared_ptr<State> state_;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_STORE_H_
