// Microbenchmarks of the hot paths: raftpb encode/decode, the v2 codec,
// Peer::Send with pick (and its heap allocations per message), and frame
// batching. Run: ./bazelw run -c opt //bench:micro_bench
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "transport/snapshot/crc32c.h"
#include "peer/peer.h"
#include "proto/transport.pb.h"
#include "testing/messages.h"
#include "transport/stream/msgappv2_codec.h"

// Counts heap allocations, to report allocations per operation.
static std::atomic<uint64_t> g_allocs{0};
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace raftgrpc::bench {
namespace {

raftpb::Message App(uint64_t index, size_t bytes, int entries = 1) {
  raftpb::Message m = testing::App(1, 2, 5, index - 1, std::string(bytes, 'x'), entries);
  m.set_commit(index - 1);
  return m;
}

// The snapshot checksum: one pass over a chunk, and combining a chunk's
// checksum into the whole transfer's (what replaced a second pass).
void BM_Crc32cExtend(benchmark::State& state) {
  const std::string data(state.range(0), 'x');
  uint32_t crc = 0;
  for (auto _ : state) benchmark::DoNotOptimize(crc = Crc32cExtend(crc, data.data(), data.size()));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Crc32cExtend)->Arg(16 << 10)->Arg(1 << 20);

void BM_Crc32cCombine(benchmark::State& state) {
  uint32_t crc = 1;
  for (auto _ : state) benchmark::DoNotOptimize(crc = Crc32cCombine(crc, 0x1234, state.range(0)));
}
BENCHMARK(BM_Crc32cCombine)->Arg(16 << 10)->Arg(1 << 20);

void BM_RaftpbEncodeMsgApp(benchmark::State& state) {
  const raftpb::Message m = App(100, state.range(0));
  std::string out;
  for (auto _ : state) {
    out.clear();
    m.SerializeToString(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_RaftpbEncodeMsgApp)->Arg(128)->Arg(4096);

void BM_RaftpbDecodeMsgApp(benchmark::State& state) {
  const std::string wire = App(100, state.range(0)).SerializeAsString();
  raftpb::Message m;
  for (auto _ : state) {
    m.ParseFromString(wire);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(state.iterations() * wire.size());
}
BENCHMARK(BM_RaftpbDecodeMsgApp)->Arg(128)->Arg(4096);

void BM_RaftpbHeartbeatRoundTrip(benchmark::State& state) {
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);
  hb.set_from(1);
  hb.set_to(2);
  hb.set_term(9);
  hb.set_commit(1000);
  std::string wire;
  raftpb::Message back;
  for (auto _ : state) {
    wire.clear();
    hb.SerializeToString(&wire);
    back.ParseFromString(wire);
    benchmark::DoNotOptimize(back);
  }
}
BENCHMARK(BM_RaftpbHeartbeatRoundTrip);

// A stream of consecutive MsgApp through the v2 encoder (to wire bytes), a
// parse and the decoder, one frame of `batch` records at a time.
void BM_MsgAppV2Codec(benchmark::State& state) {
  const int batch = state.range(0);
  MsgAppV2Encoder enc;
  MsgAppV2Decoder dec(2, 1);
  v1::MsgAppV2Frame frame;
  std::string wire;
  uint64_t index = 1;
  for (auto _ : state) {
    wire.clear();
    for (int i = 0; i < batch; ++i) {
      raftpb::Message m = App(index++, 128);
      enc.Encode(m, &wire);
    }
    frame.ParseFromString(wire);
    for (v1::MsgAppV2Record& r : *frame.mutable_records()) {
      auto m = dec.Decode(std::move(r));
      benchmark::DoNotOptimize(m);
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_MsgAppV2Codec)->Arg(1)->Arg(64);

// Frame batching as the stream writer does it: messages moved into a
// reused frame, then serialized once.
void BM_FrameBatching(benchmark::State& state) {
  const int batch = state.range(0);
  v1::MessageFrame frame;
  std::string wire;
  std::vector<raftpb::Message> msgs;
  for (int i = 0; i < batch; ++i) msgs.push_back(App(i + 1, 128));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<raftpb::Message> batch_msgs = msgs;
    state.ResumeTiming();
    frame.Clear();
    for (raftpb::Message& m : batch_msgs) *frame.add_messages() = std::move(m);
    wire.clear();
    frame.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_FrameBatching)->Arg(1)->Arg(64)->Arg(512);

// Peer::Send on the hot path: pick, pause check, non-blocking enqueue into
// a channel that accepts and discards (so only the Peer's own cost shows).
class Discard : public StreamWriter {
 public:
  bool Working() const override { return true; }
  bool TrySend(raftpb::Message&& m) override {
    slot_ = std::move(m);  // reuses the slot's storage: no allocation
    return true;
  }
  void Stop() override {}
  bool Attach(std::unique_ptr<OutgoingConn>& conn) override {
    conn.reset();
    return true;
  }

 private:
  raftpb::Message slot_;
};

class NullSnapshots : public SnapshotSender {
 public:
  void Send(SnapshotMessage snap) override { snap.Close(false); }
  void Stop() override {}
};

class DiscardFactory : public ChannelFactory {
 public:
  std::unique_ptr<MessageChannel> NewPipeline(const PeerEnv&) override {
    return std::make_unique<Discard>();
  }
  std::unique_ptr<StreamWriter> NewStreamWriter(StreamType, const PeerEnv&) override {
    return std::make_unique<Discard>();
  }
  std::unique_ptr<SnapshotSender> NewSnapshotSender(const PeerEnv&) override {
    return std::make_unique<NullSnapshots>();
  }
  std::unique_ptr<StreamReader> NewStreamReader(StreamType, const PeerEnv&) override {
    return nullptr;
  }
};

class NullRaft : public Raft {
 public:
  absl::Status Process(const raftpb::Message&) override { return absl::OkStatus(); }
  bool IsIdRemoved(uint64_t) override { return false; }
  void ReportUnreachable(uint64_t) override {}
  void ReportSnapshot(uint64_t, SnapshotStatus) override {}
};

void BM_PeerSend(benchmark::State& state) {
  NullRaft raft;
  DiscardFactory factory;
  auto peer = Peer::Create(1, 2, {"http://127.0.0.1:1"}, &raft, factory);
  if (!peer.ok()) {
    state.SkipWithError("peer");
    return;
  }
  // Messages are built in batches outside the timed region; allocations
  // are counted only inside Send (the channel's slot reuses its storage).
  constexpr size_t kBatch = 4096;
  const raftpb::Message m = App(1, 128);
  std::vector<raftpb::Message> batch(kBatch, m);
  size_t next = 0;
  uint64_t allocs = 0, sends = 0;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      for (auto& x : batch) x = m;
      next = 0;
      state.ResumeTiming();
    }
    const uint64_t before = g_allocs.load(std::memory_order_relaxed);
    benchmark::DoNotOptimize((*peer)->Send(std::move(batch[next++])));
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    ++sends;
  }
  state.counters["allocs_per_send"] = benchmark::Counter(static_cast<double>(allocs) / sends);
  (*peer)->Stop();
}
BENCHMARK(BM_PeerSend);

void BM_PeerPick(benchmark::State& state) {
  NullRaft raft;
  DiscardFactory factory;
  auto peer = Peer::Create(1, 2, {"http://127.0.0.1:1"}, &raft, factory);
  const raftpb::Message m = App(1, 128);
  for (auto _ : state) benchmark::DoNotOptimize((*peer)->Pick(m));
  (*peer)->Stop();
}
BENCHMARK(BM_PeerPick);

}  // namespace
}  // namespace raftgrpc::bench
