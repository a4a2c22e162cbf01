// Stream channels end to end: two (or three) transports on 127.0.0.1 with
// real gRPC servers and streams.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "peer/peer.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/fake_raft.h"
#include "testing/log_lines.h"
#include "testing/messages.h"
#include "testing/status_macros.h"
#include "transport/internal/channel_pool.h"
#include "transport/internal/metadata.h"
#include "transport/stream/stream_reader.h"
#include "transport/stream/stream_writer.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

raftpb::Message Msg(raftpb::MessageType type, uint64_t from, uint64_t to, uint64_t index) {
  raftpb::Message m = testing::Msg(type, from, to);
  m.set_term(3);
  m.set_index(index);
  m.set_commit(index);
  return m;
}

// Sends through the peer, retrying while its queue is full, so that every
// message is accepted exactly once (what Raft's own flow control achieves).
void SendPaced(Peer& peer, raftpb::Message m) {
  while (peer.Send(m) == Peer::SendOutcome::kFull) std::this_thread::yield();
}

std::unique_ptr<Cluster> StartCluster(int n, TransportOptions opts = {}) {
  auto c = Cluster::Start(n, opts);
  EXPECT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->WaitAllStreams()) << "streams did not come up";
  return *std::move(c);
}

TEST(StreamTest, EveryMessageTypeCrossesTheMessageStream) {
  auto c = StartCluster(2);
  auto peer = c->t(1).GetPeer(2);
  const auto* desc = raftpb::MessageType_descriptor();
  std::vector<raftpb::Message> sent;
  for (int i = 0; i < desc->value_count(); ++i) {
    auto type = static_cast<raftpb::MessageType>(desc->value(i)->number());
    if (type == raftpb::MsgApp || type == raftpb::MsgSnap) continue;  // other channels
    raftpb::Message m = Msg(type, 1, 2, i);
    m.set_logterm(7);
    m.set_reject(true);
    m.set_rejecthint(9);
    m.set_context("ctx");
    m.add_entries()->set_data("entry");
    ASSERT_EQ(peer->Pick(m), Channel::kStreamMsg) << desc->value(i)->name();
    sent.push_back(m);
    c->t(1).Send(m);
  }
  ASSERT_TRUE(c->raft(2).WaitForMessages(sent.size()));
  auto got = c->raft(2).messages();
  ASSERT_EQ(got.size(), sent.size());
  // One stream, one inbound queue per lane: MsgProp may overtake, so compare
  // as a set keyed by index.
  std::map<uint64_t, raftpb::Message> by_index;
  for (auto& m : got) by_index[m.index()] = m;
  for (auto& m : sent) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(by_index[m.index()], m))
        << m.ShortDebugString();
  }
  EXPECT_EQ(peer->stats().sent[static_cast<int>(Channel::kStreamMsg)], sent.size());
}

TEST(StreamTest, MsgAppCrossesTheV2StreamReconstructedExactly) {
  auto c = StartCluster(2);
  auto peer = c->t(1).GetPeer(2);
  std::vector<raftpb::Message> sent;
  uint64_t index = 0;
  for (int i = 0; i < 200; ++i) {
    raftpb::Message m;
    m.set_type(raftpb::MsgApp);
    m.set_from(1);
    m.set_to(2);
    m.set_term(i < 100 ? 1 : 2);  // a term change forces a full record
    m.set_logterm(i <= 100 ? 1 : 2);
    m.set_index(index);
    m.set_commit(index);
    int n = i % 3;
    for (int k = 0; k < n; ++k) {
      raftpb::Entry* e = m.add_entries();
      e->set_term(m.term());
      e->set_index(++index);
      e->set_data(std::string(10 + k, 'x'));
    }
    ASSERT_EQ(peer->Pick(m), Channel::kStreamMsgAppV2);
    sent.push_back(m);
    SendPaced(*peer, m);
  }
  ASSERT_TRUE(c->raft(2).WaitForMessages(sent.size()));
  auto got = c->raft(2).messages();
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got[i], sent[i]))
        << i << ": " << got[i].ShortDebugString() << " vs " << sent[i].ShortDebugString();
  }
}

