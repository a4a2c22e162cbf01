// Logging through TransportOptions::log (default: stderr), with a rate
// limiter so a broken peer cannot flood the log.
//
// Thread-safety: both are safe from any thread and never block beyond the
// sink itself.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_LOG_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "peer/peer_status.h"
#include "transport/options.h"

namespace raftgrpc {

// Lines are cut to this many bytes (the prefix not counted), with a note of
// what was cut: a peer's error text goes into some, and a peer may send
// kilobytes of it.
inline constexpr size_t kMaxLogLineBytes = 1024;

// Writes one line, prefixed "raft-grpc-transport: <local id hex>: ". Control
// bytes are escaped (\n, \x1b, ...): a peer's error text, which some lines
// quote, must not forge lines of its own or drive a terminal. Long lines are
// cut to kMaxLogLineBytes.
void LogLine(const TransportOptions& opts, absl::string_view line);
// The same with the two options it uses (for callers that hold no options).
void LogLine(uint64_t local_id, const std::function<void(const std::string&)>& sink,
             absl::string_view line);

// At most one line per `period`; the next allowed line says how many were
// suppressed in between.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration period = absl::Seconds(1))
      : period_ms_(absl::ToInt64Milliseconds(period)) {}
  void Log(const TransportOptions& opts, absl::string_view line);

 private:
  const int64_t period_ms_;
  std::atomic<int64_t> last_ms_{INT64_MIN / 2};
  std::atomic<uint64_t> suppressed_{0};
};

// PeerStatus's events as log lines about member `id`, called `what`
// ("peer", "remote member"): every activation and every new cause of
// failure while inactive (PeerStatus bounds those per channel); a
// deactivation at most once a second, so a flapping link cannot flood the
// log.
PeerStatus::EventFn PeerStatusLogger(std::shared_ptr<const TransportOptions> opts, uint64_t id,
                                     absl::string_view what);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_LOG_H_
