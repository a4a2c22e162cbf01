#include "testing/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace raftgrpc::testing {

namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closing with a zero linger timeout sends RST instead of FIN.
void ResetFd(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

struct Chunk {
  absl::Time release;
  std::string data;
  size_t off = 0;
};

// One direction of a connection: bytes read from src wait here for dst.
struct Dir {
  std::deque<Chunk> q;
  size_t buffered = 0;
  bool eof = false;
  double tokens = 0;
  absl::Time last_release;
};

}  // namespace

struct FaultProxy::Conn {
  int fd[2] = {-1, -1};  // client, server
  Dir dir[2];            // 0: client -> server, 1: server -> client
  bool dead = false;
};

absl::StatusOr<int> BindLoopbackPort(int fd) {
  const int one = 1;
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof(a);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return absl::InternalError(absl::StrCat("bind to a loopback port: ", strerror(errno)));
  }
  return ntohs(a.sin_port);
}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(int target_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  absl::StatusOr<int> port = BindLoopbackPort(fd);
  if (!port.ok() || listen(fd, 64) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("proxy listen: ", strerror(errno)));
  }
  SetNonBlocking(fd);
  int wake[2];
  if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    close(fd);
    return absl::InternalError("pipe");
  }
  return std::unique_ptr<FaultProxy>(new FaultProxy(fd, *port, target_port, wake[0], wake[1]));
}

FaultProxy::FaultProxy(int listen_fd, int port, int target_port, int wake_r, int wake_w)
    : listen_fd_(listen_fd),
      port_(port),
      target_port_(target_port),
      wake_r_(wake_r),
      wake_w_(wake_w),
      thread_([this] { Loop(); }) {}

FaultProxy::~FaultProxy() { Stop(); }

void FaultProxy::Stop() {
  if (stop_.exchange(true)) return;
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_r_);
  close(wake_w_);
}

std::string FaultProxy::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FaultProxy::Wake() {
  char c = 1;
  (void)!write(wake_w_, &c, 1);
}

void FaultProxy::SetMode(Mode mode) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_.mode = mode;
  }
  Wake();
}

void FaultProxy::SetDelay(absl::Duration fixed, absl::Duration jitter) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_.delay = fixed;
    settings_.jitter = jitter;
  }
  Wake();
}

void FaultProxy::SetBandwidth(uint64_t bytes_per_second) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_.bandwidth = bytes_per_second;
  }
  Wake();
}

void FaultProxy::SetCorrupt(uint32_t one_in_n) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_.corrupt = one_in_n;
  }
  Wake();
}

void FaultProxy::Heal() {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_ = Settings();
  }
  Wake();
}

FaultProxy::Settings FaultProxy::settings() const {
  std::lock_guard<std::mutex> l(mu_);
  return settings_;
}

FaultProxy::Counters FaultProxy::counters() const {
  Counters c;
  c.accepted = accepted_.load();
  c.resets = resets_.load();
  c.open = open_.load();
  c.forwarded_bytes = forwarded_.load();
  c.dropped_bytes = dropped_.load();
  c.corrupted_bytes = corrupted_.load();
  c.peak_buffered_bytes = peak_buffered_.load();
  return c;
}

