// ByteBudget: bytes held against a limit, optionally inside a parent budget
// (a peer's inbound queues inside the transport's). Charging is
// all-or-nothing along the chain, so no level ever exceeds its limit.
//
// Thread-safety: every method is safe from any thread and lock-free.
#ifndef RAFT_GRPC_TRANSPORT_PEER_BYTE_BUDGET_H_
#define RAFT_GRPC_TRANSPORT_PEER_BYTE_BUDGET_H_

#include <atomic>
#include <cstddef>

namespace raftgrpc {

class ByteBudget {
 public:
  explicit ByteBudget(size_t limit, ByteBudget* parent = nullptr)
      : limit_(limit), parent_(parent) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Charges `n` here and in every parent, or nowhere: false if any level
  // would exceed its limit.
  bool TryCharge(size_t n) {
    size_t now = used_.fetch_add(n, std::memory_order_relaxed) + n;
    if (now > limit_ || (parent_ != nullptr && !parent_->TryCharge(n))) {
      used_.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return true;
  }
  // Gives back what TryCharge took.
  void Release(size_t n) {
    used_.fetch_sub(n, std::memory_order_relaxed);
    if (parent_ != nullptr) parent_->Release(n);
  }

  // Whether `n` more would fit at every level now (a hint: another thread
  // may charge first).
  bool HasRoom(size_t n) const {
    return used() + n <= limit_ && (parent_ == nullptr || parent_->HasRoom(n));
  }

  size_t limit() const { return limit_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  // The most ever charged at once (for tests and metrics).
  size_t peak() const { return peak_.load(std::memory_order_relaxed); }

 private:
  const size_t limit_;
  ByteBudget* const parent_;
  std::atomic<size_t> used_{0};
  std::atomic<size_t> peak_{0};
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_PEER_BYTE_BUDGET_H_
