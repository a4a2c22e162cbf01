// transport_bench: end-to-end load between two transports in separate
// processes on loopback, and the same workloads over bare gRPC (--baseline)
// with the same protos and no transport logic, so every figure can be read
// as a ratio to bare gRPC measured on the same machine in the same run.
//
//   --mode=throughput  N MsgApp (one entry of --size bytes) from node 1 to
//                      node 2; msgs/s and MB/s counted at node 2's Process.
//   --mode=latency     MsgHeartbeat -> MsgHeartbeatResp ping-pong, N times;
//                      p50/p90/p99/max in microseconds.
//   --mode=snapshot    a --size MiB snapshot from a file to node 2's disk;
//                      --break-at=F resets the link once at fraction F of
//                      the data and sends it again (time to a stored
//                      snapshot, resumed_bytes, sent_twice_bytes), with
//                      --resume=1 (default) or 0
//                      (fsync'd); MB/s, both sides' peak RSS.
//                      --direct-io=1 writes it with direct I/O, not through
//                      the page cache (TransportOptions::snapshot_direct_io;
//                      also hbload); --adaptive-io=0 all through the page
//                      cache (snapshot_io_adaptive; the default measures
//                      both ways as it goes).
//   --mode=peers       node 1 with --peers idle peers (streams up, link
//                      heartbeats); threads and RSS of node 1.
//   --glibc-heap=huge  as kept, and the heap on transparent huge pages:
//                      starts again with GLIBC_TUNABLES set (HugeTunables():
//                      hugetlb=1, top_pad 4 MiB, arena_max 2, and kept's
//                      thresholds). README's first choice.
//   --glibc-heap=kept  both nodes keep freed heap, as README ("Performance")
//                      advises without huge pages: mallopt(M_MMAP_THRESHOLD,
//                      32 MiB) and mallopt(M_TRIM_THRESHOLD, 256 MiB) before
//                      the fork. Default: glibc's own settings.
//   --urgent-at-once=0 node 2's and node 1's Raft stand-ins leave
//                      heartbeats to Process on the receive worker, instead
//                      of taking them at once on the reading thread
//                      (Raft::TryProcessUrgent; default 1, echoed in the
//                      JSON as urgent_at_once).
//   --one-callback-thread=1 each node's process holds a
//                      raftgrpc::OneCallbackThread (transport/
//                      callback_threads.h): gRPC runs its callbacks on one
//                      thread, the others parked. Default 0; echoed in the
//                      JSON as one_callback_thread.
//   --json             one JSON object: mode, n, size, seconds, msgs_per_sec,
//                      mb_per_sec, p50_us, p90_us, p99_us, max_us,
//                      peak_rss_kb (unused keys omitted).
//
// The receiver (node 2, or the peers) is a forked child process, created
// before any gRPC state exists in the parent.
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "peer/peer.h"
#include "proto/transport.grpc.pb.h"
#include "testing/fault_proxy.h"
#include "testing/messages.h"
#include "testing/snapshot_file.h"
#include "transport/callback_threads.h"
#include "transport/transport.h"

// Counts heap allocations in this process (all threads), to report the
// sender's allocations per message in throughput mode.
// Every non-aligned replaceable form is defined here: a partial set would pair
// e.g. the library's nothrow new with this free-based delete, which ASan
// reports as alloc-dealloc-mismatch (libgrpc uses nothrow new).
// Off unless --count-allocs: a process-wide atomic increment on every
// allocation of every thread costs about 8% of a throughput run's CPU
// (perf), which etcd's side of a comparison does not pay. Set before any
// thread starts.
static bool g_count_allocs = false;
static std::atomic<uint64_t> g_allocs{0};
static void* CountedAlloc(size_t n) noexcept {
  if (g_count_allocs) g_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new(size_t n) {
  if (void* p = CountedAlloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  if (void* p = CountedAlloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return CountedAlloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return CountedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace raftgrpc::bench {
namespace {

struct Flags {
  std::string mode = "throughput";
  uint64_t n = 1000000;
  uint64_t size = 128;  // entry bytes; MiB for snapshot
  int peers = 200;
  bool json = false;
  bool baseline = false;
  // Both nodes in this process, node 2 on a thread (as etcd-anchor runs
  // both of its transports in one process).
  bool one_process = false;
  bool count_allocs = false;  // --count-allocs: sender_allocs_per_msg
  // etcd-anchor's flags (../shared/bench/etcd-anchor), so that its
  // compare.sh can run this tool beside etcd's transport.
  std::string snap_dir;      // where the receiver stores snapshots
  std::string label;         // echoed in the JSON
  uint64_t window = 2048;    // throughput: most messages sent, not yet processed
  int64_t warmup = -1;       // throughput 20000 messages, latency 2000 round trips
  int load = 0;              // hbload: 1 = MsgApp flood + one snapshot
  uint64_t hb = 3000;        // hbload: at least this many heartbeat round trips
  uint64_t gap_us = 1000;    // hbload: pause between round trips
  uint64_t snap_mib = 1024;  // hbload: snapshot size
  // snapshot: reset the link once when this fraction of the data is sent,
  // then send the snapshot again (as Raft would); --resume=0 turns resume
  // off on both nodes, for the comparison.
  double break_at = -1;
  bool resume = true;
  // snapshot, hbload: the receiver's snapshot_direct_io; the library's default
  bool direct_io = TransportOptions().snapshot_direct_io;
  // and its snapshot_io_adaptive (--adaptive-io)
  bool adaptive_io = TransportOptions().snapshot_io_adaptive;
  // or "kept", or "huge" (kept, on huge pages): README's settings for a node
  std::string glibc_heap = "default";
  bool one_callback_thread = false;
  bool urgent_at_once = true;  // BenchRaft::TryProcessUrgent takes heartbeats
};

// Set from the flags before the receiver is forked: both nodes use it.
bool g_snapshot_resume = true;
bool g_snapshot_direct_io = TransportOptions().snapshot_direct_io;
bool g_snapshot_io_adaptive = TransportOptions().snapshot_io_adaptive;
const char* g_glibc_heap = "default";  // --glibc-heap, echoed in the JSON
bool g_urgent_at_once = true;          // --urgent-at-once
bool g_one_callback_thread = false;    // --one-callback-thread

// --glibc-heap=huge: README's setting for a node, whole, as a node sets it
// (the environment, read when the program starts): the string itself comes
// from testing/huge_heap.bzl, which the huge-heap test twins run under and
// huge_heap_readme_test holds README to, so the three cannot drift. Its
// thresholds are --glibc-heap=kept's. hugetlb=1: glibc asks for
// transparent huge pages (THP mode "madvise" or "always"), but not for the
// small steps a thread's arena starts and grows by (hugetlb=1 alone
// changed nothing here), so top_pad makes every step 4 MiB; two arenas
// bound what that holds (bench/README.md, "glibc's heap on huge pages").
#ifndef RAFTGRPC_HUGE_HEAP_TUNABLES
#error "RAFTGRPC_HUGE_HEAP_TUNABLES comes from bench/BUILD.bazel"
#endif
// --glibc-heap=kept's, by mallopt; testing/huge_heap.bzl's string states
// the same two values for huge, which takes them from the environment.
constexpr int kMmapThreshold = 32 << 20;
constexpr int kTrimThreshold = 256 << 20;
std::string HugeTunables() { return RAFTGRPC_HUGE_HEAP_TUNABLES; }
bool HugeTunablesSet() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  return t != nullptr && std::strstr(t, HugeTunables().c_str()) != nullptr;
}
// The kernel's transparent huge page mode ("always", "madvise" or
// "never"), echoed in the JSON with --glibc-heap=huge: under "never" the
// setting asks for huge pages and gets none.
std::string ThpMode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  const size_t a = line.find('['), b = line.find(']');
  return a != std::string::npos && b != std::string::npos && b > a ? line.substr(a + 1, b - a - 1)
                                                                   : "unknown";
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      const std::string p = std::string("--") + name + "=";
      return a.rfind(p, 0) == 0 ? argv[i] + p.size() : nullptr;
    };
    if (const char* v = val("mode"))
      f.mode = v;
    else if (const char* v = val("n"))
      f.n = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("size"))
      f.size = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("peers"))
      f.peers = std::atoi(v);
    else if (const char* v = val("snap-dir"))
      f.snap_dir = v;
    else if (const char* v = val("label"))
      f.label = v;
    else if (const char* v = val("window"))
      f.window = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("warmup"))
      f.warmup = std::strtoll(v, nullptr, 10);
    else if (const char* v = val("load"))
      f.load = std::atoi(v);
    else if (const char* v = val("hb"))
      f.hb = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("gap-us"))
      f.gap_us = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("snap-mib"))
      f.snap_mib = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("break-at"))
      f.break_at = std::strtod(v, nullptr);
    else if (const char* v = val("resume"))
      f.resume = std::atoi(v) != 0;
    else if (const char* v = val("adaptive-io"))
      f.adaptive_io = std::atoi(v) != 0;
    else if (const char* v = val("direct-io"))
      f.direct_io = std::atoi(v) != 0;
    else if (const char* v = val("glibc-heap"))
      f.glibc_heap = v;
    else if (const char* v = val("one-callback-thread"))
      f.one_callback_thread = std::atoi(v) != 0;
    else if (const char* v = val("urgent-at-once"))
      f.urgent_at_once = std::atoi(v) != 0;
    else if (a == "--json")
      f.json = true;
    else if (a == "--one-process")
      f.one_process = true;
    else if (a == "--count-allocs")
      f.count_allocs = true;
    else if (a == "--baseline")
      f.baseline = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  if (f.warmup < 0) f.warmup = f.mode == "throughput" ? 20000 : f.mode == "latency" ? 2000 : 0;
  return f;
}

