#!/usr/bin/env python3
"""Failover benchmark: a three-node raftd cluster with default timing and one
writer that follows redirects and fails over between nodes.  Each round stops
the leader (kill -9, or SIGTERM for a graceful stop), measures the time from
the signal to the first acknowledged write *sent after it*, then restarts the
old leader and waits for it to catch up.

    scripts/failover-bench.py BUILD/daemon/raftd [--rounds N] [--signal kill|term]

With --groups N (issue 25's failover target): three raftd --groups N, leaders
spread over the three; one round kills -9 the member that leads most groups
and measures, for every group, the time from the kill to the first
acknowledged write to a key of that group sent after it, through the two
survivors (64 client threads sweep the groups not yet writable again, each
write following its group's redirect).  The figures are upper bounds: they
include the clients' own time to reach each group.  Prints one JSON line.
With --quiesce the members run raftd --quiesce and the kill waits until every
group is quiescent on every member (/v1/status groups.quiescent): the
followers of the groups the killed member led then have no election timer,
and only their process's liveness verdict (peer_down) wakes them.

    scripts/failover-bench.py BUILD/daemon/raftd --groups 1000 [--quiesce]
"""
import argparse
import http.client
import json
import os
import queue
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "daemon"))
import raftd_integration_test as it  # noqa: E402  (Node, request helpers)
from raftd_groups_test import group_of_key  # noqa: E402  (docs/api.md, "Many groups")


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


GROUP_CLIENTS = 64
GROUPS_START_DEADLINE_S = 600.0


def group_leaders(nodes):
    """{group: leader id} once every node agrees on a live leader for each; else None."""
    views = []
    for n in nodes:
        code, _, body = it.try_request(n.http, "GET", "/v1/groups", timeout=30.0)
        if code != 200:
            return None
        views.append({g["group"]: g["leader_id"] for g in body["groups"]})
    live = {n.id for n in nodes}
    if any(v != views[0] for v in views) or not set(views[0].values()) <= live:
        return None
    return views[0]


