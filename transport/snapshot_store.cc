#include "transport/snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "transport/snapshot/crc32c.h"
#include "transport/snapshot/io_chooser.h"

namespace raftgrpc {
namespace {

// Temporary files are "raftgrpc-recv-XXXXXX.tmp": distinctive, so that
// start-up cleanup never touches a file of the user's.
constexpr char kTempPrefix[] = "raftgrpc-recv-";
constexpr char kTempSuffix[] = ".tmp";
// A kept prefix's record: "raftgrpc-partial-<sender %016x>.rec".
constexpr char kRecordPrefix[] = "raftgrpc-partial-";
constexpr char kRecordSuffix[] = ".rec";

// A full disk or quota is RESOURCE_EXHAUSTED; anything else INTERNAL.
absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// mkdir -p.
absl::Status MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) return Errno("mkdir", prefix);
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync", dir);
}

// What a kept prefix belongs to, and how much of it is verified.
struct Record {
  std::string file;  // the temporary file's name, in the store's directory
  uint64_t index = 0, term = 0, size = 0, offset = 0;
  int64_t created = 0;  // Unix seconds: the time-to-live counts from here
};

std::string RecordPath(const std::string& dir, uint64_t from) {
  return absl::StrFormat("%s/%s%016x%s", dir, kRecordPrefix, from, kRecordSuffix);
}

std::optional<Record> ReadRecord(const std::string& dir, uint64_t from) {
  FILE* f = std::fopen(RecordPath(dir, from).c_str(), "re");
  if (f == nullptr) return std::nullopt;
  char file[256] = {0};
  Record r;
  unsigned long long index, term, size, offset;
  long long created;
  const int n = std::fscanf(f, "v1 %255s %llu %llu %llu %llu %lld", file, &index, &term, &size,
                            &offset, &created);
  std::fclose(f);
  if (n != 6) return std::nullopt;
  r.file = file;
  r.index = index, r.term = term, r.size = size, r.offset = offset, r.created = created;
  return r;
}

// Atomically (a new file renamed over the old). Not fsync'd, on purpose: a
// crash that loses it leaves an older record or none (a shorter prefix, or
// a start from 0), and one whose contents were lost does not parse and is
// removed at start-up. The data it counts was fsync'd before.
absl::Status WriteRecord(const std::string& dir, uint64_t from, const Record& r) {
  const std::string path = RecordPath(dir, from), next = path + ".new";
  const std::string text = absl::StrFormat("v1 %s %d %d %d %d %d\n", r.file, r.index, r.term,
                                           r.size, r.offset, r.created);
  int fd = ::open(next.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("create", next);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok || ::rename(next.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno("write", next);
    ::unlink(next.c_str());
    return s;
  }
  return absl::OkStatus();
}

// Removes a sender's record and the file it names.
void RemovePartial(const std::string& dir, uint64_t from) {
  if (std::optional<Record> r = ReadRecord(dir, from)) {
    ::unlink(absl::StrCat(dir, "/", r->file).c_str());
  }
  ::unlink(RecordPath(dir, from).c_str());
}

bool Expired(const Record& r, absl::Duration ttl) {
  return absl::Now() - absl::FromUnixSeconds(r.created) > ttl;
}

// The file holds at least the verified prefix.
bool FileHolds(const std::string& dir, const Record& r) {
  struct stat st;
  return ::stat(absl::StrCat(dir, "/", r.file).c_str(), &st) == 0 &&
         static_cast<uint64_t>(st.st_size) >= r.offset;
}

}  // namespace

struct DiskSnapshotStore::State {
  explicit State(uint64_t max_bytes) : partial_max_bytes(max_bytes) {}
  std::mutex mu;
  // Per sender, the generation of its newest resumable sink while it is
  // open: only that one may write the sender's record.
  std::map<uint64_t, uint64_t> owner;
  uint64_t generations = 0;
  const uint64_t partial_max_bytes;
};

