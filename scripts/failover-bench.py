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

With --respread, --rounds rounds on one cluster of three raftd --groups N:
kill -9 of the member leading most groups (once every group is quiescent,
with --quiesce), --down-s seconds down, a restart, and the time from the
restart until every member leads N / 3 +- --tolerance groups again, as the
three agree (polled every 0.1 s); the leader rebalancers' transfers
(/v1/status groups.leader_transfers) and campaigns meanwhile and --settle-s
after (more means an overshoot); the groups a survivor saw without a leader
and for how long; --write-rate writes a second through the survivors, one
group after another, and those refused; with --quiesce, the time from the
end until every group is quiescent again.  One JSON line a round.

    scripts/failover-bench.py BUILD/daemon/raftd --groups 1000 --respread --rounds 3 [--quiesce]
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


def put_status(conns, port, ports, key):
    """One PUT of `key` through `port`, following redirects to `ports`: the
    final HTTP status, 0 when no answer (or a redirect to a member that is
    down)."""
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
            return 0
        if resp.status != 307:
            return resp.status
        port = int(resp.getheader("Location").split(":")[2].split("/")[0])
        if port not in ports:
            return 0
    return 307


def write_once(conns, ports, key):
    """One PUT of `key` through ports[0], following redirects; True on 200."""
    return put_status(conns, ports[0], ports, key) == 200


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


RESPREAD_POLL_S = 0.1


class PacedWriter:
    """Writes one key of each group in turn, `rate` writes a second in all
    over `threads` threads, each following its group's redirect among the
    live members; records (time, phase, final HTTP status or 0 when no
    answer) so that the re-spread's refused writes can be counted."""

    def __init__(self, entries, nodes, keys, rate, threads=8):
        self.entries, self.nodes, self.keys, self.rate = entries, nodes, keys, rate
        self.records, self.lock = [], threading.Lock()
        self.phase, self.next, self.stop = "down", 0, threading.Event()
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def start(self):
        if self.rate <= 0:
            return
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join()

    def run(self):
        conns = {}
        while not self.stop.is_set():
            with self.lock:
                i = self.next
                self.next += 1
            delay = self.t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            entry = self.entries[i % len(self.entries)].http
            live = [n.http for n in self.nodes if n.alive()]
            code = put_status(conns, entry, live, self.keys[i % len(self.keys) + 1])
            with self.lock:
                self.records.append((time.monotonic(), self.phase, code))

    def summary(self, phase):
        with self.lock:
            codes = [c for _, p, c in self.records if p == phase]
        failed = {}
        for c in codes:
            if c != 200:
                failed[str(c)] = failed.get(str(c), 0) + 1
        return {"total": len(codes), "failed": sum(failed.values()), "by_status": failed}


def member_views(nodes):
    """{member id: {group: leader id}} of every live member that answers."""
    views = {}
    for n in nodes:
        if not n.alive():
            continue
        code, _, body = it.try_request(n.http, "GET", "/v1/groups", timeout=10.0)
        if code == 200:
            views[n.id] = {g["group"]: g["leader_id"] for g in body["groups"]}
    return views


def status_figures(nodes):
    """{member id: (balancer transfers asked, failed, campaigns)} of the
    live members (a restarted member's counters start again from 0)."""
    out = {}
    for n in nodes:
        s = n.status() if n.alive() else None
        if s:
            # (-1, -1): a raftd from before groups.leader_transfers.
            t = s["groups"].get("leader_transfers", {"asked": -1, "failed": -1})
            out[n.id] = (t["asked"], t["failed"], s["elections"])
    return out


def delta(after, before):
    """Sums of (asked, failed, campaigns) since `before`, per live member."""
    sums, campaigns = [0, 0, 0], {}
    for member, figures in after.items():
        base = before.get(member, (0, 0, 0))
        for k in range(3):
            sums[k] += figures[k] - base[k]
        campaigns[str(member)] = figures[2] - base[2]
    return {"transfers_asked": sums[0], "transfers_failed": sums[1], "campaigns": sums[2],
            "campaigns_by_member": campaigns}


def within(counts, groups, members, tolerance):
    """Every member leads N / members +- tolerance groups."""
    lo, hi = groups / members - tolerance, groups / members + tolerance
    return len(counts) == members and all(lo <= c <= hi for c in counts.values())


def agreed_counts(views, live_ids):
    """{member: groups it leads} when every live member names the same live
    leader for every group; else None."""
    if set(views) != set(live_ids):
        return None
    first = next(iter(views.values()))
    if any(v != first for v in views.values()) or not set(first.values()) <= set(live_ids):
        return None
    counts = {m: 0 for m in live_ids}
    for leader in first.values():
        counts[leader] += 1
    return counts


