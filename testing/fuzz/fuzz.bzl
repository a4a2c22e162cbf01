"""fuzz_target: a libFuzzer target plus a replay test of its corpus."""

def fuzz_target(name, deps):
    native.cc_library(
        name = name + "_lib",
        srcs = [name + ".cc"],
        deps = deps + [":fuzz_check"],
        alwayslink = 1,
    )
    native.cc_test(
        name = name + "_replay",
        srcs = ["replay_main.cc"],
        args = ["testing/fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]),
        deps = [
            ":" + name + "_lib",
            "//testing:tsan_suppressions",
        ],
    )
    native.cc_binary(
        name = name,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = [":" + name + "_lib"],
    )
