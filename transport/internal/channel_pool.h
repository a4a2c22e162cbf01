// ChannelPool: gRPC channels to peers, one per URL, member and purpose,
// shared by a transport's readers, pipelines and probes. Snapshots get
// channels of their own (own HTTP/2 connection, wide flow-control window)
// so bulk data never queues ahead of heartbeats. A channel is keyed by the
// member too because its TLS credentials check that the server is that
// member (TlsOptions::verify_member_identity).
//
// Lifetime: the pool outlives every call (Transport destroys it last). A
// call's ClientContext holds a channel reference; the last one must never
// be dropped on a gRPC callback thread (grpc/grpc#32584), so every call
// object is deleted before the Stop that waits for it returns.
//
// A channel let go while its connection may be being made (connecting, or
// in transient failure, where gRPC redials unseen) is kept until it is
// ready, idle, or 3 s have passed, then dropped: gRPC 1.51 (Debian's) leaks
// the connection of an attempt whose channel went away between its
// handshake and the server's SETTINGS frame, for the life of the process
// (grpc/grpc#32071, fixed after 1.51).
//
// Thread-safety: safe from any thread; Get never blocks on the network or
// the disk. The destructor waits, briefly, for attempts under way.
#ifndef RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_
#define RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "peer/mutex.h"
#include "transport/internal/scheduler.h"
#include "transport/options.h"
#include "transport/tls.h"

namespace raftgrpc {

class ChannelPool {
 public:
  // `scheduler` (may be null; it must be stopped before the pool is
  // destroyed) drops the settling channels (above) once settled; without
  // one, the pool's next call does.
  ChannelPool(std::shared_ptr<const TransportOptions> opts, MemberChannelCredentials creds,
              Scheduler* scheduler = nullptr);
  ~ChannelPool();

  // For streams, pipeline and probes to `member` at `url`.
  std::shared_ptr<grpc::Channel> Get(const std::string& url, uint64_t member);
  // For snapshots.
  std::shared_ptr<grpc::Channel> GetForSnapshots(const std::string& url, uint64_t member);
  // Replaces the snapshot channel to `member` at `url` (its own connection):
  // the next GetForSnapshots dials anew; calls on the old one go on. Call it
  // only from a thread that is not gRPC's: it may drop the last reference.
  void ResetForSnapshots(const std::string& url, uint64_t member);
  // Forgets the channels to `member` at any of `urls` that no call uses
  // any more (a remote or peer that went away: strangers must not grow the
  // pool, nor a member that left keep its connections). Call it only from
  // a thread that is not gRPC's: it may drop the last reference. Returns
  // false if a call still uses one of them (it stays in the pool).
  bool ReleaseUnused(const std::vector<std::string>& urls, uint64_t member);
  size_t size() const;
  // Channels let go but still settling (above).
  size_t settling() const;
  // Largest message a channel accepts: a full frame plus slack.
  static int MaxReceiveBytes(const TransportOptions& opts);

 private:
  std::shared_ptr<grpc::Channel> GetLocked(const std::string& url, uint64_t member, bool snapshot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<grpc::Channel> Make(const std::string& url, uint64_t member, bool snapshot);
  // Moves `ch` to `drop` (dropped by the caller, outside the lock) or, if
  // its connection may be being made, to settling_.
  void LetGo(std::shared_ptr<grpc::Channel> ch, std::vector<std::shared_ptr<grpc::Channel>>* drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the settling channels whose attempt has ended, or whose time is
  // up, to `drop`; true if some are still settling.
  bool Settle(std::vector<std::shared_ptr<grpc::Channel>>* drop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleSettle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const TransportOptions> opts_;
  const MemberChannelCredentials creds_;
  Scheduler* const scheduler_;
  mutable Mutex mu_;
  struct Settling {
    std::shared_ptr<grpc::Channel> channel;
    absl::Time until;  // dropped then whatever its state
  };
  std::vector<Settling> settling_ ABSL_GUARDED_BY(mu_);
  bool settle_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::tuple<std::string, uint64_t, bool>, std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace raftgrpc

#endif  // RAFT_GRPC_TRANSPORT_TRANSPORT_INTERNAL_CHANNEL_POOL_H_
