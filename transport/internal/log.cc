#include "transport/internal/log.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace raftgrpc {

namespace {

// `line` with control bytes escaped, cut to kMaxLogLineBytes.
std::string Sanitized(absl::string_view line) {
  std::string out;
  out.reserve(std::min(line.size(), kMaxLogLineBytes) + 16);
  size_t i = 0;
  for (; i < line.size() && out.size() < kMaxLogLineBytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < line.size()) absl::StrAppend(&out, "... (", line.size() - i, " more bytes)");
  return out;
}

}  // namespace

void LogLine(const TransportOptions& opts, absl::string_view line) {
  LogLine(opts.local_id, opts.log, line);
}

void LogLine(uint64_t local_id, const std::function<void(const std::string&)>& sink,
             absl::string_view line) {
  std::string full =
      absl::StrCat("raft-grpc-transport: ", absl::Hex(local_id), ": ", Sanitized(line));
  if (sink) {
    try {
      sink(full);
      return;
    } catch (...) {
      // The node's sink runs on our threads, gRPC's among them, where an
      // exception would end the process: the line goes to stderr instead.
      std::fprintf(stderr, "raft-grpc-transport: TransportOptions::log threw; the line was:\n");
    }
  }
  std::fprintf(stderr, "%s\n", full.c_str());
}

void LogRateLimiter::Log(const TransportOptions& opts, absl::string_view line) {
  const int64_t now = absl::ToUnixMillis(absl::Now());
  int64_t prev = last_ms_.load(std::memory_order_relaxed);
  if (now - prev < period_ms_ || !last_ms_.compare_exchange_strong(prev, now)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t skipped = suppressed_.exchange(0);
  if (skipped == 0) {
    LogLine(opts, line);
  } else {
    LogLine(opts, absl::StrCat(line, " (", skipped, " similar suppressed)"));
  }
}

PeerStatus::EventFn PeerStatusLogger(std::shared_ptr<const TransportOptions> opts, uint64_t id,
                                     absl::string_view what) {
  auto deactivated = std::make_shared<LogRateLimiter>();
  const std::string name = absl::StrCat(what, " ", absl::Hex(id));
  return [opts = std::move(opts), deactivated, name](const PeerStatus::Event& e) {
    using Kind = PeerStatus::Event::Kind;
    switch (e.kind) {
      case Kind::kActivated:
        LogLine(*opts, absl::StrCat(name, " became active"));
        break;
      case Kind::kDeactivated:
        deactivated->Log(*opts, absl::StrCat(name, " became inactive: ", e.reason));
        break;
      case Kind::kFailedAgain:  // PeerStatus limits these, per channel
        LogLine(*opts, e.repeats == 0
                           ? absl::StrCat(name, " is inactive: ", e.reason)
                           : absl::StrCat(name, " is inactive: ", e.reason, " (", e.repeats,
                                          " more failures on that channel since its last line)"));
        break;
    }
  };
}

}  // namespace raftgrpc
