// ASSERT_OK_AND_ASSIGN for gtest: evaluates an absl::StatusOr expression,
// fails the test (with the status) unless it is OK, and assigns the value.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c, Cluster::Start(3));
//
// Like every ASSERT_*, usable only in functions returning void.
#ifndef RAFT_GRPC_TRANSPORT_TESTING_STATUS_MACROS_H_
#define RAFT_GRPC_TRANSPORT_TESTING_STATUS_MACROS_H_

#include <utility>

#include "gtest/gtest.h"

#define RAFTGRPC_STATUS_CONCAT_INNER_(a, b) a##b
#define RAFTGRPC_STATUS_CONCAT_(a, b) RAFTGRPC_STATUS_CONCAT_INNER_(a, b)

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  RAFTGRPC_ASSERT_OK_AND_ASSIGN_IMPL_(RAFTGRPC_STATUS_CONCAT_(status_or_, __LINE__), lhs, expr)

#define RAFTGRPC_ASSERT_OK_AND_ASSIGN_IMPL_(so, lhs, expr) \
  auto so = (expr);                                        \
  ASSERT_TRUE(so.ok()) << so.status();                     \
  lhs = *std::move(so)

#endif  // RAFT_GRPC_TRANSPORT_TESTING_STATUS_MACROS_H_
