#!/usr/bin/env python3
"""Draws etcd-anchor compare.sh results as one PNG (gnuplot, from Debian).

Usage: bench/plot_compare.py RESULTS_DIR OUT.png ETCD_NAME OURS_NAME [KEPT_NAME [KEPT_TITLE]]

RESULTS_DIR holds compare.sh's <binary name>.jsonl files. Panels: heartbeat
latency quantiles (medians over the runs) idle, under load and ping-pong,
ours beside etcd's; and ours / etcd for throughput and snapshot rates.
KEPT_NAME: ours run with a heap setting (--glibc-heap=kept or huge), drawn
as a third bar titled KEPT_TITLE (default "heap kept").
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile


def load(path):
    by = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                by.setdefault(r.get("label", r["mode"]), []).append(r)
    return by


def med(rows, key):
    return statistics.median(r.get(key, 0) for r in rows)


def kept_bars(column, title):
    """The third bar, where the run has ours with a heap setting."""
    return ', "" using %d title "%s" lc rgb "#228833"' % (column, title)


def main():
    results, out, etcd_name, ours_name = sys.argv[1:5]
    etcd = load(os.path.join(results, etcd_name + ".jsonl"))
    ours = load(os.path.join(results, ours_name + ".jsonl"))
    # Optional: ours again, run with the heap setting README recommends.
    kept = load(os.path.join(results, sys.argv[5] + ".jsonl")) if len(sys.argv) > 5 else {}
    kept_title = sys.argv[6] if len(sys.argv) > 6 else "heap kept"
    tmp = tempfile.mkdtemp()
    quantiles = [("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"),
                 ("p99.9", "p999_us"), ("max", "max_us")]
    panels = [("hbload-idle", "heartbeats, idle (1 ms gap)"),
              ("hbload-flood+snapshot", "heartbeats under a MsgApp flood + 1 GiB snapshot"),
              ("latency", "heartbeat ping-pong")]
    plots = []
    for label, title in panels:
        if label not in etcd or label not in ours:
            continue
        data = os.path.join(tmp, label + ".dat")
        rows = [(name, med(etcd[label], key), med(ours[label], key),
                 med(kept[label], key) if label in kept else 0) for name, key in quantiles]
        with open(data, "w") as f:
            for row in rows:
                f.write('"%s" %f %f %f\n' % row)
        # The axis starts a decade below the smallest bar, or a bar just
        # above a round floor (e.g. 1005 us over 1000) would not show.
        low = min(v for _, *vs in rows for v in vs if v > 0)
        floor = 10 ** math.floor(math.log10(low))
        if low < 2 * floor:
            floor /= 10
        plots.append(
            'set title "%s"; set ylabel "microseconds (log)"; set logscale y; set yrange [%g:*]; '
            'plot "%s" using 2:xtic(1) title "etcd 3.4 rafthttp" lc rgb "#4477aa", '
            '"" using 3 title "raft-grpc-transport, glibc defaults" lc rgb "#ee6677"%s; unset logscale y; '
            'set autoscale y' % (title, floor, data, kept_bars(4, "raft-grpc-transport, " + kept_title) if label in kept else ""))
    ratios = os.path.join(tmp, "ratios.dat")
    top = 1.0  # the highest bar, so that the axis leaves room above it
    with open(ratios, "w") as f:
        for label, key in [("throughput-128B", "msgs_per_sec"), ("throughput-1KiB", "msgs_per_sec"),
                           ("snapshot-64MiB-disk", "mb_per_sec"), ("snapshot-256MiB-disk", "mb_per_sec"),
                           ("snapshot-64MiB-tmpfs", "mb_per_sec"),
                           ("snapshot-256MiB-tmpfs", "mb_per_sec")]:
            if label in etcd and label in ours:
                r = med(ours[label], key) / med(etcd[label], key)
                k = med(kept[label], key) / med(etcd[label], key) if label in kept else 0
                top = max(top, r, k)
                f.write('"%s" %f %f\n' % (label.replace("throughput-", "MsgApp ").replace("snapshot-", "snap "), r, k))
    plots.append(
        'set title "ours / etcd (above 1: faster)"; set ylabel "ratio"; set yrange [0:%g]; '
        'plot "%s" using 2:xtic(1) title "glibc defaults" lc rgb "#ee6677"%s, '
        '1 notitle dt 2 lc rgb "black"' % (top * 1.15, ratios, kept_bars(3, kept_title) if kept else ""))
    script = os.path.join(tmp, "plot.gp")
    with open(script, "w") as f:
        f.write('set terminal pngcairo size 1400,1000 font ",10"\n')
        f.write('set output "%s"\n' % out)
        f.write("set style data histograms; set style histogram clustered gap 1\n")
        f.write("set style fill solid 0.8 border -1; set boxwidth 0.9; set key top left\n")
        f.write("set xtics rotate by -20; set grid ytics\n")
        f.write("set multiplot layout 2,2\n")
        for p in plots:
            f.write(p + "\n")
        f.write("unset multiplot\n")
    subprocess.run(["gnuplot", script], check=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
