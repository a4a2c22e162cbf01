#include "transport/snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "transport/snapshot/crc32c.h"

namespace raftgrpc {
namespace {

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  return out;
}

raftpb::Message Snap(uint64_t index) {
  raftpb::Message m;
  m.set_type(raftpb::MsgSnap);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  return m;
}

TEST(DiskSnapshotStoreTest, CommitRenamesToEtcdNameAndAbortLeavesNothing) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/store";
  DiskSnapshotStore store(dir);
  EXPECT_EQ(DiskSnapshotStore::FileName(0x1a), "000000000000001a.snap.db");

  auto sink = store.Begin(Snap(0x1a), 5);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write("hello", 5).ok());
  auto path = (*sink)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, dir + "/000000000000001a.snap.db");
  std::ifstream f(*path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "hello");

  auto aborted = store.Begin(Snap(0x2b), 3);
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE((*aborted)->Write("abc", 3).ok());
  EXPECT_EQ(List(dir).size(), 2u);  // the committed file and a temp file
  (*aborted)->Abort();
  EXPECT_EQ(List(dir), std::vector<std::string>{"000000000000001a.snap.db"});

  // Dropping an uncommitted sink aborts it too.
  { auto dropped = store.Begin(Snap(0x3c), 1); }
  EXPECT_EQ(List(dir).size(), 1u);
}

// kill -9 in the middle of a receive leaves the temporary file; the next
// start removes it, and nothing else.
TEST(DiskSnapshotStoreTest, LeftoversOfAKilledReceiveAreRemovedAndNothingElse) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/killed";
  DiskSnapshotStore store(dir);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto sink = store.Begin(Snap(7), 1 << 20);
    if (sink.ok() && (*sink)->Write(std::string(1 << 20, 's').data(), 1 << 20).ok()) {
      kill(getpid(), SIGKILL);  // no destructor, no Abort: as a crash
    }
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child did not get to write";
  std::vector<std::string> left = List(dir);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(DiskSnapshotStore::IsTempName(left[0])) << left[0];

  // The user's files, and names that only look alike, stay.
  const std::vector<std::string> keep = {"0000000000000007.snap.db", "tmpAbC123", "notes.txt",
                                         "raftgrpc-recv-abc.tmp", "raftgrpc-recv-abc123.tmp.bak"};
  for (const std::string& name : keep) std::ofstream(dir + "/" + name) << "x";

  EXPECT_EQ(DiskSnapshotStore(dir).RemoveLeftovers(), left);
  std::vector<std::string> after = List(dir);
  std::sort(after.begin(), after.end());
  std::vector<std::string> want = keep;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(after, want);
}

// A second snapshot of the same index replaces the first (it is never
// "already stored"), and Discard removes a committed one Raft rejected.
TEST(DiskSnapshotStoreTest, SameIndexReplacesAndDiscardRemoves) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/replace";
  DiskSnapshotStore store(dir);
  auto commit = [&](const std::string& data) {
    auto sink = store.Begin(Snap(9), data.size());
    EXPECT_TRUE(sink.ok());
    EXPECT_TRUE((*sink)->Write(data.data(), data.size()).ok());
    auto path = (*sink)->Commit();
    EXPECT_TRUE(path.ok());
    return std::move(*sink);
  };
  auto read = [&] {
    std::ifstream f(dir + "/" + DiskSnapshotStore::FileName(9));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  commit("planted");
  std::unique_ptr<SnapshotSink> real = commit("the real one");
  EXPECT_EQ(read(), "the real one");
  real->Discard();
  EXPECT_TRUE(List(dir).empty());
}

