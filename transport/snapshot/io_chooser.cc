#include "transport/snapshot/io_chooser.h"

namespace raftgrpc {

bool IoChooser::Record(uint64_t bytes, int64_t ns, uint64_t at) {
  if (refused_) return false;
  win_bytes_ += bytes;
  win_ns_ += ns < 0 ? 0 : ns;  // a clock step back costs nothing
  if (win_bytes_ < p_.window) return direct_;
  const double cost = static_cast<double>(win_ns_) / static_cast<double>(win_bytes_);
  win_bytes_ = 0;
  win_ns_ = 0;
  if (probing_) {
    probing_ = false;
    ++probes_;
    next_probe_ = at + p_.probe_every;
    if (cost < run_cost_ * 0.9) {
      best_cost_ = cost;  // the probe's way wins
      return direct_;
    }
    best_cost_ = run_cost_;
    direct_ = !direct_;
    ++switches_;
    return direct_;
  }
  const bool slower = best_cost_ > 0 && cost > 2 * best_cost_;
  if (at < next_probe_ && !slower) {
    if (best_cost_ == 0 || cost < best_cost_) best_cost_ = cost;
    return direct_;
  }
  run_cost_ = cost;
  probing_ = true;
  direct_ = !direct_;
  ++switches_;
  return direct_;
}

}  // namespace raftgrpc
