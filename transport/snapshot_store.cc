#include "transport/snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace raftgrpc {
namespace {

// Temporary files are "raftgrpc-recv-XXXXXX.tmp": distinctive, so that
// start-up cleanup never touches a file of the user's.
constexpr char kTempPrefix[] = "raftgrpc-recv-";
constexpr char kTempSuffix[] = ".tmp";

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

class DiskSink : public SnapshotSink {
 public:
  DiskSink(std::string dir, std::string tmp, std::string final_path, int fd)
      : dir_(std::move(dir)), tmp_(std::move(tmp)), final_(std::move(final_path)), fd_(fd) {}
  ~DiskSink() override { Abort(); }

  absl::Status Write(const char* data, size_t n) override {
    while (n > 0) {
      ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write", tmp_);
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Commit() override {
    if (fd_ < 0) return absl::FailedPreconditionError("snapshot sink already closed");
    if (::fsync(fd_) != 0) return Errno("fsync", tmp_);
    ::close(fd_);
    fd_ = -1;
    // rename replaces an existing file atomically: a file of the same index
    // (perhaps planted, or rejected by Raft) is never kept in place of the
    // data this transfer received and verified.
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) return Errno("rename", tmp_);
    tmp_.clear();
    committed_ = true;
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

  void Abort() override {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!tmp_.empty()) {
      ::unlink(tmp_.c_str());
      tmp_.clear();
    }
  }

 private:
  const std::string dir_;
  std::string tmp_;
  const std::string final_;
  int fd_;
  bool committed_ = false;
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

std::vector<std::string> DiskSnapshotStore::RemoveLeftovers() const {
  std::vector<std::string> removed;
  if (dir_.empty()) return removed;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return removed;  // no directory yet: nothing left over
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (IsTempName(name) && ::unlink(absl::StrCat(dir_, "/", name).c_str()) == 0) {
      removed.push_back(name);
    }
  }
  ::closedir(d);
  return removed;
}

std::string DiskSnapshotStore::FileName(uint64_t index) {
  return absl::StrFormat("%016x.snap.db", index);
}

absl::StatusOr<std::unique_ptr<SnapshotSink>> DiskSnapshotStore::Begin(const raftpb::Message& msg,
                                                                       uint64_t) {
  if (dir_.empty()) return absl::FailedPreconditionError("no snapshot directory configured");
  absl::Status made = MakeDirs(dir_);
  if (!made.ok()) return made;
  std::string tmp = absl::StrCat(dir_, "/", kTempPrefix, "XXXXXX", kTempSuffix);
  int fd = ::mkostemps(&tmp[0], sizeof(kTempSuffix) - 1, O_CLOEXEC);
  if (fd < 0) return Errno("create temp file in", dir_);
  std::string final_path = absl::StrCat(dir_, "/", FileName(msg.snapshot().metadata().index()));
  return std::unique_ptr<SnapshotSink>(
      new DiskSink(dir_, std::move(tmp), std::move(final_path), fd));
}

}  // namespace raftgrpc
