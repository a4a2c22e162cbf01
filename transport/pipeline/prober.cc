#include "transport/pipeline/prober.h"

#include "absl/time/clock.h"
#include "peer/mutex.h"
#include "proto/transport.grpc.pb.h"
#include "transport/pipeline/unary_call.h"

namespace raftgrpc {

namespace {

using ProbeCall = UnaryCall<v1::ProbeRequest, v1::ProbeResponse>;

}  // namespace

class Prober::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts, Scheduler* sched,
       ChannelPool* channels)
      : env_(env), opts_(std::move(opts)), sched_(sched), channels_(channels) {}

  void Schedule() {
    MutexLock l(&mu_);
    ScheduleLocked();
  }

  void Stop() {
    UniqueLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    sched_->Cancel(task_);
    if (inflight_ != nullptr) inflight_->ctx.TryCancel();
    done_.wait(l, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == nullptr; });
  }

  ProbeStats stats() const {
    MutexLock l(&mu_);
    return stats_;
  }

 private:
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::weak_ptr<Core> weak = weak_from_this();
    task_ = sched_->RunAfter(opts_->probe_interval, [weak] {
      if (auto self = weak.lock()) self->Probe();
    });
  }

  void Probe() {
    auto* c = new ProbeCall;
    {
      MutexLock l(&mu_);
      if (stopped_ || inflight_ != nullptr) {
        delete c;
        return;
      }
      inflight_ = c;
    }
    c->url = env_.picker->Pick();
    std::shared_ptr<Core> self = shared_from_this();
    c->Start(
        channels_->Get(c->url, env_.peer_id), *opts_, env_.peer_id, opts_->probe_interval,
        [](auto* async, auto... args) { async->Probe(args...); },
        [self](ProbeCall* call, const grpc::Status& s) { self->OnDone(call, s); });
  }

  void OnDone(ProbeCall* c, const grpc::Status& s) {
    const absl::Time now = absl::Now();
    const bool ok = s.ok() && c->resp.ok();
    bool stopping;
    {
      MutexLock l(&mu_);
      stopping = stopped_;
      ++stats_.probes;
      stats_.healthy = ok;
      if (ok) {
        absl::Duration rtt = now - c->started;
        stats_.srtt = stats_.rtt.count() == 0 ? rtt : stats_.srtt * 0.875 + rtt * 0.125;
        stats_.clock_diff = absl::FromUnixNanos(c->resp.now_unix_nanos()) - (now - stats_.srtt / 2);
        stats_.rtt.Observe(absl::ToDoubleSeconds(rtt));
      } else {
        ++stats_.failures;
      }
    }
    if (!stopping) {
      if (ok) {
        env_.status->Activate();
      } else {
        env_.picker->Unreachable(c->url);
      }
    }
    MutexLock l(&mu_);
    inflight_ = nullptr;
    delete c;
    if (stopped_) {
      done_.notify_all();
    } else {
      ScheduleLocked();
    }
  }

  const PeerEnv env_;
  const std::shared_ptr<const TransportOptions> opts_;
  Scheduler* const sched_;
  ChannelPool* const channels_;
  mutable Mutex mu_;
  std::condition_variable done_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  ProbeCall* inflight_ ABSL_GUARDED_BY(mu_) = nullptr;
  Scheduler::TaskId task_ ABSL_GUARDED_BY(mu_) = 0;
  ProbeStats stats_ ABSL_GUARDED_BY(mu_);
};

Prober::Prober(const PeerEnv& env, std::shared_ptr<const TransportOptions> opts,
               Scheduler* scheduler, ChannelPool* channels)
    : core_(std::make_shared<Core>(env, std::move(opts), scheduler, channels)) {
  core_->Schedule();
}

Prober::~Prober() { Stop(); }
void Prober::Stop() { core_->Stop(); }
ProbeStats Prober::stats() const { return core_->stats(); }

}  // namespace raftgrpc