namespace {

// The sender a record's file name is for; false if `name` is no record's.
bool ParseRecordName(const std::string& name, uint64_t* from) {
  const size_t prefix = sizeof(kRecordPrefix) - 1, suffix = sizeof(kRecordSuffix) - 1;
  if (name.size() != prefix + 16 + suffix || name.compare(0, prefix, kRecordPrefix) != 0 ||
      name.compare(prefix + 16, suffix, kRecordSuffix) != 0) {
    return false;
  }
  char* end = nullptr;
  const std::string hex = name.substr(prefix, 16);
  *from = std::strtoull(hex.c_str(), &end, 16);
  return end == hex.c_str() + 16;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

// When sender `from`'s record last changed (each checkpoint rewrites it),
// in nanoseconds: the least recently progressed prefix goes first.
int64_t LastProgress(const std::string& dir, uint64_t from) {
  struct stat st;
  if (::stat(RecordPath(dir, from).c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Makes room for `bytes` more of sender `from`'s prefix within the byte
// budget: evicts the least recently progressed other kept prefixes not in
// use (ones in use cannot go). False if that is not enough; nothing of
// `from`'s is touched.
bool FitBudgetLocked(const std::string& dir, const DiskSnapshotStore::State& state, uint64_t from,
                     uint64_t bytes) {
  if (bytes > state.partial_max_bytes) return false;
  uint64_t total = bytes, pinned = bytes;
  struct Evictable {
    int64_t progress;
    uint64_t sender, bytes;
  };
  std::vector<Evictable> evictable;
  for (const std::string& name : List(dir)) {
    uint64_t other;
    if (!ParseRecordName(name, &other) || other == from) continue;
    std::optional<Record> r = ReadRecord(dir, other);
    if (!r) continue;
    total += r->offset;
    if (state.owner.count(other) != 0) {
      pinned += r->offset;
    } else {
      evictable.push_back({LastProgress(dir, other), other, r->offset});
    }
  }
  if (pinned > state.partial_max_bytes) return false;
  std::sort(evictable.begin(), evictable.end(), [](const Evictable& a, const Evictable& b) {
    return std::tie(a.progress, a.sender) < std::tie(b.progress, b.sender);
  });
  for (const Evictable& e : evictable) {
    if (total <= state.partial_max_bytes) break;
    total -= e.bytes;
    RemovePartial(dir, e.sender);
  }
  return total <= state.partial_max_bytes;
}

}  // namespace

namespace {

class DiskSink : public SnapshotSink {
 public:
  static constexpr size_t kMaxWriteBytes = 64 << 10;
  static constexpr uint64_t kWritebackBytes = 8 << 20;
  static constexpr uint64_t kWriteBehindBytes = 32 << 20;

  DiskSink(std::string dir, std::string tmp, std::string final_path, int fd)
      : dir_(std::move(dir)), tmp_(std::move(tmp)), final_(std::move(final_path)), fd_(fd) {}
  ~DiskSink() override { Abort(); }

  // Makes this sink resumable: it records its prefix for `from`.
  void SetResumable(std::shared_ptr<DiskSnapshotStore::State> state, uint64_t from,
                    uint64_t generation, Record record, bool recorded) {
    state_ = std::move(state);
    from_ = from;
    generation_ = generation;
    record_ = std::move(record);
    recorded_ = recorded;
    written_ = record_.offset;
  }

  // The store sets it before the first write, once the sink's offset and
  // the body's size are known.
  void SetIo(DiskSnapshotStore::IoMode io, const DiskSnapshotStore::AdaptiveIo& a, uint64_t size) {
    size_ = size;
    if (io == DiskSnapshotStore::IoMode::kDirect) TryDirect();
    if (io == DiskSnapshotStore::IoMode::kAdaptive) {
      chooser_ = std::make_unique<IoChooser>(
          IoChooser::Params{a.window, a.first_probe, a.probe_every}, written_);
    }
  }

  absl::Status Write(const char* data, size_t n) override {
    return WriteV({absl::string_view(data, n)});
  }

  absl::Status WriteV(const std::vector<absl::string_view>& pieces) override {
    // The time of the write calls, which IoChooser compares (kAdaptive).
    const uint64_t before = written_;
    const int64_t t0 = absl::GetCurrentTimeNanos();
    absl::Status s = direct_ ? StageV(pieces) : WriteBuffered(pieces);
    if (!s.ok() || chooser_ == nullptr) return s;
    return Switch(chooser_->Record(written_ - before, absl::GetCurrentTimeNanos() - t0, written_));
  }

  // Continues with direct I/O (where the file system takes it) or through
  // the page cache, from written_.
  absl::Status Switch(bool direct) {
    if (direct == direct_) return absl::OkStatus();
    if (direct) {
      TryDirect();
      if (!direct_) chooser_->Refused();
      return absl::OkStatus();
    }
    return ToBuffered();
  }

  // The staged bytes go through the page cache, as all that follows;
  // writev writes at the descriptor's offset, which pwrite left behind.
  absl::Status ToBuffered() {
    direct_ = false;
    if (!SetDirect(false)) return Errno("fcntl", tmp_);
    const bool written = PwriteAll(stage_.get(), staged_, stage_base_);
    stage_.reset();
    staged_ = 0;
    if (!written) return Errno("write", tmp_);
    if (::lseek(fd_, static_cast<off_t>(written_), SEEK_SET) < 0) return Errno("seek", tmp_);
    return absl::OkStatus();
  }

  absl::Status WriteBuffered(const std::vector<absl::string_view>& pieces) {
    // Calls of at most kMaxWriteBytes: the page cache sizes its folios by
    // the write, and on Linux 6.18 ext4 large ones made writing 2 GiB 5x
    // slower: 2.75 s in 256 KiB writes, 0.55 s in 64 KiB ones (0.59 s in
    // 32 KiB, 0.73 s in 128 KiB; 2026-11-30, a fresh file each time).
    constexpr int kMaxIov = 64;
    iovec iov[kMaxIov];
    size_t i = 0, off = 0;  // the next byte: pieces[i], at off
    while (i < pieces.size()) {
      int n = 0;
      size_t batch = 0;
      for (size_t j = i, o = off; j < pieces.size() && n < kMaxIov && batch < kMaxWriteBytes;
           ++j, o = 0) {
        const size_t len = std::min(pieces[j].size() - o, kMaxWriteBytes - batch);
        if (len == 0) continue;
        iov[n].iov_base = const_cast<char*>(pieces[j].data() + o);
        iov[n].iov_len = len;
        ++n;
        batch += len;
      }
      if (n == 0) break;  // only empty pieces left
      ssize_t w = ::writev(fd_, iov, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write", tmp_);
      }
      written_ += static_cast<uint64_t>(w);
      StartWriteback();
      // Advance past what was written (possibly less than asked).
      for (size_t left = static_cast<size_t>(w); left > 0;) {
        const size_t here = std::min(left, pieces[i].size() - off);
        left -= here;
        off += here;
        if (off == pieces[i].size()) {
          ++i;
          off = 0;
        }
      }
    }
    return absl::OkStatus();
  }

  // Writes what follows with direct I/O where the file system has it:
  // through an aligned staging buffer straight to the device, not copied
  // into the page cache. On one of this project's VMs that copy was what
  // a receive under load spent its time on: writing into new page-cache
  // pages ran at 200-560 MB/s where direct writes of 1 MiB ran at 2.3 GB/s,
  // fsync included (bench/README.md, "Snapshots written with direct I/O");
  // on a later one the page cache was faster (hence IoMode::kAdaptive,
  // which measures). Direct I/O leaves the node's page cache to its own
  // files. Where the file system refuses O_DIRECT, the sink stays
  // buffered. The flag is set on our own descriptor (not a second open by
  // name, which a file put in the temporary file's place would receive).
  // From written_ on: from the start (kDirect, SetIo) or a switch (kAdaptive).
  void TryDirect() {
    // tmpfs takes O_DIRECT (Linux 6.6 on) but is the page cache itself:
    // staging would only add a copy (20:17 UTC: 0.72x etcd direct, 0.75x
    // buffered, 64 MiB).
    struct statfs fs;
    if (::fstatfs(fd_, &fs) == 0 && fs.f_type == TMPFS_MAGIC) return;
    void* mem = nullptr;
    if (::posix_memalign(&mem, kAlign, kStageBytes) != 0) return;
    stage_.reset(static_cast<char*>(mem));
    // The staging buffer starts at a block boundary: a resumed prefix's
    // last partial block is read back into it, to be written whole.
    stage_base_ = written_ / kAlign * kAlign;
    staged_ = static_cast<size_t>(written_ - stage_base_);
    if ((staged_ > 0 && ::pread(fd_, stage_.get(), staged_, static_cast<off_t>(stage_base_)) !=
                            static_cast<ssize_t>(staged_)) ||
        !SetDirect(true)) {
      stage_.reset();
      staged_ = 0;
      return;
    }
    direct_ = true;
  }

  bool SetDirect(bool on) {
    const int flags = ::fcntl(fd_, F_GETFL);
    return flags >= 0 && ::fcntl(fd_, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
  }

  // Direct I/O: copies into the staging buffer, writing it whenever full,
  // and at the end of every call once the rest of the body fits in what
  // is left of it.
  absl::Status StageV(const std::vector<absl::string_view>& pieces) {
    for (absl::string_view p : pieces) {
      while (!p.empty()) {
        const size_t n = std::min(p.size(), kStageBytes - staged_);
        std::memcpy(stage_.get() + staged_, p.data(), n);
        staged_ += n;
        written_ += n;
        p.remove_prefix(n);
        if (staged_ == kStageBytes) {
          absl::Status s = WriteStaged();
          if (!s.ok()) return s;
        }
      }
    }
    // The buffer will not fill again, so without this the last chunks
    // would all be written by Commit, after the last byte arrived: 1.1 ms
    // of a 1 MiB snapshot's 5 ms on the bench VM (2026-12-01). Written as
    // they come, they overlap the arrival of the rest (the sender makes
    // its last chunks small, GrpcSnapshotSender::ChunkAt).
    if (written_ <= size_ && size_ - written_ <= kStageBytes - staged_) return WriteWholeStaged();
    return absl::OkStatus();
  }

  // Writes the staged whole blocks directly; a partial last one stays.
  absl::Status WriteWholeStaged() {
    const size_t whole = staged_ / kAlign * kAlign;
    if (!direct_ || whole == 0) return absl::OkStatus();
    if (!PwriteAll(stage_.get(), whole, stage_base_)) {
      return errno == EINVAL ? FallBackToBuffered() : Errno("write", tmp_);
    }
    staged_ -= whole;
    std::memmove(stage_.get(), stage_.get() + whole, staged_);
    stage_base_ += whole;
    return absl::OkStatus();
  }

  // Writes the staged whole blocks directly and a partial last one through
  // the page cache, and keeps that partial block staged, to be written
  // again whole (a direct write over it flushes and drops its cached page).
  // When the buffer is full, and before a checkpoint or commit.
  absl::Status WriteStaged() {
    absl::Status s = WriteWholeStaged();
    if (!s.ok() || !direct_ || staged_ == 0) return s;
    if (!SetDirect(false)) return Errno("fcntl", tmp_);
    if (!PwriteAll(stage_.get(), staged_, stage_base_)) return Errno("write", tmp_);
    if (!SetDirect(true)) return Errno("fcntl", tmp_);
    return absl::OkStatus();
  }

  // A file system that took O_DIRECT but refuses our alignment: the staged
  // bytes, and all that follow, go through the page cache (kAdaptive: no
  // more probes either).
  absl::Status FallBackToBuffered() {
    if (chooser_ != nullptr) chooser_->Refused();
    return ToBuffered();
  }

  // All of [data, data + n) at `at`; false with errno set otherwise (a
  // write that makes no progress as EIO: INTERNAL, as a short write was).
  bool PwriteAll(const char* data, size_t n, uint64_t at) {
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(at));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = EIO;
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
      at += static_cast<uint64_t>(w);
    }
    return true;
  }

  // Starts the disk writing what was written so far, without waiting, every
  // kWritebackBytes: the final fsync then waits for the tail only, not for
  // the whole file (etcd-anchor's 256 MiB snapshot to ext4: the fsync
  // was a third of the transfer). And waits for what was written more than
  // kWriteBehindBytes ago to be on the device: a receive holds at most that
  // much of the node's memory dirty (a large snapshot would otherwise
  // leave gigabytes for the final fsync, and the node's own fsyncs behind
  // them), and the time of a buffered write shows the device's pace, which
  // IoMode::kAdaptive compares.
  void StartWriteback() {
    if (written_ - flushing_ < kWritebackBytes) return;
    (void)::sync_file_range(fd_, static_cast<off64_t>(flushing_),
                            static_cast<off64_t>(written_ - flushing_), SYNC_FILE_RANGE_WRITE);
    flushing_ = written_;
    if (flushing_ - synced_ > kWriteBehindBytes) {
      const uint64_t to = flushing_ - kWriteBehindBytes;
      (void)::sync_file_range(
          fd_, static_cast<off64_t>(synced_), static_cast<off64_t>(to - synced_),
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      synced_ = to;
    }
  }

  absl::Status Checkpoint() override {
    if (state_ == nullptr || fd_ < 0) return absl::OkStatus();
    absl::Status staged = WriteStaged();
    if (!staged.ok()) return staged;
    if (::fdatasync(fd_) != 0) return Errno("fdatasync", tmp_);
    std::lock_guard<std::mutex> l(state_->mu);
    if (!OwnerLocked()) return absl::OkStatus();  // a newer transfer took over
    Record r = record_;
    r.offset = written_;
    absl::Status s = WriteRecord(dir_, from_, r);
    if (s.ok()) recorded_ = true;
    return s;
  }

  uint64_t offset() const override { return record_.offset; }
  // The temporary file's name in the directory.
  std::string name() const { return tmp_.substr(tmp_.rfind('/') + 1); }

  absl::StatusOr<uint32_t> PrefixCrc32c() override {
    // Read through the page cache: the buffer below is not aligned.
    if (direct_ && !SetDirect(false)) return Errno("fcntl", tmp_);
    absl::Cleanup restore = [this] {
      if (direct_) (void)SetDirect(true);
    };
    std::string buf(1 << 20, '\0');
    uint32_t crc = 0;
    for (uint64_t pos = 0; pos < record_.offset;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), record_.offset - pos));
      ssize_t r = ::pread(fd_, &buf[0], want, static_cast<off_t>(pos));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return r < 0 ? Errno("read", tmp_) : absl::DataLossError("kept prefix is short");
      crc = Crc32cExtend(crc, buf.data(), static_cast<size_t>(r));
      pos += static_cast<uint64_t>(r);
    }
    return crc;
  }

  absl::StatusOr<std::string> Commit() override {
    if (fd_ < 0) return absl::FailedPreconditionError("snapshot sink already closed");
    absl::Status staged = WriteStaged();
    if (!staged.ok()) return staged;
    if (::fsync(fd_) != 0) return Errno("fsync", tmp_);
    CloseFds();
    // rename replaces an existing file atomically: a file of the same index
    // (perhaps planted, or rejected by Raft) is never kept in place of the
    // data this transfer received and verified.
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) return Errno("rename", tmp_);
    tmp_.clear();
    committed_ = true;
    Release();
    absl::Status s = FsyncDir(dir_);
    if (!s.ok()) return s;
    return final_;
  }

  void Discard() override {
    if (committed_) {
      ::unlink(final_.c_str());
      committed_ = false;
    }
  }

  void Keep() override {
    if (state_ == nullptr || fd_ < 0) return Abort();
    {
      std::lock_guard<std::mutex> l(state_->mu);
      std::optional<Record> mine;
      if (recorded_ && OwnerLocked()) mine = ReadRecord(dir_, from_);
      if (mine && mine->file == record_.file &&
          FitBudgetLocked(dir_, *state_, from_, mine->offset)) {
        // The file stays, named by the record; only its unverified tail is
        // beyond the recorded length (cut off when resumed).
        state_->owner.erase(from_);
        CloseFds();
        tmp_.clear();
        state_.reset();
        return;
      }
    }
    Abort();
  }

  void Abort() override {
    CloseFds();
    Release();
    if (!tmp_.empty()) {
      ::unlink(tmp_.c_str());
      tmp_.clear();
    }
  }

 private:
  static constexpr size_t kAlign = 4096;  // covers every common logical block size
  static constexpr size_t kStageBytes = 1 << 20;

  void CloseFds() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    direct_ = false;
    stage_.reset();
  }

