#include "transport/metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace raftgrpc {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

Histogram Histogram::Exponential(double start, double factor, int n) {
  std::vector<double> b;
  double v = start;
  for (int k = 0; k < n; ++k, v *= factor) b.push_back(v);
  return Histogram(std::move(b));
}

void Histogram::Observe(double v) {
  size_t k = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[k];
  ++count_;
  sum_ += v;
}

uint64_t Histogram::CumulativeCount(size_t k) const {
  uint64_t n = 0;
  for (size_t i = 0; i <= k && i < counts_.size(); ++i) n += counts_[i];
  return n;
}

Histogram RttHistogram() { return Histogram::Exponential(0.0001, 2, 16); }
Histogram SnapshotHistogram() { return Histogram::Exponential(0.1, 2, 14); }

namespace {

std::string Hex(uint64_t id) { return absl::StrCat(absl::Hex(id)); }

// Shortest exact form for counts, %g otherwise; Prometheus spells +Inf.
std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  return absl::StrFormat("%.17g", v);
}

class Writer {
 public:
  void Family(const std::string& name, const std::string& type, const std::string& help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    absl::StrAppend(&out_, name, "{", labels, "} ", Num(v), "\n");
  }
  void Hist(const std::string& name, const std::string& labels, const Histogram& h) {
    for (size_t k = 0; k < h.bounds().size(); ++k) {
      Sample(name + "_bucket", absl::StrCat(labels, ",le=\"", Num(h.bounds()[k]), "\""),
             static_cast<double>(h.CumulativeCount(k)));
    }
    Sample(name + "_bucket", absl::StrCat(labels, ",le=\"+Inf\""), static_cast<double>(h.count()));
    Sample(name + "_sum", labels, h.sum());
    Sample(name + "_count", labels, static_cast<double>(h.count()));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string PrometheusText(const TransportMetrics& m) {
  Writer w;
  const std::string local = Hex(m.local_id);
  auto to = [](const PeerMetrics& p) { return absl::StrCat("To=\"", Hex(p.id), "\""); };
  auto from = [](const PeerMetrics& p) { return absl::StrCat("From=\"", Hex(p.id), "\""); };
  auto lr = [&](const PeerMetrics& p) {
    return absl::StrCat("Local=\"", local, "\",Remote=\"", Hex(p.id), "\"");
  };
  using Pick = std::function<double(const PeerMetrics&)>;
  auto peers_family = [&](const std::string& name, const std::string& type, const std::string& help,
                          bool peers_only,
                          const std::function<std::string(const PeerMetrics&)>& labels,
                          const Pick& value) {
    w.Family(name, type, help);
    for (const PeerMetrics& p : m.peers) {
      if (peers_only && !p.is_peer) continue;
      w.Sample(name, labels(p), value(p));
    }
  };
  auto hist_family = [&](const std::string& name, const std::string& help, bool peers_only,
                         const std::function<std::string(const PeerMetrics&)>& labels,
                         const std::function<const Histogram&(const PeerMetrics&)>& h) {
    w.Family(name, "histogram", help);
    for (const PeerMetrics& p : m.peers) {
      if (peers_only && !p.is_peer) continue;
      w.Hist(name, labels(p), h(p));
    }
  };

  peers_family("etcd_network_active_peers", "gauge",
               "The current number of active peer connections.", true, lr,
               [](const PeerMetrics& p) { return p.active ? 1.0 : 0.0; });
  peers_family("etcd_network_disconnected_peers_total", "counter",
               "The total number of disconnected peers.", true, lr,
               [](const PeerMetrics& p) { return double(p.disconnects); });
  peers_family("etcd_network_peer_sent_bytes_total", "counter",
               "The total number of bytes sent to peers.", true, to,
               [](const PeerMetrics& p) { return double(p.sent_bytes); });
  peers_family("etcd_network_peer_received_bytes_total", "counter",
               "The total number of bytes received from peers.", false, from,
               [](const PeerMetrics& p) { return double(p.received_bytes); });
  peers_family("etcd_network_peer_sent_failures_total", "counter",
               "The total number of send failures from peers.", true, to,
               [](const PeerMetrics& p) { return double(p.sent_failures); });
  peers_family("etcd_network_peer_received_failures_total", "counter",
               "The total number of receive failures from peers.", false, from,
               [](const PeerMetrics& p) { return double(p.received_failures); });
  hist_family("etcd_network_peer_round_trip_time_seconds",
              "Round-Trip-Time histogram between peers.", true, to,
              [](const PeerMetrics& p) -> const Histogram& { return p.rtt; });
  peers_family("etcd_network_snapshot_send_success", "counter",
               "Total number of successful snapshot sends", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_send_success); });
  peers_family("etcd_network_snapshot_send_failures", "counter",
               "Total number of snapshot send failures", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_send_failures); });
  peers_family("raftgrpc_snapshot_send_resumed_bytes_total", "counter",
               "Snapshot bytes not sent again because the receiver kept them from a broken "
               "transfer",
               true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_send_resumed_bytes); });
  peers_family("raftgrpc_snapshot_sent_bytes_total", "counter",
               "Snapshot data sent, counted per chunk", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_sent_data_bytes); });
  peers_family("raftgrpc_snapshot_send_progress_bytes", "gauge",
               "Data done of the snapshot being sent (resumed prefix included)", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_sending.done_bytes); });
  peers_family("raftgrpc_snapshot_send_size_bytes", "gauge",
               "Size of the snapshot being sent (0: none)", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_sending.total_bytes); });
  peers_family("etcd_network_snapshot_send_inflights_total", "gauge",
               "Total number of inflight snapshot sends", true, to,
               [](const PeerMetrics& p) { return double(p.snapshot_send_inflight); });
  hist_family("etcd_network_snapshot_send_total_duration_seconds",
              "Total latency distributions of v3 snapshot sends", true, to,
              [](const PeerMetrics& p) -> const Histogram& { return p.snapshot_send_seconds; });
  peers_family("etcd_network_snapshot_receive_success", "counter",
               "Total number of successful snapshot receives", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receive_success); });
  peers_family("etcd_network_snapshot_receive_failures", "counter",
               "Total number of snapshot receive failures", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receive_failures); });
  peers_family("raftgrpc_snapshot_receive_resumed_bytes_total", "counter",
               "Snapshot bytes kept from a broken transfer and used by its resume", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receive_resumed_bytes); });
  peers_family("raftgrpc_snapshot_received_bytes_total", "counter",
               "Snapshot data written, counted per chunk", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_received_data_bytes); });
  peers_family("raftgrpc_snapshot_receive_progress_bytes", "gauge",
               "Data done of the snapshot being received (resumed prefix included)", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receiving.done_bytes); });
  peers_family("raftgrpc_snapshot_receive_size_bytes", "gauge",
               "Size of the snapshot being received (0: none)", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receiving.total_bytes); });
  peers_family("etcd_network_snapshot_receive_inflights_total", "gauge",
               "Total number of inflight snapshot receives", false, from,
               [](const PeerMetrics& p) { return double(p.snapshot_receive_inflight); });
  hist_family("etcd_network_snapshot_receive_total_duration_seconds",
              "Total latency distributions of v3 snapshot receives", false, from,
              [](const PeerMetrics& p) -> const Histogram& { return p.snapshot_receive_seconds; });

  w.Family("raftgrpc_dropped_messages_total", "counter",
           "Outbound Raft messages dropped, by reason.");
  for (const PeerMetrics& p : m.peers) {
    for (const auto& [reason, n] : p.dropped) {
      w.Sample("raftgrpc_dropped_messages_total", absl::StrCat(to(p), ",Reason=\"", reason, "\""),
               double(n));
    }
  }
  for (const auto& [reason, n] : m.dropped) {
    w.Sample("raftgrpc_dropped_messages_total", absl::StrCat("To=\"0\",Reason=\"", reason, "\""),
             double(n));
  }
  w.Family("raftgrpc_inbound_dropped_messages_total", "counter",
           "Inbound Raft messages dropped before Raft::Process, by reason.");
  for (const PeerMetrics& p : m.peers) {
    for (const auto& [reason, n] : p.inbound_dropped) {
      w.Sample("raftgrpc_inbound_dropped_messages_total",
               absl::StrCat(from(p), ",Reason=\"", reason, "\""), double(n));
    }
  }
  return w.Take();
}

}  // namespace raftgrpc