TEST(DiskSnapshotStoreTest, NoDirectoryIsAClearError) {
  DiskSnapshotStore store("");
  EXPECT_EQ(store.Begin(Snap(1), 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace raftgrpc

namespace raftgrpc {
namespace {

raftpb::Message SnapAt(uint64_t index, uint64_t term) {
  raftpb::Message m = Snap(index);
  m.mutable_snapshot()->mutable_metadata()->set_term(term);
  return m;
}

// Writes `n` bytes to a resumable sink from `from` and checkpoints them.
std::unique_ptr<SnapshotSink> Kept(DiskSnapshotStore& store, uint64_t from, uint64_t index,
                                   uint64_t size, uint64_t n) {
  auto sink = store.BeginFrom(from, SnapAt(index, 2), size, 0);
  EXPECT_TRUE(sink.ok()) << sink.status();
  const std::string data(n, 'k');
  EXPECT_TRUE((*sink)->Write(data.data(), n).ok());
  EXPECT_TRUE((*sink)->Checkpoint().ok());
  return std::move(*sink);
}

size_t Count(const std::vector<std::string>& names, const std::string& prefix) {
  return std::count_if(names.begin(), names.end(),
                       [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
}

// What a link failure leaves: the checkpointed prefix and its record, one per
// sender; the same snapshot resumes there, another one (or another sender's
// claim) does not.
TEST(DiskSnapshotStorePartialTest, KeptPrefixResumesOnlyTheSameSnapshotOnePerSender) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/partial";
  DiskSnapshotStore store(dir);
  Kept(store, 7, 100, 10 << 20, 3 << 20)->Keep();
  EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 1u);
  EXPECT_EQ(Count(List(dir), "raftgrpc-partial-"), 1u);
  EXPECT_EQ(store.ResumeOffset(7, SnapAt(100, 2), 10 << 20), 3u << 20);
  EXPECT_EQ(store.ResumeOffset(8, SnapAt(100, 2), 10 << 20), 0u) << "another sender's prefix";
  EXPECT_EQ(store.ResumeOffset(7, SnapAt(100, 3), 10 << 20), 0u) << "another term";
  // That question about another snapshot dropped the prefix.
  EXPECT_TRUE(List(dir).empty());

  // At most one per sender: the newer transfer's prefix replaces the older.
  Kept(store, 7, 100, 10 << 20, 1 << 20)->Keep();
  Kept(store, 7, 101, 10 << 20, 2 << 20)->Keep();
  Kept(store, 9, 101, 10 << 20, 2 << 20)->Keep();  // another sender: its own
  EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 2u);
  EXPECT_EQ(store.ResumeOffset(7, SnapAt(100, 2), 10 << 20), 0u);
  EXPECT_EQ(store.ResumeOffset(9, SnapAt(101, 2), 10 << 20), 2u << 20);

  // Resuming: the rest, then commit; the prefix and record go.
  auto sink = store.BeginFrom(9, SnapAt(101, 2), 10 << 20, 2 << 20);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ((*sink)->offset(), 2u << 20);
  auto crc = (*sink)->PrefixCrc32c();
  ASSERT_TRUE(crc.ok());
  const std::string prefix(2 << 20, 'k');
  EXPECT_EQ(*crc, Crc32cExtend(0, prefix.data(), prefix.size()));
  // While it is in use, it is offered, but no other transfer may take it
  // before this one lets go.
  EXPECT_EQ(store.ResumeOffset(9, SnapAt(101, 2), 10 << 20), 2u << 20);
  EXPECT_EQ(store.BeginFrom(9, SnapAt(101, 2), 10 << 20, 2 << 20).status().code(),
            absl::StatusCode::kUnavailable);
  const std::string rest(8 << 20, 'r');
  ASSERT_TRUE((*sink)->Write(rest.data(), rest.size()).ok());
  ASSERT_TRUE((*sink)->Commit().ok());
  EXPECT_EQ(List(dir), std::vector<std::string>{DiskSnapshotStore::FileName(101)});
}

// Past its time-to-live a prefix goes (the sweep), and start-up keeps a
// prefix whose record matches but removes every other temporary file.
TEST(DiskSnapshotStorePartialTest, TimeToLiveAndStartUpCleanUp) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/ttl";
  {
    DiskSnapshotStore expiring(dir, absl::Nanoseconds(1));
    Kept(expiring, 7, 5, 4 << 20, 1 << 20)->Keep();
    EXPECT_EQ(List(dir).size(), 2u);
    EXPECT_EQ(expiring.RemoveExpired(), std::vector<uint64_t>{7});
    EXPECT_TRUE(List(dir).empty());
  }
  DiskSnapshotStore store(dir);
  Kept(store, 7, 5, 4 << 20, 1 << 20)->Keep();
  { auto unkept = store.BeginFrom(8, SnapAt(5, 2), 4 << 20, 0); }  // aborted: nothing
  EXPECT_EQ(store.RemoveExpired(), std::vector<uint64_t>{});
  std::ofstream(dir + "/raftgrpc-recv-zzzzzz.tmp") << "an interrupted receive";
  EXPECT_EQ(DiskSnapshotStore(dir).RemoveLeftovers(),
            std::vector<std::string>{"raftgrpc-recv-zzzzzz.tmp"});
  EXPECT_EQ(store.ResumeOffset(7, SnapAt(5, 2), 4 << 20), 1u << 20);
  // A record whose file lost its verified length no longer matches.
  for (const std::string& n : List(dir)) {
    if (DiskSnapshotStore::IsTempName(n)) {
      ASSERT_EQ(truncate((dir + "/" + n).c_str(), 100), 0);
    }
  }
  EXPECT_EQ(DiskSnapshotStore(dir).RemoveLeftovers().size(), 2u);
  EXPECT_TRUE(List(dir).empty());
}

// Sets sender `from`'s record's last-progress time to `seconds` past the
// epoch, so that eviction order does not hang on timestamp granularity.
void SetProgress(const std::string& dir, uint64_t from, time_t seconds) {
  char name[64];
  snprintf(name, sizeof(name), "/raftgrpc-partial-%016llx.rec",
           static_cast<unsigned long long>(from));
  const struct timespec t[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (dir + name).c_str(), t, 0), 0) << dir + name;
}

// The kept prefixes of all senders share one byte budget: a newer one
// evicts the least recently progressed, one in use is never evicted, one
// larger than the budget is not kept, and start-up keeps the newest that fit.
TEST(DiskSnapshotStorePartialTest, KeptPrefixesStayWithinTheByteBudget) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/budget";
  constexpr uint64_t kMiB = 1 << 20;
  {
    DiskSnapshotStore store(dir, absl::Hours(1), 5 * kMiB);
    Kept(store, 7, 100, 10 * kMiB, 2 * kMiB)->Keep();
    SetProgress(dir, 7, 1000);
    Kept(store, 8, 100, 10 * kMiB, 2 * kMiB)->Keep();
    SetProgress(dir, 8, 2000);
    EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 2u);
    // 4 MiB kept; 2 more do not fit: 7's, the stalest, goes.
    Kept(store, 9, 100, 10 * kMiB, 2 * kMiB)->Keep();
    EXPECT_EQ(store.ResumeOffset(7, SnapAt(100, 2), 10 * kMiB), 0u);
    EXPECT_EQ(store.ResumeOffset(8, SnapAt(100, 2), 10 * kMiB), 2 * kMiB);
    EXPECT_EQ(store.ResumeOffset(9, SnapAt(100, 2), 10 * kMiB), 2 * kMiB);
    EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 2u);
    EXPECT_EQ(Count(List(dir), "raftgrpc-partial-"), 2u);

    // Larger than the whole budget: not kept, and it evicts nothing.
    Kept(store, 10, 100, 10 * kMiB, 6 * kMiB)->Keep();
    EXPECT_EQ(store.ResumeOffset(10, SnapAt(100, 2), 10 * kMiB), 0u);
    EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 2u);

    // 8's prefix in use (a resume writing it) cannot be evicted; 9's can.
    SetProgress(dir, 8, 1000);
    SetProgress(dir, 9, 2000);
    auto resuming = store.BeginFrom(8, SnapAt(100, 2), 10 * kMiB, 2 * kMiB);
    ASSERT_TRUE(resuming.ok()) << resuming.status();
    Kept(store, 11, 100, 10 * kMiB, 3 * kMiB)->Keep();
    EXPECT_EQ(store.ResumeOffset(9, SnapAt(100, 2), 10 * kMiB), 0u);
    EXPECT_EQ(store.ResumeOffset(11, SnapAt(100, 2), 10 * kMiB), 3 * kMiB);
    (*resuming)->Keep();  // 8 broke again: still 2 MiB, 2 + 3 fit
    EXPECT_EQ(store.ResumeOffset(8, SnapAt(100, 2), 10 * kMiB), 2 * kMiB);

    // A member removed: its prefix goes at once.
    store.Forget(8);
    EXPECT_EQ(store.ResumeOffset(8, SnapAt(100, 2), 10 * kMiB), 0u);
    EXPECT_EQ(Count(List(dir), "raftgrpc-recv-"), 1u);
    Kept(store, 12, 100, 10 * kMiB, 1 * kMiB)->Keep();
    SetProgress(dir, 11, 1000);
    SetProgress(dir, 12, 2000);
  }
  // Start-up under a smaller budget keeps the most recently progressed.
  EXPECT_EQ(DiskSnapshotStore(dir, absl::Hours(1), 2 * kMiB).RemoveLeftovers().size(), 2u)
      << "11's record and file";
  DiskSnapshotStore store(dir, absl::Hours(1), 2 * kMiB);
  EXPECT_EQ(store.ResumeOffset(12, SnapAt(100, 2), 10 * kMiB), 1 * kMiB);
  EXPECT_EQ(store.ResumeOffset(11, SnapAt(100, 2), 10 * kMiB), 0u);
  EXPECT_EQ(List(dir).size(), 2u);

  // A budget of 0 keeps nothing.
  DiskSnapshotStore none(dir + "/none", absl::Hours(1), 0);
  Kept(none, 7, 100, 10 * kMiB, 1 * kMiB)->Keep();
  EXPECT_TRUE(List(dir + "/none").empty());
}