  bool OwnerLocked() const {
    auto it = state_->owner.find(from_);
    return it != state_->owner.end() && it->second == generation_;
  }

  // Gives up ownership, and removes the record if it names our file.
  void Release() {
    if (state_ == nullptr) return;
    std::lock_guard<std::mutex> l(state_->mu);
    std::optional<Record> r = ReadRecord(dir_, from_);
    if (r && r->file == record_.file) ::unlink(RecordPath(dir_, from_).c_str());
    if (OwnerLocked()) state_->owner.erase(from_);
    state_.reset();
  }

  const std::string dir_;
  std::string tmp_;
  const std::string final_;
  int fd_;
  bool committed_ = false;
  // Resumable sinks only.
  std::shared_ptr<DiskSnapshotStore::State> state_;
  uint64_t from_ = 0, generation_ = 0;
  Record record_;          // what a checkpoint records (offset: where we started)
  bool recorded_ = false;  // the sender's record names our file
  uint64_t written_ = 0;   // bytes written (with direct I/O, the last may be staged)
  uint64_t flushing_ = 0;  // writeback started up to here
  uint64_t synced_ = 0;    // on the device up to here (StartWriteback)
  // Direct I/O only: fd_ has O_DIRECT, and the staging buffer holds the
  // bytes from stage_base_ (a block boundary) on.
  bool direct_ = false;
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> stage_;
  uint64_t stage_base_ = 0;
  size_t staged_ = 0;
  uint64_t size_ = 0;                   // the body's declared size
  std::unique_ptr<IoChooser> chooser_;  // IoMode::kAdaptive only (SetIo)
};

}  // namespace

