// LogLines: what a transport logged (TransportOptions::log), for tests to
// search. Thread-safe: transport threads append while the test reads.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_LOG_LINES_H_
#define RAFT_GRPC_TRANSPORT_TESTING_LOG_LINES_H_

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"

namespace raftgrpc {
namespace testing {

class LogLines {
 public:
  // A TransportOptions::log that appends here; `this` must outlive every
  // transport given it.
  std::function<void(const std::string&)> Sink() {
    return [this](const std::string& line) { Add(line); };
  }
  void Add(const std::string& line) {
    std::lock_guard<std::mutex> l(mu_);
    lines_.push_back(line);
  }
  // Whether a line contains `text`.
  bool Has(const std::string& text) const {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  // How many lines contain `text`.
  size_t Count(const std::string& text) const {
    std::lock_guard<std::mutex> l(mu_);
    size_t n = 0;
    for (const std::string& line : lines_) n += line.find(text) != std::string::npos;
    return n;
  }
  // Every line, one per line: for a failure message.
  std::string Joined() const {
    std::lock_guard<std::mutex> l(mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace testing
}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TESTING_LOG_LINES_H_
