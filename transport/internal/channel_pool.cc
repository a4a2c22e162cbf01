#include "transport/internal/channel_pool.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "peer/mutex.h"
#include "peer/url_picker.h"

namespace raftgrpc {

namespace {
// How often settling channels are looked at, and how long the destructor
// waits for attempts under way: a loopback or LAN handshake takes a few
// milliseconds; an attempt stuck in its TCP connect has no connection to
// leak, and is dropped at the end of the wait.
constexpr absl::Duration kSettleInterval = absl::Milliseconds(100);
constexpr absl::Duration kDestroyWait = absl::Milliseconds(300);
// The longest a channel settles: past the longest reconnect backoff (1 s)
// and a handshake. A peer that came back is then ready; one still down has
// no handshake under way to leak.
constexpr absl::Duration kSettleAtMost = absl::Seconds(3);

bool Connecting(grpc::Channel& ch) {
  return ch.GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_CONNECTING;
}

// Whether an attempt may be under way. pick_first keeps reporting
// TRANSIENT_FAILURE while it dials again after a failure (gRPC 1.51's
// pick_first.cc: CONNECTING is not reported once in TRANSIENT_FAILURE), so
// a channel whose peer was down when first dialled hides its redial.
bool MayBeConnecting(grpc::Channel& ch) {
  const grpc_connectivity_state s = ch.GetState(/*try_to_connect=*/false);
  return s == GRPC_CHANNEL_CONNECTING || s == GRPC_CHANNEL_TRANSIENT_FAILURE;
}
}  // namespace

ChannelPool::ChannelPool(std::shared_ptr<const TransportOptions> opts,
                         MemberChannelCredentials creds, Scheduler* scheduler)
    : opts_(std::move(opts)), creds_(std::move(creds)), scheduler_(scheduler) {}

ChannelPool::~ChannelPool() {
  std::vector<std::shared_ptr<grpc::Channel>> all;
  {
    MutexLock l(&mu_);
    for (Settling& c : settling_) all.push_back(std::move(c.channel));
    settling_.clear();
    for (auto& [key, ch] : channels_) all.push_back(std::move(ch));
    channels_.clear();
  }
  const auto deadline = absl::ToChronoTime(absl::Now() + kDestroyWait);
  for (const std::shared_ptr<grpc::Channel>& ch : all) {
    if (Connecting(*ch)) ch->WaitForStateChange(GRPC_CHANNEL_CONNECTING, deadline);
  }
}

void ChannelPool::LetGo(std::shared_ptr<grpc::Channel> ch,
                        std::vector<std::shared_ptr<grpc::Channel>>* drop) {
  if (MayBeConnecting(*ch)) {
    settling_.push_back(Settling{std::move(ch), absl::Now() + kSettleAtMost});
    ScheduleSettle();
  } else {
    drop->push_back(std::move(ch));
  }
}

bool ChannelPool::Settle(std::vector<std::shared_ptr<grpc::Channel>>* drop) {
  const absl::Time now = absl::Now();
  for (auto it = settling_.begin(); it != settling_.end();) {
    if (now < it->until && MayBeConnecting(*it->channel)) {
      ++it;
    } else {
      drop->push_back(std::move(it->channel));
      it = settling_.erase(it);
    }
  }
  return !settling_.empty();
}

void ChannelPool::ScheduleSettle() {
  if (scheduler_ == nullptr || settle_scheduled_) return;
  settle_scheduled_ = true;
  scheduler_->RunAfter(kSettleInterval, [this] {
    std::vector<std::shared_ptr<grpc::Channel>> drop;  // dropped outside the lock
    MutexLock l(&mu_);
    settle_scheduled_ = false;
    if (Settle(&drop)) ScheduleSettle();
  });
}

int ChannelPool::MaxReceiveBytes(const TransportOptions& opts) {
  // A frame holds at most max(max_frame_bytes, one message) of payload; the
  // slack covers per-message framing inside the batch.
  size_t frame = std::max(opts.max_frame_bytes, opts.max_message_bytes);
  return static_cast<int>(frame + frame / 8 + 64 * 1024);
}

std::shared_ptr<grpc::Channel> ChannelPool::Make(const std::string& url, uint64_t member,
                                                 bool snapshot) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(MaxReceiveBytes(*opts_));
  args.SetMaxSendMessageSize(MaxReceiveBytes(*opts_));
  // Fast reconnects: a restarted peer is reached within the dial retry rate,
  // not gRPC's default backoff of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC reads its minimum connect timeout from this argument (the time a
  // TCP and HTTP/2 handshake may take), not a backoff. It was 100 ms: on a
  // link with 100 ms of round trip, or a queue in front of it, every first
  // attempt timed out "before receiving SETTINGS frame" and fail-fast calls
  // failed with it (hosts_test: a snapshot retry after a stall, on a
  // saturated 4 MB/s link, 1 run in 4). 2 s fits a TLS handshake over a 500 ms round
  // trip and one lost SYN, and still retries a partitioned peer every few
  // seconds. Snapshots, on a fresh connection after a stall, may take as
  // long to connect as to make progress.
  const absl::Duration connect =
      snapshot ? std::max(absl::Seconds(2), opts_->snapshot_progress_timeout) : absl::Seconds(2);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(connect), 600000)));
  // Like etcd's, this transport has its own retry semantics (Raft resends):
  // none at the RPC level. gRPC's retry layer is off.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  if (!opts_->tls.server_name_override.empty()) {
    args.SetSslTargetNameOverride(opts_->tls.server_name_override);
  }
  if (snapshot) {
    // Own connection; BDP probing off and a large lookahead measured ~2x
    // faster for bulk client streams on loopback.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024 * 1024);
  } else if (opts_->stream_window_bytes > 0) {
    // A fixed window, no bandwidth-delay probe (TransportOptions).
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                static_cast<int>(opts_->stream_window_bytes));
  }
  return grpc::CreateCustomChannel(GrpcTarget(url), creds_(member), args);
}