bool DiskSnapshotStore::IsTempName(const std::string& name) {
  // kTempPrefix, six characters from mkostemps' set, kTempSuffix.
  const size_t prefix = sizeof(kTempPrefix) - 1, suffix = sizeof(kTempSuffix) - 1;
  if (name.size() != prefix + 6 + suffix) return false;
  if (name.compare(0, prefix, kTempPrefix) != 0) return false;
  if (name.compare(prefix + 6, suffix, kTempSuffix) != 0) return false;
  for (size_t i = prefix; i < prefix + 6; ++i) {
    if (!std::isalnum(static_cast<unsigned char>(name[i]))) return false;
  }
  return true;
}

DiskSnapshotStore::DiskSnapshotStore(std::string dir, absl::Duration partial_ttl,
                                     uint64_t partial_max_bytes, IoMode io)
    : dir_(std::move(dir)),
      partial_ttl_(partial_ttl),
      partial_max_bytes_(partial_max_bytes),
      io_(io),
      state_(std::make_shared<State>(partial_max_bytes)) {}

DiskSnapshotStore::~DiskSnapshotStore() = default;

std::vector<std::string> DiskSnapshotStore::RemoveLeftovers() {
  std::vector<std::string> removed;
  if (dir_.empty()) return removed;
  std::lock_guard<std::mutex> l(state_->mu);
  const std::vector<std::string> names = List(dir_);
  // Kept prefixes whose record still matches their file survive, the most
  // recently progressed first, within the byte budget (receives a crash
  // interrupted left records too, each up to its last checkpoint).
  struct Valid {
    int64_t progress;
    Record r;
    std::string name;
  };
  std::vector<Valid> valid;
  for (const std::string& name : names) {
    uint64_t from;
    if (absl::EndsWith(name, ".rec.new")) {
      if (absl::StartsWith(name, kRecordPrefix)) ::unlink(absl::StrCat(dir_, "/", name).c_str());
      continue;
    }
    if (!ParseRecordName(name, &from)) continue;
    std::optional<Record> r = ReadRecord(dir_, from);
    if (r && IsTempName(r->file) && FileHolds(dir_, *r) && !Expired(*r, partial_ttl_)) {
      valid.push_back({LastProgress(dir_, from), *r, name});
    } else {
      ::unlink(absl::StrCat(dir_, "/", name).c_str());
      removed.push_back(name);
    }
  }
  std::sort(valid.begin(), valid.end(),
            [](const Valid& a, const Valid& b) { return a.progress > b.progress; });
  std::set<std::string> kept;
  uint64_t total = 0;
  for (const Valid& v : valid) {
    if (v.r.offset <= partial_max_bytes_ - total) {
      total += v.r.offset;
      kept.insert(v.r.file);
    } else {
      ::unlink(absl::StrCat(dir_, "/", v.name).c_str());
      removed.push_back(v.name);
    }
  }
  for (const std::string& name : names) {
    if (IsTempName(name) && kept.count(name) == 0 &&
        ::unlink(absl::StrCat(dir_, "/", name).c_str()) == 0) {
      removed.push_back(name);
    }
  }
  return removed;
}