// CPU seconds (user + system) this process has used so far.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int64_t ProcStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(k, 0) == 0) return std::strtoll(line.c_str() + k.size(), nullptr, 10);
  }
  return -1;
}

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

// Line-based pipes between the parent and the child.
struct Pipe {
  int rd = -1, wr = -1;
  void Send(const std::string& line) {
    std::string l = line + "\n";
    (void)!write(wr, l.data(), l.size());
  }
  std::string Recv() { return RecvWithin(-1).value_or(std::string()); }
  // A line, if one comes within `ms` (< 0: however long it takes).
  std::optional<std::string> RecvWithin(int ms) {
    const int64_t until = absl::GetCurrentTimeNanos() + int64_t{ms} * 1000000;
    std::string out;
    for (;;) {
      const int64_t left_ms =
          ms < 0 ? -1 : std::max<int64_t>(0, (until - absl::GetCurrentTimeNanos()) / 1000000);
      pollfd p{rd, POLLIN, 0};
      if (left_ms == 0 || ::poll(&p, 1, static_cast<int>(left_ms)) <= 0) {
        if (left_ms != 0 && errno == EINTR) continue;
        return std::nullopt;
      }
      char c;
      if (read(rd, &c, 1) != 1) return std::nullopt;  // the other end is gone
      if (c == '\n') return out;
      out += c;
    }
  }
};

struct Link {
  Pipe to_child, to_parent;
  pid_t child = -1;  // node 2's process; -1 with --one-process
};

Link MakeLink() {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) std::abort();
  Link l;
  l.to_child = {a[0], a[1]};
  l.to_parent = {b[0], b[1]};
  return l;
}

raftpb::Message App(uint64_t index, const std::string& payload) {
  raftpb::Message m = testing::App(1, 2, 1, index - 1, payload);
  m.set_commit(index - 1);
  return m;
}

// A Raft that counts MsgApp, echoes heartbeats, and signals events.
// How long a run may make no progress before it fails: node 2 drops what
// its full receive queue cannot take, and a dropped MsgApp never arrives.
constexpr int kNoProgressSeconds = 30;

// MsgApps node 2's Raft has processed, in memory both processes share
// (mapped before the fork): the load's window reads it as etcd-anchor's
// reads its node b's counter, at once. Acknowledging by MsgAppResp every
// 256 instead, as this tool once did, left node 1 asleep on a window that
// node 2 had already drained (about 40% of a 128 B run, 2026-11-30), which
// etcd-anchor's etcd never waits for.
std::atomic<uint64_t>* g_processed = nullptr;
uint64_t Processed() { return g_processed->load(std::memory_order_acquire); }