std::shared_ptr<grpc::Channel> ChannelPool::GetLocked(const std::string& url, uint64_t member,
                                                      bool snapshot) {
  auto& ch = channels_[{url, member, snapshot}];
  if (!ch) ch = Make(url, member, snapshot);
  return ch;
}

std::shared_ptr<grpc::Channel> ChannelPool::Get(const std::string& url, uint64_t member) {
  MutexLock l(&mu_);
  return GetLocked(url, member, false);
}

std::shared_ptr<grpc::Channel> ChannelPool::GetForSnapshots(const std::string& url,
                                                            uint64_t member) {
  MutexLock l(&mu_);
  return GetLocked(url, member, true);
}

bool ChannelPool::ReleaseUnused(const std::vector<std::string>& urls, uint64_t member) {
  std::vector<std::shared_ptr<grpc::Channel>> released;  // dropped outside the lock
  bool all = true;
  MutexLock l(&mu_);
  Settle(&released);
  for (const std::string& url : urls) {
    for (bool snapshot : {false, true}) {
      auto it = channels_.find({url, member, snapshot});
      if (it == channels_.end()) continue;
      if (it->second.use_count() == 1) {
        LetGo(std::move(it->second), &released);
        channels_.erase(it);
      } else {
        all = false;
      }
    }
  }
  return all;
}

void ChannelPool::ResetForSnapshots(const std::string& url, uint64_t member) {
  std::vector<std::shared_ptr<grpc::Channel>> released;  // dropped outside the lock
  MutexLock l(&mu_);
  Settle(&released);
  auto it = channels_.find({url, member, true});
  if (it == channels_.end()) return;
  LetGo(std::move(it->second), &released);
  channels_.erase(it);
}

size_t ChannelPool::size() const {
  MutexLock l(&mu_);
  return channels_.size();
}

size_t ChannelPool::settling() const {
  MutexLock l(&mu_);
  return settling_.size();
}

}  // namespace raftgrpc
