#include "testing/hosts/hosts.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace raftgrpc::testing {
namespace {

// Runs a shell command; its output goes to our stderr.
absl::Status Sh(const std::string& cmd) {
  const int rc = std::system((cmd + " 1>&2").c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("`", cmd, "` failed (", rc, ")"));
  return absl::OkStatus();
}

std::string Capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// Namespaces of earlier runs whose process is gone (rgt<pid>...).
void RemoveStale() {
  for (absl::string_view line : absl::StrSplit(Capture("ip netns list 2>/dev/null"), '\n')) {
    std::string name(line.substr(0, line.find(' ')));
    if (name.rfind("rgt", 0) != 0) continue;
    size_t end = 3;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    int pid = 0;
    if (!absl::SimpleAtoi(name.substr(3, end - 3), &pid)) continue;
    if (kill(pid, 0) != 0 && errno == ESRCH) (void)Sh(absl::StrCat("ip netns del ", name));
  }
}

std::string NodeBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/raft_grpc_transport/testing/hosts/node");
}

}  // namespace

Hosts::Hosts(const Options& opts) : opts_(opts), prefix_(absl::StrCat("rgt", getpid())) {}

absl::StatusOr<std::unique_ptr<Hosts>> Hosts::Create(const Options& opts) {
  if (geteuid() != 0)
    return absl::UnavailableError("multi-host tests need root (network namespaces)");
  if (std::system("ip -V >/dev/null 2>&1") != 0 || std::system("tc -V >/dev/null 2>&1") != 0) {
    return absl::UnavailableError("multi-host tests need iproute2 (`ip` and `tc`)");
  }
  RemoveStale();
  // A node that died on its own must fail Ask with its cause, not kill
  // this process silently when Ask writes to its stdin (CI once saw
  // hosts_test end with exit code 141, SIGPIPE, and no word of why).
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Hosts> h(new Hosts(opts));
  if (absl::Status s = h->Setup(); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot build the hosts' network: ", s.message()));
  }
  return h;
}

std::string Hosts::ns(int id) const { return absl::StrCat(prefix_, id == 0 ? "sw" : "n", id); }
std::string Hosts::address(int id) const { return absl::StrCat("10.77.0.", id, ":7000"); }
std::string Hosts::snap_dir(int id) const { return absl::StrCat(dir_, "/n", id, "/snap"); }

absl::Status Hosts::Setup() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  // A directory of its own per Hosts: each test's logs and snapshot dirs
  // start empty, not appended to the previous test's.
  static int instances = 0;
  dir_ = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix_, "-", ++instances);
  const std::string sw = ns(0);
  if (absl::Status s = Sh(absl::StrCat("ip netns add ", sw)); !s.ok()) return s;
  namespaces_.push_back(sw);
  std::vector<std::string> cmds = {absl::StrCat("ip -n ", sw, " link add br0 type bridge"),
                                   absl::StrCat("ip -n ", sw, " link set br0 up")};
  for (int i = 1; i <= opts_.nodes; ++i) {
    const std::string n = ns(i);
    cmds.push_back(absl::StrCat("ip netns add ", n));
    cmds.push_back(
        absl::StrCat("ip link add v", i, " netns ", n, " type veth peer name s", i, " netns ", sw));
    cmds.push_back(absl::StrCat("ip -n ", n, " addr add 10.77.0.", i, "/24 dev v", i));
    cmds.push_back(absl::StrCat("ip -n ", n, " link set v", i, " up"));
    cmds.push_back(absl::StrCat("ip -n ", n, " link set lo up"));
    cmds.push_back(absl::StrCat("ip -n ", sw, " link set s", i, " master br0"));
    cmds.push_back(absl::StrCat("ip -n ", sw, " link set s", i, " up"));
    cmds.push_back(absl::StrCat("mkdir -p ", snap_dir(i)));
  }
  for (const std::string& c : cmds) {
    if (c.rfind("ip netns add ", 0) == 0) namespaces_.push_back(c.substr(13));
    if (absl::Status s = Sh(c); !s.ok()) return s;
  }
  return absl::OkStatus();
}

Hosts::~Hosts() {
  for (auto& [id, n] : nodes_) Stop(id);
  // The nodes' logs, kept with the test's outputs (bazel-testlogs/.../
  // test.outputs) for a failure's post-mortem.
  if (const char* out = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
    (void)Sh(absl::StrCat("for f in ", dir_, "/n*.log; do [ -e \"$f\" ] && cp \"$f\" ", out, "/",
                          opts_.label.empty() ? prefix_ : opts_.label,
                          "-$(basename \"$f\"); done; true"));
  }
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    (void)Sh(absl::StrCat("ip netns del ", *it));
  }
}