class BenchRaft : public Raft {
 public:
  // Heartbeats and their responses without the hand-off to the receive
  // worker: answering one (Send) and counting one never block.
  bool TryProcessUrgent(const raftpb::Message& m, absl::Status* status) override {
    if (!g_urgent_at_once ||
        (m.type() != raftpb::MsgHeartbeat && m.type() != raftpb::MsgHeartbeatResp)) {
      return false;
    }
    *status = Process(m);
    return true;
  }
  absl::Status Process(const raftpb::Message& m) override {
    if (m.type() == raftpb::MsgApp) {
      const uint64_t n = g_processed->fetch_add(1, std::memory_order_release) + 1;
      // The clock only where it is needed: etcd-anchor's Raft reads none.
      if (n == 1) first_ns_ = NowNs();
      if (n == want_) {
        last_ns_ = NowNs();
        Notify();
      }
    } else if (m.type() == raftpb::MsgHeartbeat && echo_ != nullptr) {
      raftpb::Message r;
      r.set_type(raftpb::MsgHeartbeatResp);
      r.set_from(m.to());
      r.set_to(m.from());
      r.set_context(m.context());
      echo_->Send(std::move(r));
    } else if (m.type() == raftpb::MsgHeartbeatResp) {
      {
        std::lock_guard<std::mutex> l(mu_);
        ++responses_;
      }
      // After unlocking: a waiter woken under the lock would preempt this
      // thread on its CPU, find the mutex held and sleep again, costing a
      // round trip two wake-ups of the Raft thread instead of one (perf
      // sched, 2026-12-03). etcd-anchor's channel send has no such step.
      cv_.notify_all();
    }
    return absl::OkStatus();
  }
  absl::Status ProcessSnapshot(const raftpb::Message&, const std::string&) override {
    return absl::OkStatus();
  }
  bool IsIdRemoved(uint64_t) override { return false; }
  void ReportUnreachable(uint64_t) override {}
  void ReportSnapshot(uint64_t, SnapshotStatus s) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      snapshot_ok_ = s == SnapshotStatus::kFinish;
      ++snapshot_reports_;
    }
    cv_.notify_all();
  }

  void Expect(uint64_t n) { want_ = n; }
  void EchoThrough(Transport* t) { echo_ = t; }
  // False after kNoProgressSeconds without a message processed.
  bool WaitDone() {
    std::unique_lock<std::mutex> l(mu_);
    uint64_t seen = Processed();
    while (!cv_.wait_for(l, std::chrono::seconds(kNoProgressSeconds), [&] { return done_; })) {
      if (Processed() == seen) {
        std::fprintf(stderr, "timed out: node 2 processed %lu of %lu MsgApps (dropped?)\n",
                     static_cast<unsigned long>(seen), static_cast<unsigned long>(want_));
        return false;
      }
      seen = Processed();
    }
    return true;
  }
  // Waits up to `limit` for the n-th heartbeat response; whether it came.
  bool WaitResponses(uint64_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, limit, [&] { return responses_ >= n; });
  }
  // Waits for the n-th snapshot report; whether it was a success.
  bool WaitSnapshot(int n = 1) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return snapshot_reports_ >= n; });
    return snapshot_ok_;
  }
  int64_t first_ns() const { return first_ns_; }
  uint64_t responses() {
    std::lock_guard<std::mutex> l(mu_);
    return responses_;
  }
  // Whether the snapshot was reported, and how.
  bool SnapshotReported(bool* ok) {
    std::lock_guard<std::mutex> l(mu_);
    *ok = snapshot_ok_;
    return snapshot_reports_ > 0;
  }
  int64_t last_ns() const { return last_ns_; }

 private:
  void Notify() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();  // after unlocking, as for heartbeat responses
  }
  uint64_t want_ = 0;
  int64_t first_ns_ = 0, last_ns_ = 0;
  Transport* echo_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  uint64_t responses_ = 0;
  int snapshot_reports_ = 0;
  bool snapshot_ok_ = false;
};

std::string TempDir(const char* tag, const std::string& base = "") {
  std::string t = absl::StrCat(!base.empty()                      ? base
                               : std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR")
                                                                  : "/tmp",
                               "/raftgrpc-bench-", tag, "-XXXXXX");
  if (mkdtemp(&t[0]) == nullptr) std::abort();
  return t;
}

// Removes a TempDir and what it holds; nothing for "".
void RemoveDir(const std::string& dir) {
  if (!dir.empty()) (void)!std::system(absl::StrCat("rm -rf ", dir).c_str());
}

std::unique_ptr<Transport> StartNode(uint64_t id, Raft* raft, int* port,
                                     const std::string& snap_dir = "") {
  TransportOptions o;
  o.local_id = id;
  o.cluster_id = 0xbe;
  o.snapshot_dir = snap_dir;
  o.snapshot_resume = g_snapshot_resume;
  o.snapshot_direct_io = g_snapshot_direct_io;
  o.snapshot_io_adaptive = g_snapshot_io_adaptive;
  // BENCH_LOG=1 keeps the transport's log lines (stderr), e.g. the
  // receiver's per-snapshot timing.
  if (std::getenv("BENCH_LOG") == nullptr) o.log = [](const std::string&) {};
  // A node that cannot start ends its process and removes its directory;
  // the other node notices within 30 s (TransportParent, TransportChild).
  auto fail = [&snap_dir](const absl::Status& why) {
    std::fprintf(stderr, "%s\n", why.ToString().c_str());
    RemoveDir(snap_dir);
    std::exit(1);
  };
  // Held for the life of the process (after the fork: a child must park
  // its own threads); both nodes of --one-process share it.
  static std::unique_ptr<OneCallbackThread> one;
  if (g_one_callback_thread && one == nullptr) one = OneCallbackThread::Hold();
  auto t = Transport::Create(o, raft);
  if (!t.ok()) fail(t.status());
  auto p = (*t)->Serve("127.0.0.1:0");
  if (!p.ok()) fail(p.status());
  *port = *p;
  return *std::move(t);
}

std::string Url(int port) { return absl::StrCat("http://127.0.0.1:", port); }

// ---------------------------------------------------------------- results

struct Result {
  std::string mode;
  uint64_t n = 0, size = 0;
  double seconds = 0, msgs_per_sec = -1, mb_per_sec = -1;
  double p50 = -1, p90 = -1, p99 = -1, max = -1;
  int64_t peak_rss_kb = -1, sender_rss_kb = -1, receiver_rss_kb = -1, threads = -1;
  double allocs_per_msg = -1, allocs_to_build_msg = -1;
  bool baseline = false;
  // etcd-anchor's keys.
  double p999 = -1, mean = -1;
  double cpu_seconds = -1, cpu_us_per_msg = -1, max_rss_mib = -1;
  int64_t dropped = -1;
  double flood_msgs_per_sec = -1, snap_mb_per_sec = -1;
  int64_t samples = -1;
  int64_t resumed_bytes = -1, sent_twice_bytes = -1;  // snapshot --break-at
  std::string label;
};