TEST(StreamTest, HundredThousandMessagesArriveExactlyOnceInOrder) {
  auto c = StartCluster(2);
  auto peer = c->t(1).GetPeer(2);
  constexpr int kN = 100000;
  std::vector<uint64_t> seen;
  seen.reserve(kN);
  std::mutex mu;
  c->raft(2).set_keep_messages(false);
  c->raft(2).set_on_process([&](const raftpb::Message& m) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(m.index());
  });
  // Like Raft's MaxInflightMsgs (512 in etcd), keep at most a window in
  // flight so the receiver's 4096-slot queue cannot overflow however slow
  // its Process is (e.g. under TSan).
  constexpr int kWindow = 2048;
  for (int i = 0; i < kN; ++i) {
    if (i >= kWindow && i % 256 == 0) {
      ASSERT_TRUE(c->raft(2).WaitForMessages(i - kWindow, absl::Seconds(60)));
    }
    SendPaced(*peer, Msg(raftpb::MsgHeartbeat, 1, 2, i));
  }
  ASSERT_TRUE(c->raft(2).WaitForMessages(kN, absl::Seconds(60)));
  EXPECT_EQ(c->t(2).GetPeer(1)->stats().inbound_dropped_full, 0u);
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(seen.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) ASSERT_EQ(seen[i], static_cast<uint64_t>(i)) << "at " << i;
  PeerStats ps = peer->stats();
  EXPECT_EQ(ps.sent[static_cast<int>(Channel::kStreamMsg)], static_cast<uint64_t>(kN));
  // Batching: what queues during a write goes out as one frame.
  auto* w = dynamic_cast<const GrpcStreamWriter*>(peer->writer(StreamType::kMessage));
  ASSERT_NE(w, nullptr);
  StreamWriterStats ws = w->stats();
  EXPECT_GE(ws.messages, static_cast<uint64_t>(kN));
  EXPECT_LT(ws.frames * 4, ws.messages) << ws.frames << " frames for " << ws.messages;
  std::printf("%lu messages in %lu frames (%.1f per frame)\n", ws.messages, ws.frames,
              static_cast<double>(ws.messages) / ws.frames);
  EXPECT_TRUE(c->raft(1).unreachable().empty());
}

TEST(StreamTest, ReceiverRestartFallsBackToPipelineThenReconnects) {
  auto c = StartCluster(2);
  ASSERT_TRUE(c->StreamUp(1, 2));
  c->StopNode(2);
  // 1's writers lose the streams 2 had dialled: Pick falls back.
  ASSERT_TRUE(WaitUntil([&] { return !c->StreamUp(1, 2) && !c->MsgAppV2Up(1, 2); }));
  auto peer = c->t(1).GetPeer(2);
  EXPECT_EQ(peer->Pick(Msg(raftpb::MsgApp, 1, 2, 0)), Channel::kPipeline);

  absl::Time restart = absl::Now();
  ASSERT_TRUE(c->RestartNode(2).ok());
  ASSERT_TRUE(c->WaitAllStreams());
  absl::Duration took = absl::Now() - restart;
  std::printf("streams re-established %s after restart\n", absl::FormatDuration(took).c_str());

  c->t(1).Send(Msg(raftpb::MsgHeartbeat, 1, 2, 42));
  ASSERT_TRUE(c->raft(2).WaitForMessages(1));
  EXPECT_EQ(c->raft(2).messages().back().index(), 42u);
  EXPECT_GT(c->t(1).ActiveSince(2), absl::Time());
}

