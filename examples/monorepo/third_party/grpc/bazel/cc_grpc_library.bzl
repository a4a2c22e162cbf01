"""cc_grpc_library, as gRPC's own //bazel:cc_grpc_library.bzl offers it.

This stand-in borrows raft_grpc_transport's implementation of the macro (same
signature as gRPC's). Its tools resolve through this workspace:
@com_google_protobuf//:protoc and @com_github_grpc_grpc//src/compiler:
grpc_cpp_plugin are the monorepo's copies above.
"""

load("@raft_grpc_transport//bazel/grpc:cc_grpc_library.bzl", _cc_grpc_library = "cc_grpc_library")

cc_grpc_library = _cc_grpc_library
