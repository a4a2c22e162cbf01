#include "transport/internal/channel_pool.h"

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

ChannelPool Pool() {
  return ChannelPool(std::make_shared<const TransportOptions>(),
                     [](uint64_t) { return grpc::InsecureChannelCredentials(); });
}

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

}  // namespace
}  // namespace raftgrpc
