// FaultProxy with real sockets: an echo server behind it.
#include "testing/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace raftgrpc::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// Echoes every byte back, or (sink) reads nothing at all.
class EchoServer {
 public:
  explicit EchoServer(bool sink = false) : sink_(sink) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = Loopback(0);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  void Run() {
    std::vector<int> conns;
    char buf[65536];
    while (!stop_) {
      std::vector<pollfd> p = {{fd_, POLLIN, 0}};
      for (int c : conns) p.push_back({c, short(sink_ ? 0 : POLLIN), 0});
      if (poll(p.data(), p.size(), 20) <= 0) continue;
      if (p[0].revents & POLLIN) conns.push_back(accept(fd_, nullptr, nullptr));
      for (size_t i = 1; i < p.size(); ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) continue;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = send(p[i].fd, buf + off, n - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      }
    }
    for (int c : conns) close(c);
  }
  bool sink_;
  int fd_, port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void SetNonBlockingForTest(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int Dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

// Reads exactly n bytes, or what came before `timeout` / EOF / error.
std::string ReadN(int fd, size_t n, absl::Duration timeout, int* err = nullptr) {
  std::string out;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[65536];
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || poll(&p, 1, ms) <= 0) break;
    ssize_t r = read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (r <= 0) {
      if (err) *err = r == 0 ? 0 : errno;
      break;
    }
    out.append(buf, r);
  }
  return out;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(w, 0);
    off += w;
  }
}

TEST(FaultProxyTest, PassForwardsBothWays) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  int fd = Dial((*proxy)->port());
  const std::string msg(100000, 'p');
  std::thread w([&] { WriteAll(fd, msg); });
  EXPECT_EQ(ReadN(fd, msg.size(), absl::Seconds(10)), msg);
  w.join();
  close(fd);
  EXPECT_EQ((*proxy)->counters().accepted, 1u);
  // The counter moves just after the bytes did.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((*proxy)->counters().forwarded_bytes < 2 * msg.size() && absl::Now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ((*proxy)->counters().forwarded_bytes, 2 * msg.size());
}

TEST(FaultProxyTest, BlackholeDropsThenHealRestores) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  (*proxy)->SetMode(FaultProxy::Mode::kBlackhole);
  int fd = Dial((*proxy)->port());
  WriteAll(fd, "into the void");
  // The bytes are read and counted as dropped; none come back.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((*proxy)->counters().dropped_bytes < 13 && absl::Now() < deadline) {
    ReadN(fd, 1, absl::Milliseconds(5));
  }
  EXPECT_EQ((*proxy)->counters().dropped_bytes, 13u);
  EXPECT_EQ((*proxy)->counters().forwarded_bytes, 0u);
  close(fd);
  (*proxy)->Heal();
  fd = Dial((*proxy)->port());
  WriteAll(fd, "back");
  EXPECT_EQ(ReadN(fd, 4, absl::Seconds(10)), "back");
  close(fd);
}

TEST(FaultProxyTest, ResetKillsOpenAndNewConnections) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  int fd = Dial((*proxy)->port());
  WriteAll(fd, "x");
  ASSERT_EQ(ReadN(fd, 1, absl::Seconds(10)), "x");
  (*proxy)->SetMode(FaultProxy::Mode::kReset);
  int err = -1;
  EXPECT_EQ(ReadN(fd, 1, absl::Seconds(10), &err), "");
  EXPECT_EQ(err, ECONNRESET);
  close(fd);
  fd = Dial((*proxy)->port());  // accepted, then reset at once
  err = -1;
  ReadN(fd, 1, absl::Seconds(10), &err);
  EXPECT_EQ(err, ECONNRESET);
  close(fd);
  EXPECT_GE((*proxy)->counters().resets, 2u);
}

TEST(FaultProxyTest, DelayHoldsBytesAtLeastThatLong) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  (*proxy)->SetDelay(absl::Milliseconds(100), absl::Milliseconds(20));
  int fd = Dial((*proxy)->port());
  const absl::Time start = absl::Now();
  WriteAll(fd, "ping");
  EXPECT_EQ(ReadN(fd, 4, absl::Seconds(10)), "ping");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));  // both directions
  close(fd);
}

TEST(FaultProxyTest, BandwidthLimitPacesTransfer) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  (*proxy)->SetBandwidth(1 << 20);  // 1 MiB/s each way
  int fd = Dial((*proxy)->port());
  const std::string msg(512 * 1024, 'b');
  const absl::Time start = absl::Now();
  std::thread w([&] { WriteAll(fd, msg); });
  EXPECT_EQ(ReadN(fd, msg.size(), absl::Seconds(20)), msg);
  w.join();
  // 512 KiB at 1 MiB/s, minus one burst: a lower bound only.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  close(fd);
}

TEST(FaultProxyTest, CorruptFlipsBytes) {
  EchoServer echo;
  auto proxy = FaultProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  (*proxy)->SetCorrupt(1);  // every byte, in each direction: flipped twice
  int fd = Dial((*proxy)->port());
  WriteAll(fd, "abc");
  EXPECT_EQ(ReadN(fd, 3, absl::Seconds(10)), "abc");
  EXPECT_EQ((*proxy)->counters().corrupted_bytes, 6u);
  close(fd);
}

TEST(FaultProxyTest, BufferStaysBoundedWhenTheServerDoesNotRead) {
  EchoServer sink(/*sink=*/true);
  auto proxy = FaultProxy::Start(sink.port());
  ASSERT_TRUE(proxy.ok());
  int fd = Dial((*proxy)->port());
  SetNonBlockingForTest(fd);
  const std::string chunk(65536, 'f');
  uint64_t written = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // Write until the whole path is full (the client's send blocks).
  while (absl::Now() < deadline) {
    ssize_t w = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (w > 0) {
      written += w;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 300) == 0) break;  // no room for 300 ms: full
  }
  EXPECT_GT(written, FaultProxy::kMaxBufferedBytes);  // kernel buffers hold the rest
  EXPECT_LE((*proxy)->counters().peak_buffered_bytes, FaultProxy::kMaxBufferedBytes);
  close(fd);
}

}  // namespace
}  // namespace raftgrpc::testing
