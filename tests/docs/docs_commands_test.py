#!/usr/bin/env python3
"""Command blocks of the docs that run from the repository's top without a
raftd (tests/daemon/docs_test.py runs those that need one): docs/benchmarks.md
"By hand", docs/groups.md "Figures", "Quiescence in the simulator" and "Several groups in the
simulator", and CONTRIBUTING.md "Tests".  Each block runs as written (bash,
set -e) in a fresh directory laid out like the repository's top: build/tools,
build/tests and build/daemon link to the build, scripts/ to the repository's.

    docs_commands_test.py BUILD_DIR [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "daemon"))
from docs_test import sh_blocks  # noqa: E402

BUILD = None  # from the command line
TIMEOUT_S = 300


class DocsCommands(unittest.TestCase):
    def run_block(self, doc, section):
        blocks = sh_blocks(os.path.join(REPO, doc), section)
        self.assertEqual(len(blocks), 1, "%s: one sh block under %r" % (doc, section))
        top = tempfile.mkdtemp(prefix="docs-commands-")
        self.addCleanup(shutil.rmtree, top)
        os.mkdir(os.path.join(top, "build"))
        for name in ("tools", "tests", "daemon"):
            os.symlink(os.path.join(BUILD, name), os.path.join(top, "build", name))
        os.symlink(os.path.join(REPO, "scripts"), os.path.join(top, "scripts"))
        p = subprocess.run(["bash", "-c", "set -eo pipefail\n" + blocks[0]], cwd=top,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        self.assertEqual(p.returncode, 0, "%s, %s:\n%s\n---- stdout\n%s\n---- stderr\n%s" % (
            doc, section, blocks[0], p.stdout[-3000:], p.stderr[-3000:]))
        # What a block leaves behind is only what it says it makes.
        self.assertEqual(sorted(os.listdir(os.path.join(top, "build"))), ["daemon", "tests", "tools"])
        return p

    def test_benchmarks_md_by_hand(self):
        p = self.run_block("docs/benchmarks.md", "By hand")
        self.assertIn("| K | WAL buffered p50 / fdatasync floor", p.stdout)
        self.assertIn("| single / wal K=1: p50 |", p.stdout)
        if "refuses O_DIRECT: nothing measured" not in p.stderr:
            self.assertIn("| 3 O_DIRECT\\|O_DSYNC writer(s) at once: share of the run stalled",
                          p.stdout)
            rows = [json.loads(line) for line in p.stdout.splitlines()
                    if line.startswith('{"bench": "disk_stalls_')]
            self.assertEqual([(r["bench"], r.get("fill_chunk_bytes", r.get("step_bytes")))
                              for r in rows],
                             [("disk_stalls_fill", 0), ("disk_stalls_fill", 65536),
                              ("disk_stalls_delete", 0), ("disk_stalls_delete", 1048576)])
            self.assertGreater(rows[1]["fill_mb_per_s"], 0)
            self.assertGreater(rows[3]["delete_ms"], 0)
        self.assertIn("| single K=16: 10 ms windows with under a fifth", p.stdout)
        self.assertIn("| single K=256, a 4 MiB snapshot every 100000 entries: 10 ms windows",
                      p.stdout)
        self.assertIn("bench-latency.svg", p.stderr)
        self.assertIn("signal=kill rounds=2 outage_ms", p.stdout)
        self.assertIn("signal=term rounds=2 outage_ms", p.stdout)
        respread = [json.loads(line) for line in p.stdout.splitlines() if '"respread"' in line]
        self.assertEqual(len(respread), 1, p.stdout)
        self.assertIsNotNone(respread[0]["respread_ms"])
        self.assertIsInstance(respread[0]["quiescent_again_ms"], int)
        self.assertIn('"variant": "plain", "median_of_medians_us"', p.stdout)

    def test_groups_md_quiescence_in_the_simulator(self):
        p = self.run_block("docs/groups.md", "Quiescence in the simulator")
        self.assertIn("seed 7: ok", p.stdout)
        self.assertIn("without quiescence the idle check fails", p.stdout)

    def test_groups_md_several_groups_in_the_simulator(self):
        p = self.run_block("docs/groups.md", "Several groups in the simulator")
        self.assertIn("seed 7: ok", p.stdout)
        self.assertIn("seed 7: 3 groups per process", p.stdout)
        self.assertIn("20 seeds (nodes 3, groups 3) from 1: 0 failed", p.stdout)
        self.assertIn("injected bug verdict_to_one_group caught", p.stdout)
        self.assertIn("injected bug group_commit_early_ack caught", p.stdout)
        self.assertIn("20 seeds (nodes 1, membership, groups 3) from 1: 0 failed", p.stdout)
        self.assertIn("injected bug joiner_bootstraps_alone caught", p.stdout)

    def test_groups_md_figures(self):
        p = self.run_block("docs/groups.md", "Figures")
        self.assertIn('"mode":"groups"', p.stdout)
        self.assertIn('"groups":20', p.stdout)
        # The busy row in process, then over keel's TCP transport.
        self.assertIn('"transport":"inproc"', p.stdout)
        self.assertIn('"transport":"tcp"', p.stdout)
        self.assertEqual(p.stdout.count('"bench":"idle_groups"'), 3)
        allocs = [json.loads(line) for line in p.stdout.splitlines() if '"allocs_per_op"' in line]
        self.assertEqual(len(allocs), 1, p.stdout)
        self.assertGreater(allocs[0]["mallocs"], 0)  # the preloaded counter counted

    def test_contributing_md_tests(self):
        p = self.run_block("CONTRIBUTING.md", "Tests")
        self.assertIn("All tests passed", p.stdout)
        self.assertIn("seed 42: ok", p.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BUILD = os.path.abspath(sys.argv.pop(1))
    if not shutil.which("gnuplot"):
        sys.exit("docs_commands_test.py needs gnuplot (gnuplot-nox, scripts/install-deps.sh)")
    unittest.main(verbosity=2)