void Print(const Result& r, bool json) {
  if (json) {
    std::string s =
        absl::StrFormat("{\"mode\":\"%s\",\"baseline\":%s,\"n\":%d,\"size\":%d,\"seconds\":%.4f",
                        r.mode, r.baseline ? "true" : "false", r.n, r.size, r.seconds);
    auto add = [&](const char* k, double v, const char* fmt) {
      if (v >= 0) absl::StrAppend(&s, ",\"", k, "\":", absl::StrFormat(fmt, v));
    };
    add("msgs_per_sec", r.msgs_per_sec, "%.0f");
    add("mb_per_sec", r.mb_per_sec, "%.1f");
    add("p50_us", r.p50, "%.1f");
    add("p90_us", r.p90, "%.1f");
    add("p99_us", r.p99, "%.1f");
    add("max_us", r.max, "%.1f");
    add("peak_rss_kb", static_cast<double>(r.peak_rss_kb), "%.0f");
    add("sender_peak_rss_kb", static_cast<double>(r.sender_rss_kb), "%.0f");
    add("receiver_peak_rss_kb", static_cast<double>(r.receiver_rss_kb), "%.0f");
    add("threads", static_cast<double>(r.threads), "%.0f");
    add("sender_allocs_per_msg", r.allocs_per_msg, "%.2f");
    add("allocs_to_build_msg", r.allocs_to_build_msg, "%.2f");
    add("p999_us", r.p999, "%.1f");
    add("mean_us", r.mean, "%.1f");
    add("cpu_seconds", r.cpu_seconds, "%.3f");
    add("cpu_us_per_msg", r.cpu_us_per_msg, "%.3f");
    add("max_rss_mib", r.max_rss_mib, "%.1f");
    add("dropped", static_cast<double>(r.dropped), "%.0f");
    add("flood_msgs_per_sec", r.flood_msgs_per_sec, "%.0f");
    add("snap_mb_per_sec", r.snap_mb_per_sec, "%.1f");
    add("samples", static_cast<double>(r.samples), "%.0f");
    add("resumed_bytes", static_cast<double>(r.resumed_bytes), "%.0f");
    add("sent_twice_bytes", static_cast<double>(r.sent_twice_bytes), "%.0f");
    if (!r.label.empty()) absl::StrAppend(&s, ",\"label\":\"", r.label, "\"");
    absl::StrAppend(&s, ",\"glibc_heap\":\"", g_glibc_heap, "\"");
    if (std::strcmp(g_glibc_heap, "huge") == 0) absl::StrAppend(&s, ",\"thp\":\"", ThpMode(), "\"");
    if (!r.baseline) {
      absl::StrAppend(&s, ",\"urgent_at_once\":", g_urgent_at_once ? "true" : "false");
      absl::StrAppend(&s, ",\"one_callback_thread\":", g_one_callback_thread ? "true" : "false");
    }
    // The receiver's snapshot_direct_io: its default changed (0abbe07), so
    // every snapshot result says which it ran with.
    if (!r.baseline && (r.mode == "snapshot" || r.mode == "hbload")) {
      absl::StrAppend(&s, ",\"snapshot_io\":\"",
                      g_snapshot_direct_io     ? "direct"
                      : g_snapshot_io_adaptive ? "adaptive"
                                               : "buffered",
                      "\"");
    }
    absl::StrAppend(&s, ",\"impl\":\"raft-grpc-transport\"");
    std::printf("%s}\n", s.c_str());
    return;
  }
  std::printf("%s%s: n=%lu size=%lu %.3fs", r.mode.c_str(), r.baseline ? " (bare gRPC)" : "", r.n,
              r.size, r.seconds);
  if (r.msgs_per_sec >= 0) std::printf("  %.0f msgs/s", r.msgs_per_sec);
  if (r.mb_per_sec >= 0) std::printf("  %.1f MB/s", r.mb_per_sec);
  if (r.p50 >= 0)
    std::printf("  p50 %.0fus p90 %.0fus p99 %.0fus max %.0fus", r.p50, r.p90, r.p99, r.max);
  if (r.peak_rss_kb >= 0) std::printf("  peak RSS %ld kB", r.peak_rss_kb);
  if (r.sender_rss_kb >= 0)
    std::printf(" (sender %ld, receiver %ld)", r.sender_rss_kb, r.receiver_rss_kb);
  if (r.threads >= 0) std::printf("  threads %ld", r.threads);
  if (r.cpu_us_per_msg >= 0) std::printf("  CPU %.2f us/msg", r.cpu_us_per_msg);
  if (r.flood_msgs_per_sec >= 0) {
    std::printf("  flood %.0f msgs/s, snapshot %.1f MB/s", r.flood_msgs_per_sec, r.snap_mb_per_sec);
  }
  if (r.allocs_per_msg >= 0) {
    std::printf("  sender allocs/msg %.2f (building one: %.2f)", r.allocs_per_msg,
                r.allocs_to_build_msg);
  }
  std::printf("\n");
}

void Percentiles(std::vector<double>& us, Result* r) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  r->p50 = at(0.50);
  r->p90 = at(0.90);
  r->p99 = at(0.99);
  r->max = us.back();
  auto at999 = us[std::min(us.size() - 1, static_cast<size_t>(0.999 * us.size()))];
  r->p999 = at999;
  double sum = 0;
  for (double u : us) sum += u;
  r->mean = sum / us.size();
  r->samples = static_cast<int64_t>(us.size());
}

// ------------------------------------------------------- transport workloads

// Child: node 2. Serves, learns node 1's port, then answers the parent's
// commands on the pipe: "mark" (start counting CPU), "wait-done" (the
// last throughput message's Process
// time and the CPU since "mark"), "stop" (peak RSS and CPU since "mark").
void TransportChild(const Flags& f, Link& link) {
  BenchRaft raft;
  const bool snaps = f.mode == "snapshot" || f.mode == "hbload";
  const std::string snap_dir = snaps ? TempDir("recv", f.snap_dir) : "";
  int port = 0;
  auto t = StartNode(2, &raft, &port, snap_dir);
  raft.EchoThrough(t.get());
  raft.Expect(f.mode == "throughput" ? f.warmup + f.n : 0);
  link.to_parent.Send(std::to_string(port));
  // A node 1 that failed to start has exited: this one goes too, and
  // takes its directory with it, instead of waiting for good.
  const std::optional<std::string> parent_port = link.to_child.RecvWithin(30000);
  if (!parent_port) {
    std::fprintf(stderr, "node 1 did not start within 30 s\n");
    t->Stop();
    RemoveDir(snap_dir);
    std::_Exit(1);
  }
  (void)t->AddPeer(1, {Url(std::atoi(parent_port->c_str()))});
  double cpu0 = CpuSeconds();
  for (;;) {
    const std::string cmd = link.to_child.Recv();
    if (cmd == "mark") {
      cpu0 = CpuSeconds();
      link.to_parent.Send("marked");
    } else if (cmd == "wait-done") {
      link.to_parent.Send(raft.WaitDone() ? absl::StrCat(raft.last_ns(), " ", CpuSeconds() - cpu0)
                                          : "failed");
    } else {
      break;  // "stop", or the parent is gone
    }
  }
  link.to_parent.Send(absl::StrCat(ProcStatusKb("VmHWM"), " ", CpuSeconds() - cpu0));
  t->Stop();
  RemoveDir(snap_dir);
  link.to_parent.Send("gone");  // for FailRun, which waits until this is done
}

// Ends a run with status 1 without node 2's help: `why` is printed, node
// 2 killed and reaped.
[[noreturn]] void KillRun(Link& link, const char* why) {
  std::fprintf(stderr, "%s\n", why);
  if (link.child <= 0) std::_Exit(1);  // --one-process: its thread cannot be joined
  ::kill(link.child, SIGKILL);
  while (::wait(nullptr) > 0) {
  }
  std::exit(1);
}

