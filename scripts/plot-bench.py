#!/usr/bin/env python3
"""Plots and ratio tables from the JSON lines `make bench` prints
(build/bench/results.jsonl): SVGs drawn by gnuplot into OUT_DIR, and the
markdown tables of docs/benchmarks.md on stdout, each figure a ratio against a
baseline measured in the same run.

    scripts/plot-bench.py RESULTS.jsonl OUT_DIR        # SVGs and tables
    scripts/plot-bench.py --tables-only RESULTS.jsonl  # tables, no gnuplot needed

The plots (a series is left out when the run has no rows for it):
  bench-latency.svg     p50 and p99 against proposals in flight (K): the WAL
                        alone, a single node, three nodes; the raw fdatasync floor
  bench-throughput.svg  operations per second against K, the same series
  bench-http.svg        raftd 1 node, raftd 3 nodes, etcd 1 and 3 nodes over
                        HTTP: PUT requests per second and p50 against connections

When a (series, K) pair appears more than once, the first row counts: bench.sh
runs cluster3 on its own before the TLS comparison repeats it.  Rows with a
"label" are bench.sh's extra floors: "before_cluster3" (a lone fdatasync loop
right before cluster3, its floor: the disk drifts within a run) and
"concurrent_3" (three loops at once, cluster3's disk).  Lines that are
not JSON objects are skipped and counted on stderr; a file without a single
benchmark row is an error (exit 2).
"""
import argparse
import json
import os
import subprocess
import sys

# (series name in the plots, how to recognise its rows)
RAFT_SERIES = [
    ("wal", "WAL alone"),
    ("single", "single node"),
    ("cluster3", "three nodes"),
    ("cluster3_tls", "three nodes, mutual TLS"),
]
HTTP_SERIES = [
    ("raftd_1", "raftd, 1 node"),
    ("raftd_3", "raftd, 3 nodes"),
    ("etcd_1", "etcd 3.4, 1 node"),
    ("etcd_3", "etcd 3.4, 3 nodes"),
]


class Results:
    """The rows of one `make bench` run, grouped the way the plots and tables use them."""

    def __init__(self):
        self.raft = {}        # mode -> {K: row}, first row of each (mode, K)
        self.wal = {}         # write_path -> {K: row} (wal-bench)
        self.floors = {}      # "raw_fdatasync" etc. -> first row
        self.labelled = {}    # label -> rows: bench.sh's own floors ("before_cluster3", "concurrent_3")
        self.snapshot = {}    # (K, every, snapshot bytes) -> single-node row with snapshot_every
        self.tls_compare = {}  # K -> compare row
        self.idle = None
        self.recovery = None
        self.http = {}        # target -> {connections: row}
        self.http_compare = {}  # connections -> HTTPS + token / plain row
        self.cluster_compare = {}  # connections -> raftd 3 nodes / etcd 3 nodes row
        self.trickle = None
        self.disk_stalls = {}  # writers -> disk-stalls.py row
        self.rows = 0
        self.skipped = 0

    def add(self, row):
        bench = row.get("bench")
        self.rows += 1
        if "label" in row:
            self.labelled.setdefault(row["label"], []).append(row)
        elif bench == "raft" and "compare" in row:
            self.tls_compare.setdefault(row["outstanding"], row)
        elif bench == "raft" and "snapshot_every" in row:
            key = (row["outstanding"], row["snapshot_every"], row.get("snapshot_bytes", 65536))
            self.snapshot.setdefault(key, row)
        elif bench == "raft":
            self.raft.setdefault(row["mode"], {}).setdefault(row["outstanding"], row)
        elif bench == "wal":
            self.wal.setdefault(row.get("write_path", "buffered"), {}).setdefault(
                row["outstanding"], row)
        elif bench in ("raw_fdatasync", "raw_direct_dsync", "raw_append_fdatasync"):
            self.floors.setdefault(bench, row)
        elif bench == "idle":
            self.idle = row
        elif bench == "recovery":
            self.recovery = row
        elif bench == "http" and row.get("compare") == "raftd_3/etcd_3":
            self.cluster_compare.setdefault(row["connections"], row)
        elif bench == "http" and "compare" in row:
            self.http_compare.setdefault(row["connections"], row)
        elif bench == "http":
            self.http.setdefault(row["target"], {}).setdefault(row["connections"], row)
        elif bench == "disk_stalls":
            self.disk_stalls.setdefault(row["writers"], row)
        elif bench == "trickle_summary":
            self.trickle = row
        elif bench == "trickle":
            pass  # its rounds; the summary carries the ratio
        else:
            self.rows -= 1
            self.skipped += 1


