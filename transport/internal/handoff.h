// Handoff: makes gRPC's hand-off of a reactor between threads visible to
// ThreadSanitizer. Debian's libgrpc is not instrumented, so TSan cannot see
// that a reactor built on one thread happens-before its reactions on
// another. Publish() (release) after set-up and Acquire() at the start of
// each reaction restate that ordering with an atomic TSan understands. The
// cost is one uncontended atomic load per reaction.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_HANDOFF_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_HANDOFF_H_

#include <atomic>

namespace raftgrpc {

class Handoff {
 public:
  void Publish() { flag_.store(true, std::memory_order_release); }
  void Acquire() const { (void)flag_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_HANDOFF_H_