// Ends a run with status 1 once node 2 has stopped and cleaned up: it
// holds both pipes' ends, so it would not see this process exit, and a
// plain exit left it running (found after a snapshot failed on a full
// disk).
[[noreturn]] void FailRun(Link& link) {
  link.to_child.Send("stop");
  // Its figures, then "gone": stopped, its snapshot directory removed. A
  // node 2 that does not answer within 30 s (wedged, perhaps what failed
  // the run) is killed, so a failed run never hangs.
  if (!link.to_parent.RecvWithin(30000) || !link.to_parent.RecvWithin(30000)) {
    KillRun(link, "node 2 did not stop within 30 s");
  }
  while (::wait(nullptr) > 0) {  // none with --one-process
  }
  std::exit(1);
}

std::string MakeBody(const std::string& dir, uint64_t mib) {
  const std::string path = dir + "/snap.data";
  std::ofstream out(path, std::ios::binary);
  // 64 KiB writes: larger ones made the page cache 5x slower (DiskSink).
  std::string block(64 << 10, 's');
  for (uint64_t i = 0; i < mib * 16; ++i) out.write(block.data(), block.size());
  out.close();
  (void)!std::system(absl::StrCat("sync ", path).c_str());  // clean in the page cache
  return path;
}

// Node 1's side of a run: the transport, the peer, and the pipe to node 2.
struct Sender {
  const Flags& f;
  Link& link;
  BenchRaft& raft;
  Transport* t;
  std::shared_ptr<Peer> peer;
  testing::FaultProxy* proxy = nullptr;  // --break-at: the link to node 2
  uint64_t index = 0;                    // of the last MsgApp sent
  int64_t refused = 0;                   // Send said the buffer was full (etcd drops those)

  std::string body_dir;  // NewBody's, until RemoveBody

