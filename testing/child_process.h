// A child process with line-based pipes to its stdin and stdout, for tests
// and tools that drive another program (other-language nodes, the
// conformance runner's node under test).
//
// Thread-safety: one thread at a time. The destructor closes the pipes and
// kills (SIGKILL) and reaps a child that is still running.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_CHILD_PROCESS_H_
#define RAFT_GRPC_TRANSPORT_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace raftgrpc::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] (a path) with `argv`; its stderr stays the caller's.
  bool Start(const std::vector<std::string>& argv);
  bool WriteLine(const std::string& s);
  // Closes the child's stdin (many children take EOF as "stop").
  void CloseStdin();
  // The next line, or "" at EOF or after `timeout`. Blocks up to `timeout`.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(60));
  // Waits for the exit: the exit code, or -1 if a signal ended it.
  int Wait();
  // Waits up to `timeout` for the exit, then SIGKILLs. The exit code, or -1.
  int WaitOrKill(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_CHILD_PROCESS_H_
