// Transport::Metrics: etcd's per-peer metrics and the transport's totals,
// gathered from the peers' counters and the server's.
#include <map>

#include "peer/guarded_raft.h"
#include "peer/peer.h"
#include "transport/internal/channel_pool.h"
#include "transport/pipeline/prober.h"
#include "transport/server/service.h"
#include "transport/transport.h"
#include "transport/transport_state.h"

namespace raftgrpc {

TransportMetrics Transport::Metrics() const {
  TransportMetrics out;
  out.local_id = opts_->local_id;
  std::map<uint64_t, std::shared_ptr<Peer>> peers;
  std::map<uint64_t, std::shared_ptr<Prober>> probers;
  {
    ReaderLock l(&state_->mu);
    peers = state_->peers;
    probers = state_->probers;
  }
  std::map<uint64_t, PeerMetrics> by_id;
  for (const auto& [id, p] : peers) {
    PeerMetrics& m = by_id[id];
    m.id = id;
    m.is_peer = true;
    m.active = p->status().IsActive();
    m.disconnects = p->status().disconnects();
    const PeerStats ps = p->stats();
    uint64_t full = 0;
    for (uint64_t d : ps.dropped) full += d;
    if (full) m.dropped["buffer_full"] = full;
    if (ps.dropped_paused) m.dropped["paused"] = ps.dropped_paused;
    if (ps.inbound_dropped_full) m.inbound_dropped["buffer_full"] = ps.inbound_dropped_full;
    if (ps.inbound_dropped_paused) m.inbound_dropped["paused"] = ps.inbound_dropped_paused;
    // Whatever classes implement the channels, they counted here.
    p->counters().AddTo(&m);
    auto pr = probers.find(id);
    if (pr != probers.end()) m.rtt = pr->second->stats().rtt;
  }
  for (const auto& [from, f] : service_->counters().by_sender.Get()) {
    PeerMetrics& m = by_id[from];
    m.id = from;
    m.received_bytes += f.received_bytes;
    m.received_failures += f.received_failures;
    m.snapshot_receive_success = f.snapshot_success;
    m.snapshot_receive_failures = f.snapshot_failures;
    m.snapshot_receive_inflight = f.snapshot_inflight;
    m.snapshot_receive_seconds = f.snapshot_seconds;
    m.snapshot_receive_resumed_bytes = f.snapshot_resumed_bytes;
    m.snapshot_received_data_bytes = f.snapshot_data_bytes;
    m.snapshot_receiving = f.receiving;
  }
  for (auto& [id, m] : by_id) out.peers.push_back(std::move(m));
  TransportCounters& t = out.totals;
  t.sent_to_peers = sent_to_peers_.load(std::memory_order_relaxed);
  t.sent_to_remotes = sent_to_remotes_.load(std::memory_order_relaxed);
  t.dropped_unknown = dropped_unknown_.load(std::memory_order_relaxed);
  t.dropped_oversize = dropped_oversize_.load(std::memory_order_relaxed);
  t.dropped_stopped = dropped_stopped_.load(std::memory_order_relaxed);
  t.callback_exceptions = caught_->count();
  service_->counters().ReadTotals(&t);
  t.inbound_bytes = inbound_budget_->used();
  t.inbound_bytes_peak = inbound_budget_->peak();
  t.channels = channels_->size();
  {
    ReaderLock l(&state_->mu);
    t.remotes = state_->remotes.size();
    t.remotes_evicted = state_->remotes_evicted;
  }
  if (t.dropped_unknown) out.dropped["unknown_peer"] = t.dropped_unknown;
  if (t.dropped_oversize) out.dropped["oversize"] = t.dropped_oversize;
  if (t.dropped_stopped) out.dropped["stopped"] = t.dropped_stopped;
  return out;
}

std::string Transport::PrometheusMetrics() const { return PrometheusText(Metrics()); }

}  // namespace raftgrpc