  [[noreturn]] void Fail() {
    RemoveBody();
    FailRun(link);
  }
  // A snapshot body of `mib` MiB in a temp directory of its own; returns
  // its path. A failed run removes it too.
  std::string NewBody(uint64_t mib) {
    body_dir = TempDir("send");
    return MakeBody(body_dir, mib);
  }
  void RemoveBody() {
    RemoveDir(body_dir);
    body_dir.clear();
  }
  void Mark() {
    link.to_child.Send("mark");
    (void)link.to_parent.Recv();
  }
  // etcd-anchor's window: at most `window` sent and not yet processed by
  // node 2 (g_processed). Waits sleep, as etcd-anchor's do, instead of
  // spinning on 2 cores.
  void SendApp(const std::string& payload, uint64_t window, bool retry_full) {
    while (index - Processed() > window) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    ++index;
    while (peer->Send(App(index, payload)) == Peer::SendOutcome::kFull) {
      ++refused;
      if (!retry_full) return;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  // Waits until node 2 has processed `n` MsgApps in all; fails after
  // kNoProgressSeconds without progress, as etcd-anchor after 300 s. A
  // window near node 2's 4096-message queue can make it drop (as etcd's
  // recvc does): it stops reading at 3/4 full, but only after the frame in
  // hand (up to 1,800 MsgApps of 128 B).
  void WaitProcessed(uint64_t n) {
    uint64_t seen = Processed();
    absl::Time progress = absl::Now();
    while (Processed() < n) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (Processed() != seen) {
        seen = Processed();
        progress = absl::Now();
      } else if (absl::Now() - progress > absl::Seconds(kNoProgressSeconds)) {
        std::fprintf(stderr, "timed out: %lu of %lu processed (dropped by node 2?)\n",
                     static_cast<unsigned long>(seen), static_cast<unsigned long>(n));
        Fail();
      }
    }
  }
  double Ping() {
    raftpb::Message hb;
    hb.set_type(raftpb::MsgHeartbeat);
    hb.set_from(1);
    hb.set_to(2);
    hb.set_term(1);
    const uint64_t want = raft.responses() + 1;
    const int64_t start = NowNs();
    t->Send(std::move(hb));
    // A lost heartbeat fails the run, as etcd-anchor's does, instead of
    // hanging it.
    if (!raft.WaitResponses(want, std::chrono::seconds(10))) {
      std::fprintf(stderr, "no heartbeat response in 10 s\n");
      Fail();
    }
    return (NowNs() - start) / 1e3;
  }
};

void Throughput(Sender& s, Result* r) {
  const Flags& f = s.f;
  const std::string payload(f.size, 'x');
  {
    const uint64_t before = g_allocs.load();
    raftpb::Message m = App(1, payload);
    if (g_count_allocs) r->allocs_to_build_msg = static_cast<double>(g_allocs.load() - before);
  }
  for (int64_t i = 0; i < f.warmup; ++i) s.SendApp(payload, f.window, /*retry_full=*/true);
  s.WaitProcessed(f.warmup);
  s.Mark();
  s.refused = 0;
  const double cpu0 = CpuSeconds();
  const uint64_t allocs_before = g_allocs.load();
  const int64_t start = NowNs();
  for (uint64_t i = 0; i < f.n; ++i) s.SendApp(payload, f.window, /*retry_full=*/true);
  // Everything this process allocated while sending (all threads: the Raft
  // stand-in, the transport, gRPC), per message.
  if (g_count_allocs) {
    r->allocs_per_msg = static_cast<double>(g_allocs.load() - allocs_before) / f.n;
  }
  s.link.to_child.Send("wait-done");
  int64_t last = 0;
  double child_cpu = 0;
  if (std::sscanf(s.link.to_parent.Recv().c_str(), "%ld %lf", &last, &child_cpu) != 2) s.Fail();
  r->seconds = (last - start) / 1e9;
  r->msgs_per_sec = f.n / r->seconds;
  r->mb_per_sec = r->msgs_per_sec * f.size / 1e6;
  // One process: RUSAGE_SELF already covers node 2.
  r->cpu_seconds = CpuSeconds() - cpu0 + (f.one_process ? 0 : child_cpu);
  r->cpu_us_per_msg = r->cpu_seconds / f.n * 1e6;
  r->dropped = s.refused;
}

void Latency(Sender& s, Result* r) {
  for (int64_t i = 0; i < s.f.warmup; ++i) s.Ping();
  s.Mark();
  const double cpu0 = CpuSeconds();
  std::vector<double> us;
  for (uint64_t i = 0; i < s.f.n; ++i) us.push_back(s.Ping());
  r->cpu_seconds = CpuSeconds() - cpu0;  // the child's share is added at stop
  Percentiles(us, r);
  r->seconds = 0;
  for (double u : us) r->seconds += u / 1e6;
  r->msgs_per_sec = s.f.n / r->seconds;
}

void Snapshot(Sender& s, Result* r) {
  const std::string path = s.NewBody(s.f.size);
  const int64_t rss_before = ProcStatusKb("VmRSS");
  auto snap = testing::FileSnapshot(1, 2, 1, path);
  if (!snap.ok()) {
    std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
    s.Fail();
  }
  s.Mark();
  const double cpu0 = CpuSeconds();
  const int64_t start = NowNs();
  s.t->SendSnapshot(*std::move(snap));
  int reports = 1;
  if (s.proxy != nullptr) {
    // Break the link once, at --break-at of the data sent; then send the
    // snapshot again, as Raft does after ReportSnapshot(kFailure).
    const uint64_t total = s.f.size << 20;
    auto sent = [&] {
      for (const PeerMetrics& p : s.t->Metrics().peers) {
        if (p.id == 2) return p.snapshot_sending.done_bytes;
      }
      return uint64_t{0};
    };
    while (sent() < s.f.break_at * total) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s.proxy->SetMode(testing::FaultProxy::Mode::kReset);
    if (s.raft.WaitSnapshot(1)) {
      std::fprintf(stderr, "the snapshot finished before the break\n");
      s.Fail();
    }
    s.proxy->Heal();
    auto again = testing::FileSnapshot(1, 2, 1, path);
    if (!again.ok()) s.Fail();
    s.t->SendSnapshot(*std::move(again));
    reports = 2;
  }
  if (!s.raft.WaitSnapshot(reports)) {
    std::fprintf(stderr, "snapshot failed\n");
    s.Fail();
  }
  r->seconds = (NowNs() - start) / 1e9;
  if (s.proxy != nullptr) {
    for (const PeerMetrics& p : s.t->Metrics().peers) {
      if (p.id == 2) {
        r->resumed_bytes = static_cast<int64_t>(p.snapshot_send_resumed_bytes);
        // Data sent in all, less the size: what crossed twice.
        r->sent_twice_bytes =
            static_cast<int64_t>(p.snapshot_sent_data_bytes) - static_cast<int64_t>(s.f.size << 20);
      }
    }
  }
  r->cpu_seconds = CpuSeconds() - cpu0;
  r->mb_per_sec = s.f.size * 1048576.0 / 1e6 / r->seconds;
  r->sender_rss_kb = ProcStatusKb("VmHWM") - rss_before;  // growth during the transfer
  s.RemoveBody();
}

// etcd-anchor's hbload: heartbeat round trips with a gap, idle or while a
// 128 B MsgApp flood (window 2048) and one snapshot run to the same peer;
// sampling goes on until the snapshot is reported.
void HbLoad(Sender& s, Result* r) {
  const Flags& f = s.f;
  const std::string payload(f.size, 'x');
  for (int i = 0; i < 2000; ++i) s.Ping();
  for (int i = 0; i < 20000; ++i) s.SendApp(payload, 2048, /*retry_full=*/true);
  s.WaitProcessed(20000);
  // Opened before the flood starts: a failure here leaves no thread running.
  std::optional<SnapshotMessage> snap;
  if (f.load == 1) {
    auto opened = testing::FileSnapshot(1, 2, 1, s.NewBody(f.snap_mib));
    if (!opened.ok()) s.Fail();
    snap = *std::move(opened);
  }
  s.Mark();
  const uint64_t apps0 = Processed();
  s.refused = 0;
  std::atomic<bool> stop{false};
  std::thread flood;
  int64_t snap_start = 0, snap_end = 0;
  bool snap_done = f.load == 0, snap_ok = false;
  const double cpu0 = CpuSeconds();
  const int64_t start = NowNs();
  if (f.load == 1) {
    flood = std::thread([&] {
      while (!stop.load()) s.SendApp(payload, 2048, /*retry_full=*/false);
    });
    snap_start = NowNs();
    s.t->SendSnapshot(*std::move(snap));
  }
  std::vector<double> us;
  for (;;) {
    us.push_back(s.Ping());
    if (!snap_done && s.raft.SnapshotReported(&snap_ok)) {
      snap_done = true;
      snap_end = NowNs();
    }
    if (us.size() >= f.hb && snap_done) break;
    if (f.gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(f.gap_us));
  }
  stop.store(true);
  if (flood.joinable()) flood.join();
  if (f.load == 1 && !snap_ok) {
    // A rate of 0 would pass for a measurement.
    std::fprintf(stderr, "snapshot failed\n");
    s.Fail();
  }
  r->seconds = (NowNs() - start) / 1e9;
  r->cpu_seconds = CpuSeconds() - cpu0;
  r->flood_msgs_per_sec = (Processed() - apps0) / r->seconds;
  r->snap_mb_per_sec =
      f.load == 1 && snap_ok ? f.snap_mib * 1048576.0 / 1e6 / ((snap_end - snap_start) / 1e9) : 0;
  r->dropped = s.refused;
  Percentiles(us, r);
  s.RemoveBody();
}

Result TransportParent(const Flags& f, Link& link) {
  BenchRaft raft;
  int port = 0;
  auto t = StartNode(1, &raft, &port);
  // A node 2 that failed to start has exited without a port (it fails
  // the run, and one that hangs is killed), instead of hanging this one.
  const std::optional<std::string> got = link.to_parent.RecvWithin(30000);
  if (!got) KillRun(link, "node 2 did not start within 30 s");
  const int child_port = std::atoi(got->c_str());
  link.to_child.Send(std::to_string(port));
  // --break-at: what node 1 sends node 2 (snapshots) crosses a proxy.
  std::unique_ptr<testing::FaultProxy> proxy;
  if (f.break_at > 0 && f.mode == "snapshot") {
    auto p = testing::FaultProxy::Start(child_port);
    if (!p.ok()) FailRun(link);
    proxy = *std::move(p);
  }
  (void)t->AddPeer(2, {proxy ? proxy->url() : Url(child_port)});
  auto peer = t->GetPeer(2);
  // Both streams up (node 2 dials us).
  raftpb::Message probe = App(1, "");
  raftpb::Message hb_probe;
  hb_probe.set_type(raftpb::MsgHeartbeat);
  while (peer->Pick(probe) != Channel::kStreamMsgAppV2 ||
         peer->Pick(hb_probe) != Channel::kStreamMsg) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Result r;
  r.mode = f.mode;
  r.n = f.n;
  r.size = f.size;
  r.label = f.label;
  Sender s{f, link, raft, t.get(), peer, proxy.get()};
  if (f.mode == "throughput") {
    Throughput(s, &r);
  } else if (f.mode == "latency") {
    Latency(s, &r);
  } else if (f.mode == "snapshot") {
    Snapshot(s, &r);
  } else if (f.mode == "hbload") {
    HbLoad(s, &r);
  }
  link.to_child.Send("stop");
  int64_t child_hwm = 0;
  double child_cpu = 0;
  std::sscanf(link.to_parent.Recv().c_str(), "%ld %lf", &child_hwm, &child_cpu);
  if (f.mode != "throughput") {
    if (!f.one_process) r.cpu_seconds += child_cpu;
    if (f.mode == "latency") r.cpu_us_per_msg = r.cpu_seconds / f.n * 1e6;
  }
  if (f.mode == "snapshot") r.receiver_rss_kb = child_hwm;
  const int64_t own_hwm = ProcStatusKb("VmHWM");
  r.peak_rss_kb = std::max(own_hwm, child_hwm);
  // Both nodes, as etcd's one process.
  r.max_rss_mib = (f.one_process ? own_hwm : own_hwm + child_hwm) / 1024.0;
  t->Stop();
  return r;
}

// ------------------------------------------------------------ peers mode

// Child: --peers transports, each a peer of node 1.
void PeersChild(const Flags& f, Link& link) {
  std::vector<std::unique_ptr<BenchRaft>> rafts;
  std::vector<std::unique_ptr<Transport>> ts;
  std::string ports;
  for (int i = 0; i < f.peers; ++i) {
    rafts.push_back(std::make_unique<BenchRaft>());
    int port = 0;
    ts.push_back(StartNode(2 + i, rafts.back().get(), &port));
    absl::StrAppend(&ports, port, " ");
  }
  link.to_parent.Send(ports);
  const int parent_port = std::atoi(link.to_child.Recv().c_str());
  for (auto& t : ts) (void)t->AddPeer(1, {Url(parent_port)});
  (void)link.to_child.Recv();
  link.to_parent.Send("bye");
  for (auto& t : ts) t->Stop();
}

Result PeersParent(const Flags& f, Link& link) {
  const int64_t threads_before = ProcStatusKb("Threads");
  const int64_t rss_before = ProcStatusKb("VmRSS");
  BenchRaft raft;
  int port = 0;
  auto t = StartNode(1, &raft, &port);
  std::vector<int> ports;
  for (absl::string_view p : absl::StrSplit(link.to_parent.Recv(), ' ', absl::SkipEmpty())) {
    int v;
    if (absl::SimpleAtoi(p, &v)) ports.push_back(v);
  }
  link.to_child.Send(std::to_string(port));
  for (size_t i = 0; i < ports.size(); ++i) (void)t->AddPeer(2 + i, {Url(ports[i])});
  const int64_t start = NowNs();
  raftpb::Message probe = App(1, "");
  for (size_t i = 0; i < ports.size(); ++i) {
    auto peer = t->GetPeer(2 + i);
    while (peer->Pick(probe) != Channel::kStreamMsgAppV2)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Result r;
  r.mode = f.mode;
  r.n = ports.size();
  r.seconds = (NowNs() - start) / 1e9;  // until every stream was up
  // Idle a few heartbeat periods, then sample.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  r.threads = ProcStatusKb("Threads") - threads_before;
  r.peak_rss_kb = ProcStatusKb("VmRSS") - rss_before;
  link.to_child.Send("stop");
  (void)link.to_parent.Recv();
  t->Stop();
  return r;
}

// ----------------------------------------------------------- bare gRPC

// The same workloads over plain gRPC calls with the same protos and no
// transport logic: frames batched as our writer batches (256 KiB), on a
// server-streaming call in the same direction as ours (the receiver dials;
// throughput), a unary call
// (ping-pong latency), a client stream of 1 MiB chunks to an fsync'd file
// (snapshot).
class BareService final : public v1::RaftTransport::Service {
 public:
  BareService(const Flags& f, std::string dir) : f_(f), dir_(std::move(dir)) {}

  grpc::Status MessageStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::MessageFrame, v1::StreamControl>* stream) override {
    // Batched as the transport's writer batches a full queue: messages
    // go into one frame until it holds max_frame_bytes (256 KiB), so the
    // baseline and the transport pay the same per-Write costs.
    const size_t max_frame = TransportOptions().max_frame_bytes;
    const std::string payload(f_.size, 'x');
    v1::MessageFrame frame;
    size_t bytes = 0;
    for (uint64_t i = 1; i <= f_.n; ++i) {
      raftpb::Message* m = frame.add_messages();
      *m = App(i, payload);
      bytes += m->ByteSizeLong() + 5;  // plus the field's tag and length
      if (bytes >= max_frame || i == f_.n) {
        if (!stream->Write(frame)) break;
        frame.Clear();
        bytes = 0;
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status Pipeline(grpc::ServerContext*, const v1::PipelineRequest*,
                        v1::PipelineResponse*) override {
    return grpc::Status::OK;
  }
  grpc::Status Snapshot(grpc::ServerContext*, grpc::ServerReader<v1::SnapshotFrame>* reader,
                        v1::SnapshotResponse*) override {
    v1::SnapshotFrame f;
    const std::string path = dir_ + "/bare.snap";
    int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    while (reader->Read(&f)) {
      if (f.has_chunk()) (void)!write(fd, f.chunk().data(), f.chunk().size());
    }
    fsync(fd);
    close(fd);
    unlink(path.c_str());
    return grpc::Status::OK;
  }

 private:
  const Flags f_;
  const std::string dir_;
};

std::unique_ptr<grpc::Server> BareServer(BareService* svc, int* port) {
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  b.SetMaxReceiveMessageSize(64 << 20);
  b.RegisterService(svc);
  return b.BuildAndStart();
}

std::unique_ptr<v1::RaftTransport::Stub> BareStub(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::RaftTransport::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));
}

// Child: the receiver. Throughput: dials the parent and counts frames.
// Latency and snapshot: serves.
void BareChild(const Flags& f, Link& link) {
  const std::string dir = f.mode == "snapshot" ? TempDir("bare-recv") : "";
  BareService svc(f, dir);
  int port = 0;
  auto server = BareServer(&svc, &port);
  link.to_parent.Send(std::to_string(port));
  const int parent_port = std::atoi(link.to_child.Recv().c_str());
  if (f.mode == "throughput") {
    auto stub = BareStub(parent_port);
    grpc::ClientContext ctx;
    auto stream = stub->MessageStream(&ctx);
    v1::MessageFrame frame;
    uint64_t n = 0;
    int64_t first = 0, last = 0;
    while (stream->Read(&frame)) {
      n += frame.messages_size();
      if (first == 0) first = NowNs();
      if (n >= f.n) {
        last = NowNs();
        break;
      }
    }
    link.to_parent.Send(absl::StrCat(first, " ", last));
    ctx.TryCancel();
    (void)stream->Finish();
  }
  (void)link.to_child.Recv();
  link.to_parent.Send(std::to_string(ProcStatusKb("VmHWM")));
  server->Shutdown();
  RemoveDir(dir);
}

Result BareParent(const Flags& f, Link& link) {
  BareService svc(f, "");
  int port = 0;
  auto server = BareServer(&svc, &port);
  const int child_port = std::atoi(link.to_parent.Recv().c_str());
  link.to_child.Send(std::to_string(port));
  Result r;
  r.mode = f.mode;
  r.baseline = true;
  r.n = f.n;
  r.size = f.size;
  if (f.mode == "throughput") {
    int64_t first = 0, last = 0;
    std::sscanf(link.to_parent.Recv().c_str(), "%ld %ld", &first, &last);
    r.seconds = (last - first) / 1e9;
    r.msgs_per_sec = (f.n - 1) / r.seconds;
    r.mb_per_sec = r.msgs_per_sec * f.size / 1e6;
  } else if (f.mode == "latency") {
    auto stub = BareStub(child_port);
    std::vector<double> us;
    const uint64_t warmup = std::min<uint64_t>(1000, f.n / 10 + 1);
    v1::PipelineRequest req;
    req.mutable_message()->set_type(raftpb::MsgHeartbeat);
    for (uint64_t i = 0; i < f.n + warmup; ++i) {
      grpc::ClientContext ctx;
      v1::PipelineResponse resp;
      const int64_t start = NowNs();
      (void)stub->Pipeline(&ctx, req, &resp);
      if (i >= warmup) us.push_back((NowNs() - start) / 1e3);
    }
    Percentiles(us, &r);
    for (double u : us) r.seconds += u / 1e6;
  } else if (f.mode == "snapshot") {
    const std::string dir = TempDir("bare-send");
    const std::string path = dir + "/snap.data";
    {
      std::ofstream out(path, std::ios::binary);
      std::string block(1 << 20, 's');
      for (uint64_t i = 0; i < f.size; ++i) out.write(block.data(), block.size());
    }
    const int64_t rss_before = ProcStatusKb("VmRSS");
    auto stub = BareStub(child_port);
    const int64_t start = NowNs();
    grpc::ClientContext ctx;
    v1::SnapshotResponse resp;
    auto w = stub->Snapshot(&ctx, &resp);
    int fd = open(path.c_str(), O_RDONLY);
    v1::SnapshotFrame frame;
    std::string* buf = frame.mutable_chunk();
    for (;;) {
      buf->resize(1 << 20);
      ssize_t n = read(fd, &(*buf)[0], buf->size());
      if (n <= 0) break;
      buf->resize(n);
      if (!w->Write(frame)) break;
    }
    close(fd);
    w->WritesDone();
    (void)w->Finish();
    r.seconds = (NowNs() - start) / 1e9;
    r.mb_per_sec = f.size * 1048576.0 / 1e6 / r.seconds;
    r.sender_rss_kb = ProcStatusKb("VmHWM") - rss_before;
    RemoveDir(dir);
  }
  link.to_child.Send("stop");
  const int64_t child_hwm = std::atoll(link.to_parent.Recv().c_str());
  if (f.mode == "snapshot") r.receiver_rss_kb = child_hwm;
  r.peak_rss_kb = std::max(ProcStatusKb("VmHWM"), child_hwm);
  server->Shutdown();
  return r;
}

}  // namespace
}  // namespace raftgrpc::bench

