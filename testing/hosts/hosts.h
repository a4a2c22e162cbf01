// Hosts: N transport nodes, each a process (//testing/hosts:node) in its
// own network namespace with its own IPv4 address (10.77.0.<id>) on a
// bridge that lives in a namespace of its own, so that the machine's own
// network is never touched. Real kernels, real links, real processes:
// faults are what the kernel does, not what a proxy imitates.
//
// Faults, per node, switchable at run time:
//   - Cut/Restore: a silent drop both ways (tbf at a near-zero rate: no RST,
//     packets just vanish), and back;
//   - Limit: a bandwidth limit both ways (tbf);
//   - Freeze/Thaw: SIGSTOP/SIGCONT (sockets stay open, nothing answers);
//   - Kill/Start: SIGKILL, then a new process on the same address and
//     snapshot dir.
// Delay and jitter stay testing/fault_proxy's job (no netem here).
//
// Clean-up: everything is named rgt<pid>..., removed by the destructor; the
// nodes die with this process (PR_SET_PDEATHSIG); Create removes the
// namespaces of earlier runs whose process is gone.
//
// Requires root, `ip` and `tc` (iproute2). Create says why not otherwise,
// and tests skip with that message.
//
// Thread-safety: one thread drives a Hosts.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_HOSTS_HOSTS_H_
#define RAFT_GRPC_TRANSPORT_TESTING_HOSTS_HOSTS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace raftgrpc::testing {

class Hosts {
 public:
  struct Options {
    int nodes = 5;
    // The nodes' conn_read_timeout (link heartbeats every third of it).
    absl::Duration read_timeout = absl::Milliseconds(1500);
    // The nodes' snapshot_progress_timeout: short, so that a cut longer
    // than it fails a snapshot within a test's time.
    absl::Duration snapshot_progress_timeout = absl::Seconds(5);
    // Names the nodes' logs kept with the test's outputs
    // (<label>-n<id>.log; the test's name, say), so that each test of a
    // binary keeps its own. Empty: rgt<pid>-n<id>.log.
    std::string label;
  };

  static absl::StatusOr<std::unique_ptr<Hosts>> Create(const Options& opts);
  ~Hosts();

  // Starts node `id` (1-based), every other node its peer. Waits until it
  // answers a command.
  absl::Status Start(int id);
  void Kill(int id);
  void Freeze(int id);
  void Thaw(int id);
  absl::Status Cut(int id);
  // Only what node `id` sends is dropped (it still receives): an
  // asymmetric partition at the packet level.
  absl::Status CutOutbound(int id);
  absl::Status Limit(int id, uint64_t bytes_per_second);
  absl::Status Restore(int id);

  // Sends a command line to node `id` and returns its answer line.
  // FAILED_PRECONDITION if it is not running (killed or never started);
  // UNAVAILABLE, naming how it ended and the end of its log, if it died
  // on its own.
  absl::StatusOr<std::string> Ask(int id, const std::string& command,
                                  absl::Duration timeout = absl::Seconds(10));
  // "stats", parsed: key -> value.
  absl::StatusOr<std::map<std::string, int64_t>> Stats(int id);

  // Everything node `id`'s processes wrote to stderr (the transport's log).
  std::string Log(int id) const;

  std::string address(int id) const;
  std::string snap_dir(int id) const;

 private:
  struct Node {
    pid_t pid = -1;
    int in = -1, out = -1;  // its stdin (we write), its stdout (we read)
    std::string pending;    // read, not yet a whole line
  };

  explicit Hosts(const Options& opts);
  std::string ns(int id) const;
  absl::Status Setup();
  absl::Status Shape(int id, const std::string& qdisc, bool inbound);
  void Stop(int id);
  // Why node `id`, which we did not stop, no longer answers.
  std::string Gone(int id) const;

  const Options opts_;
  const std::string prefix_;
  std::string dir_;
  std::map<int, Node> nodes_;
  std::vector<std::string> namespaces_;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_HOSTS_HOSTS_H_
