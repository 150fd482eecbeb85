#!/usr/bin/env python3
"""scripts/plot-bench.py on a small fixture (tests/tools/data/bench-results.jsonl):
the ratio tables and bars it prints, and the SVGs gnuplot draws.

    plot_bench_test.py [unittest args]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PLOT = os.path.join(REPO, "scripts", "plot-bench.py")
FIXTURE = os.path.join(HERE, "data", "bench-results.jsonl")
SVG = "{http://www.w3.org/2000/svg}"


def run_plot(*args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True,
                          timeout=120)


def svg_texts(path):
    """The root element of an SVG file (it must parse as XML) and its text."""
    root = ET.parse(path).getroot()
    return root, " ".join(t.strip() for t in root.itertext() if t.strip())


class PlotBench(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="plot-bench-")
        self.addCleanup(shutil.rmtree, self.dir)

    def test_tables_are_ratios_of_the_same_run(self):
        p = run_plot("--tables-only", FIXTURE)
        self.assertEqual(p.returncode, 0, p.stderr)
        # K=1: WAL 94.1 / floor 92.3; direct 100 / 98; single/wal 93.9/90.6 and
        # 10277.8/11042.7; cluster3 222.2 (the first cluster3 K=1 row, not the
        # TLS comparison's 240) over the floor labelled before_cluster3, 100
        # (not wal-bench's 92.3); cluster3/single 4433.8/10277.8.
        self.assertIn("| 1 | 1.02 | 1.02 | 1.04 | 0.93 | 2.22 | 0.43 |", p.stdout)
        self.assertIn("| 256 | – | – | 1.01 | 1.04 | 5.47 | 0.30 |", p.stdout)
        # The bars: each with its verdict.
        self.assertIn("| single / wal K=1: ops/s | 0.931 | ≥ 0.90 | yes |", p.stdout)
        self.assertIn("a snapshot every 1024 entries: p99 / without | 1.373 | ≤ 2 | yes |", p.stdout)
        # A row per snapshot setting (raft-bench --snapshot-bytes), named by its size.
        self.assertIn("| single K=256, a 64 MiB snapshot every 1000000 entries: p99 / without | "
                      "1.719 | ≤ 2 | yes |", p.stdout)
        self.assertIn("| single K=256, a 64 MiB snapshot every 1000000 entries: 10 ms windows "
                      "with under a fifth of the median's operations | 0.009 | – |", p.stdout)
        self.assertIn("| cluster3 K=1 p50 / its fdatasync floor | 2.222 | ≤ 2.5 | yes |", p.stdout)
        self.assertIn("mutual TLS / plain TCP: ops/s (4 rounds) | 0.925 |", p.stdout)
        self.assertIn("| raftd 1 node / etcd, 1 connection: p50 | 0.653 | ≤ 0.5 | **no** |", p.stdout)
        # disk-stalls.py's rows, one bar per writer count, and the single
        # node's stalled windows where its row has them (K=256 only).
        self.assertIn("| 1 O_DIRECT\\|O_DSYNC writer(s) at once: share of the run stalled, stall "
                      "ends on a 100 ms grid | 0.008, 0.33 | – |", p.stdout)
        self.assertIn("| 3 O_DIRECT\\|O_DSYNC writer(s) at once: share of the run stalled, stall "
                      "ends on a 100 ms grid | 0.113, 0.85 | – |", p.stdout)
        self.assertIn("| single K=256: 10 ms windows with under a fifth of the median's operations "
                      "| 0.043 | – |", p.stdout)
        self.assertNotIn("| single K=1: 10 ms windows", p.stdout)
        # The median of the three concurrent loops, 164.5, over the lone loop's 100.
        self.assertIn("p50 / one loop alone | 1.645 |", p.stdout)
        # raftd 3 / etcd 3: the comparison rows' ratios (medians of the
        # alternating rounds), not the first rows' 4000/1600 and 2400/3000.
        self.assertIn("| 64 | 4.11 | 0.23 | 0.47 | 3.12, 0.40 | 0.62, 1.47 |", p.stdout)
        self.assertIn("| 1 | 1.55 | 0.65 | 0.44 | 1.33, 0.80 | – |", p.stdout)
        self.assertIn("| raftd 3 nodes / etcd 3 nodes, 64 connections: req/s (median of 2 rounds) "
                      "| 3.125 | ≥ 3 | yes |", p.stdout)
        self.assertIn("| raftd 3 nodes / etcd 3 nodes, 1 connection: p50 (median of 2 rounds) "
                      "| 0.800 | ≤ 0.5 | **no** |", p.stdout)
        self.assertIn("trickling headers / without | 0.337 |", p.stdout)
        self.assertIn("skipped 1 lines", p.stderr)

    def test_draws_three_valid_svgs(self):
        p = run_plot(FIXTURE, self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        expect = {
            "bench-latency.svg": ["WAL alone p50", "single node p99", "three nodes p50",
                                  "three nodes, mutual TLS p50", "raw fdatasync p50"],
            "bench-throughput.svg": ["WAL alone", "single node", "three nodes"],
            "bench-http.svg": ["raftd, 1 node", "raftd, 3 nodes", "etcd 3.4, 1 node",
                               "etcd 3.4, 3 nodes"],
        }
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(expect))
        for name, titles in expect.items():
            root, text = svg_texts(os.path.join(self.dir, name))
            self.assertEqual(root.tag, SVG + "svg", name)
            # Each series is drawn: a path per line besides the frame and grid.
            self.assertGreater(len(root.findall(".//%spath" % SVG)), len(titles), name)
            for title in titles:
                self.assertIn(title, text, name)

    def test_leaves_out_what_the_run_lacks(self):
        only_wal = os.path.join(self.dir, "wal.jsonl")
        with open(FIXTURE) as f, open(only_wal, "w") as out:
            out.writelines(line for line in f if '"bench":"raft"' in line)
        plots = os.path.join(self.dir, "plots")
        p = run_plot(only_wal, plots)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(os.listdir(plots)), ["bench-latency.svg", "bench-throughput.svg"])
        self.assertNotIn("raw fdatasync", svg_texts(os.path.join(plots, "bench-latency.svg"))[1])

    def test_a_file_without_benchmark_rows_is_an_error(self):
        empty = os.path.join(self.dir, "empty.jsonl")
        with open(empty, "w") as f:
            f.write("not json\n{\"no_bench\": 1}\n[1, 2]\n")
        p = run_plot(empty, os.path.join(self.dir, "plots"))
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no benchmark rows", p.stderr)


if __name__ == "__main__":
    if not shutil.which("gnuplot"):
        sys.exit("plot_bench_test.py needs gnuplot (gnuplot-nox, scripts/install-deps.sh)")
    unittest.main(verbosity=2)
