// Metrics with etcd's names and meanings (etcd/server/etcdserver/api/
// rafthttp/metrics.go), readable as a struct (Transport::Metrics()) and as
// Prometheus text (PrometheusText()), without an HTTP server.
//
// Exported families, labelled by peer ID in hex as etcd does:
//   etcd_network_active_peers{Local,Remote}                gauge 0/1
//   etcd_network_disconnected_peers_total{Local,Remote}    counter
//   etcd_network_peer_sent_bytes_total{To}                 counter
//   etcd_network_peer_received_bytes_total{From}           counter
//   etcd_network_peer_sent_failures_total{To}              counter
//   etcd_network_peer_received_failures_total{From}        counter
//   etcd_network_peer_round_trip_time_seconds{To}          histogram
//   etcd_network_snapshot_send_success{To}                 counter
//   etcd_network_snapshot_send_failures{To}                counter
//   etcd_network_snapshot_send_inflights_total{To}         gauge
//   etcd_network_snapshot_send_total_duration_seconds{To}  histogram
//   etcd_network_snapshot_receive_success{From}            counter
//   etcd_network_snapshot_receive_failures{From}           counter
//   etcd_network_snapshot_receive_inflights_total{From}    gauge
//   etcd_network_snapshot_receive_total_duration_seconds{From} histogram
// and ours (etcd only logs these):
//   raftgrpc_dropped_messages_total{To,Reason}             counter
//     Reason: buffer_full (a channel's queue), paused, unknown_peer,
//     oversize, stopped (To="0" for transport-wide reasons),
//     stream_closed (queued on a stream that failed, was replaced or
//     ended before their write began)
//   raftgrpc_inbound_dropped_messages_total{From,Reason}   counter
//     Reason: buffer_full, paused
//   raftgrpc_snapshot_send_resumed_bytes_total{To}         counter
//     data a resumed snapshot did not send again (the receiver kept it)
//   raftgrpc_snapshot_receive_resumed_bytes_total{From}    counter
//   raftgrpc_snapshot_sent_bytes_total{To}                 counter
//   raftgrpc_snapshot_received_bytes_total{From}           counter
//     snapshot data, counted as each chunk goes (progress while in flight)
//   raftgrpc_snapshot_send_progress_bytes{To}              gauge
//   raftgrpc_snapshot_receive_progress_bytes{From}         gauge
//     done_bytes of the transfer in flight (0: none); with
//   raftgrpc_snapshot_send_size_bytes{To}, ..._receive_size_bytes{From}  gauge
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_METRICS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace raftgrpc {

// A histogram with fixed upper bounds. Not thread-safe: owners guard it.
class Histogram {
 public:
  Histogram() = default;
  explicit Histogram(std::vector<double> bounds);
  // start * factor^k for k < n (Prometheus' ExponentialBuckets).
  static Histogram Exponential(double start, double factor, int n);

  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Samples <= bounds()[k] (cumulative, as Prometheus exports them).
  uint64_t CumulativeCount(size_t k) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

// etcd's buckets.
Histogram RttHistogram();       // 0.0001 s * 2^k, k < 16
Histogram SnapshotHistogram();  // 0.1 s * 2^k, k < 14

// A snapshot transfer in flight, one way (see PeerMetrics).
struct SnapshotProgress {
  bool active = false;         // a transfer is in flight; the rest is its
  uint64_t index = 0;          // snapshot index
  uint64_t total_bytes = 0;    // size of the data
  uint64_t done_bytes = 0;     // sent / written so far, resumed prefix included
  uint64_t resumed_bytes = 0;  // kept by the receiver from an earlier attempt
  double seconds = 0;          // since this attempt started
  // This attempt's rate: (done_bytes - resumed_bytes) / seconds.
  double bytes_per_second() const {
    return seconds > 0 ? static_cast<double>(done_bytes - resumed_bytes) / seconds : 0;
  }
};

// One peer's (or, for received_* only, one sender's) metrics.
struct PeerMetrics {
  uint64_t id = 0;
  bool is_peer = false;  // false: a sender we only received from
  bool active = false;
  uint64_t disconnects = 0;
  uint64_t sent_bytes = 0;
  uint64_t sent_failures = 0;
  uint64_t received_bytes = 0;
  uint64_t received_failures = 0;
  std::map<std::string, uint64_t> dropped;          // outbound, by reason
  std::map<std::string, uint64_t> inbound_dropped;  // by reason
  Histogram rtt = RttHistogram();
  uint64_t snapshot_send_success = 0;
  uint64_t snapshot_send_failures = 0;
  uint64_t snapshot_send_inflight = 0;
  uint64_t snapshot_send_resumed_bytes = 0;  // not sent again: the receiver kept them
  uint64_t snapshot_sent_data_bytes = 0;     // snapshot data sent, counted per chunk
  SnapshotProgress snapshot_sending;         // to this peer, now
  Histogram snapshot_send_seconds = SnapshotHistogram();
  uint64_t snapshot_receive_success = 0;
  uint64_t snapshot_receive_failures = 0;
  uint64_t snapshot_receive_inflight = 0;
  Histogram snapshot_receive_seconds = SnapshotHistogram();
  uint64_t snapshot_receive_resumed_bytes = 0;  // kept from broken attempts, used
  uint64_t snapshot_received_data_bytes = 0;    // snapshot data written, per chunk
  SnapshotProgress snapshot_receiving;          // from this sender, now
};

// Transport-wide counters (ours; etcd only logs these). Monotonic.
struct TransportCounters {
  uint64_t sent_to_peers = 0;        // messages handed to a peer's Send
  uint64_t sent_to_remotes = 0;      // handed to a remote's pipeline
  uint64_t dropped_unknown = 0;      // no peer or remote with that ID
  uint64_t dropped_oversize = 0;     // larger than max_message_bytes
  uint64_t dropped_stopped = 0;      // Send after Stop
  uint64_t callback_exceptions = 0;  // thrown by the node's callbacks, caught (README, Threads)
  uint64_t remotes = 0;              // remotes now (a gauge)
  uint64_t remotes_evicted = 0;      // removed at the limit or when unused
  uint64_t inbound_bytes = 0;        // held by the inbound queues now (a gauge)
  uint64_t inbound_bytes_peak = 0;   // the most they ever held at once
  uint64_t channels = 0;             // client channels to peers and remotes (a gauge)
  // The server side.
  uint64_t streams_accepted = 0;
  uint64_t streams_rejected = 0;
  uint64_t pipeline_received = 0;
  uint64_t pipeline_rejected = 0;
  uint64_t snapshots_received = 0;
  uint64_t snapshots_rejected = 0;
  uint64_t received_bytes = 0;  // pipeline messages and snapshot data
};

struct TransportMetrics {
  uint64_t local_id = 0;
  std::vector<PeerMetrics> peers;           // by ID
  std::map<std::string, uint64_t> dropped;  // transport-wide, by reason
  TransportCounters totals;
};

// Prometheus text exposition format (version 0.0.4): HELP and TYPE lines
// for each family, then its samples.
std::string PrometheusText(const TransportMetrics& m);

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_METRICS_H_
