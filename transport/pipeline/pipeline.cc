#include "transport/pipeline/pipeline.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/transport.grpc.pb.h"
#include "transport/internal/handoff.h"
#include "transport/internal/metadata.h"

namespace raftgrpc {
namespace {

struct PipelineCall {
  grpc::ClientContext ctx;
  v1::PipelineRequest req;
  v1::PipelineResponse resp;
  std::unique_ptr<v1::RaftTransport::Stub> stub;
  std::string url;
  size_t bytes = 0;
  Handoff handoff;
};

}  // namespace

class GrpcPipeline::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(const PeerEnv& env, const TransportOptions& opts, ChannelPool* channels, bool report,
       CriticalFn on_critical)
      : env_(env),
        opts_(opts),
        channels_(channels),
        report_(report),
        on_critical_(std::move(on_critical)) {}

  bool TrySend(raftpb::Message&& m) {
    if (m.ByteSizeLong() > opts_.max_message_bytes) return false;
    PipelineCall* start = nullptr;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopped_ || queue_.size() >= opts_.pipeline_buf_size) return false;
      queue_.push_back(std::move(m));
      start = NextLocked();
    }
    if (start != nullptr) Launch(start);
    return true;
  }

  void Stop() {
    std::unique_lock<std::mutex> l(mu_);
    if (stopped_) return;
    stopped_ = true;
    queue_.clear();  // queued messages are dropped silently, as etcd
    for (PipelineCall* c : inflight_) c->ctx.TryCancel();
    done_.wait(l, [&] { return inflight_.empty(); });
  }

  PipelineStats stats() const {
    std::lock_guard<std::mutex> l(mu_);
    return stats_;
  }

 private:
  // Takes the next message if a worker slot is free.
  PipelineCall* NextLocked() {
    if (queue_.empty() || inflight_.size() >= opts_.conn_per_pipeline) return nullptr;
    auto* c = new PipelineCall;
    *c->req.mutable_message() = std::move(queue_.front());
    queue_.pop_front();
    c->url = env_.picker->Pick();
    c->bytes = c->req.message().ByteSizeLong();
    inflight_.insert(c);
    return c;
  }

  void Launch(PipelineCall* c) {
    AddIdentityMetadata(&c->ctx, opts_, env_.peer_id);
    c->ctx.set_deadline(absl::ToChronoTime(absl::Now() + opts_.pipeline_timeout));
    c->stub = v1::RaftTransport::NewStub(channels_->Get(c->url));
    std::shared_ptr<Core> self = shared_from_this();
    c->handoff.Publish();
    c->stub->async()->Pipeline(&c->ctx, &c->req, &c->resp, [self, c](grpc::Status s) {
      c->handoff.Acquire();
      self->OnDone(c, s);
    });
  }

  void OnDone(PipelineCall* c, const grpc::Status& s) {
    const raftpb::Message& m = c->req.message();
    const bool is_snap = m.type() == raftpb::MsgSnap;
    const uint64_t to = m.to();
    bool stopping;
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping = stopped_;
    }
    if (stopping && !s.ok()) {
      // Cancelled by Stop: the peer is going away; report nothing.
    } else if (s.ok()) {
      env_.status->Activate();
      if (report_ && is_snap) env_.raft->ReportSnapshot(to, SnapshotStatus::kFinish);
    } else {
      env_.picker->Unreachable(c->url);
      env_.status->Deactivate({"pipeline", "write"},
                              absl::StrCat(static_cast<int>(s.error_code()), ": ", s.error_message()));
      if (report_) {
        env_.raft->ReportUnreachable(to);
        if (is_snap) env_.raft->ReportSnapshot(to, SnapshotStatus::kFailure);
      }
      if (IsRemovedMember(s, c->ctx) && on_critical_) {
        on_critical_(absl::PermissionDeniedError(
            "the member has been permanently removed from the cluster"));
      }
    }
    PipelineCall* next = nullptr;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (s.ok()) {
        ++stats_.sent;
        stats_.bytes += c->bytes;
      } else {
        ++stats_.failures;
      }
      inflight_.erase(c);
      if (!stopped_) next = NextLocked();
      if (inflight_.empty()) done_.notify_all();
    }
    delete c;
    if (next != nullptr) Launch(next);
  }

  const PeerEnv env_;
  const TransportOptions opts_;
  ChannelPool* const channels_;
  const bool report_;
  const CriticalFn on_critical_;

  mutable std::mutex mu_;
  std::condition_variable done_;
  bool stopped_ = false;
  std::deque<raftpb::Message> queue_;
  std::set<PipelineCall*> inflight_;
  PipelineStats stats_;
};

GrpcPipeline::GrpcPipeline(const PeerEnv& env, const TransportOptions& opts,
                           ChannelPool* channels, bool report, CriticalFn on_critical)
    : core_(std::make_shared<Core>(env, opts, channels, report, std::move(on_critical))) {}

GrpcPipeline::~GrpcPipeline() { Stop(); }

bool GrpcPipeline::TrySend(raftpb::Message&& m) { return core_->TrySend(std::move(m)); }
void GrpcPipeline::Stop() { core_->Stop(); }
PipelineStats GrpcPipeline::stats() const { return core_->stats(); }

}  // namespace raftgrpc
