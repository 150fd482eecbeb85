#!/usr/bin/env python3
"""Failover benchmark: a three-node raftd cluster with default timing and one
writer that follows redirects and fails over between nodes.  Each round stops
the leader (kill -9, or SIGTERM for a graceful stop), measures the time from
the signal to the first acknowledged write *sent after it*, then restarts the
old leader and waits for it to catch up.

    scripts/failover-bench.py BUILD/daemon/raftd [--rounds N] [--signal kill|term]
"""
import argparse
import http.client
import os
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "daemon"))
import raftd_integration_test as it  # noqa: E402  (Node, request helpers)


class Writer(threading.Thread):
    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.records = []      # (start, end, ok)
        self.stop = threading.Event()
        self.target = nodes[0].http
        self.lock = threading.Lock()

    def run(self):
        i = 0
        conn = None
        while not self.stop.is_set():
            i += 1
            start = time.monotonic()
            ok = False
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.target, timeout=1.0)
                conn.request("PUT", "/v1/kv/f%d" % (i % 1000), body='{"value":"x"}',
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    ok = True
                elif resp.status == 307:
                    self.target = int(resp.getheader("Location").split(":")[2].split("/")[0])
                    conn.close()
                    conn = None
                else:
                    time.sleep(0.005)  # 503 no_leader: an election is running
                if resp.getheader("Connection", "").lower() == "close" and conn:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn:
                    conn.close()
                conn = None
                alive = [n.http for n in self.nodes if n.alive()]
                if alive:
                    self.target = alive[(alive.index(self.target) + 1) % len(alive)] \
                        if self.target in alive else alive[0]
            with self.lock:
                self.records.append((start, time.monotonic(), ok))

    def first_ok_after(self, t):
        with self.lock:
            ends = [end for start, end, ok in self.records if ok and start >= t]
        return min(ends) if ends else None

    def failures_after(self, t):
        with self.lock:
            return sum(1 for start, _, ok in self.records if not ok and start >= t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftd")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--signal", choices=["kill", "term"], default="kill")
    args = ap.parse_args()
    it.RAFTD = os.path.abspath(args.raftd)
    sig = signal.SIGKILL if args.signal == "kill" else signal.SIGTERM
    root = tempfile.mkdtemp(prefix="raftd-failover-", dir=os.environ.get("BENCH_DIR"))
    nodes = [it.Node(root, i) for i in (1, 2, 3)]
    members = ["--cluster-id", os.urandom(16).hex()]  # founders share a cluster id
    for n in nodes:
        members += ["--member", n.spec]
    for n in nodes:
        n.start(*members, "--log-level", "warn")
    outages, failed = [], []
    try:
        helper = it.RaftdTest()
        helper.nodes = {n.id: n for n in nodes}
        writer = Writer(nodes)
        writer.start()
        for r in range(args.rounds):
            leader = helper.leader_of(nodes)
            t0 = time.monotonic()
            it.wait_until("writes flowing", lambda: writer.first_ok_after(t0))
            t_sig = time.monotonic()
            leader.kill(sig) if sig == signal.SIGKILL else leader.proc.send_signal(sig)
            first = it.wait_until("a write after the stop", lambda: writer.first_ok_after(t_sig))
            outage_ms = (first - t_sig) * 1000
            outages.append(outage_ms)
            failed.append(writer.failures_after(t_sig))
            print("round %d: leader %d stopped (%s), next acknowledged write after %.1f ms, "
                  "%d failed attempts" % (r + 1, leader.id, args.signal, outage_ms, failed[-1]),
                  flush=True)
            if leader.proc is not None:
                leader.proc.wait(timeout=30)
                leader.proc = None
            leader.start(*members, "--log-level", "warn")
            others = [n for n in nodes if n is not leader]
            new_leader = helper.leader_of(others)
            target = new_leader.status()["commit_index"]
            it.wait_until("old leader catching up",
                          lambda: (leader.status() or {}).get("applied_index", 0) >= target)
        writer.stop.set()
        writer.join()
    finally:
        for n in nodes:
            n.kill()
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    outages.sort()
    print("signal=%s rounds=%d outage_ms p50=%.1f max=%.1f min=%.1f failed_attempts_total=%d"
          % (args.signal, len(outages), statistics.median(outages), outages[-1], outages[0],
             sum(failed)))


if __name__ == "__main__":
    main()