std::vector<uint64_t> DiskSnapshotStore::RemoveExpired() {
  std::vector<uint64_t> removed;
  if (dir_.empty()) return removed;
  std::lock_guard<std::mutex> l(state_->mu);
  for (const std::string& name : List(dir_)) {
    uint64_t from;
    if (!ParseRecordName(name, &from) || state_->owner.count(from) != 0) continue;
    std::optional<Record> r = ReadRecord(dir_, from);
    if (!r || Expired(*r, partial_ttl_)) {
      RemovePartial(dir_, from);
      removed.push_back(from);
    }
  }
  return removed;
}

uint64_t DiskSnapshotStore::ResumeOffset(uint64_t from, const raftpb::Message& msg, uint64_t size) {
  if (dir_.empty()) return 0;
  std::lock_guard<std::mutex> l(state_->mu);
  std::optional<Record> r = ReadRecord(dir_, from);
  if (!r) return 0;
  const auto& md = msg.snapshot().metadata();
  const bool matches = r->index == md.index() && r->term == md.term() && r->size == size &&
                       !Expired(*r, partial_ttl_) && FileHolds(dir_, *r) && r->offset <= size;
  // A prefix still being written (by a transfer this end has not yet seen
  // fail: its sender's retry came first) is offered as far as it is
  // recorded; the new transfer takes it over once the old one lets go.
  if (state_->owner.count(from) != 0) return matches ? r->offset : 0;
  if (!matches) {
    RemovePartial(dir_, from);  // another snapshot, or past its time
    return 0;
  }
  return r->offset;
}

