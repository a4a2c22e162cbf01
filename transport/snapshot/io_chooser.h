// Chooses, as a snapshot receive goes, between writing through the page
// cache and direct I/O (DiskSnapshotStore::IoMode::kAdaptive): whichever
// costs the disk thread less time per byte here and now.
//
// Why measure rather than pick: on one of this project's VMs, filling
// fresh page-cache pages was slow and direct I/O up to 2x faster for
// 1 GiB; on another, the page cache won at every size; on the bench VM of
// 2026-12-03 the page cache was 2-5x cheaper for the first few hundred MiB
// of a receive and 2-3x dearer after (bench/README.md, "Snapshots: both
// ways, measured as they go").
//
// How: it starts buffered, as etcd. The caller reports the time its write
// calls took and the bytes they wrote; costs are taken over windows of
// `window` bytes. From `first_probe` bytes on, every `probe_every`, and
// whenever a window costs more than twice the best window of the way in
// use, the next window is written the other way (a probe); then the way
// that cost less is kept, the other way only if by more than a tenth.
//
// Not thread-safe: one per sink, used by its writing thread.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_IO_CHOOSER_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_IO_CHOOSER_H_

#include <cstdint>

namespace raftgrpc {

class IoChooser {
 public:
  // DiskSnapshotStore::AdaptiveIo's defaults.
  struct Params {
    uint64_t window = uint64_t{16} << 20;
    uint64_t first_probe = uint64_t{64} << 20;
    uint64_t probe_every = uint64_t{128} << 20;
  };

  // `at`: the bytes the sink holds already (a resumed prefix).
  IoChooser(const Params& p, uint64_t at) : p_(p), next_probe_(at + p.first_probe) {}

  // `bytes` were written the way Direct() said, in `ns`; `at` is the sink's
  // length after them. Returns the way for what follows (true: direct).
  bool Record(uint64_t bytes, int64_t ns, uint64_t at);
  // Direct I/O cannot be had (refused by the file system): buffered for
  // good, no more probes.
  void Refused() {
    direct_ = false;
    probing_ = false;
    refused_ = true;
  }

  bool Direct() const { return direct_; }
  int probes() const { return probes_; }      // probes ended
  int switches() const { return switches_; }  // ways changed, probes included

 private:
  const Params p_;
  uint64_t next_probe_;
  uint64_t win_bytes_ = 0;
  int64_t win_ns_ = 0;
  bool direct_ = false;
  bool probing_ = false;
  bool refused_ = false;
  double best_cost_ = 0;  // ns per byte: the best window of the way in use
  double run_cost_ = 0;   // the way in use, its window before the probe
  int probes_ = 0;
  int switches_ = 0;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_SNAPSHOT_IO_CHOOSER_H_
