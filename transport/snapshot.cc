#include "transport/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace raftgrpc {

absl::StatusOr<std::unique_ptr<FileSnapshotData>> FileSnapshotData::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("stat ", path, ": ", std::strerror(err)));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<FileSnapshotData>(
      new FileSnapshotData(fd, static_cast<uint64_t>(st.st_size)));
}

FileSnapshotData::~FileSnapshotData() { ::close(fd_); }

absl::StatusOr<size_t> FileSnapshotData::Read(char* buf, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
  }
}

}  // namespace raftgrpc