void DiskSnapshotStore::Forget(uint64_t from) {
  if (dir_.empty()) return;
  std::lock_guard<std::mutex> l(state_->mu);
  // A transfer still writing it can no longer record it (no owner).
  state_->owner.erase(from);
  RemovePartial(dir_, from);
}

std::string DiskSnapshotStore::FileName(uint64_t index) {
  return absl::StrFormat("%016x.snap.db", index);
}

namespace {

// A sink on a new temporary file in `dir`, for snapshot `index`.
absl::StatusOr<std::unique_ptr<DiskSink>> NewTempSink(const std::string& dir, uint64_t index) {
  if (dir.empty()) return absl::FailedPreconditionError("no snapshot directory configured");
  absl::Status made = MakeDirs(dir);
  if (!made.ok()) return made;
  std::string tmp = absl::StrCat(dir, "/", kTempPrefix, "XXXXXX", kTempSuffix);
  int fd = ::mkostemps(&tmp[0], sizeof(kTempSuffix) - 1, O_CLOEXEC);
  if (fd < 0) return Errno("create temp file in", dir);
  return std::make_unique<DiskSink>(dir, std::move(tmp),
                                    absl::StrCat(dir, "/", DiskSnapshotStore::FileName(index)), fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotSink>> DiskSnapshotStore::Begin(const raftpb::Message& msg,
                                                                       uint64_t size) {
  auto sink = NewTempSink(dir_, msg.snapshot().metadata().index());
  if (!sink.ok()) return sink.status();
  (*sink)->SetIo(io_, adaptive_, size);
  return std::unique_ptr<SnapshotSink>(*std::move(sink));
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> DiskSnapshotStore::BeginFrom(
    uint64_t from, const raftpb::Message& msg, uint64_t size, uint64_t offset) {
  const auto& md = msg.snapshot().metadata();
  Record rec;
  rec.index = md.index();
  rec.term = md.term();
  rec.size = size;
  rec.created = absl::ToUnixSeconds(absl::Now());
  std::unique_ptr<DiskSink> sink;
  uint64_t generation;
  if (offset == 0) {
    auto fresh = NewTempSink(dir_, rec.index);
    if (!fresh.ok()) return fresh.status();
    sink = *std::move(fresh);
    std::lock_guard<std::mutex> l(state_->mu);
    // At most one kept prefix per sender: a new transfer from it replaces
    // whatever it had (a transfer still writing it goes on with its file
    // unlinked, and may no longer record it).
    RemovePartial(dir_, from);
    generation = ++state_->generations;
    state_->owner[from] = generation;
  } else {
    if (dir_.empty()) return absl::FailedPreconditionError("no snapshot directory configured");
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->owner.count(from) != 0) {
      return absl::UnavailableError("the kept prefix is still in use by an earlier transfer");
    }
    std::optional<Record> r = ReadRecord(dir_, from);
    // Any verified length from `offset` on will do: the rest is cut off.
    if (!r || r->index != rec.index || r->term != rec.term || r->size != size ||
        r->offset < offset || Expired(*r, partial_ttl_)) {
      return absl::FailedPreconditionError(
          absl::StrCat("no kept prefix of ", offset, " bytes of this snapshot"));
    }
    const std::string path = absl::StrCat(dir_, "/", r->file);
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      RemovePartial(dir_, from);
      return absl::FailedPreconditionError(absl::StrCat("kept prefix gone: ", path));
    }
    // What lies beyond the verified length was never checked: cut it off.
    if (::ftruncate(fd, static_cast<off_t>(offset)) != 0 ||
        ::lseek(fd, 0, SEEK_END) != static_cast<off_t>(offset)) {
      absl::Status s = Errno("truncate", path);
      ::close(fd);
      return s;
    }
    rec.created = r->created;  // the time-to-live counts from the first attempt
    sink.reset(new DiskSink(dir_, path, absl::StrCat(dir_, "/", FileName(rec.index)), fd));
    generation = ++state_->generations;
    state_->owner[from] = generation;
  }
  rec.file = sink->name();
  rec.offset = offset;
  sink->SetResumable(state_, from, generation, rec, /*recorded=*/offset != 0);
  sink->SetIo(io_, adaptive_, size);
  return std::unique_ptr<SnapshotSink>(std::move(sink));
}

}  // namespace raftgrpc
