// Cluster: N transports on loopback ephemeral ports, each with a FakeRaft,
// for tests of transports and of Raft nodes built on them.
//
// Thread-safety: call from the test thread. Node accessors return objects
// that are safe to use from any thread.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_CLUSTER_H_
#define RAFT_GRPC_TRANSPORT_TESTING_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/fake_raft.h"
#include "testing/fault_proxy.h"
#include "transport/transport.h"

namespace raftgrpc::testing {

// Polls `pred` (every millisecond) until true or `timeout`: for conditions
// no callback announces. Returns the last value.
bool WaitUntil(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(10));

// Owns a file descriptor: closed on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept;
  ~ScopedFd();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

class Cluster {
 public:
  struct Node {
    uint64_t id = 0;
    int port = 0;
    // Holds `port` for the cluster's life (see cluster.cc's ReservePort).
    ScopedFd port_hold;
    std::string url;       // http://127.0.0.1:<port>
    std::string snap_dir;  // receiver's snapshot directory
    std::unique_ptr<FakeRaft> raft;
    std::unique_ptr<Transport> transport;
  };

  // Adjusts one node's options (e.g. its TLS certificate) before it starts.
  using NodeOptionsFn = std::function<void(uint64_t id, TransportOptions& opts)>;

  // Starts nodes 1..n (options from `base`, IDs and ports filled in, then
  // `per_node`), each a peer of every other. URLs are https:// when
  // base.tls is enabled.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(int n, TransportOptions base = {},
                                                        NodeOptionsFn per_node = nullptr);
  // As Start, with a FaultProxy on every directed link: node a's peer URL
  // for b is proxy(a, b)'s. Node ports stay fixed across RestartNode.
  static absl::StatusOr<std::unique_ptr<Cluster>> StartWithProxies(
      int n, TransportOptions base = {}, NodeOptionsFn per_node = nullptr);
  ~Cluster();

  Node& node(uint64_t id) { return *nodes_.at(id); }
  Transport& t(uint64_t id) { return *node(id).transport; }
  FakeRaft& raft(uint64_t id) { return *node(id).raft; }
  std::vector<uint64_t> ids() const;

  // Stops node `id`'s transport (its port refuses connections; the FakeRaft
  // stays).
  void StopNode(uint64_t id);
  // Starts it again on the same port with a fresh FakeRaft (if `fresh_raft`)
  // and every other node as peer.
  absl::Status RestartNode(uint64_t id, bool fresh_raft = false);

  // The proxy node `a` dials to reach node `b` (nullptr without proxies).
  // Since receivers dial, what b sends a on streams crosses proxy(a, b);
  // what a sends b on its pipeline, snapshots and probes crosses it too.
  FaultProxy* proxy(uint64_t a, uint64_t b);
  // Applies `fn` to both proxies between a and b.
  void OnLink(uint64_t a, uint64_t b, const std::function<void(FaultProxy&)>& fn);

  // Partitions a and b at the transport level (CutPeer on both sides, as
  // etcd's tests do), and heals them.
  void Partition(uint64_t a, uint64_t b);
  void Heal(uint64_t a, uint64_t b);
  // Waits until a reports b active.
  bool WaitActive(uint64_t a, uint64_t b, absl::Duration timeout = absl::Seconds(10));

  // Whether `from` can send to `to` on the v3 / v2 stream right now.
  bool StreamUp(uint64_t from, uint64_t to);
  bool MsgAppV2Up(uint64_t from, uint64_t to);
  // Waits until every pair has both streams working.
  bool WaitAllStreams(absl::Duration timeout = absl::Seconds(10));

 private:
  // Creates nodes 1..n (ports, URLs, snapshot dirs, FakeRafts), not started.
  absl::Status AddNodes(int n);
  absl::Status StartNode(Node& n);
  TransportOptions base_;
  NodeOptionsFn per_node_;
  std::map<std::pair<uint64_t, uint64_t>, std::unique_ptr<FaultProxy>> proxies_;
  std::map<uint64_t, std::unique_ptr<Node>> nodes_;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_CLUSTER_H_