def write_once(conns, ports, key):
    """One PUT of `key` through ports[0], following redirects; True on 200."""
    port = ports[0]
    for _ in range(3):
        try:
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
            conn.request("PUT", "/v1/kv/" + key, body='{"value":"x"}',
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conns.pop(port, None)
            return False
        if resp.status == 200:
            return True
        if resp.status != 307:
            return False
        port = int(resp.getheader("Location").split(":")[2].split("/")[0])
        if port not in ports:
            return False  # the killed member is still named as that group's leader
    return False


def terms_and_elections(node):
    """({group: term} as `node` sees them, campaigns `node` has started)."""
    _, _, body = it.request(node.http, "GET", "/v1/groups", timeout=30.0)
    _, _, status = it.request(node.http, "GET", "/v1/status", timeout=30.0)
    return {g["group"]: g["term"] for g in body["groups"]}, status["elections"]


def all_quiescent(nodes, groups):
    """True once every member reports every group quiescent."""
    for n in nodes:
        code, _, body = it.try_request(n.http, "GET", "/v1/status", timeout=30.0)
        if code != 200 or body["groups"]["quiescent"] != groups:
            return False
    return True


def bench_groups(args, nodes, members):
    """One kill -9 of the member leading most groups; per-group recovery times."""
    leaders = it.wait_until("every group led, leaders spread",
                            lambda: spread(group_leaders(nodes), len(nodes)),
                            GROUPS_START_DEADLINE_S)
    if args.quiesce:
        it.wait_until("every group quiescent on every member",
                      lambda: all_quiescent(nodes, args.groups), GROUPS_START_DEADLINE_S)
        # The rebalancer may have moved a leader meanwhile: the victim is
        # chosen from the leaders as they are now.
        leaders = it.wait_until("leaders agreed", lambda: group_leaders(nodes),
                                GROUPS_START_DEADLINE_S)
    keys = {}
    i = 0
    while len(keys) < args.groups:
        keys.setdefault(group_of_key("f%d" % i, args.groups), "f%d" % i)
        i += 1
    counts = {n.id: sum(1 for v in leaders.values() if v == n.id) for n in nodes}
    victim = max(nodes, key=lambda n: counts[n.id])
    survivors = [n.http for n in nodes if n is not victim]
    pending = queue.Queue()
    for g in range(1, args.groups + 1):
        pending.put(g)
    recovered, lock = {}, threading.Lock()
    survivor_nodes = [n for n in nodes if n is not victim]
    before = [terms_and_elections(n) for n in survivor_nodes]
    load_at_kill = os.getloadavg()[0]
    t_kill = time.monotonic()
    victim.kill(signal.SIGKILL)

    def client(c):
        conns, ports = {}, survivors[c % 2:] + survivors[:c % 2]
        while True:
            try:
                g = pending.get_nowait()
            except queue.Empty:
                return
            if write_once(conns, ports, keys[g]):
                with lock:
                    recovered[g] = (time.monotonic() - t_kill) * 1000
            else:
                time.sleep(0.005)
                pending.put(g)
                if time.monotonic() - t_kill > 60:
                    return

    threads = [threading.Thread(target=client, args=(c,)) for c in range(GROUP_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = [terms_and_elections(n) for n in survivor_nodes]
    # Terms the groups the victim led moved on by (1: one election won at
    # once; more: split or refused votes), and campaigns the survivors started.
    gained = [max(a[0][g] for a in after) - before[0][0][g]
              for g, l in leaders.items() if l == victim.id]
    elections = sum(a[1] - b[1] for a, b in zip(after, before))
    victim_led = sorted(recovered[g] for g, l in leaders.items() if l == victim.id and g in recovered)
    every = sorted(recovered.values())

    def q(xs, f):
        return round(xs[min(len(xs) - 1, int(f * len(xs)))], 1) if xs else None
    print(json.dumps({"bench": "failover", "mode": "groups", "groups": args.groups,
                      "quiesce": args.quiesce, "load_avg_1m": round(load_at_kill, 2),
                      "members": len(nodes), "killed_led": counts[victim.id],
                      "recovered": len(every), "clients": GROUP_CLIENTS,
                      "all_ms": {"p50": q(every, 0.5), "p99": q(every, 0.99), "max": q(every, 1.0)},
                      "killed_groups_ms": {"p50": q(victim_led, 0.5), "p99": q(victim_led, 0.99),
                                           "max": q(victim_led, 1.0)},
                      "survivor_campaigns": elections,
                      "killed_groups_terms_gained": {"1": gained.count(1),
                                                     "more": sum(1 for x in gained if x > 1),
                                                     "max": max(gained) if gained else 0}}))


def spread(leaders, members):
    """`leaders` when each member leads ceil(N / members) groups at most."""
    if not leaders:
        return None
    share = -(-len(leaders) // members)
    counts = {}
    for leader in leaders.values():
        counts[leader] = counts.get(leader, 0) + 1
    return leaders if len(counts) == members and max(counts.values()) <= share else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftd")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--signal", choices=["kill", "term"], default="kill")
    ap.add_argument("--groups", type=int, default=0,
                    help="raftd --groups N: one kill -9, every group's recovery (see above)")
    ap.add_argument("--quiesce", action="store_true",
                    help="with --groups: raftd --quiesce, the kill once every group is quiescent")
    args = ap.parse_args()
    it.RAFTD = os.path.abspath(args.raftd)
    if args.groups:
        root = tempfile.mkdtemp(prefix="raftd-failover-", dir=os.environ.get("BENCH_DIR"))
        nodes = [it.Node(root, i) for i in (1, 2, 3)]
        members = ["--cluster-id", os.urandom(16).hex(), "--groups", str(args.groups)]
        if args.quiesce:
            members.append("--quiesce")
        for n in nodes:
            members += ["--member", n.spec]
        for n in nodes:
            n.start(*members, "--log-level", "warn")
        try:
            bench_groups(args, nodes, members)
        finally:
            for n in nodes:
                n.kill()
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        return
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
