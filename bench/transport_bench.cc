// transport_bench: end-to-end load between two transports in separate
// processes on loopback, and the same workloads over bare gRPC (--baseline)
// with the same protos and no transport logic, so every figure can be read
// as a ratio to bare gRPC measured on the same machine in the same run.
//
//   --mode=throughput  N MsgApp (one entry of --size bytes) from node 1 to
//                      node 2; msgs/s and MB/s counted at node 2's Process.
//   --mode=latency     MsgHeartbeat -> MsgHeartbeatResp ping-pong, N times;
//                      p50/p90/p99/max in microseconds.
//   --mode=snapshot    a --size MiB snapshot from a file to node 2's disk
//                      (fsync'd); MB/s, both sides' peak RSS.
//   --mode=peers       node 1 with --peers idle peers (streams up, link
//                      heartbeats); threads and RSS of node 1.
//   --json             one JSON object: mode, n, size, seconds, msgs_per_sec,
//                      mb_per_sec, p50_us, p90_us, p99_us, max_us,
//                      peak_rss_kb (unused keys omitted).
//
// The receiver (node 2, or the peers) is a forked child process, created
// before any gRPC state exists in the parent.
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
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
#include "testing/messages.h"
#include "testing/snapshot_file.h"
#include "transport/transport.h"

// Counts heap allocations in this process (all threads), to report the
// sender's allocations per message in throughput mode.
// Every non-aligned replaceable form is defined here: a partial set would pair
// e.g. the library's nothrow new with this free-based delete, which ASan
// reports as alloc-dealloc-mismatch (libgrpc uses nothrow new).
static std::atomic<uint64_t> g_allocs{0};
static void* CountedAlloc(size_t n) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
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
};

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
    else if (a == "--json")
      f.json = true;
    else if (a == "--baseline")
      f.baseline = true;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
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
  std::string Recv() {
    std::string out;
    char c;
    while (read(rd, &c, 1) == 1 && c != '\n') out += c;
    return out;
  }
};

struct Link {
  Pipe to_child, to_parent;
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
class BenchRaft : public Raft {
 public:
  absl::Status Process(const raftpb::Message& m) override {
    if (m.type() == raftpb::MsgApp) {
      const int64_t now = NowNs();
      const uint64_t n = apps_.fetch_add(1, std::memory_order_relaxed) + 1;
      bytes_.fetch_add(m.entries_size() ? m.entries(0).data().size() : 0,
                       std::memory_order_relaxed);
      if (n == 1) first_ns_ = now;
      if (n == want_) {
        last_ns_ = now;
        Notify();
      }
      // Acks, as a follower's MsgAppResp: the leader keeps a bounded window.
      if (echo_ != nullptr && (n % kAckEvery == 0 || n == want_)) {
        raftpb::Message r;
        r.set_type(raftpb::MsgAppResp);
        r.set_from(m.to());
        r.set_to(m.from());
        r.set_index(n);
        echo_->Send(std::move(r));
      }
    } else if (m.type() == raftpb::MsgHeartbeat && echo_ != nullptr) {
      raftpb::Message r;
      r.set_type(raftpb::MsgHeartbeatResp);
      r.set_from(m.to());
      r.set_to(m.from());
      r.set_context(m.context());
      echo_->Send(std::move(r));
    } else if (m.type() == raftpb::MsgAppResp) {
      uint64_t prev = acked_.load();
      while (m.index() > prev && !acked_.compare_exchange_weak(prev, m.index())) {
      }
    } else if (m.type() == raftpb::MsgHeartbeatResp) {
      std::lock_guard<std::mutex> l(mu_);
      ++responses_;
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
    std::lock_guard<std::mutex> l(mu_);
    snapshot_ok_ = s == SnapshotStatus::kFinish;
    ++snapshot_reports_;
    cv_.notify_all();
  }

  void Expect(uint64_t n) { want_ = n; }
  void EchoThrough(Transport* t) { echo_ = t; }
  void WaitDone() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_; });
  }
  void WaitResponses(uint64_t n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return responses_ >= n; });
  }
  bool WaitSnapshot() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return snapshot_reports_ > 0; });
    return snapshot_ok_;
  }
  int64_t first_ns() const { return first_ns_; }
  uint64_t acked() const { return acked_.load(); }
  static constexpr uint64_t kAckEvery = 256;
  int64_t last_ns() const { return last_ns_; }

 private:
  void Notify() {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  std::atomic<uint64_t> apps_{0}, bytes_{0}, acked_{0};
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

std::string TempDir(const char* tag) {
  std::string t = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                               "/raftgrpc-bench-", tag, "-XXXXXX");
  if (mkdtemp(&t[0]) == nullptr) std::abort();
  return t;
}