TEST(StreamTest, LinkHeartbeatsKeepAnIdleStreamAlive) {
  TransportOptions opts;
  opts.conn_read_timeout = absl::Milliseconds(300);
  auto c = StartCluster(2, opts);
  auto peer = c->t(2).GetPeer(1);
  // Idle for several read timeouts: link heartbeats (every 100 ms) must keep
  // both streams up without a single redial.
  uint64_t delivered_before = c->raft(1).message_count();
  absl::SleepFor(absl::Milliseconds(1500));  // the property under test is time passing
  EXPECT_TRUE(c->StreamUp(2, 1));
  EXPECT_TRUE(c->MsgAppV2Up(2, 1));
  EXPECT_EQ(c->raft(1).message_count(), delivered_before);  // heartbeats never reach Raft
  EXPECT_TRUE(c->raft(1).unreachable().empty());
  EXPECT_TRUE(c->raft(2).unreachable().empty());
}

// A newer stream for the same peer and type replaces the attached one, which
// the server closes: a raw dial claiming to be node 2 displaces 2's own
// stream; 2's reader redials and displaces the raw one in turn.
TEST(StreamTest, NewerStreamReplacesAndClosesTheOlder) {
  auto c = StartCluster(2);
  auto* reader2 =
      dynamic_cast<const GrpcStreamReader*>(c->t(2).GetPeer(1)->reader(StreamType::kMessage));
  ASSERT_NE(reader2, nullptr);
  const uint64_t connects = reader2->stats().connects;

  auto ch = grpc::CreateChannel(c->node(1).url.substr(strlen("http://")),
                                grpc::InsecureChannelCredentials());
  auto stub = v1::RaftTransport::NewStub(ch);
  grpc::ClientContext ctx;
  TransportOptions as2;
  as2.local_id = 2;
  as2.cluster_id = 0x1000;
  AddIdentityMetadata(&ctx, as2, 1);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto raw = stub->MessageStream(&ctx);

  // 2's original stream was closed by ours; its reader dialled again.
  ASSERT_TRUE(WaitUntil([&] { return reader2->stats().connects > connects; }));
  // ... which closed ours: the server ends the call (no deadline needed).
  v1::MessageFrame f;
  while (raw->Read(&f)) {
  }
  grpc::Status s = raw->Finish();
  EXPECT_NE(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  // And node 2's new stream carries traffic.
  ASSERT_TRUE(WaitUntil([&] { return c->StreamUp(1, 2); }));
  c->t(1).Send(Msg(raftpb::MsgHeartbeat, 1, 2, 7));
  ASSERT_TRUE(c->raft(2).WaitForMessages(1));
  EXPECT_EQ(c->raft(2).messages()[0].commit(), 7u);
}

// Stream heartbeats, the reader's half: a dialler that announced them (one
// StreamControl) and then fell silent is frozen or cut off, and the writer
// drops its stream within the detection bound, although
// every write still succeeds; a dialler that never sent one (an older or
// other-language reader) is not judged by them.
TEST(StreamWriterLivenessTest, AReaderWhoseHeartbeatsStopIsDropped) {
  testing::FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 0x1000;
  o.conn_read_timeout = absl::Milliseconds(600);  // silence limit 400 ms
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Transport> t, Transport::Create(o, &raft));
  ASSERT_OK_AND_ASSIGN(int port, t->Serve("127.0.0.1:0", grpc::InsecureServerCredentials()));
  ASSERT_TRUE(t->AddPeer(2, {"http://127.0.0.1:1"}).ok());  // its own dials go nowhere
  std::shared_ptr<Peer> peer = t->GetPeer(2);

  auto stub = v1::RaftTransport::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  TransportOptions as2 = o;
  as2.local_id = 2;
  // "Member 2", v3 stream: never beats. v2 stream: beats once, then not.
  grpc::ClientContext quiet_ctx, beat_ctx;
  AddIdentityMetadata(&quiet_ctx, as2, 1);
  AddIdentityMetadata(&beat_ctx, as2, 1);
  auto quiet = stub->MessageStream(&quiet_ctx);
  auto beat = stub->MsgAppV2Stream(&beat_ctx);
  ASSERT_TRUE(beat->Write(v1::StreamControl()));
  ASSERT_TRUE(WaitUntil([&] {
    return peer->writer(StreamType::kMessage)->Working() &&
           peer->writer(StreamType::kMsgAppV2)->Working();
  }));
  const absl::Time attached = absl::Now();
  // Both readers keep reading: link heartbeats arrive, the process is alive
  // as far as the writes can tell.
  std::atomic<int> beat_frames{0};
  std::thread drain([&] {
    v1::MsgAppV2Frame f;
    while (beat->Read(&f)) beat_frames.fetch_add(1);
  });

  ASSERT_TRUE(WaitUntil([&] { return !peer->writer(StreamType::kMsgAppV2)->Working(); }));
  const absl::Duration took = absl::Now() - attached;
  drain.join();
  // Silent for 2/3 of the read timeout, checked every 1/3: 400-600 ms
  // plus scheduling.
  EXPECT_GE(took, absl::Milliseconds(350));  // measured from attach, not the beat
  EXPECT_GT(beat_frames.load(), 0) << "link heartbeats flowed meanwhile";
  EXPECT_EQ(beat->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Reported to Raft and counted as a send failure of the peer (its log
  // line appears when the peer was active; here its own dials to nowhere
  // keep it inactive). Both follow the drop on the writer's thread.
  EXPECT_TRUE(WaitUntil([&] { return !raft.unreachable().empty(); }));
  auto failures = [&] {
    uint64_t n = 0;
    for (const PeerMetrics& p : t->Metrics().peers) n += p.id == 2 ? p.sent_failures : 0;
    return n;
  };
  EXPECT_TRUE(WaitUntil([&] { return failures() >= 1; }));
  EXPECT_EQ(failures(), 1u);
  // Just as silent for as long, and never judged by heartbeats.
  EXPECT_TRUE(peer->writer(StreamType::kMessage)->Working());
  std::printf("beating reader dropped %s after it fell silent\n",
              absl::FormatDuration(took).c_str());
  quiet_ctx.TryCancel();
  quiet->Finish();
}

// A dialler of our message stream that reads nothing until told to (and
// then reads every message), sending stream heartbeats meanwhile if
// `beat`: a reader paused for room, as a slow Process makes ours.
struct StalledReader {
  ChannelPool pool;
  std::unique_ptr<v1::RaftTransport::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamControl, v1::MessageFrame>> stream;
  std::atomic<bool> stop_beating{false};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> out_of_order{0};
  std::thread beats, reads;

  StalledReader(int port, const TransportOptions& as, bool beat)
      : pool(std::make_shared<const TransportOptions>(as),
             [](uint64_t) { return grpc::InsecureChannelCredentials(); }) {
    // Dialled as our readers dial (ChannelPool: the fixed 64 KiB window
    // of stream_window_bytes), so what it has not read holds up the
    // writer's frame.
    stub =
        v1::RaftTransport::NewStub(pool.Get(absl::StrCat("http://127.0.0.1:", port), /*member=*/1));
    AddIdentityMetadata(&ctx, as, 1);
    stream = stub->MessageStream(&ctx);
    if (!beat) return;
    beats = std::thread([this] {
      // A reader's beat timer: every 100 ms, far inside the writer's
      // silence limit (1 s here) on a loaded machine.
      while (!stop_beating.load() && stream->Write(v1::StreamControl())) {
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }
  void StartReading() {
    reads = std::thread([this] {
      v1::MessageFrame f;
      uint64_t last = 0;
      while (stream->Read(&f)) {
        for (const raftpb::Message& m : f.messages()) {
          if (m.to() == 0) continue;  // a link heartbeat
          if (m.index() != last + 1) out_of_order.fetch_add(1);
          last = m.index();
          messages.fetch_add(1);
        }
      }
    });
  }
  ~StalledReader() {
    stop_beating.store(true);
    ctx.TryCancel();
    if (beats.joinable()) beats.join();
    if (reads.joinable()) reads.join();
    stream->Finish();
  }
};

// Our node 1 with a peer 2 whose message stream is dialled by a
// StalledReader, filled until Send reports it full: the write in flight
// then waits on HTTP/2 flow control. The writer checks every 500 ms and
// drops a reader silent for 1 s; its write timeout is 200 ms.
class StalledWriterTest : public ::testing::Test {
 protected:
  // Sends up to `max` messages of `size` bytes; unless `max` is 1, until
  // Send reports the stream full.
  void Start(bool beat, uint64_t max = 1000, size_t size = 256 << 10) {
    TransportOptions o;
    o.local_id = 1;
    o.cluster_id = 0x1000;
    o.stream_buf_bytes = 4 << 20;
    o.conn_write_timeout = absl::Milliseconds(200);
    o.conn_read_timeout = absl::Milliseconds(1500);
    o.stream_progress_timeout = progress_timeout_;
    o.log = log_.Sink();
    ASSERT_OK_AND_ASSIGN(t_, Transport::Create(o, &raft_));
    ASSERT_OK_AND_ASSIGN(int port, t_->Serve("127.0.0.1:0", grpc::InsecureServerCredentials()));
    ASSERT_TRUE(t_->AddPeer(2, {"http://127.0.0.1:1"}).ok());  // its own dials go nowhere
    peer_ = t_->GetPeer(2);
    TransportOptions as2 = o;
    as2.local_id = 2;
    reader_ = std::make_unique<StalledReader>(port, as2, beat);
    ASSERT_TRUE(WaitUntil([&] { return Working(); }));
    for (uint64_t i = 1; i <= max; ++i) {
      if (peer_->Send(testing::App(1, 2, 1, i, std::string(size, 'w'))) !=
          Peer::SendOutcome::kQueued) {
        break;
      }
      ++queued_;
    }
    ASSERT_GT(queued_, 0u);
    if (max > 1) {
      ASSERT_LT(queued_, max) << "the stream never filled: nothing waits on flow control";
    }
  }

  bool Working() const { return peer_->writer(StreamType::kMessage)->Working(); }

  // Stream failures counted for peer 2 (Send's drops do not count there).
  uint64_t SentFailures() const {
    uint64_t n = 0;
    for (const PeerMetrics& p : t_->Metrics().peers) n += p.id == 2 ? p.sent_failures : 0;
    return n;
  }

  // Peer 2's outbound drops for `reason`.
  uint64_t Dropped(const std::string& reason) const {
    for (const PeerMetrics& p : t_->Metrics().peers) {
      if (p.id == 2 && p.dropped.count(reason) > 0) return p.dropped.at(reason);
    }
    return 0;
  }

  absl::Duration progress_timeout_ = absl::Seconds(30);  // set before Start
  testing::LogLines log_;                                // outlives t_
  testing::FakeRaft raft_;
  std::unique_ptr<Transport> t_;
  std::shared_ptr<Peer> peer_;
  std::unique_ptr<StalledReader> reader_;  // destroyed first
  uint64_t queued_ = 0;
};

// A write that waits on flow control while the reader still sends its
// stream heartbeats is back-pressure (the reader paused for room, its
// Process slower than our sends), not a dead link: the stream stays, for
// many times conn_write_timeout, and once the reader reads on, every
// queued message arrives, in order. Failing it would drop them all and
// flap the stream for as long as the reader is slow.
TEST_F(StalledWriterTest, AWriteHeldByABeatingReaderWaitsForIt) {
  ASSERT_NO_FATAL_FAILURE(Start(/*beat=*/true));
  // Fifteen write timeouts: before the fix it failed within about three.
  EXPECT_FALSE(WaitUntil([&] { return !Working(); }, absl::Seconds(3)))
      << "a write held by a beating reader failed the stream";
  EXPECT_EQ(SentFailures(), 0u);

  reader_->StartReading();
  ASSERT_TRUE(WaitUntil([&] { return reader_->messages.load() >= queued_; }, absl::Seconds(30)))
      << reader_->messages.load() << " of " << queued_;
  EXPECT_EQ(reader_->messages.load(), queued_);
  EXPECT_EQ(reader_->out_of_order.load(), 0u);
  EXPECT_TRUE(Working());
  EXPECT_EQ(SentFailures(), 0u);
}

// ... but not for good: a reader that beats and never reads (a hostile one,
// or one whose Process is stuck) loses the stream after
// stream_progress_timeout, what was queued is dropped and counted, and the
// log says why.
TEST_F(StalledWriterTest, AWriteHeldByABeatingReaderFailsAfterTheProgressTimeout) {
  progress_timeout_ = absl::Seconds(2);
  const absl::Time start = absl::Now();  // before the held write began
  ASSERT_NO_FATAL_FAILURE(Start(/*beat=*/true));
  ASSERT_TRUE(WaitUntil([&] { return !Working(); }, absl::Seconds(20)));
  EXPECT_GE(absl::Now() - start, progress_timeout_) << "failed before the progress timeout";
  EXPECT_TRUE(WaitUntil([&] { return SentFailures() >= 1; }));
  EXPECT_TRUE(log_.Has("made no progress")) << "no log line names the cause:\n" << log_.Joined();
  EXPECT_GT(Dropped("stream_closed"), 0u);
  EXPECT_LT(Dropped("stream_closed"), queued_);
}

// The other half: a reader that sends no stream heartbeats (an older or
// other-language node) gives nothing but the write to judge it by, so a
// write stalled past conn_write_timeout fails the stream, as etcd fails
// every such write, and the failure is counted.
TEST_F(StalledWriterTest, AWriteHeldByAQuietReaderFailsAfterTheWriteTimeout) {
  ASSERT_NO_FATAL_FAILURE(Start(/*beat=*/false));
  ASSERT_TRUE(WaitUntil([&] { return !Working(); }));
  EXPECT_TRUE(WaitUntil([&] { return SentFailures() >= 1; }));
  // What was still queued is dropped, and counted as such: the queue was
  // full, so some were.
  EXPECT_GT(Dropped("stream_closed"), 0u);
  EXPECT_LT(Dropped("stream_closed"), queued_);
}

// A dialler that goes away while a frame is being written to it, nothing
// else queued: that frame may be lost, so Raft is told the peer was
// unreachable, whichever the writer hears of first (the failed write or
// the stream's end), and nothing counts as dropped unsent.
TEST_F(StalledWriterTest, ADiallerGoneMidWriteIsReportedUnreachable) {
  ASSERT_NO_FATAL_FAILURE(Start(/*beat=*/true, /*max=*/1, /*size=*/1 << 20));
  // The 1 MiB frame waits on the reader's 64 KiB window, which a reader
  // that does not read never opens; beating, it is not timed out.
  EXPECT_FALSE(WaitUntil([&] { return !raft_.unreachable().empty(); }, absl::Milliseconds(500)));
  reader_.reset();  // cancels the call
  EXPECT_TRUE(WaitUntil([&] { return !Working(); }));
  EXPECT_TRUE(WaitUntil([&] { return !raft_.unreachable().empty(); }));
  EXPECT_EQ(Dropped("stream_closed"), 0u) << "nothing was queued behind the frame";
}

// The msgappv2 method is raw on the writer's side, so the dialler's half
// is parsed by us, not by gRPC: a StreamControl that does not parse ends
// the call with INVALID_ARGUMENT (well-formed ones, as the liveness test
// above sends, keep it open), and the writer lets go of the stream.
TEST(StreamWriterLivenessTest, AnUnparseableStreamControlEndsTheV2Stream) {
  testing::FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 0x1000;
  testing::LogLines log;  // outlives t
  o.log = log.Sink();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Transport> t, Transport::Create(o, &raft));
  ASSERT_OK_AND_ASSIGN(int port, t->Serve("127.0.0.1:0", grpc::InsecureServerCredentials()));
  ASSERT_TRUE(t->AddPeer(2, {"http://127.0.0.1:1"}).ok());  // its own dials go nowhere
  std::shared_ptr<Peer> peer = t->GetPeer(2);

  class Garbage : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    void OnReadInitialMetadataDone(bool) override {
      // Accepted (the writer attached it): now the bad half.
      static const char kBad[] = "\xff\xff\xff\xff";
      grpc::Slice s(kBad, sizeof kBad - 1);
      bad_ = grpc::ByteBuffer(&s, 1);
      StartWrite(&bad_);
      StartRead(&in_);
    }
    void OnReadDone(bool ok) override {
      if (ok) StartRead(&in_);  // link heartbeats, until the end
    }
    void OnDone(const grpc::Status& s) override {
      std::lock_guard<std::mutex> l(mu_);
      status_ = s;
      done_ = true;
    }
    bool done() {
      std::lock_guard<std::mutex> l(mu_);
      return done_;
    }
    grpc::Status status() {
      std::lock_guard<std::mutex> l(mu_);
      return status_;
    }

   private:
    grpc::ByteBuffer bad_, in_;
    std::mutex mu_;
    bool done_ = false;
    grpc::Status status_;
  };
  grpc::GenericStub stub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  TransportOptions as2 = o;
  as2.local_id = 2;
  grpc::ClientContext ctx;
  AddIdentityMetadata(&ctx, as2, 1);
  Garbage g;
  stub.PrepareBidiStreamingCall(
      &ctx, absl::StrCat("/", v1::RaftTransport::service_full_name(), "/MsgAppV2Stream"),
      grpc::StubOptions(), &g);
  g.StartCall();
  ASSERT_TRUE(WaitUntil([&] { return g.done(); }));
  EXPECT_EQ(g.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << g.status().error_message();
  EXPECT_EQ(t->Metrics().totals.streams_accepted, 1u) << "accepted, then ended";
  EXPECT_TRUE(WaitUntil([&] { return !peer->writer(StreamType::kMsgAppV2)->Working(); }));
  EXPECT_TRUE(log.Has("from peer 2: stream control does not parse")) << "the log names the cause";
}

// A reader that never reads (a hostile or wedged peer) holds at most
// stream_buf_bytes of ours: beyond it Send drops, counts and reports
// unreachable, instead of queueing up to stream_buf_size messages (2 GiB
// of 512 KiB messages before this limit).
TEST(StreamWriterBudgetTest, AReaderThatNeverReadsHoldsAtMostTheByteBudget) {
  testing::FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 0x1000;
  o.stream_buf_bytes = 4 << 20;
  // The stall itself is not what is tested.
  o.conn_write_timeout = absl::Seconds(60);
  o.stream_progress_timeout = absl::Seconds(60);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Transport> t, Transport::Create(o, &raft));
  ASSERT_OK_AND_ASSIGN(int port, t->Serve("127.0.0.1:0", grpc::InsecureServerCredentials()));
  ASSERT_TRUE(t->AddPeer(2, {"http://127.0.0.1:1"}).ok());  // its own dials go nowhere

  // "Member 2" dials our message stream and then never reads from it.
  auto stub = v1::RaftTransport::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  TransportOptions as2 = o;
  as2.local_id = 2;
  AddIdentityMetadata(&ctx, as2, 1);
  auto stream = stub->MessageStream(&ctx);
  std::shared_ptr<Peer> peer = t->GetPeer(2);
  ASSERT_TRUE(WaitUntil([&] { return peer->writer(StreamType::kMessage)->Working(); }));

  constexpr int kN = 100;
  constexpr size_t kSize = 512 << 10;
  for (int i = 1; i <= kN; ++i) {
    raftpb::Message m = testing::App(1, 2, 1, i, std::string(kSize, 'w'));
    t->Send(std::move(m));
  }
  const PeerStats st = peer->stats();
  const uint64_t queued = st.sent[static_cast<int>(Channel::kStreamMsg)];
  // The budget, plus what gRPC took off our hands into its flow-control
  // window before the reader's window ran dry.
  EXPECT_LE(queued * kSize, o.stream_buf_bytes + (4u << 20)) << queued << " messages queued";
  EXPECT_EQ(queued + st.dropped[static_cast<int>(Channel::kStreamMsg)], uint64_t{kN});
  EXPECT_FALSE(raft.unreachable().empty());
  ctx.TryCancel();
  stream->Finish();
}

}  // namespace
}  // namespace raftgrpc
