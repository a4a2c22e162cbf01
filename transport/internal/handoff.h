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
  // A read-modify-write, not a store: reactions on different threads may
  // each publish (e.g. OnReadDone and OnCancel), and a later acquire (OnDone)
  // must see all of them. A store would hand over only the last one's
  // writes, to TSan as in C++'s memory model; RMWs extend the release
  // sequence.
  void Publish() { flag_.fetch_add(1, std::memory_order_release); }
  void Acquire() const { (void)flag_.load(std::memory_order_acquire); }

 private:
  std::atomic<unsigned> flag_{0};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_HANDOFF_H_
