#include "transport/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "transport/snapshot/crc32c.h"

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

absl::StatusOr<uint32_t> SnapshotData::SkipTo(uint64_t) {
  return absl::UnimplementedError("this snapshot source cannot resume");
}

absl::StatusOr<uint32_t> FileSnapshotData::SkipTo(uint64_t offset) {
  std::string buf(1 << 20, '\0');
  uint32_t crc = 0;
  for (uint64_t done = 0; done < offset;) {
    absl::StatusOr<size_t> n =
        Read(&buf[0], static_cast<size_t>(std::min<uint64_t>(buf.size(), offset - done)));
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::OutOfRangeError(absl::StrCat("file ends before offset ", offset));
    crc = Crc32cExtend(crc, buf.data(), *n);
    done += *n;
  }
  return crc;
}

}  // namespace raftgrpc