// Direct I/O and buffered writes (the default) keep every byte, whatever
// the pieces' sizes and alignment, across a checkpoint at an unaligned
// offset, unverified bytes after it, and a resume there; with direct I/O
// the data does not go through the page cache.
// Adaptive: with windows of 256 KiB and a probe every MiB, so that the
// file is written both ways, switching many times.
using IoMode = DiskSnapshotStore::IoMode;
class DiskSnapshotStoreIoTest : public ::testing::TestWithParam<IoMode> {};

// Whether the store writes `dir` with direct I/O: its file system takes
// O_DIRECT and is not tmpfs.
bool TakesDirectIo(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0 || fs.f_type == TMPFS_MAGIC) return false;
  const std::string probe = dir + "/probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0;
}

// Pages of [from, to) of the file at `path` held in the page cache.
size_t CachedPages(const std::string& path, size_t from, size_t to) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  void* p = ::mmap(nullptr, to, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(p, MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((to + page - 1) / page);
  EXPECT_EQ(::mincore(p, to, in.data()), 0);
  ::munmap(p, to);
  size_t n = 0;
  for (size_t i = from / page; i < in.size(); ++i) n += in[i] & 1;
  return n;
}

TEST_P(DiskSnapshotStoreIoTest, EveryByteKeptThroughCheckpointAndResume) {
  const IoMode io = GetParam();
  const bool direct = io == IoMode::kDirect;
  const std::string dir =
      std::string(std::getenv("TEST_TMPDIR")) + "/io" + std::to_string(static_cast<int>(io));
  ASSERT_EQ(::mkdir(dir.c_str(), 0750), 0);
  if (io != IoMode::kBuffered && !TakesDirectIo(dir)) {
    GTEST_SKIP() << dir << " does not take O_DIRECT";
  }
  DiskSnapshotStore store(dir, absl::Hours(1), DiskSnapshotStore::kDefaultPartialMaxBytes, io);
  store.set_adaptive_io_for_testing({256 << 10, 1 << 20, 1 << 20});
  const size_t size = (6 << 20) + 12345, verified = 1234567;
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + i / 4096) % 251);
  // Pieces of awkward sizes, as a chunk arrives in gRPC's slices.
  const size_t sizes[] = {1, 4095, 4097, 65536, (1 << 20) + 3, 300000, 2 << 20};
  auto write = [&](SnapshotSink* sink, size_t from, size_t to) {
    for (size_t at = from, k = 0; at < to; ++k) {
      const size_t n = std::min(sizes[k % 7], to - at);
      std::vector<absl::string_view> pieces{absl::string_view(data).substr(at, n / 2),
                                            absl::string_view(data).substr(at + n / 2, n - n / 2)};
      ASSERT_TRUE(sink->WriteV(pieces).ok());
      at += n;
    }
  };
  {
    auto first = store.BeginFrom(3, SnapAt(50, 2), size, 0);
    ASSERT_TRUE(first.ok()) << first.status();
    write(first->get(), 0, verified);
    ASSERT_TRUE((*first)->Checkpoint().ok());
    write(first->get(), verified, verified + 500000);  // never verified: cut off
    (*first)->Keep();
  }
  ASSERT_EQ(store.ResumeOffset(3, SnapAt(50, 2), size), verified);
  auto rest = store.BeginFrom(3, SnapAt(50, 2), size, verified);
  ASSERT_TRUE(rest.ok()) << rest.status();
  auto crc = (*rest)->PrefixCrc32c();
  ASSERT_TRUE(crc.ok()) << crc.status();
  EXPECT_EQ(*crc, Crc32cExtend(0, data.data(), verified));
  // A checkpoint at an unaligned offset, and writing on after it.
  write(rest->get(), verified, (3 << 20) + 777);
  ASSERT_TRUE((*rest)->Checkpoint().ok());
  auto again = (*rest)->PrefixCrc32c();  // read with direct writes under way
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *crc);
  write(rest->get(), (3 << 20) + 777, size);
  auto path = (*rest)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();

  // Measured before the file is read back, which caches it. The last 2 MiB
  // were written after the prefix was last read (whose readahead caches
  // what the file held then), in whole blocks but for the tail.
  const size_t cached = CachedPages(*path, size - (2 << 20), size);
  const size_t pages = (2 << 20) / static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (direct) {
    EXPECT_LE(cached, 2u) << "direct writes went through the page cache";
  } else if (io == IoMode::kBuffered) {
    EXPECT_GE(cached, pages * 9 / 10) << "buffered writes are cached";
  }
  std::ifstream f(*path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  ASSERT_EQ(ss.str().size(), size);
  EXPECT_TRUE(ss.str() == data) << "the committed file differs from what was written";
}

