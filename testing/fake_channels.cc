#include "testing/fake_channels.h"

#include <utility>

namespace raftgrpc::testing {

bool FakeChannel::Working() const {
  std::lock_guard<std::mutex> l(mu_);
  return !stopped_ && (always_working_ || working_);
}

bool FakeChannel::TrySend(raftpb::Message&& m) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_ || !(always_working_ || working_) || q_.size() >= capacity_) return false;
  q_.push_back(std::move(m));
  return true;
}

void FakeChannel::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  stopped_ = true;
  working_ = false;
  q_.clear();
  if (conn_) conn_->Close();
}

bool FakeChannel::Attach(std::unique_ptr<OutgoingConn>& conn) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return false;
  if (conn_) conn_->Close();
  conn_ = std::move(conn);
  working_ = true;
  ++attaches_;
  return true;
}

void FakeChannel::SetWorking(bool working) {
  std::lock_guard<std::mutex> l(mu_);
  working_ = working;
}

std::vector<raftpb::Message> FakeChannel::Take() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<raftpb::Message> out;
  out.swap(q_);
  return out;
}

size_t FakeChannel::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return q_.size();
}

bool FakeChannel::stopped() const {
  std::lock_guard<std::mutex> l(mu_);
  return stopped_;
}

int FakeChannel::attaches() const {
  std::lock_guard<std::mutex> l(mu_);
  return attaches_;
}

void FakeSnapshotSender::Send(SnapshotMessage snap) {
  std::lock_guard<std::mutex> l(mu_);
  held_.push_back(std::move(snap));
}

void FakeSnapshotSender::Stop() {
  std::vector<SnapshotMessage> dropped;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    dropped.swap(held_);
  }
  for (auto& s : dropped) s.Close(false);
}

void FakeSnapshotSender::CompleteAll(Raft* raft, uint64_t to, bool ok) {
  std::vector<SnapshotMessage> done;
  {
    std::lock_guard<std::mutex> l(mu_);
    done.swap(held_);
  }
  for (auto& s : done) {
    s.Close(ok);
    raft->ReportSnapshot(to, ok ? SnapshotStatus::kFinish : SnapshotStatus::kFailure);
  }
}

size_t FakeSnapshotSender::held() const {
  std::lock_guard<std::mutex> l(mu_);
  return held_.size();
}

bool FakeSnapshotSender::stopped() const {
  std::lock_guard<std::mutex> l(mu_);
  return stopped_;
}

std::unique_ptr<MessageChannel> FakeChannelFactory::NewPipeline(const PeerEnv&) {
  auto c = std::make_unique<FakeChannel>(pipeline_capacity_, /*always_working=*/true);
  pipeline = c.get();
  return c;
}

std::unique_ptr<StreamWriter> FakeChannelFactory::NewStreamWriter(StreamType type, const PeerEnv&) {
  auto c = std::make_unique<FakeChannel>(stream_capacity_, /*always_working=*/false);
  (type == StreamType::kMsgAppV2 ? msgapp_v2 : message) = c.get();
  return c;
}

std::unique_ptr<SnapshotSender> FakeChannelFactory::NewSnapshotSender(const PeerEnv&) {
  auto s = std::make_unique<FakeSnapshotSender>();
  snapshot = s.get();
  return s;
}

std::unique_ptr<StreamReader> FakeChannelFactory::NewStreamReader(StreamType, const PeerEnv&) {
  auto r = std::make_unique<FakeReader>();
  readers.push_back(r.get());
  return r;
}

}  // namespace raftgrpc::testing
