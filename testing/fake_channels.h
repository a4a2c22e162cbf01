// In-memory channels for testing Peer without a network: a channel that
// queues into a bounded buffer nobody drains (until the test does), a
// snapshot sender that holds what it is given, and a factory that builds
// them and keeps pointers for inspection.
//
// Thread-safety: all methods are safe from any thread and never block.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_FAKE_CHANNELS_H_
#define RAFT_GRPC_TRANSPORT_TESTING_FAKE_CHANNELS_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "peer/channels.h"
#include "peer/peer.h"

namespace raftgrpc::testing {

// An accepted stream stand-in that records Close().
class FakeConn : public OutgoingConn {
 public:
  explicit FakeConn(StreamType type, std::atomic<int>* closes = nullptr)
      : type_(type), closes_(closes) {}
  StreamType type() const override { return type_; }
  void Close() override {
    if (!closed_.exchange(true) && closes_ != nullptr) closes_->fetch_add(1);
  }
  bool closed() const { return closed_.load(); }

 private:
  StreamType type_;
  std::atomic<int>* closes_;
  std::atomic<bool> closed_{false};
};

// A bounded queue that nothing drains. As a stream writer it works while a
// conn is attached (or when forced); as a pipeline it always works.
class FakeChannel : public StreamWriter {
 public:
  FakeChannel(size_t capacity, bool always_working)
      : capacity_(capacity), always_working_(always_working) {}

  bool Working() const override;
  bool TrySend(raftpb::Message&& m) override;
  void Stop() override;
  bool Attach(std::unique_ptr<OutgoingConn>& conn) override;

  // Test controls.
  void SetWorking(bool working);        // as if a conn were attached / lost
  std::vector<raftpb::Message> Take();  // drains the queue
  size_t size() const;
  bool stopped() const;
  int attaches() const;

 private:
  const size_t capacity_;
  const bool always_working_;
  mutable std::mutex mu_;
  bool working_ = false;
  bool stopped_ = false;
  int attaches_ = 0;
  std::unique_ptr<OutgoingConn> conn_;
  std::vector<raftpb::Message> q_;
};

class FakeSnapshotSender : public SnapshotSender {
 public:
  void Send(SnapshotMessage snap) override;
  void Stop() override;
  // Ends every held snapshot with `ok` (closing and reporting it).
  void CompleteAll(Raft* raft, uint64_t to, bool ok);
  size_t held() const;
  bool stopped() const;

 private:
  mutable std::mutex mu_;
  std::vector<SnapshotMessage> held_;
  bool stopped_ = false;
};

class FakeReader : public StreamReader {
 public:
  void Stop() override { stopped_.store(true); }
  bool stopped() const { return stopped_.load(); }

 private:
  std::atomic<bool> stopped_{false};
};

// Builds fakes; the raw pointers stay valid while the Peer lives.
class FakeChannelFactory : public ChannelFactory {
 public:
  explicit FakeChannelFactory(size_t stream_capacity = 4096, size_t pipeline_capacity = 64)
      : stream_capacity_(stream_capacity), pipeline_capacity_(pipeline_capacity) {}

  std::unique_ptr<MessageChannel> NewPipeline(const PeerEnv& env) override;
  std::unique_ptr<StreamWriter> NewStreamWriter(StreamType type, const PeerEnv& env) override;
  std::unique_ptr<SnapshotSender> NewSnapshotSender(const PeerEnv& env) override;
  std::unique_ptr<StreamReader> NewStreamReader(StreamType type, const PeerEnv& env) override;

  FakeChannel* pipeline = nullptr;
  FakeChannel* msgapp_v2 = nullptr;
  FakeChannel* message = nullptr;
  FakeSnapshotSender* snapshot = nullptr;
  std::vector<FakeReader*> readers;

 private:
  size_t stream_capacity_;
  size_t pipeline_capacity_;
};

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_FAKE_CHANNELS_H_