// With direct I/O, writes go out a staging buffer (1 MiB) at a time, but
// once the rest of the body fits in the buffer each call's whole blocks
// go out at once: the end of a transfer then waits for the last small
// chunk's write only, not for the buffer's.
TEST(DiskSnapshotStoreTest, DirectWritesTheLastBufferfulAsItComes) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/tail";
  ASSERT_EQ(::mkdir(dir.c_str(), 0750), 0);
  if (!TakesDirectIo(dir)) GTEST_SKIP() << dir << " does not take O_DIRECT";
  DiskSnapshotStore store(dir, absl::Hours(1), DiskSnapshotStore::kDefaultPartialMaxBytes,
                          IoMode::kDirect);
  constexpr size_t kKiB = 1024;
  const size_t size = 2560 * kKiB + 100;
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 7 + i / 4096) % 253);
  auto sink = store.Begin(Snap(9), size);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::vector<std::string> files = List(dir);
  ASSERT_EQ(files.size(), 1u);
  const std::string tmp = dir + "/" + files[0];
  auto on_disk = [&] {
    struct stat st;
    return ::stat(tmp.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : size_t{0};
  };
  size_t at = 0;
  auto write = [&](size_t n) {
    ASSERT_TRUE((*sink)->WriteV({absl::string_view(data).substr(at, n)}).ok());
    at += n;
  };
  write(256 * kKiB);
  EXPECT_EQ(on_disk(), 0u) << "the buffer fills again before the end: nothing written yet";
  write(768 * kKiB);
  EXPECT_EQ(on_disk(), 1024 * kKiB) << "a full buffer is written";
  write(512 * kKiB);
  EXPECT_EQ(on_disk(), 1024 * kKiB);
  // 1 MiB + 100 bytes are left, more than the 512 KiB the buffer has free.
  write(512 * kKiB);
  EXPECT_EQ(on_disk(), 2048 * kKiB);
  // From here the rest fits: each call's whole blocks are written at once,
  // a partial last block stays for Commit.
  write(256 * kKiB + 5000);
  EXPECT_EQ(on_disk(), 2304 * kKiB + 4096);
  write(256 * kKiB - 5000 + 100);
  EXPECT_EQ(on_disk(), 2560 * kKiB);
  ASSERT_EQ(at, size);
  auto path = (*sink)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  std::ifstream f(*path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_TRUE(ss.str() == data) << "the committed file differs from what was written";
}

// Adaptive: the first window is written through the page cache; one of
// the next four, or the one at 1 MiB (the first probe), with direct I/O.
// Which one depends on the costs measured: a window that costs twice the
// best so far is probed at once (under ASan, often).
TEST(DiskSnapshotStoreTest, AdaptiveStartsBufferedThenProbesDirectIo) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/adaptive";
  ASSERT_EQ(::mkdir(dir.c_str(), 0750), 0);
  if (!TakesDirectIo(dir)) GTEST_SKIP() << dir << " does not take O_DIRECT";
  DiskSnapshotStore store(dir, absl::Hours(1), DiskSnapshotStore::kDefaultPartialMaxBytes,
                          IoMode::kAdaptive);
  constexpr size_t kKiB = 1024;
  constexpr size_t kWindow = 256 * kKiB;
  store.set_adaptive_io_for_testing({kWindow, 1024 * kKiB, 64 << 20});
  const size_t size = 1536 * kKiB;
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 13 + i / 4096) % 241);
  auto sink = store.Begin(Snap(11), size);
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (size_t at = 0; at < size; at += 64 * kKiB) {
    ASSERT_TRUE((*sink)->WriteV({absl::string_view(data).substr(at, 64 * kKiB)}).ok());
  }
  auto path = (*sink)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_GE(CachedPages(*path, 0, kWindow), kWindow / page * 9 / 10)
      << "the first window went through the page cache";
  size_t least = kWindow / page;
  for (size_t at = kWindow; at < 1280 * kKiB; at += kWindow) {
    least = std::min(least, CachedPages(*path, at, at + kWindow));
  }
  EXPECT_LE(least, 2u) << "no window up to the first probe's was written with direct I/O";
  std::ifstream f(*path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_TRUE(ss.str() == data) << "the committed file differs from what was written";
}

INSTANTIATE_TEST_SUITE_P(IoModes, DiskSnapshotStoreIoTest,
                         ::testing::Values(IoMode::kBuffered, IoMode::kDirect, IoMode::kAdaptive),
                         [](const ::testing::TestParamInfo<IoMode>& p) {
                           return p.param == IoMode::kBuffered ? "Buffered"
                                  : p.param == IoMode::kDirect ? "Direct"
                                                               : "Adaptive";
                         });

}  // namespace
}  // namespace raftgrpc
