// TransportOptions: everything configurable, with etcd's defaults.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_OPTIONS_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "transport/tls.h"

namespace raftgrpc {

struct TransportOptions {
  uint64_t local_id = 0;    // this member's ID; required, non-zero
  uint64_t cluster_id = 0;  // required, non-zero
  // This member's own peer URLs, sent as x-peerurls so that a receiver that
  // does not know us yet can answer (etcd's AddRemote from request).
  std::vector<std::string> advertise_urls;

  // Idle stream detection: a reader cancels a stream that delivered nothing
  // (not even a link heartbeat) for this long while it was reading;
  // writers send link heartbeats every conn_read_timeout / 3 on idle
  // streams (etcd: 5 s each). The other way, readers send a stream
  // heartbeat five times per conn_read_timeout, and a writer drops a
  // stream whose heartbeats stopped for 2/3 of it: that finds a frozen or
  // silently cut reader (its kernel keeps accepting our writes) within
  // conn_read_timeout, per stream, so a link stall does not also fail the
  // snapshots on the same link (they have snapshot_progress_timeout; the
  // server's HTTP/2 keepalive waits that long for a ping's answer). While
  // a reader beats, a write that waits on HTTP/2 flow control is its
  // Process being slower than our sends (it stops reading until its queue
  // has room), and the write waits for it, up to stream_progress_timeout.
  // A reader that sends no heartbeats (an older or other-language node) is
  // found by that keepalive, or, as in etcd, by a write not completed
  // within conn_write_timeout.
  absl::Duration conn_read_timeout = absl::Seconds(5);
  absl::Duration conn_write_timeout = absl::Seconds(5);
  // A write held by flow control while its reader beats fails the stream
  // after this long all the same: a reader that beats and never reads (a
  // hostile one, or one whose Process is stuck) would otherwise keep the
  // stream, and what is queued on it, for good. Long, since a slow
  // Process moves on within seconds. >= conn_write_timeout.
  absl::Duration stream_progress_timeout = absl::Seconds(30);
  // Probe RPC period per peer (etcd's proberInterval: ConnReadTimeout - 1s).
  absl::Duration probe_interval = absl::Seconds(4);
  // At most one stream dial per reader per interval (etcd: 100 ms).
  absl::Duration dial_retry_interval = absl::Milliseconds(100);

  size_t stream_buf_size = 4096;  // messages queued per stream writer
  // Bytes queued per stream writer (message bytes, the frame being written
  // included): a peer that stops reading holds at most this much of ours.
  // Over it, Send drops and reports as for a full queue. >= max_message_bytes.
  size_t stream_buf_bytes = 16 * 1024 * 1024;
  size_t pipeline_buf_size = 64;        // messages queued per pipeline
  size_t conn_per_pipeline = 4;         // concurrent pipeline RPCs per peer
  size_t recv_buf_size = 4096;          // inbound queue per peer
  size_t max_pending_proposals = 4096;  // inbound MsgProp queue per peer
  // Memory the inbound queues may hold, counted as decoded messages cost
  // (entries included), per peer and for the whole transport (peers and
  // senders that are not peers together). A message that does not fit is
  // dropped as for a full queue: a stream drops and counts it, the
  // pipeline answers RESOURCE_EXHAUSTED. Each >= 2 * max_message_bytes.
  size_t max_inbound_bytes_per_peer = 64 * 1024 * 1024;
  size_t max_inbound_bytes = 256 * 1024 * 1024;
  absl::Duration pipeline_timeout = absl::Seconds(5);
  // A pipeline call to a peer that was active this recently waits for the
  // connection (gRPC wait-for-ready, up to pipeline_timeout) instead of
  // failing at once while the channel reconnects: a reset link costs no
  // burst of instant failures and unreachable reports. To a peer down for
  // longer, calls fail fast, as etcd's do. Zero: always fail fast.
  absl::Duration pipeline_reconnect_wait = absl::Seconds(1);

  // Largest single Raft message accepted or sent: etcd's default
  // --max-request-bytes (1.5 MiB) plus its 512 KiB gRPC overhead margin.
  size_t max_message_bytes = 2 * 1024 * 1024;
  // Stream writers batch queued messages into one frame up to this size (a
  // single larger message still goes alone).
  size_t max_frame_bytes = 256 * 1024;
  // The HTTP/2 flow-control window of each stream this node reads (the
  // streams it dials), fixed: gRPC holds at most this many bytes of such a
  // stream that the transport has not read yet. A fixed window turns off
  // gRPC's bandwidth-delay probing, which pings the sender as data arrives:
  // on loopback the probe cost 128 B MsgApp a sixth of its throughput and
  // a third of its CPU (bench/README.md, "The stream window"). 64 KiB is
  // gRPC's own starting window, and did as well on loopback as 256 KiB
  // and 1 MiB. A stream then moves at most about this much per round trip
  // (64 KiB at 10 ms is about 6.5 MB/s): for long links set a larger
  // window, or 0 for gRPC's adaptive one with the probe on. Either way, a
  // larger message still arrives whole. 0 or in [64 KiB, 1 GiB].
  size_t stream_window_bytes = 64 * 1024;

