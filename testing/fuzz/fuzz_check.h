// FUZZ_CHECK: an invariant of a fuzz target; a violation crashes, which
// libFuzzer (and the corpus replay test) reports with the input.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_CHECK_H_
#define RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // RAFT_GRPC_TRANSPORT_TESTING_FUZZ_FUZZ_CHECK_H_