std::string Hosts::Log(int id) const {
  std::ifstream in(absl::StrCat(dir_, "/n", id, ".log"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status Hosts::Start(int id) {
  Stop(id);
  std::vector<std::string> peers;
  for (int j = 1; j <= opts_.nodes; ++j) {
    if (j != id) peers.push_back(absl::StrCat(j, "=http://", address(j)));
  }
  const std::vector<std::string> args = {
      "ip",
      "netns",
      "exec",
      ns(id),
      NodeBinary(),
      absl::StrCat("--id=", id),
      absl::StrCat("--listen=", address(id)),
      absl::StrCat("--peers=", absl::StrJoin(peers, ",")),
      absl::StrCat("--snap-dir=", snap_dir(id)),
      absl::StrCat("--read-timeout-ms=", absl::ToInt64Milliseconds(opts_.read_timeout)),
      absl::StrCat("--snapshot-progress-ms=",
                   absl::ToInt64Milliseconds(opts_.snapshot_progress_timeout))};
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe");
  }
  const std::string log = absl::StrCat(dir_, "/n", id, ".log");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork");
  if (pid == 0) {
    // The node dies with the test, however the test ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp("ip", argv.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  Node& n = nodes_[id];
  n.pid = pid;
  n.in = to_child[1];
  n.out = from_child[0];
  n.pending.clear();
  // Up when it answers.
  auto st = Ask(id, "stats", absl::Seconds(20));
  return st.ok() ? absl::OkStatus() : st.status();
}

void Hosts::Stop(int id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.pid < 0) return;
  Node& n = it->second;
  kill(n.pid, SIGCONT);  // a frozen node cannot die of SIGKILL's cousins
  kill(n.pid, SIGKILL);
  waitpid(n.pid, nullptr, 0);
  close(n.in);
  close(n.out);
  n = Node();
}

void Hosts::Kill(int id) { Stop(id); }

void Hosts::Freeze(int id) {
  if (nodes_.count(id)) kill(nodes_[id].pid, SIGSTOP);
}

void Hosts::Thaw(int id) {
  if (nodes_.count(id)) kill(nodes_[id].pid, SIGCONT);
}

// A qdisc on node `id`'s side of its link (what it sends) and, with
// `inbound`, on the switch's side (what it receives); "" removes them.
absl::Status Hosts::Shape(int id, const std::string& qdisc, bool inbound) {
  const std::string sides[2] = {absl::StrCat("ip netns exec ", ns(id), " tc qdisc "),
                                absl::StrCat("ip netns exec ", ns(0), " tc qdisc ")};
  const std::string devs[2] = {absl::StrCat("v", id), absl::StrCat("s", id)};
  for (int k = 0; k < (inbound ? 2 : 1); ++k) {
    if (qdisc.empty()) {
      (void)Sh(absl::StrCat(sides[k], "del dev ", devs[k], " root 2>/dev/null"));
    } else if (absl::Status s =
                   Sh(absl::StrCat(sides[k], "replace dev ", devs[k], " root ", qdisc));
               !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// A rate of 8 bit/s with room for one packet: everything else is dropped
// silently.
constexpr char kSilentDrop[] = "tbf rate 8bit burst 1600 limit 1";

absl::Status Hosts::Cut(int id) { return Shape(id, kSilentDrop, /*inbound=*/true); }

absl::Status Hosts::CutOutbound(int id) { return Shape(id, kSilentDrop, /*inbound=*/false); }

absl::Status Hosts::Limit(int id, uint64_t bytes_per_second) {
  const uint64_t burst = std::max<uint64_t>(bytes_per_second / 10, 16 * 1024);
  return Shape(
      id, absl::StrCat("tbf rate ", bytes_per_second * 8, "bit burst ", burst, " latency 50ms"),
      /*inbound=*/true);
}

absl::Status Hosts::Restore(int id) { return Shape(id, "", /*inbound=*/true); }

absl::StatusOr<std::string> Hosts::Ask(int id, const std::string& command, absl::Duration timeout) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.pid < 0) return absl::FailedPreconditionError("not running");
  Node& n = it->second;
  const std::string line = command + "\n";
  if (write(n.in, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return absl::UnavailableError(Gone(id));
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const size_t nl = n.pending.find('\n');
    if (nl != std::string::npos) {
      std::string answer = n.pending.substr(0, nl);
      n.pending.erase(0, nl + 1);
      return answer;
    }
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return absl::DeadlineExceededError(absl::StrCat("node ", id, ": no answer"));
    pollfd p{n.out, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t r = read(n.out, buf, sizeof(buf));
    if (r <= 0) return absl::UnavailableError(Gone(id));
    n.pending.append(buf, r);
  }
}

std::string Hosts::Gone(int id) const {
  std::string how = "its pipes closed";
  auto it = nodes_.find(id);
  if (it != nodes_.end() && it->second.pid > 0) {
    // Waits briefly for the exit that closed the pipes; WNOWAIT leaves the
    // child for Stop to reap.
    siginfo_t info{};
    for (int i = 0; i < 100; ++i) {
      info.si_pid = 0;
      if (waitid(P_PID, it->second.pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) break;
      if (info.si_pid != 0) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (info.si_pid != 0) {
      how = info.si_code == CLD_EXITED ? absl::StrCat("exited with status ", info.si_status)
                                       : absl::StrCat("killed by signal ", info.si_status);
    }
  }
  // The end of its log: a sanitizer's report or a fatal error is there.
  const std::string log = Log(id);
  const size_t from = log.size() > 4000 ? log.size() - 4000 : 0;
  return absl::StrCat("node ", id, " is gone (", how, "); the end of its log:\n", log.substr(from));
}

absl::StatusOr<std::map<std::string, int64_t>> Hosts::Stats(int id) {
  auto line = Ask(id, "stats");
  if (!line.ok()) return line.status();
  std::map<std::string, int64_t> out;
  for (absl::string_view kv : absl::StrSplit(*line, ' ', absl::SkipEmpty())) {
    const size_t eq = kv.find('=');
    int64_t v = 0;
    if (eq != absl::string_view::npos && absl::SimpleAtoi(kv.substr(eq + 1), &v)) {
      out[std::string(kv.substr(0, eq))] = v;
    }
  }
  return out;
}

}  // namespace raftgrpc::testing