  // Bytes per snapshot data chunk; the last chunk's worth of a body goes
  // in halves down to 64 KiB, so the receiver's final write is short.
  size_t snapshot_chunk_bytes = 1024 * 1024;
  // A snapshot transfer fails if no progress is made for this long (sending
  // chunks or, at the end, waiting for the receiver's answer). Progress-based,
  // so large snapshots on slow links are not cut off.
  absl::Duration snapshot_progress_timeout = absl::Seconds(30);
  // Resume broken snapshot transfers (proto/README.md): as a sender, ask the
  // receiver what it kept and send only the rest; as a receiver with the
  // default store, keep the verified prefix of a transfer the link broke,
  // one per sender, for snapshot_partial_ttl.
  bool snapshot_resume = true;
  absl::Duration snapshot_partial_ttl = absl::Hours(1);
  // Receiver, default store: the kept prefixes of all senders together hold
  // at most this many bytes on disk; the oldest not in use give way to a
  // newer one, and a prefix that does not fit is not kept. Only peers'
  // transfers are kept (never a remote's or a stranger's), so neither can
  // fill the disk with abandoned prefixes. 0: none is kept.
  uint64_t snapshot_partial_max_bytes = uint64_t{4} << 30;
  // Receiver: snapshot transfers received at once, from all senders
  // together (each sender has at most one). Each holds a disk thread and a
  // temporary file; the excess is refused at its header with
  // RESOURCE_EXHAUSTED.
  size_t max_snapshot_receives = 4;

  // Remotes (etcd's: pipelines to members that are not peers yet, learned
  // from the x-peerurls of their requests) are bounded in number; at the
  // limit the least recently used one gives way. One unused (not sent to)
  // for remote_idle_timeout is removed. Strangers cannot grow the table.
  size_t max_remotes = 64;
  absl::Duration remote_idle_timeout = absl::Minutes(5);
  // Receiver: directory for the default on-disk snapshot store.
  std::string snapshot_dir;
  // Receiver, default store: how snapshot data reaches the disk.
  // snapshot_direct_io true: direct I/O (O_DIRECT, aligned 1 MiB writes
  // from a staging buffer) where the file system takes it.
  // Otherwise through the page cache, as etcd, starting writeback every
  // 8 MiB and waiting for what was written 32 MiB before (so a receive
  // holds at most about 40 MiB dirty); and with
  // snapshot_io_adaptive (the default), from 64 MiB into a snapshot on,
  // the receiver now and then writes 16 MiB with direct I/O and keeps
  // whichever way took less time per byte (transport/snapshot/
  // io_chooser.h). Which is faster depends on the machine and on how much
  // of the receive is behind: on the bench VM of 2026-12-03 the page cache
  // was cheaper for the first few hundred MiB and 2-3x dearer after, and a
  // 1 GiB receive ran 1.45x faster adaptive than all buffered; on an
  // earlier VM the page cache won at every size (bench/README.md). Direct
  // I/O also leaves the node's cached files where they are. On tmpfs
  // (memory already) and where O_DIRECT is refused (tmpfs before Linux
  // 6.6, some FUSE and network file systems): the page cache either way.
  bool snapshot_direct_io = false;
  bool snapshot_io_adaptive = true;

  // TLS for dialling peers and for the server Serve() runs; all files
  // empty: plaintext. See transport/tls.h.
  TlsOptions tls;

  // Critical errors (etcd's ErrorC), e.g. this member was removed from the
  // cluster. Called from transport threads; must not block. May be empty.
  // An exception it throws is caught and logged.
  std::function<void(const absl::Status&)> on_critical_error;

  // Log sink for etcd's log points (peer activation/deactivation with the
  // reason). Called from transport threads; must not block. Empty: stderr.
  // If it throws, the exception is caught and the line goes to stderr.
  std::function<void(const std::string& line)> log;

  // Validates ranges; INVALID_ARGUMENT naming the field otherwise.
  absl::Status Validate() const;
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_OPTIONS_H_
