#include "transport/options.h"

#include "absl/strings/str_cat.h"

namespace raftgrpc {

absl::Status TransportOptions::Validate() const {
  auto bad = [](const char* field, const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("TransportOptions.", field, ": ", why));
  };
  if (local_id == 0) return bad("local_id", "must be non-zero");
  if (cluster_id == 0) return bad("cluster_id", "must be non-zero");
  if (conn_read_timeout < absl::Milliseconds(30))
    return bad("conn_read_timeout", "must be >= 30ms");
  if (conn_write_timeout <= absl::ZeroDuration()) return bad("conn_write_timeout", "must be > 0");
  if (stream_progress_timeout < conn_write_timeout) {
    return bad("stream_progress_timeout", "must be >= conn_write_timeout");
  }
  if (dial_retry_interval < absl::ZeroDuration()) return bad("dial_retry_interval", "must be >= 0");
  if (pipeline_timeout <= absl::ZeroDuration()) return bad("pipeline_timeout", "must be > 0");
  if (pipeline_reconnect_wait < absl::ZeroDuration()) {
    return bad("pipeline_reconnect_wait", "must be >= 0");
  }
  if (probe_interval < absl::Milliseconds(10)) return bad("probe_interval", "must be >= 10ms");
  if (snapshot_partial_ttl <= absl::ZeroDuration()) {
    return bad("snapshot_partial_ttl", "must be > 0");
  }
  if (snapshot_progress_timeout <= absl::ZeroDuration()) {
    return bad("snapshot_progress_timeout", "must be > 0");
  }
  if (stream_buf_size == 0) return bad("stream_buf_size", "must be > 0");
  if (pipeline_buf_size == 0) return bad("pipeline_buf_size", "must be > 0");
  if (conn_per_pipeline == 0) return bad("conn_per_pipeline", "must be > 0");
  if (recv_buf_size == 0) return bad("recv_buf_size", "must be > 0");
  if (max_pending_proposals == 0) return bad("max_pending_proposals", "must be > 0");
  if (max_message_bytes < 1024) return bad("max_message_bytes", "must be >= 1 KiB");
  if (max_message_bytes > (1u << 30)) return bad("max_message_bytes", "must be <= 1 GiB");
  if (max_frame_bytes == 0) return bad("max_frame_bytes", "must be > 0");
  if (stream_window_bytes != 0 &&
      (stream_window_bytes < (64u << 10) || stream_window_bytes > (1u << 30))) {
    return bad("stream_window_bytes", "must be 0 or in [64 KiB, 1 GiB]");
  }
  if (max_inbound_bytes_per_peer < 2 * max_message_bytes) {
    return bad("max_inbound_bytes_per_peer", "must be >= 2 * max_message_bytes");
  }
  if (max_inbound_bytes < max_inbound_bytes_per_peer) {
    return bad("max_inbound_bytes", "must be >= max_inbound_bytes_per_peer");
  }
  if (stream_buf_bytes < max_message_bytes) {
    return bad("stream_buf_bytes", "must be >= max_message_bytes");
  }
  if (max_snapshot_receives == 0) return bad("max_snapshot_receives", "must be > 0");
  if (max_remotes == 0) return bad("max_remotes", "must be > 0");
  if (remote_idle_timeout < absl::Milliseconds(10)) {
    return bad("remote_idle_timeout", "must be >= 10ms");
  }
  if (snapshot_chunk_bytes == 0 || snapshot_chunk_bytes > max_message_bytes) {
    return bad("snapshot_chunk_bytes", "must be in (0, max_message_bytes]");
  }
  if (absl::Status s = tls.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("TransportOptions.", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace raftgrpc
