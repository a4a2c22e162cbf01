// Linked into a test binary: the whole binary runs with a
// raftgrpc::OneCallbackThread held (transport/callback_threads.h), so that
// its suite checks the transport with every gRPC callback on one thread,
// as README's latency setting runs a node.
#include "gtest/gtest.h"
#include "transport/callback_threads.h"

namespace {

class OneCallbackThreadEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    one_ = raftgrpc::OneCallbackThread::Hold();
    // gRPC 1.51 starts at least two callback threads: one must be parked,
    // or this binary would only repeat the plain one.
    ASSERT_GE(raftgrpc::OneCallbackThread::parked(), 1);
  }
  void TearDown() override { one_.reset(); }

 private:
  std::unique_ptr<raftgrpc::OneCallbackThread> one_;
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new OneCallbackThreadEnv);

}  // namespace
