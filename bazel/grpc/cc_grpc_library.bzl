"""Offline stand-in for gRPC's @com_github_grpc_grpc//bazel:cc_grpc_library.bzl.

raft_grpc_transport_deps() installs this file into its stand-in
@com_github_grpc_grpc (over Debian's grpc_cpp_plugin) when the workspace has
no gRPC of its own. Same macro name and signature as gRPC's:

    cc_grpc_library(
        name = "foo_cc_grpc",
        srcs = [":foo_proto"],        # proto_library targets in this package
        deps = [":foo_cc_proto"],     # their cc_proto_library
        grpc_only = True,
    )
"""

def _import_path(f, proto_source_root):
    # A .proto file's path as protoc sees it on its import path.
    path = f.path
    for root in [proto_source_root, f.root.path]:
        if root and root != "." and path.startswith(root + "/"):
            path = path[len(root) + 1:]
    if f.owner.workspace_root and path.startswith(f.owner.workspace_root + "/"):
        path = path[len(f.owner.workspace_root) + 1:]
    return path

def _generate_grpc_cc_impl(ctx):
    outs = []
    args = ctx.actions.args()
    transitive = []
    proto_paths = []
    srcs = []
    for src in ctx.attr.srcs:
        info = src[ProtoInfo]
        transitive.append(info.transitive_sources)
        proto_paths.append(info.transitive_proto_path)
        for f in info.direct_sources:
            rel = _import_path(f, info.proto_source_root)
            stem = rel[:-len(".proto")]
            pkg = ctx.label.package
            if pkg and not stem.startswith(pkg + "/"):
                fail("cc_grpc_library: %s must be in package %s" % (rel, pkg))
            local = stem[len(pkg) + 1:] if pkg else stem
            outs.append(ctx.actions.declare_file(local + ".grpc.pb.h"))
            outs.append(ctx.actions.declare_file(local + ".grpc.pb.cc"))
            srcs.append(rel)
    root = ctx.bin_dir.path + ("/" + ctx.label.workspace_root if ctx.label.workspace_root else "")
    args.add("--plugin=protoc-gen-grpc=" + ctx.executable._plugin.path)
    args.add("--grpc_out=" + root)
    args.add_all(depset(transitive = proto_paths), format_each = "--proto_path=%s")
    args.add_all(srcs)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = depset(transitive = transitive),
        tools = [ctx.executable._plugin],
        outputs = outs,
        mnemonic = "ProtocGrpcCpp",
        progress_message = "Generating gRPC C++ stubs for %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset(outs)),
        OutputGroupInfo(
            headers = depset([f for f in outs if f.path.endswith(".h")]),
            sources = depset([f for f in outs if f.path.endswith(".cc")]),
        ),
    ]

_generate_grpc_cc = rule(
    implementation = _generate_grpc_cc_impl,
    attrs = {
        "srcs": attr.label_list(providers = [ProtoInfo], mandatory = True),
        "_protoc": attr.label(
            default = "@com_google_protobuf//:protoc",
            executable = True,
            cfg = "exec",
        ),
        "_plugin": attr.label(
            default = "@com_github_grpc_grpc//src/compiler:grpc_cpp_plugin",
            executable = True,
            cfg = "exec",
        ),
    },
)

def cc_grpc_library(
        name,
        srcs,
        deps,
        proto_only = False,
        well_known_protos = False,
        generate_mocks = False,
        use_external = False,
        grpc_only = False,
        **kwargs):
    """gRPC's cc_grpc_library, for the arguments this stand-in supports.

    Args:
      name: the cc_library with the stubs.
      srcs: one or more proto_library targets of this package.
      deps: their cc_proto_library (grpc_only = True), or other deps.
      proto_only: unsupported (fails if True).
      well_known_protos: ignored (the system protobuf has them).
      generate_mocks: unsupported (fails if True).
      use_external: ignored.
      grpc_only: only the stubs; otherwise also a cc_proto_library.
      **kwargs: passed to the cc_library (visibility, testonly, ...).
    """
    if proto_only or generate_mocks:
        fail("this offline cc_grpc_library supports neither proto_only nor generate_mocks")
    cc_deps = list(deps)
    if not grpc_only:
        native.cc_proto_library(name = name + "_cc_proto", deps = srcs, **kwargs)
        cc_deps.append(":" + name + "_cc_proto")
    codegen = name + "_grpc_codegen"
    _generate_grpc_cc(name = codegen, srcs = srcs, visibility = ["//visibility:private"])
    for group in ["headers", "sources"]:
        native.filegroup(
            name = codegen + "_" + group,
            srcs = [":" + codegen],
            output_group = group,
            visibility = ["//visibility:private"],
        )
    native.cc_library(
        name = name,
        srcs = [":" + codegen + "_sources"],
        hdrs = [":" + codegen + "_headers"],
        deps = cc_deps + ["@com_github_grpc_grpc//:grpc++"],
        **kwargs
    )