void FaultProxy::Loop() {
  std::vector<std::unique_ptr<Conn>> conns;
  std::mt19937_64 rng(0x5eed);
  std::vector<char> buf(64 * 1024);
  absl::Time last_refill = absl::Now();

  // Counters move before the effect is visible to the peer, so a test that
  // saw the effect sees the count.
  auto reset_conn = [&](Conn& c) {
    resets_.fetch_add(1);
    ResetFd(c.fd[0]);
    ResetFd(c.fd[1]);
    c.fd[0] = c.fd[1] = -1;
    c.dead = true;
  };
  auto drop_queued = [&](Dir& d) {
    dropped_.fetch_add(d.buffered);
    d.q.clear();
    d.buffered = 0;
  };

  while (!stop_.load()) {
    Settings s = settings();
    absl::Time now = absl::Now();

    // Token buckets: a burst of at most 50 ms worth (>= 16 KiB).
    const double elapsed = absl::ToDoubleSeconds(now - last_refill);
    last_refill = now;
    const double burst = std::max(16384.0, s.bandwidth / 20.0);
    for (auto& c : conns) {
      for (Dir& d : c->dir) d.tokens = std::min(burst, d.tokens + elapsed * s.bandwidth);
    }
    if (s.mode == Mode::kReset) {
      for (auto& c : conns) reset_conn(*c);
    }
    if (s.mode == Mode::kBlackhole) {
      for (auto& c : conns) {
        for (Dir& d : c->dir) drop_queued(d);
      }
    } else {
      // Connections accepted while blackholed have no upstream and can never
      // work: reset them once the link heals, so clients redial at once.
      for (auto& c : conns) {
        if (c->fd[1] < 0) reset_conn(*c);
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](auto& c) { return c->dead; }),
                conns.end());

    // Poll set: wake pipe, listener, then client and server fd per conn.
    std::vector<pollfd> fds = {{wake_r_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    absl::Duration timeout = absl::Milliseconds(100);
    for (auto& c : conns) {
      short ev[2] = {0, 0};
      for (int d = 0; d < 2; ++d) {
        Dir& dir = c->dir[d];
        const int src = d, dst = 1 - d;
        if (!dir.eof && dir.buffered < kMaxBufferedBytes) ev[src] |= POLLIN;
        if (!dir.q.empty()) {
          const bool due = dir.q.front().release <= now;
          const bool tokens = s.bandwidth == 0 || dir.tokens >= 1;
          if (due && tokens) {
            ev[dst] |= POLLOUT;
          } else {
            timeout = std::min(timeout, due ? absl::Milliseconds(2) : dir.q.front().release - now);
          }
        }
      }
      fds.push_back({c->fd[0], ev[0], 0});
      fds.push_back({c->fd[1], c->fd[1] < 0 ? short(0) : ev[1], 0});
    }
    const int ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
    if (poll(fds.data(), fds.size(), ms) < 0 && errno != EINTR) break;
    if (fds[0].revents) {
      char drain[64];
      while (read(wake_r_, drain, sizeof(drain)) > 0) {
      }
    }
    // Fresh settings for what follows: a change made before a client
    // connected must apply to that connection.
    s = settings();
    if (fds[1].revents & POLLIN) {
      while (true) {
        int cfd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        accepted_.fetch_add(1);
        if (s.mode == Mode::kReset) {
          resets_.fetch_add(1);
          ResetFd(cfd);
          continue;
        }
        auto c = std::make_unique<Conn>();
        c->fd[0] = cfd;
        if (s.mode != Mode::kBlackhole) {
          int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in a = Loopback(target_port_);
          // Loopback connects complete (or are refused) at once.
          if (sfd < 0 || connect(sfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
            if (sfd >= 0) close(sfd);
            resets_.fetch_add(1);
            ResetFd(cfd);
            continue;
          }
          SetNonBlocking(sfd);
          int one = 1;
          setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          c->fd[1] = sfd;
        }
        conns.push_back(std::move(c));
      }
    }
    now = absl::Now();
    std::uniform_real_distribution<double> unit(0, 1);
    for (size_t i = 0; i < conns.size() && 2 + 2 * i + 1 < fds.size(); ++i) {
      Conn& c = *conns[i];
      for (int side = 0; side < 2; ++side) {
        const short re = fds[2 + 2 * i + side].revents;
        if (re == 0 || c.dead || c.fd[side] < 0) continue;
        // Readable: into the direction whose source this side is.
        if (re & (POLLIN | POLLHUP | POLLERR)) {
          Dir& d = c.dir[side];
          const size_t room = kMaxBufferedBytes - std::min(kMaxBufferedBytes, d.buffered);
          ssize_t n = room == 0 ? -2 : read(c.fd[side], buf.data(), std::min(buf.size(), room));
          if (n == 0) {
            d.eof = true;
          } else if (n == -1 && errno != EAGAIN && errno != EINTR) {
            c.dead = true;
          } else if (n > 0) {
            if (s.mode == Mode::kBlackhole || c.fd[1 - side] < 0) {
              dropped_.fetch_add(n);
            } else {
              Chunk ch;
              ch.data.assign(buf.data(), n);
              if (s.corrupt) {
                for (char& b : ch.data) {
                  if (rng() % s.corrupt == 0) {
                    corrupted_.fetch_add(1);
                    b = static_cast<char>(b ^ 0x5a);
                  }
                }
              }
              // Jitter never reorders: TCP is one ordered stream.
              ch.release = std::max(d.last_release, now + s.delay + s.jitter * unit(rng));
              d.last_release = ch.release;
              d.buffered += n;
              uint64_t peak = peak_buffered_.load();
              while (d.buffered > peak && !peak_buffered_.compare_exchange_weak(peak, d.buffered)) {
              }
              d.q.push_back(std::move(ch));
            }
          }
        }
        // Writable: from the direction whose destination this side is.
        if ((re & POLLOUT) && !c.dead) {
          Dir& d = c.dir[1 - side];
          if (!d.q.empty()) {
            Chunk& ch = d.q.front();
            size_t want = ch.data.size() - ch.off;
            if (s.bandwidth) want = std::min<size_t>(want, static_cast<size_t>(d.tokens));
            // MSG_NOSIGNAL: a peer that already closed must not SIGPIPE the
            // test process.
            ssize_t n =
                want == 0 ? 0 : send(c.fd[side], ch.data.data() + ch.off, want, MSG_NOSIGNAL);
            if (n > 0) {
              ch.off += n;
              d.buffered -= n;
              if (s.bandwidth) d.tokens -= n;
              forwarded_.fetch_add(n);
              if (ch.off == ch.data.size()) d.q.pop_front();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
              c.dead = true;
            }
          }
        }
      }
      // A side that ended, once what it sent is delivered, ends the conn.
      for (const Dir& d : c.dir) {
        if (d.eof && d.q.empty()) c.dead = true;
      }
    }
    for (auto& c : conns) {
      if (c->dead) {
        for (int& fd : c->fd) {
          if (fd >= 0) close(fd);
          fd = -1;
        }
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](auto& c) { return c->dead; }),
                conns.end());
    open_.store(conns.size());
  }
  for (auto& c : conns) {
    for (int fd : c->fd) {
      if (fd >= 0) close(fd);
    }
  }
  open_.store(0);
}

}  // namespace raftgrpc::testing