int main(int argc, char** argv) {
  using namespace raftgrpc::bench;
  const Flags f = ParseFlags(argc, argv);
  g_count_allocs = f.count_allocs;
  g_snapshot_resume = f.resume;
  g_snapshot_direct_io = f.direct_io;
  g_snapshot_io_adaptive = f.adaptive_io;
  if (f.mode != "throughput" && f.mode != "latency" && f.mode != "snapshot" && f.mode != "peers" &&
      f.mode != "hbload") {
    std::fprintf(stderr, "--mode must be throughput, latency, snapshot, hbload or peers\n");
    return 2;
  }
  g_urgent_at_once = f.urgent_at_once;
  g_one_callback_thread = f.one_callback_thread;
  if (f.glibc_heap == "huge" && !HugeTunablesSet()) {
    // glibc reads GLIBC_TUNABLES only when the program starts, and
    // hugetlb has no mallopt: start again with them set.
    std::string t = HugeTunables();
    if (const char* cur = std::getenv("GLIBC_TUNABLES"); cur != nullptr && *cur != '\0') {
      t = std::string(cur) + ":" + t;
    }
    setenv("GLIBC_TUNABLES", t.c_str(), 1);
    execv("/proc/self/exe", argv);
    std::perror("transport_bench: starting again with GLIBC_TUNABLES");
    return 3;
  }
  if (f.glibc_heap == "kept" || f.glibc_heap == "huge") {
    // The node's choice, made before the fork so that both nodes run with
    // it. Fixed thresholds also turn off glibc's adaptive ones; setting
    // only one of the two was worse than neither (bench/README.md).
    // (huge: the values its tunables set already; this also finds a
    // sanitizer.)
    if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 ||
        mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1) {
      // ASan's and TSan's allocators replace glibc's and refuse mallopt.
      std::fprintf(stderr, "mallopt refused the heap settings: the heap is not glibc's\n");
      return 3;
    }
    g_glibc_heap = f.glibc_heap == "huge" ? "huge" : "kept";
  } else if (f.glibc_heap != "default") {
    std::fprintf(stderr, "--glibc-heap must be default, kept or huge\n");
    return 2;
  }
  if (f.baseline && f.mode == "hbload") {
    std::fprintf(stderr, "--baseline has no hbload mode\n");
    return 2;
  }
  if (f.baseline && f.mode == "peers") {
    std::fprintf(stderr, "--baseline has no peers mode\n");
    return 2;
  }
  // Checked before forking: node 2 failing to make its directory there
  // would leave node 1 waiting on the pipe for ever.
  struct stat st;
  if (!f.snap_dir.empty() && (::stat(f.snap_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    std::fprintf(stderr, "--snap-dir=%s is not a directory\n", f.snap_dir.c_str());
    return 2;
  }
  Link link = MakeLink();
  void* shared = mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  g_processed = new (shared) std::atomic<uint64_t>(0);
  if (f.one_process) {
    if (f.mode == "peers" || f.baseline) {
      std::fprintf(stderr, "--one-process is for the transport's own modes\n");
      return 2;
    }
    std::thread node2([&] { TransportChild(f, link); });
    Result r = TransportParent(f, link);
    node2.join();
    Print(r, f.json);
    return 0;
  }
  // Fork before any gRPC state exists in this process.
  const pid_t child = fork();
  if (child < 0) return 1;
  link.child = child;
  if (child == 0) {
    if (f.mode == "peers") {
      PeersChild(f, link);
    } else if (f.baseline) {
      BareChild(f, link);
    } else {
      TransportChild(f, link);
    }
    std::_Exit(0);
  }
  Result r;
  if (f.mode == "peers") {
    r = PeersParent(f, link);
  } else if (f.baseline) {
    r = BareParent(f, link);
  } else {
    r = TransportParent(f, link);
  }
  int status = 0;
  waitpid(child, &status, 0);
  Print(r, f.json);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
