#include "transport/internal/channel_pool.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "grpcpp/generic/async_generic_service.h"
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

// Established TCP connections to 127.0.0.1:`port` (the client ends, as
// the kernel lists them; gRPC may use IPv6 sockets with v4-mapped addresses).
int ConnectionsTo(int port) {
  int n = 0;
  for (const auto& [file, addr] : {std::pair<const char*, const char*>{"/proc/net/tcp", "0100007F"},
                                   {"/proc/net/tcp6", "0000000000000000FFFF00000100007F"}}) {
    std::ifstream f(file);
    std::string line;
    std::getline(f, line);  // header
    const std::string remote = absl::StrFormat("%s:%04X", addr, port);
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string slot, local, rem, state;
      in >> slot >> local >> rem >> state;
      n += rem == remote && state == "01";  // TCP_ESTABLISHED
    }
  }
  return n;
}

// Each kind of channel dials its own connection, as etcd gives each stream
// its own: the MsgApp stream's bulk never queues heartbeats behind it in a
// shared socket.
TEST(ChannelPoolTest, EachKindHasItsOwnConnection) {
  int port = 0;
  grpc::CallbackGenericService any;  // a server needs some service
  grpc::ServerBuilder b;
  b.RegisterCallbackGenericService(&any);
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  ASSERT_NE(port, 0);
  ChannelPool pool = Pool();
  const std::string url = absl::StrFormat("http://127.0.0.1:%d", port);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(30);
  for (auto kind :
       {ChannelPool::Kind::kControl, ChannelPool::Kind::kAppend, ChannelPool::Kind::kSnapshot}) {
    ASSERT_TRUE(pool.Get(url, 2, kind)->WaitForConnected(deadline));
  }
  EXPECT_EQ(pool.size(), 3u);
  EXPECT_EQ(ConnectionsTo(port), 3);
  server->Shutdown();
}

}  // namespace
}  // namespace raftgrpc
