"""C++ (and optional gRPC) code generation with the system protoc.

    cc_proto(name = "raft_cc_proto", src = "raft.proto")
    cc_proto(name = "transport_cc_proto", src = "transport.proto",
             deps = ["//proto/raftpb:raft_cc_proto"], grpc = True)

Import paths are relative to the repository root (as with Bazel's own
proto_library): `import "proto/raftpb/raft.proto";` and
`#include "proto/raftpb/raft.pb.h"`. This holds inside this workspace and
when it is consumed as an external repository.
"""

_ProtoSrcsInfo = provider(fields = ["transitive"])

_SYSTEM = "@raft_grpc_transport_system//"

def _proto_gen_impl(ctx):
    src = ctx.file.src
    root = ctx.label.workspace_root
    outs = ctx.outputs.outs

    # protoc writes under <out_root>/<import path>, which must be where Bazel
    # declared the outputs: bin dir (+ external/<repo> for external repos).
    out_root = ctx.bin_dir.path + ("/" + root if root else "")
    transitive = depset([src], transitive = [d[_ProtoSrcsInfo].transitive for d in ctx.attr.deps])

    args = ctx.actions.args()
    args.add("--proto_path=" + (root if root else "."))
    args.add("--cpp_out=" + out_root)
    tools = [ctx.executable._protoc]
    if ctx.attr.grpc:
        args.add("--plugin=protoc-gen-grpc=" + ctx.executable.grpc_plugin.path)
        args.add("--grpc_out=" + out_root)
        tools.append(ctx.executable.grpc_plugin)
    args.add(src.path)

    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = transitive,
        tools = tools,
        outputs = outs,
        mnemonic = "ProtocCpp",
        progress_message = "Generating C++ from %s" % src.short_path,
    )
    return [
        DefaultInfo(files = depset(outs)),
        _ProtoSrcsInfo(transitive = transitive),
    ]

_proto_gen = rule(
    implementation = _proto_gen_impl,
    attrs = {
        "src": attr.label(allow_single_file = [".proto"], mandatory = True),
        "deps": attr.label_list(providers = [_ProtoSrcsInfo]),
        "grpc": attr.bool(default = False),
        # Predeclared so the cc_library can name them; the macro fills it.
        "outs": attr.output_list(mandatory = True),
        "_protoc": attr.label(default = _SYSTEM + ":protoc", executable = True, cfg = "exec", allow_single_file = True),
        # Set only for grpc = True, so plain message protos carry no gRPC dependency.
        "grpc_plugin": attr.label(executable = True, cfg = "exec", allow_single_file = True),
    },
)

def cc_proto(name, src, deps = [], grpc = False, visibility = None):
    """Generates C++ for `src` and wraps it in cc_library `name`.

    Args:
      name: the cc_library (and `name + "_gen"` the generated sources).
      src: one .proto file in this package.
      deps: other cc_proto targets whose protos `src` imports.
      grpc: also generate gRPC service stubs.
      visibility: of the cc_library.
    """
    stem = src[:-len(".proto")]
    hdrs = [stem + ".pb.h"] + ([stem + ".grpc.pb.h"] if grpc else [])
    srcs = [stem + ".pb.cc"] + ([stem + ".grpc.pb.cc"] if grpc else [])
    _proto_gen(
        name = name + "_gen",
        src = src,
        outs = hdrs + srcs,
        deps = [d + "_gen" for d in deps],
        grpc = grpc,
        grpc_plugin = _SYSTEM + ":grpc_cpp_plugin" if grpc else None,
        # Importers' codegen needs this target too.
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + [_SYSTEM + (":grpcpp" if grpc else ":protobuf")],
        visibility = visibility,
    )
