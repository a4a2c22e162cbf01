#include "transport/pipeline/pipeline.h"

#include <condition_variable>
#include <deque>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/metadata.h"
#include "transport/pipeline/unary_call.h"

namespace raftgrpc {
namespace {

struct PipelineCall : UnaryCall<v1::PipelineRequest, v1::PipelineResponse> {
  size_t bytes = 0;
};

}  // namespace

class GrpcPipeline::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts, ChannelPool* channels,
       bool report)
      : env_(env), opts_(std::move(opts)), channels_(channels), report_(report) {}

  bool TrySend(raftpb::Message&& m) {
    if (m.ByteSizeLong() > opts_->max_message_bytes) return false;
    PipelineCall* start = nullptr;
    {
      MutexLock l(&mu_);
      if (stopped_ || queue_.size() >= opts_->pipeline_buf_size) return false;
      queue_.push_back(std::move(m));
      start = NextLocked();
    }
    if (start != nullptr) Launch(start);
    return true;
  }

  void Stop() {
    UniqueLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    queue_.clear();  // queued messages are dropped silently, as etcd
    for (PipelineCall* c : inflight_) c->ctx.TryCancel();
    done_.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; });
  }

 private:
  // Takes the next message if a worker slot is free.
  PipelineCall* NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty() || inflight_.size() >= opts_->conn_per_pipeline) return nullptr;
    auto* c = new PipelineCall;
    *c->req.mutable_message() = std::move(queue_.front());
    queue_.pop_front();
    c->url = env_.picker->Pick();
    c->bytes = c->req.message().ByteSizeLong();
    inflight_.insert(c);
    ++live_;
    return c;
  }

  void Launch(PipelineCall* c) {
    std::shared_ptr<Core> self = shared_from_this();
    // gRPC fails a call at once while its channel waits out a reconnect
    // backoff; right after a reset every message would then be an instant
    // failure and a ReportUnreachable. Wait for the connection instead, if
    // the peer was reachable a moment ago.
    std::shared_ptr<grpc::Channel> channel = channels_->Get(c->url, env_.peer_id);
    if (channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY &&
        absl::Now() - env_.status->LastActive() < opts_->pipeline_reconnect_wait) {
      c->ctx.set_wait_for_ready(true);
    }
    c->Start(
        std::move(channel), *opts_, env_.peer_id, opts_->pipeline_timeout,
        [](auto* async, auto... args) { async->Pipeline(args...); },
        [self, c](auto*, const grpc::Status& s) { self->OnDone(c, s); });
  }

  void OnDone(PipelineCall* c, const grpc::Status& s) {
    const raftpb::Message& m = c->req.message();
    const bool is_snap = m.type() == raftpb::MsgSnap;
    const uint64_t to = m.to();
    bool stopping;
    {
      MutexLock l(&mu_);
      stopping = stopped_;
    }
    if (stopping && !s.ok()) {
      // Cancelled by Stop: the peer is going away, so nothing is reported,
      // except a MsgSnap's outcome, which Raft waits for (etcd reports it).
      if (report_ && is_snap) ReportNotSent(env_, /*snapshot=*/true);
    } else if (s.ok()) {
      env_.status->Activate();
      if (report_ && is_snap) env_.raft->ReportSnapshot(to, SnapshotStatus::kFinish);
    } else {
      ChannelFailure f;
      f.source = {"pipeline", "write"};
      f.reason = absl::StrCat(static_cast<int>(s.error_code()), ": ", s.error_message());
      f.url = c->url;
      f.report = report_;
      f.snapshot = is_snap;
      f.removed_member = IsRemovedMember(s, c->ctx);
      ReportChannelFailure(env_, f);
    }
    if (s.ok()) {
      env_.counters->AddSent(c->bytes);
    } else {
      env_.counters->AddSendFailure();
    }
    PipelineCall* next = nullptr;
    {
      MutexLock l(&mu_);
      inflight_.erase(c);
      if (!stopped_) next = NextLocked();
    }
    // Deleted before Stop may return: the call's ClientContext holds a
    // reference to its grpc::Channel, and the last one must not drop on
    // this gRPC thread (see GrpcStreamReader::Core::Delete).
    delete c;
    {
      MutexLock l(&mu_);
      if (--live_ == 0) done_.notify_all();
    }
    if (next != nullptr) Launch(next);
  }

  const PeerEnv env_;
  const std::shared_ptr<const TransportOptions> opts_;
  ChannelPool* const channels_;
  const bool report_;

  mutable Mutex mu_;
  std::condition_variable done_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<raftpb::Message> queue_ ABSL_GUARDED_BY(mu_);
  std::set<PipelineCall*> inflight_ ABSL_GUARDED_BY(mu_);
  int live_ ABSL_GUARDED_BY(mu_) = 0;  // calls not yet deleted
};

GrpcPipeline::GrpcPipeline(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
                           ChannelPool* channels, bool report)
    : core_(std::make_shared<Core>(env, std::move(opts), channels, report)) {}

GrpcPipeline::~GrpcPipeline() { Stop(); }

bool GrpcPipeline::TrySend(raftpb::Message&& m) { return core_->TrySend(std::move(m)); }
void GrpcPipeline::Stop() { core_->Stop(); }

}  // namespace raftgrpc