std::unique_ptr<Transport> StartNode(uint64_t id, Raft* raft, int* port,
                                     const std::string& snap_dir = "") {
  TransportOptions o;
  o.local_id = id;
  o.cluster_id = 0xbe;
  o.snapshot_dir = snap_dir;
  // BENCH_LOG=1 keeps the transport's log lines (stderr), e.g. the
  // receiver's per-snapshot timing.
  if (std::getenv("BENCH_LOG") == nullptr) o.log = [](const std::string&) {};
  auto t = Transport::Create(o, raft);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    std::exit(1);
  }
  auto p = (*t)->Serve("127.0.0.1:0");
  if (!p.ok()) std::exit(1);
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
}

// ------------------------------------------------------- transport workloads

// Child: node 2. Serves, learns node 1's port, runs until told to stop.
void TransportChild(const Flags& f, Link& link) {
  BenchRaft raft;
  std::string snap_dir = f.mode == "snapshot" ? TempDir("recv") : "";
  int port = 0;
  auto t = StartNode(2, &raft, &port, snap_dir);
  raft.EchoThrough(t.get());
  raft.Expect(f.n);
  link.to_parent.Send(std::to_string(port));
  const int parent_port = std::atoi(link.to_child.Recv().c_str());
  (void)t->AddPeer(1, {Url(parent_port)});
  if (f.mode == "throughput") {
    raft.WaitDone();
    link.to_parent.Send(absl::StrCat(raft.first_ns(), " ", raft.last_ns()));
  }
  (void)link.to_child.Recv();  // "stop"
  link.to_parent.Send(std::to_string(ProcStatusKb("VmHWM")));
  t->Stop();
  if (!snap_dir.empty()) (void)!std::system(absl::StrCat("rm -rf ", snap_dir).c_str());
}

