"""Tests under README's first heap setting for a node.

glibc's heap on transparent huge pages, in two arenas (README,
"Performance"; `transport_bench --glibc-heap=huge` runs the same). It
changes the allocator under every budget and bound, so the suites that
check those (hostile floods, forged senders, RSS) run again under it.
"""

# README's string, byte for byte (huge_heap_readme_test checks it); bench/BUILD.bazel
# hands it to transport_bench for --glibc-heap=huge.
HUGE_HEAP_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.top_pad=4194304" +
                      ":glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=33554432" +
                      ":glibc.malloc.trim_threshold=268435456")

def huge_heap_test(name, test, size = "medium"):
    """Runs the cc_test `test` (a label) again with HUGE_HEAP_TUNABLES set.

    Tagged plain_only: a sanitizer replaces glibc's malloc, so the setting
    would change nothing there.
    """
    native.sh_test(
        name = name,
        srcs = ["//testing:run_with_huge_heap.sh"],
        args = ["$(location %s)" % test],
        data = [test],
        env = {"GLIBC_TUNABLES": HUGE_HEAP_TUNABLES},
        size = size,
        tags = ["plain_only"],
    )

def huge_heap_readme_test(name):
    """Checks that README recommends HUGE_HEAP_TUNABLES, byte for byte."""
    native.sh_test(
        name = name,
        srcs = ["//testing:readme_has_huge_heap.sh"],
        args = [HUGE_HEAP_TUNABLES, "$(location //:README.md)"],
        data = ["//:README.md"],
        size = "small",
    )
