// FaultProxy: a TCP proxy on 127.0.0.1 for fault injection between two
// nodes (like etcd's functional-test proxy). Every connection accepted on
// port() is forwarded to 127.0.0.1:<target_port>; faults apply to both
// directions and can be switched at run time:
//   - pass (default); blackhole: accept and read, but forward nothing;
//   - reset: existing connections and every new one are reset (RST);
//   - delay: each chunk is held for fixed + uniform(0, jitter);
//   - bandwidth: at most N bytes/s per direction and connection;
//   - corrupt: each forwarded byte is flipped with probability 1/N.
// Memory is bounded: a direction stops reading while it holds
// kMaxBufferedBytes. One thread with poll(); loopback only.
//
// Thread-safety: all methods are safe from any thread and never block,
// except Stop (joins the thread) and the destructor.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_FAULT_PROXY_H_
#define RAFT_GRPC_TRANSPORT_TESTING_FAULT_PROXY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace raftgrpc::testing {

// Sets SO_REUSEADDR on the TCP socket `fd`, binds it to a port of
// 127.0.0.1 the kernel picks, and returns that port. For the proxy's
// listener and Cluster's held node ports.
absl::StatusOr<int> BindLoopbackPort(int fd);

class FaultProxy {
 public:
  static constexpr size_t kMaxBufferedBytes = 1 << 20;  // per direction

  enum class Mode { kPass, kBlackhole, kReset };

  struct Counters {
    uint64_t accepted = 0;         // connections accepted
    uint64_t resets = 0;           // connections reset by us
    uint64_t open = 0;             // connections open now
    uint64_t forwarded_bytes = 0;  // both directions
    uint64_t dropped_bytes = 0;    // read while blackholed
    uint64_t corrupted_bytes = 0;
    uint64_t peak_buffered_bytes = 0;  // most held by one direction
  };

  // Listens on 127.0.0.1:0 and forwards to 127.0.0.1:target_port.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(int target_port);
  ~FaultProxy();  // Stop()

  int port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:<port>

  void SetMode(Mode mode);
  void SetDelay(absl::Duration fixed, absl::Duration jitter = absl::ZeroDuration());
  void SetBandwidth(uint64_t bytes_per_second);  // 0: unlimited
  void SetCorrupt(uint32_t one_in_n);            // 0: off
  // Back to pass, no delay, no limit, no corruption.
  void Heal();
  Counters counters() const;

  void Stop();

 private:
  struct Settings {
    Mode mode = Mode::kPass;
    absl::Duration delay;
    absl::Duration jitter;
    uint64_t bandwidth = 0;
    uint32_t corrupt = 0;
  };
  struct Conn;
  FaultProxy(int listen_fd, int port, int target_port, int wake_r, int wake_w);
  void Loop();
  void Wake();
  Settings settings() const;

  const int listen_fd_;
  const int port_;
  const int target_port_;
  const int wake_r_, wake_w_;
  mutable std::mutex mu_;
  Settings settings_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0}, resets_{0}, open_{0}, forwarded_{0}, dropped_{0},
      corrupted_{0}, peak_buffered_{0};
  std::thread thread_;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_FAULT_PROXY_H_