def parse(lines):
    results = Results()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            results.skipped += 1
            continue
        if not isinstance(row, dict) or "bench" not in row:
            results.skipped += 1
            continue
        try:
            results.add(row)
        except (KeyError, TypeError):
            results.skipped += 1
    return results


# ---- tables -------------------------------------------------------------------------------


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "–"


def field(table, key, name):
    row = table.get(key)
    return row.get(name) if row else None


def tables(r):
    out = []
    floor = (r.floors.get("raw_fdatasync") or {}).get("p50_us")
    direct = (r.floors.get("raw_direct_dsync") or {}).get("p50_us")
    # cluster3's floor: the lone loop measured right before it, where there is one.
    c3_floor = (r.labelled.get("before_cluster3") or [{}])[0].get("p50_us") or floor
    wal, single, c3 = r.raft.get("wal", {}), r.raft.get("single", {}), r.raft.get("cluster3", {})
    buffered, dwal = r.wal.get("buffered", {}), r.wal.get("direct", {})
    ks = sorted(set(wal) | set(single) | set(c3) | set(buffered) | set(dwal))
    if ks:
        out.append("| K | WAL buffered p50 / fdatasync floor | WAL direct p50 / direct floor "
                   "| single / wal: p50 | single / wal: ops/s | cluster3 p50 / its fdatasync floor "
                   "| cluster3 / single: ops/s |")
        out.append("|---|---|---|---|---|---|---|")
        for k in ks:
            out.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                k,
                ratio(field(buffered, k, "p50_us"), floor),
                ratio(field(dwal, k, "p50_us"), direct),
                ratio(field(single, k, "p50_us"), field(wal, k, "p50_us")),
                ratio(field(single, k, "ops_per_s"), field(wal, k, "ops_per_s")),
                ratio(field(c3, k, "p50_us"), c3_floor),
                ratio(field(c3, k, "ops_per_s"), field(single, k, "ops_per_s"))))
        out.append("")
    bars = []  # (what, this run's figure or None, bar as a predicate text, met or None)

    def bar(what, value, rule, ok, fmt="%.3f"):
        if value is None:
            return
        bars.append((what, fmt % value if isinstance(value, (int, float)) else value, rule,
                     "yes" if ok(value) else "**no**"))

    def human_bytes(n):
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if n >= size and n % size == 0:
                return "%d %s" % (n // size, unit)
        return "%d B" % n

    def quotient(a, b):
        return a / b if a is not None and b else None

    bar("WAL buffered K=1 p50 / fdatasync floor", quotient(field(buffered, 1, "p50_us"), floor),
        "≤ 1.10", lambda v: v <= 1.10)
    bar("WAL direct K=1 p50 / direct floor", quotient(field(dwal, 1, "p50_us"), direct),
        "≤ 1.05", lambda v: v <= 1.05)
    for name, rows in (("buffered", buffered), ("direct", dwal)):
        bar("WAL %s K=256 records per fsync" % name, field(rows, 256, "records_per_fsync"),
            "≥ 50", lambda v: v >= 50, "%.0f")
    if r.recovery:
        bar("open() of a WAL of %d records, %d segments (ms)" % (
            r.recovery["records"], r.recovery["segments"]), r.recovery["open_ms"],
            "< 1000", lambda v: v < 1000, "%.0f")
    for k in sorted(set(wal) & set(single)):
        bar("single / wal K=%d: p50" % k, quotient(field(single, k, "p50_us"), field(wal, k, "p50_us")),
            "≤ 1.10", lambda v: v <= 1.10)
        bar("single / wal K=%d: ops/s" % k,
            quotient(field(single, k, "ops_per_s"), field(wal, k, "ops_per_s")),
            "≥ 0.90", lambda v: v >= 0.90)
    for (k, every, size), row in sorted(r.snapshot.items()):
        # raft-bench's default snapshot (64 KiB) goes unnamed, as before
        # --snapshot-bytes existed.
        what = "a snapshot" if size == 65536 else "a %s snapshot" % human_bytes(size)
        bar("single K=%d, %s every %d entries: p99 / without" % (k, what, every),
            quotient(row["p99_us"], field(single, k, "p99_us")), "≤ 2", lambda v: v <= 2)
        if "stalled_window_share" in row:
            bar("single K=%d, %s every %d entries: 10 ms windows with under a fifth of the "
                "median's operations" % (k, what, every), row["stalled_window_share"], "–",
                lambda v: True)
    if r.idle:
        bar("idle single node, %d s: timer wakeups, CPU seconds" % r.idle["seconds"],
            "%d, %.4f" % (r.idle["timer_wakeups"], r.idle["cpu_s"]), "0, < 0.01",
            lambda v: r.idle["timer_wakeups"] == 0 and r.idle["cpu_s"] < 0.01)
    bar("cluster3 / single K=256: ops/s",
        quotient(field(c3, 256, "ops_per_s"), field(single, 256, "ops_per_s")),
        "≥ 0.25", lambda v: v >= 0.25)
    bar("cluster3 K=1 p50 / its fdatasync floor", quotient(field(c3, 1, "p50_us"), c3_floor),
        "≤ 2.5", lambda v: v <= 2.5)
    for k, row in sorted(r.tls_compare.items()):
        bar("cluster3 K=%d, mutual TLS / plain TCP: ops/s (%d rounds)" % (k, row["rounds"]),
            row["ops_ratio"], "≥ 0.85" if k == 256 else "–",
            lambda v, k=k: v >= 0.85 if k == 256 else True)
    if r.labelled.get("concurrent_3") and c3_floor:
        p50s = sorted(x["p50_us"] for x in r.labelled["concurrent_3"])
        bar("three fdatasync loops at once (cluster3's disk): p50 / one loop alone",
            quotient(p50s[len(p50s) // 2], c3_floor), "–", lambda v: True)
    for writers, row in sorted(r.disk_stalls.items()):
        bar("%d O_DIRECT\\|O_DSYNC writer(s) at once: share of the run stalled, "
            "stall ends on a 100 ms grid" % writers,
            "%.3f, %.2f" % (row["stalled_share"], row["stall_ends_on_grid"]), "–", lambda v: True)
    for k in sorted(single):
        if "stalled_window_share" in single[k]:
            bar("single K=%d: 10 ms windows with under a fifth of the median's operations" % k,
                single[k]["stalled_window_share"], "–", lambda v: True)
    raftd1, etcd = r.http.get("raftd_1", {}), r.http.get("etcd_1", {})
    bar("raftd 1 node / etcd, 64 connections: req/s",
        quotient(field(raftd1, 64, "req_per_s"), field(etcd, 64, "req_per_s")),
        "≥ 3", lambda v: v >= 3)
    bar("raftd 1 node / etcd, 1 connection: p50",
        quotient(field(raftd1, 1, "p50_us"), field(etcd, 1, "p50_us")),
        "≤ 0.5", lambda v: v <= 0.5)
    for c, what, field_name, rule, met in (
            (64, "req/s", "req_per_s_ratio", "≥ 3", lambda v: v >= 3),
            (1, "p50", "p50_ratio", "≤ 0.5", lambda v: v <= 0.5)):
        row = r.cluster_compare.get(c)
        if row:
            bar("raftd 3 nodes / etcd 3 nodes, %d connection%s: %s (median of %d rounds)" % (
                c, "s" if c != 1 else "", what, row["rounds"]), row[field_name], rule, met)
    if r.trickle:
        bar("a client's PUT p50 with 1,000 connections trickling headers / without",
            r.trickle["ratio"], "–", lambda v: True)
    if bars:
        out.append("| measure | this run | bar | met |")
        out.append("|---|---|---|---|")
        for what, value, rule, met in bars:
            out.append("| %s | %s | %s | %s |" % (what, value, rule, met if rule != "–" else "–"))
        out.append("")
    conns = sorted(set().union(*[set(v) for v in r.http.values()])) if r.http else []
    if conns:
        raftd1, raftd3, etcd = (r.http.get(t, {}) for t in ("raftd_1", "raftd_3", "etcd_1"))
        out.append("| connections | raftd 1 node / etcd: req/s | raftd 1 node / etcd: p50 "
                   "| raftd 3 nodes / 1 node: req/s | raftd 3 nodes / etcd 3 nodes: req/s, p50 "
                   "| HTTPS + token / plain: req/s, p50 |")
        out.append("|---|---|---|---|---|---|")
        for c in conns:
            cmp_row, cluster_row = r.http_compare.get(c), r.cluster_compare.get(c)
            out.append("| %d | %s | %s | %s | %s | %s |" % (
                c,
                ratio(field(raftd1, c, "req_per_s"), field(etcd, c, "req_per_s")),
                ratio(field(raftd1, c, "p50_us"), field(etcd, c, "p50_us")),
                ratio(field(raftd3, c, "req_per_s"), field(raftd1, c, "req_per_s")),
                "%.2f, %.2f" % (cluster_row["req_per_s_ratio"], cluster_row["p50_ratio"])
                if cluster_row else "–",
                "%.2f, %.2f" % (cmp_row["req_per_s_ratio"], cmp_row["p50_ratio"])
                if cmp_row else "–"))
        out.append("")
    return "\n".join(out)


# ---- plots --------------------------------------------------------------------------------

PREAMBLE = """set terminal svg size 900,440 dynamic enhanced font "sans,12" background rgb "white"
set grid
set key outside right top
set logscale x 2
set logscale y 10
"""


def datablock(name, points):
    """A gnuplot inline data block: x y [y2] per line."""
    lines = ["$%s << EOD" % name]
    lines += [" ".join("%g" % v for v in p) for p in points]
    lines.append("EOD")
    return "\n".join(lines) + "\n"


def raft_plots(r, out_dir):
    """The gnuplot script for bench-latency.svg and bench-throughput.svg, or "" without rows."""
    series = [(mode, title, r.raft[mode]) for mode, title in RAFT_SERIES if r.raft.get(mode)]
    if not series:
        return ""
    script = ""
    for mode, _, rows in series:
        script += datablock(mode, [(k, rows[k]["p50_us"], rows[k]["p99_us"], rows[k]["ops_per_s"])
                                   for k in sorted(rows)])
    ks = sorted(set().union(*[set(rows) for _, _, rows in series]))
    xrange = "set xrange [%g:%g]\nset xtics (%s)\n" % (
        ks[0] / 1.5, ks[-1] * 1.5, ", ".join("\"%d\" %d" % (k, k) for k in ks))
    lat = [("$%s using 1:2 with linespoints lc %d pt 7 dt 1 title '%s p50'" % (m, i + 1, t))
           for i, (m, t, _) in enumerate(series)]
    lat += [("$%s using 1:3 with linespoints lc %d pt 6 dt 2 title '%s p99'" % (m, i + 1, t))
            for i, (m, t, _) in enumerate(series)]
    floor = r.floors.get("raw_fdatasync")
    if floor:
        lat.append("%g with lines lc rgb 'black' dt 3 title 'raw fdatasync p50'" % floor["p50_us"])
    script += "set output '%s'\n" % os.path.join(out_dir, "bench-latency.svg")
    script += "set title 'Latency against proposals in flight'\n"
    script += "set xlabel 'proposals in flight (K)'\nset ylabel 'microseconds'\n" + xrange
    script += "plot " + ", \\\n     ".join(lat) + "\n"
    thr = [("$%s using 1:4 with linespoints lc %d pt 7 title '%s'" % (m, i + 1, t))
           for i, (m, t, _) in enumerate(series)]
    script += "set output '%s'\n" % os.path.join(out_dir, "bench-throughput.svg")
    script += "set title 'Throughput against proposals in flight'\n"
    script += "set ylabel 'operations per second'\n"
    script += "plot " + ", \\\n     ".join(thr) + "\n"
    return script


def http_plot(r, out_dir):
    series = [(t, title, r.http[t]) for t, title in HTTP_SERIES if r.http.get(t)]
    if not series:
        return ""
    script = ""
    for target, _, rows in series:
        script += datablock(target, [(c, rows[c]["req_per_s"], rows[c]["p50_us"])
                                     for c in sorted(rows)])
    cs = sorted(set().union(*[set(rows) for _, _, rows in series]))
    script += "set terminal svg size 760,720 dynamic enhanced font \"sans,12\" background rgb \"white\"\n"
    script += "set output '%s'\n" % os.path.join(out_dir, "bench-http.svg")
    script += "set xrange [%g:%g]\nset xtics (%s)\n" % (
        cs[0] / 1.5, cs[-1] * 1.5, ", ".join("\"%d\" %d" % (c, c) for c in cs))
    script += "set multiplot layout 2,1 title 'PUT over HTTP (wrk, 100-byte values)'\n"
    script += "set title 'requests per second'\nset xlabel 'connections'\nset ylabel 'req/s'\n"
    script += "plot " + ", \\\n     ".join(
        "$%s using 1:2 with linespoints lc %d pt 7 title '%s'" % (t, i + 1, title)
        for i, (t, title, _) in enumerate(series)) + "\n"
    script += "set title 'p50 latency'\nset ylabel 'microseconds'\n"
    script += "plot " + ", \\\n     ".join(
        "$%s using 1:3 with linespoints lc %d pt 7 title '%s'" % (t, i + 1, title)
        for i, (t, title, _) in enumerate(series)) + "\n"
    script += "unset multiplot\n"
    return script


def draw(r, out_dir):
    """Runs gnuplot; returns the SVG files written."""
    os.makedirs(out_dir, exist_ok=True)
    raft, http = raft_plots(r, out_dir), http_plot(r, out_dir)
    names = (["bench-latency.svg", "bench-throughput.svg"] if raft else []) + \
        (["bench-http.svg"] if http else [])
    if not names:
        return []
    # Each part starts from the same settings (reset, then the preamble).
    script = "".join("reset\n" + PREAMBLE + p for p in (raft, http) if p)
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return [os.path.join(out_dir, n) for n in names]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables-only", action="store_true", help="print the tables; draw nothing")
    ap.add_argument("results", help="JSON lines from make bench (build/bench/results.jsonl)")
    ap.add_argument("out_dir", nargs="?", help="where the SVGs go (docs/images)")
    args = ap.parse_args()
    if not args.tables_only and not args.out_dir:
        ap.error("OUT_DIR is required unless --tables-only")
    with open(args.results) as f:
        r = parse(f)
    if r.skipped:
        print("plot-bench: skipped %d lines that are not benchmark rows" % r.skipped,
              file=sys.stderr)
    if r.rows == 0:
        print("plot-bench: no benchmark rows in %s" % args.results, file=sys.stderr)
        sys.exit(2)
    print(tables(r), end="")
    if not args.tables_only:
        for path in draw(r, args.out_dir):
            print("plot-bench: wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main()
