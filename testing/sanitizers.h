// Whether this build runs under ASan or TSan: tests that measure time or
// memory assert their bounds only without (the sanitizers slow everything
// down several times, and their shadow memory and quarantine grow RSS by
// design).
#ifndef RAFT_GRPC_TRANSPORT_TESTING_SANITIZERS_H_
#define RAFT_GRPC_TRANSPORT_TESTING_SANITIZERS_H_

namespace raftgrpc::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(RAFT_GRPC_TRANSPORT_TSAN)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif

}  // namespace raftgrpc::testing

#endif  // RAFT_GRPC_TRANSPORT_TESTING_SANITIZERS_H_