def bench_respread(args, nodes, members):
    """Rounds of: kill -9 the member leading most groups, keep it down
    --down-s, restart it, and time until every member leads N / 3 +-
    --tolerance groups again (one JSON line a round)."""
    it.wait_until("every group led, leaders spread",
                  lambda: spread(group_leaders(nodes), len(nodes)), GROUPS_START_DEADLINE_S)
    keys, i = {}, 0
    while len(keys) < args.groups:
        keys.setdefault(group_of_key("f%d" % i, args.groups), "f%d" % i)
        i += 1
    quiet_at_kill = None
    for r in range(args.rounds):
        if args.quiesce:
            # After the first round: bounded, and the round runs anyway (a
            # build whose groups stay awake after a restart is measured too).
            try:
                it.wait_until("every group quiescent on every member",
                              lambda: all_quiescent(nodes, args.groups),
                              GROUPS_START_DEADLINE_S if r == 0 else args.quiet_deadline_s)
                quiet_at_kill = True
            except AssertionError:
                quiet_at_kill = False
        leaders = it.wait_until("leaders agreed", lambda: group_leaders(nodes),
                                GROUPS_START_DEADLINE_S)
        led = {n.id: sum(1 for v in leaders.values() if v == n.id) for n in nodes}
        victim = max(nodes, key=lambda n: led[n.id])
        survivors = [n for n in nodes if n is not victim]
        before_kill = status_figures(nodes)
        writer = PacedWriter(survivors, nodes, keys, args.write_rate)
        load_kill = os.getloadavg()[0]
        t_kill = time.monotonic()
        victim.kill(signal.SIGKILL)
        writer.start()
        it.wait_until("every group led by a survivor", lambda: agreed_counts(
            member_views(survivors), [n.id for n in survivors]), 60.0)
        failover_ms = (time.monotonic() - t_kill) * 1000
        time.sleep(max(0.0, args.down_s - (time.monotonic() - t_kill)))
        down = delta(status_figures(survivors), before_kill)
        before = status_figures(survivors)
        writer.phase = "respread"
        load_restart = os.getloadavg()[0]
        t_restart = time.monotonic()
        victim.start(*members, "--log-level", "warn")  # its command line, as an operator would
        live_ids = [n.id for n in nodes]
        leaderless_since, leaderless_ms, changes, last_view = {}, {}, 0, None
        spread_ms, settle_end, peak, first_move_ms = None, None, 0, None
        while True:
            now = time.monotonic()
            views = member_views(nodes)
            # Leaderless as the survivors see it (the restarted member knows
            # no leader until it hears from one).
            for g in range(1, args.groups + 1):
                if any(v.get(g, 0) == 0 for m, v in views.items() if m != victim.id):
                    leaderless_since.setdefault(g, now)
                    leaderless_ms[g] = max(leaderless_ms.get(g, 0),
                                           (now - leaderless_since[g]) * 1000)
                else:
                    leaderless_since.pop(g, None)
            view = views.get(survivors[0].id)
            if view and last_view:
                changes += sum(1 for g, l in view.items() if l and last_view.get(g) not in (0, l))
            last_view = view or last_view
            counts = agreed_counts(views, live_ids)
            if counts:
                peak = max(peak, counts[victim.id])
                if first_move_ms is None and counts[victim.id] > 0:
                    first_move_ms = round((now - t_restart) * 1000)
            if spread_ms is None and counts and within(counts, args.groups, 3, args.tolerance):
                spread_ms = (now - t_restart) * 1000
                settle_end = now + args.settle_s
                at_spread = status_figures(nodes)
                spread_counts = counts
            if settle_end is not None and now >= settle_end:
                break
            if now - t_restart > args.respread_deadline_s:
                break
            time.sleep(RESPREAD_POLL_S)
        after = status_figures(nodes)
        writer.finish()
        quiet_ms = None
        if args.quiesce:
            t_stop = time.monotonic()
            try:
                it.wait_until("quiescent again", lambda: all_quiescent(nodes, args.groups),
                              args.quiet_deadline_s)
                quiet_ms = round((time.monotonic() - t_stop) * 1000)
            except AssertionError:
                quiet_ms = "not within %g s" % args.quiet_deadline_s
        respread = delta(at_spread if spread_ms is not None else after, before)
        settle = delta(after, at_spread) if spread_ms is not None else None
        print(json.dumps({
            "bench": "respread", "groups": args.groups, "quiesce": args.quiesce, "round": r + 1,
            "load_avg_1m": {"kill": round(load_kill, 2), "restart": round(load_restart, 2)},
            "quiescent_at_kill": quiet_at_kill, "victim": victim.id, "victim_led": led[victim.id],
            "failover_ms": round(failover_ms), "down_s": args.down_s,
            "while_down": down, "writes_while_down": writer.summary("down"),
            "tolerance": args.tolerance,
            "first_move_ms": first_move_ms,
            "respread_ms": round(spread_ms) if spread_ms is not None else None,
            "at_spread": spread_counts if spread_ms is not None else None,
            "respread": respread, "after_spread_s": args.settle_s, "after_spread": settle,
            "victim_led_peak": peak, "leader_changes_seen": changes,
            "leaderless": {"groups": sum(1 for v in leaderless_ms.values() if v > 0),
                           "max_ms": round(max(leaderless_ms.values(), default=0))},
            "writes_during_respread": writer.summary("respread"),
            "quiescent_again_ms": quiet_ms}), flush=True)


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
    ap.add_argument("--respread", action="store_true",
                    help="with --groups: rounds of kill -9, --down-s down, restart; the time "
                    "until leaders are spread again (see above)")
    ap.add_argument("--down-s", type=float, default=15.0,
                    help="--respread: seconds from the kill to the restart")
    ap.add_argument("--tolerance", type=float, default=1.0,
                    help="--respread: spread when every member leads N / 3 +- this many")
    ap.add_argument("--settle-s", type=float, default=5.0,
                    help="--respread: seconds watched after the spread (transfers that overshoot)")
    ap.add_argument("--write-rate", type=float, default=200.0,
                    help="--respread: writes a second, one group after another (0: none, "
                    "so that the groups' own return to quiescence shows)")
    ap.add_argument("--respread-deadline-s", type=float, default=120.0)
    ap.add_argument("--quiet-deadline-s", type=float, default=60.0,
                    help="--respread --quiesce: how long to wait for quiescence after it")
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
            (bench_respread if args.respread else bench_groups)(args, nodes, members)
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