Result TransportParent(const Flags& f, Link& link) {
  BenchRaft raft;
  int port = 0;
  auto t = StartNode(1, &raft, &port);
  const int child_port = std::atoi(link.to_parent.Recv().c_str());
  link.to_child.Send(std::to_string(port));
  (void)t->AddPeer(2, {Url(child_port)});
  auto peer = t->GetPeer(2);
  // Streams up (node 2 dials us).
  raftpb::Message probe = App(1, "");
  while (peer->Pick(probe) != Channel::kStreamMsgAppV2)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Result r;
  r.mode = f.mode;
  r.n = f.n;
  r.size = f.size;
  if (f.mode == "throughput") {
    const std::string payload(f.size, 'x');
    // Raft's flow control: at most kWindow unacknowledged messages, fewer
    // than the receiver's inbound queue holds, so nothing is dropped there.
    constexpr uint64_t kWindow = 3072;
    {
      const uint64_t before = g_allocs.load();
      raftpb::Message m = App(1, payload);
      r.allocs_to_build_msg = static_cast<double>(g_allocs.load() - before);
    }
    const uint64_t allocs_before = g_allocs.load();
    for (uint64_t i = 1; i <= f.n; ++i) {
      while (i > raft.acked() + kWindow) std::this_thread::yield();
      while (peer->Send(App(i, payload)) == Peer::SendOutcome::kFull) std::this_thread::yield();
    }
    // Everything this process allocated while sending (all threads: the
    // Raft stand-in, the transport, gRPC), per message.
    r.allocs_per_msg = static_cast<double>(g_allocs.load() - allocs_before) / f.n;
    const std::string times = link.to_parent.Recv();
    int64_t first = 0, last = 0;
    std::sscanf(times.c_str(), "%ld %ld", &first, &last);
    r.seconds = (last - first) / 1e9;
    r.msgs_per_sec = (f.n - 1) / r.seconds;
    r.mb_per_sec = r.msgs_per_sec * f.size / 1e6;
  } else if (f.mode == "latency") {
    std::vector<double> us;
    const uint64_t warmup = std::min<uint64_t>(1000, f.n / 10 + 1);
    for (uint64_t i = 0; i < f.n + warmup; ++i) {
      raftpb::Message hb;
      hb.set_type(raftpb::MsgHeartbeat);
      hb.set_from(1);
      hb.set_to(2);
      hb.set_term(1);
      const int64_t start = NowNs();
      t->Send(std::move(hb));
      raft.WaitResponses(i + 1);
      if (i >= warmup) us.push_back((NowNs() - start) / 1e3);
    }
    Percentiles(us, &r);
    r.seconds = 0;
    for (double u : us) r.seconds += u / 1e6;
  } else if (f.mode == "snapshot") {
    const std::string dir = TempDir("send");
    const std::string path = dir + "/snap.data";
    {
      std::ofstream out(path, std::ios::binary);
      std::string block(1 << 20, 's');
      for (uint64_t i = 0; i < f.size; ++i) out.write(block.data(), block.size());
    }
    const int64_t rss_before = ProcStatusKb("VmRSS");
    auto snap = testing::FileSnapshot(1, 2, 1, path);
    if (!snap.ok()) {
      std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
      std::exit(1);
    }
    const int64_t start = NowNs();
    t->SendSnapshot(*std::move(snap));
    if (!raft.WaitSnapshot()) {
      std::fprintf(stderr, "snapshot failed\n");
      std::exit(1);
    }
    r.seconds = (NowNs() - start) / 1e9;
    r.mb_per_sec = f.size * 1048576.0 / 1e6 / r.seconds;
    r.sender_rss_kb = ProcStatusKb("VmHWM") - rss_before;  // growth during the transfer
    (void)!std::system(absl::StrCat("rm -rf ", dir).c_str());
  }
  link.to_child.Send("stop");
  const int64_t child_hwm = std::atoll(link.to_parent.Recv().c_str());
  if (f.mode == "snapshot") r.receiver_rss_kb = child_hwm;
  r.peak_rss_kb = std::max(ProcStatusKb("VmHWM"), child_hwm);
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
// transport logic: one message per frame on a server-streaming call in the
// same direction as ours (the receiver dials; throughput), a unary call
// (ping-pong latency), a client stream of 1 MiB chunks to an fsync'd file
// (snapshot).
class BareService final : public v1::RaftTransport::Service {
 public:
  BareService(const Flags& f, std::string dir) : f_(f), dir_(std::move(dir)) {}

  grpc::Status MessageStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::MessageFrame, v1::StreamControl>* stream) override {
    const std::string payload(f_.size, 'x');
    v1::MessageFrame frame;
    for (uint64_t i = 1; i <= f_.n; ++i) {
      frame.Clear();
      *frame.add_messages() = App(i, payload);
      if (!stream->Write(frame)) break;
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
  if (!dir.empty()) (void)!std::system(absl::StrCat("rm -rf ", dir).c_str());
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
    (void)!std::system(absl::StrCat("rm -rf ", dir).c_str());
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
  if (f.mode != "throughput" && f.mode != "latency" && f.mode != "snapshot" && f.mode != "peers") {
    std::fprintf(stderr, "--mode must be throughput, latency, snapshot or peers\n");
    return 2;
  }
  if (f.baseline && f.mode == "peers") {
    std::fprintf(stderr, "--baseline has no peers mode\n");
    return 2;
  }
  // Fork before any gRPC state exists in this process.
  Link link = MakeLink();
  const pid_t child = fork();
  if (child < 0) return 1;
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
