#include "transport/internal/channel_pool.h"

#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"
#include "testing/cluster.h"
#include "testing/fault_proxy.h"
#include "transport/internal/scheduler.h"

namespace raftgrpc {
namespace {

ChannelPool Pool() {
  return ChannelPool(std::make_shared<const TransportOptions>(),
                     [](uint64_t) { return grpc::InsecureChannelCredentials(); });
}

// A real gRPC server (answering UNIMPLEMENTED) behind a fault proxy that
// delays each direction by `delay`; `proxy` is null if either failed.
struct FarServer {
  explicit FarServer(absl::Duration delay) {
    int port = 0;
    grpc::ServerBuilder b;
    b.RegisterService(&unimplemented);
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    server = b.BuildAndStart();
    if (port == 0) return;
    auto p = testing::FaultProxy::Start(port);
    if (!p.ok()) return;
    proxy = *std::move(p);
    proxy->SetDelay(delay);
  }
  ~FarServer() {
    if (server) server->Shutdown();
  }
  v1::RaftTransport::CallbackService unimplemented;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<testing::FaultProxy> proxy;
};

// Snapshots have a channel (a connection) of their own, which a stalled
// transfer resets so that Raft's retry dials anew; the other channel stays.
TEST(ChannelPoolTest, ResetForSnapshotsReplacesOnlyTheSnapshotChannel) {
  ChannelPool pool = Pool();
  const std::string url = "http://127.0.0.1:1";
  auto msgs = pool.Get(url, 2);
  auto snap = pool.GetForSnapshots(url, 2);
  EXPECT_NE(msgs, snap);
  EXPECT_EQ(pool.GetForSnapshots(url, 2), snap);
  pool.ResetForSnapshots(url, 2);
  EXPECT_NE(pool.GetForSnapshots(url, 2), snap);
  EXPECT_EQ(pool.Get(url, 2), msgs);
  EXPECT_EQ(pool.size(), 2u);
  pool.ResetForSnapshots("http://127.0.0.1:2", 2);  // none there: nothing happens
  EXPECT_EQ(pool.size(), 2u);
}

// A peer 300 ms of round trip away is reached on the first connection
// attempt: a fail-fast call gets the server's answer, not UNAVAILABLE.
// (gRPC takes its minimum connect timeout from the min-reconnect-backoff
// argument; at 100 ms every first handshake on such a link timed out.)
TEST(ChannelPoolTest, AFarPeerIsReachedOnTheFirstAttempt) {
  FarServer far(absl::Milliseconds(150));  // each way
  ASSERT_NE(far.proxy, nullptr);
  auto& proxy = far.proxy;
  ChannelPool pool = Pool();
  for (bool snapshot : {false, true}) {
    auto channel = snapshot ? pool.GetForSnapshots(proxy->url(), 2) : pool.Get(proxy->url(), 2);
    grpc::ClientContext ctx;  // fail-fast: no wait for ready
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ProbeResponse resp;
    grpc::Status s = v1::RaftTransport::NewStub(channel)->Probe(&ctx, v1::ProbeRequest(), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << (snapshot ? "snapshot channel: " : "channel: ") << s.error_message();
  }
}

// gRPC 1.51 leaks the connection of an attempt whose channel goes away
// after the handshake and before the server's SETTINGS frame
// (grpc/grpc#32071): the pool keeps such a channel until the attempt ends.
// The proxy's delay holds the attempt in that window.
TEST(ChannelPoolTest, AChannelLetGoWhileConnectingLeavesNoConnection) {
  FarServer far(absl::Milliseconds(300));  // each way
  ASSERT_NE(far.proxy, nullptr);
  auto& proxy = far.proxy;
  Scheduler sched;
  {
    ChannelPool pool(
        std::make_shared<const TransportOptions>(),
        [](uint64_t) { return grpc::InsecureChannelCredentials(); }, &sched);
    for (bool snapshot : {false, true}) {
      const uint64_t before = proxy->counters().accepted;
      auto channel = snapshot ? pool.GetForSnapshots(proxy->url(), 2) : pool.Get(proxy->url(), 2);
      channel->GetState(/*try_to_connect=*/true);
      ASSERT_TRUE(testing::WaitUntil([&] { return proxy->counters().accepted > before; }));
      channel.reset();
      if (snapshot) {
        pool.ResetForSnapshots(proxy->url(), 2);
      } else {
        EXPECT_TRUE(pool.ReleaseUnused({proxy->url()}, 2));
      }
      EXPECT_EQ(pool.size(), 0u);
      // The attempt ends (ready) after the delayed SETTINGS frame; then the
      // channel goes, with its connection.
      EXPECT_TRUE(
          testing::WaitUntil([&] { return proxy->counters().open == 0; }, absl::Seconds(10)))
          << (snapshot ? "snapshot channel: " : "channel: ") << proxy->counters().open
          << " connections left";
      // (If the attempt failed instead, its connection closed before the
      // pool's next look at it.)
      EXPECT_TRUE(testing::WaitUntil([&] { return pool.settling() == 0; }));
    }
    // At destruction too: the pool waits (300 ms at most) for an attempt
    // under way.
    proxy->SetDelay(absl::Milliseconds(50));
    pool.Get(proxy->url(), 3)->GetState(/*try_to_connect=*/true);
    ASSERT_TRUE(testing::WaitUntil([&] { return proxy->counters().open == 1; }));
  }
  sched.Stop();
  EXPECT_TRUE(testing::WaitUntil([&] { return proxy->counters().open == 0; }, absl::Seconds(10)))
      << proxy->counters().open << " connections left after the pool's destruction";
}

}  // namespace
}  // namespace raftgrpc
