#!/usr/bin/env python3
"""raftd --groups N with real processes: keys sharded over N Raft groups on
one keel::Host, each request to its key's group, the groups in /v1/status,
/v1/groups/{g} and /metrics, the group count fixed by the data dir, and no
acknowledged write lost to a kill -9 (with --quiesce too, across three
processes, every group quiescent at the kill).  raftd --quiesce: an idle
cluster of real processes goes quiet, and a killed leader is replaced.
Members over HTTPS: raftd_groups_https_test.py.  Waits poll against bounded
deadlines.

    raftd_groups_test.py path/to/raftd [unittest args]
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raftd_integration_test as it  # noqa: E402
from raftd_integration_test import request, try_request, wait_until  # noqa: E402


def group_of_key(key, groups):
    """docs/api.md, "Many groups": 1 + FNV-1a 64 of the key's bytes mod N."""
    h = 14695981039346656037
    for byte in key.encode():
        h ^= byte
        h = (h * 1099511628211) % (1 << 64)
    return 1 + h % groups


class DialCounter:
    """A listener on a Raft port that counts the connections made to it (and
    closes them at once, so that a dialer that still wants the peer retries
    within the transport's backoff cap, 1 s)."""
    QUIET_S = 3.0  # three backoff caps: a dialer that still wants the peer shows

    def __init__(self, port):
        self.port, self.count, self.stop = port, 0, threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.count += 1
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sock.close()

    def assert_quiet(self, case):
        """No connection attempt within QUIET_S (a bounded window observed,
        not a wait for an event: what is checked is that nothing happens)."""
        before = self.count
        time.sleep(self.QUIET_S)
        case.assertEqual(self.count - before, 0, "connection attempts to a let-go peer")


class RaftdGroupsTest(it.RaftdCase):
    GROUPS = 8

    def start_groups(self, node_id=1, *extra):
        n = self.node(node_id).start("--groups", str(self.GROUPS), *extra)
        self.wait_ready(n)
        return n

    def write_concurrently(self, n, writers, per_writer):
        """Keys w<w>-<i> written by `writers` threads at once; returns them."""
        written, lock = {}, threading.Lock()

        def writer(w):
            for i in range(per_writer):
                key, value = "w%d-%d" % (w, i), "v%d" % i
                code, _, _ = try_request(n.http, "PUT", "/v1/kv/" + key, {"value": value})
                if code == 200:
                    with lock:
                        written[key] = value

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return written

    def test_keys_go_to_their_groups_and_survive_restarts(self):
        n = self.start_groups()
        written = self.write_concurrently(n, 8, 25)
        self.assertEqual(len(written), 200)
        status = n.status()
        self.assertEqual(status["groups"]["count"], self.GROUPS)
        self.assertEqual(status["groups"]["led_here"], self.GROUPS)
        self.assertEqual(status["groups"]["without_leader"], 0)
        self.assertEqual(status["keys"], 200)
        self.assertEqual(status["role"], "leader")  # group 1's: the status page's view
        self.assertEqual(status["mode"], "single")
        expected = [0] * (self.GROUPS + 1)
        for key in written:
            expected[group_of_key(key, self.GROUPS)] += 1
        cluster_ids = set()
        for g in range(1, self.GROUPS + 1):
            code, _, body = request(n.http, "GET", "/v1/groups/%d" % g)
            self.assertEqual(code, 200)
            self.assertEqual((body["group"], body["keys"], body["role"]),
                             (g, expected[g], "leader"))
            cluster_ids.add(body["cluster_id"])
        self.assertEqual(len(cluster_ids), 1)  # one cluster id for every group
        self.assertEqual(request(n.http, "GET", "/v1/groups/%d" % (self.GROUPS + 1))[0], 404)
        code, _, text = request(n.http, "GET", "/metrics")
        self.assertIn("raftd_groups %d\n" % self.GROUPS, text)
        self.assertIn("raftd_groups_led %d\n" % self.GROUPS, text)
        code, _, listing = request(n.http, "GET", "/v1/kv?prefix=w&limit=10000")
        self.assertEqual(code, 200)
        self.assertEqual([k["key"] for k in listing["keys"]], sorted(written))
        self.assertEqual(request(n.http, "POST", "/v1/snapshot")[0], 200)
        self.assertEqual(request(n.http, "GET", "/ui")[0], 200)
        self.assertEqual(n.kill(signal.SIGTERM), 0)
        self.assertEqual(sorted(os.listdir(os.path.join(n.data_dir, "groups"))),
                         sorted(str(g) for g in range(1, self.GROUPS + 1)))
        with open(os.path.join(n.data_dir, "raftd.groups")) as f:
            self.assertEqual(f.read(), "%d\n" % self.GROUPS)

        # A restart needs no --groups: the data dir keeps the count.
        n.start(minimal=True)
        self.wait_ready(n)
        self.assertEqual(n.status()["groups"]["count"], self.GROUPS)
        for key, value in written.items():
            code, _, body = request(n.http, "GET", "/v1/kv/" + key)
            self.assertEqual((code, body["value"]), (200, value), key)
        self.assertEqual(n.kill(signal.SIGTERM), 0)

        # Another count is refused, and says which one the data dir has.
        n.start("--groups", "3")
        self.assertEqual(n.proc.wait(timeout=it.DEADLINE_S), 1)
        self.assertIn("created with --groups %d" % self.GROUPS, n.log_text())

    def test_kill9_during_concurrent_writes_loses_no_acknowledged_write(self):
        n = self.start_groups()
        acked = it.write_until_killed(n)
        n.start(minimal=True)
        self.wait_ready(n)
        snapshot = acked  # its writers have all returned
        groups_written = {group_of_key(key, self.GROUPS) for key in snapshot}
        self.assertGreater(len(groups_written), 1)
        for key, value in snapshot.items():
            code, _, body = request(n.http, "GET", "/v1/kv/" + key)
            self.assertEqual((code, body and body.get("value")), (200, value), key)

    def test_a_data_dir_made_without_groups_refuses_them(self):
        n = self.node(1).start()
        self.wait_ready(n)
        self.assertNotIn("groups", n.status())
        self.assertEqual(request(n.http, "GET", "/v1/groups/1")[0], 404)
        self.assertEqual(n.kill(signal.SIGTERM), 0)
        n.start("--groups", "4")
        self.assertEqual(n.proc.wait(timeout=it.DEADLINE_S), 1)
        self.assertIn("created without --groups", n.log_text())
        self.assertFalse(os.path.exists(os.path.join(n.data_dir, "raftd.groups")))


class GroupsCluster:
    """Helpers for three raftd --groups processes (mixed into the cases)."""
    GROUPS = 9

    def led_by(self, nodes):
        """{member id: groups it leads}, once every live member agrees on a
        leader for every group; None before."""
        views = []
        for n in nodes:
            code, _, body = try_request(n.http, "GET", "/v1/groups")
            if code != 200:
                return None
            views.append({g["group"]: g["leader_id"] for g in body["groups"]})
        if any(v != views[0] for v in views) or 0 in views[0].values():
            return None
        live = {n.id for n in nodes}
        if not set(views[0].values()) <= live:
            return None
        led = {n.id: 0 for n in nodes}
        for leader in views[0].values():
            led[leader] += 1
        return led

    def wait_spread(self, nodes):
        """Every live member leads its share: GROUPS / len(nodes), rounded."""
        share = self.GROUPS // len(nodes)
        extra = 1 if self.GROUPS % len(nodes) else 0

        def spread():
            led = self.led_by(nodes)
            ok = led and all(share <= c <= share + extra for c in led.values())
            return led if ok else None
        return wait_until("leaders spread over %s" % [n.id for n in nodes], spread)

    def put_following(self, port, key, value):
        """A write through `port`, following the redirect to its group's leader."""
        for _ in range(5):
            code, hdrs, body = try_request(port, "PUT", "/v1/kv/" + key, {"value": value})
            if code != 307:
                return code, body
            port = int(hdrs["location"].split(":")[2].split("/")[0])
        return code, body


class RaftdGroupsClusterTest(GroupsCluster, it.RaftdCase):
    def test_three_processes_spread_leaders_redirect_per_group_and_fail_over(self):
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS))
        self.wait_spread(nodes)
        # Every key through member 1: its group's leader answers (after a redirect
        # naming the group when it is another member).
        redirected = 0
        for i in range(30):
            key = "k%d" % i
            code, hdrs, body = try_request(nodes[0].http, "PUT", "/v1/kv/" + key, {"value": "1"})
            if code == 307:
                redirected += 1
                self.assertEqual(body["group"], group_of_key(key, self.GROUPS))
            wait_until("%s written" % key,
                       lambda: self.put_following(nodes[0].http, key, "1")[0] == 200)
        self.assertGreater(redirected, 0)
        # kill -9 one member: the others lead every group and take writes in each.
        victim = nodes[2]
        victim.kill(signal.SIGKILL)
        survivors = nodes[:2]
        self.wait_spread(survivors)
        # (429 busy / 503 while a new leader commits its first entry or a
        # transfer runs: clients retry.)
        for i in range(30):
            wait_until("k%d written" % i, lambda: self.put_following(
                nodes[0].http, "k%d" % i, "2")[0] == 200)
        # Back (restarted with its data dir only): the leaders spread again.
        victim.start(minimal=True)
        self.wait_spread(nodes)
        for i in range(30):
            key = "k%d" % i
            wait_until("%s on member 3" % key, lambda: (try_request(
                victim.http, "GET", "/v1/kv/%s?consistency=stale" % key)[2] or {}).get(
                    "value") == "2")


    def test_a_linearizable_list_on_any_member_holds_every_acknowledged_write(self):
        """Leaders spread over three members: a list on any of them has, in
        order, every write acknowledged before it, in every group (each
        other leader is asked for its groups' part)."""
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS))
        self.wait_spread(nodes)
        acknowledged = set()
        for round_ in range(3):
            keys = {}
            i = 0
            while len(keys) < self.GROUPS:  # one key in each group
                key = "r%d-%d" % (round_, i)
                keys.setdefault(group_of_key(key, self.GROUPS), key)
                i += 1
            for key in keys.values():
                wait_until("%s written" % key,
                           lambda key=key: self.put_following(nodes[0].http, key, "v")[0] == 200)
                acknowledged.add(key)
            for n in nodes:
                def listed(n=n):
                    code, _, body = try_request(n.http, "GET", "/v1/kv?prefix=r&limit=1000")
                    return body if code == 200 else None  # 503 while a leader moves: retry
                body = wait_until("a list on member %d" % n.id, listed)
                got = [k["key"] for k in body["keys"]]
                self.assertEqual(got, sorted(got))
                self.assertTrue(acknowledged <= set(got), sorted(acknowledged - set(got)))
        # The bound holds across members: the first `limit` keys in order.
        body = wait_until("a list of 5", lambda: (lambda r: r[2] if r[0] == 200 else None)(
            try_request(nodes[1].http, "GET", "/v1/kv?prefix=r&limit=5")))
        self.assertEqual((body["count"], body["truncated"]), (5, True))
        self.assertEqual([k["key"] for k in body["keys"]], sorted(acknowledged)[:5])


class RaftdQuiesceTest(it.RaftdCase):
    def test_an_idle_cluster_quiesces_and_a_killed_leader_is_replaced(self):
        nodes = self.start_cluster(3, "--quiesce")
        leader = self.leader_of(nodes)
        self.assertEqual(self.put(leader.http, "a", "1")[0], 200)
        wait_until("every member quiescent",
                   lambda: all((n.status() or {}).get("quiescent") for n in nodes))
        # Quiet: no election while idle.
        elections = sum(n.status()["elections"] for n in nodes)
        self.assertEqual(self.put(leader.http, "b", "2")[0], 200)  # wakes it
        wait_until("quiescent again",
                   lambda: all((n.status() or {}).get("quiescent") for n in nodes))
        self.assertEqual(sum(n.status()["elections"] for n in nodes), elections)
        # Only the liveness verdict wakes the followers' quiescent groups.
        leader.kill(signal.SIGKILL)
        others = [n for n in nodes if n is not leader]
        new_leader = self.leader_of(others)
        self.assertEqual(self.put(new_leader.http, "c", "3")[0], 200)
        for key, value in (("a", "1"), ("b", "2"), ("c", "3")):
            self.assertEqual(request(new_leader.http, "GET", "/v1/kv/" + key)[2]["value"], value)


class RaftdGroupsQuiesceTest(GroupsCluster, it.RaftdCase):
    def quiescent(self, nodes):
        return all(((n.status() or {}).get("groups") or {}).get("quiescent") == self.GROUPS
                   for n in nodes)

    def test_kill9_of_a_member_of_quiescent_groups_loses_no_acknowledged_write(self):
        """--groups --quiesce: every group quiet, so the followers of the
        groups the killed member led have no election timer and only the
        liveness verdict wakes them.  Writes acknowledged before the kill
        and during the failover (clients retrying through the survivors)
        all read back, and every group takes writes again."""
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS), "--quiesce")
        self.wait_spread(nodes)
        acked, lock = {}, threading.Lock()
        for g, key in self.one_key_per_group("before").items():
            wait_until("%s written" % key,
                       lambda key=key: self.put_following(nodes[0].http, key, "1")[0] == 200)
            acked[key] = "1"
        wait_until("every group quiescent on every member", lambda: self.quiescent(nodes))
        led = self.led_by(nodes)
        victim = max(nodes, key=lambda n: led[n.id])
        survivors = [n for n in nodes if n is not victim]
        victim.kill(signal.SIGKILL)
        after, stop = set(), threading.Event()

        def writer(w):
            port = survivors[w % 2].http
            i = 0
            while not stop.is_set():
                key = "after-%d-%d" % (w, i)
                i += 1
                if self.put_following(port, key, "2")[0] == 200:
                    with lock:
                        acked[key] = "2"
                        after.add(group_of_key(key, self.GROUPS))
                else:
                    time.sleep(0.01)  # 503 while a group elects, or a redirect to the dead

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        try:
            wait_until("every group writable again", lambda: len(after) == self.GROUPS)
        finally:
            stop.set()
            for t in threads:
                t.join()
        for key, value in acked.items():
            body = wait_until("%s read" % key, lambda key=key: self.get_following(
                survivors[0].http, key))
            self.assertEqual(body.get("value"), value, key)

    def test_a_member_killed_and_restarted_leads_its_share_again_and_every_group_goes_quiet(self):
        """--groups --quiesce: the member leading most groups is killed (-9)
        and restarted with its command line; the leaders spread over the
        three again and every group goes quiescent again on every member.
        Nothing is written after the restart, so a leader that put the
        restarted member in probe while it was down (the transport reported
        it unreachable) must probe it back to replicate with an empty append
        (replication.cpp, handle_heartbeat_response): otherwise that group
        stays awake for good."""
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS), "--quiesce")
        self.wait_spread(nodes)
        wait_until("every group quiescent on every member", lambda: self.quiescent(nodes))
        led = self.led_by(nodes)
        victim = max(nodes, key=lambda n: led[n.id])
        survivors = [n for n in nodes if n is not victim]
        victim.kill(signal.SIGKILL)
        # The survivors lead every group: every heartbeat to the victim since
        # the kill went nowhere.
        wait_until("the survivors lead every group", lambda: self.led_by(survivors))
        victim.start(*victim.first_args)
        self.wait_spread(nodes)
        wait_until("every group quiescent again on every member", lambda: self.quiescent(nodes))

    def one_key_per_group(self, prefix):
        keys, i = {}, 0
        while len(keys) < self.GROUPS:
            keys.setdefault(group_of_key("%s%d" % (prefix, i), self.GROUPS), "%s%d" % (prefix, i))
            i += 1
        return keys

    def get_following(self, port, key):
        """A linearizable read through `port`, following its group's redirect."""
        for _ in range(5):
            code, hdrs, body = try_request(port, "GET", "/v1/kv/" + key)
            if code == 200:
                return body
            if code != 307:
                return None
            port = int(hdrs["location"].split(":")[2].split("/")[0])
        return None


class RaftdGroupsGrowTest(it.RaftdCase):
    """raftd --groups grows 1 -> 3 -> 1 as raftd without groups does: joiners
    (--join --groups N) added as learners to every group, promoted, then
    removed; the processes' peers follow (raftd.members)."""
    GROUPS = 4

    def follow(self, port, method, path, body=None):
        """A request through `port`, following redirects (curl -L)."""
        for _ in range(10):
            code, hdrs, answer = try_request(port, method, path, body, timeout=10.0)
            if code != 307:
                return code, answer
            port = int(hdrs["location"].split(":")[2].split("/")[0])
        return code, answer

    def change(self, port, method, path, body=None):
        """A membership change, retried while leadership moves (a retry is safe)."""
        wait_until("%s %s" % (method, path),
                   lambda: self.follow(port, method, path, body)[0] == 200)

    def members_file(self, n):
        with open(os.path.join(n.data_dir, "raftd.members")) as f:
            return sorted(int(line.split(",")[0]) for line in f if line.strip())

    def read_everywhere(self, nodes, written):
        for n in nodes:
            for key, value in written.items():
                wait_until("%s on member %d" % (key, n.id), lambda n=n, key=key, value=value: (
                    try_request(n.http, "GET", "/v1/kv/%s?consistency=stale" % key)[2]
                    or {}).get("value") == value)

    def test_grow_one_to_three_and_back_with_groups(self):
        cluster_id = os.urandom(16).hex()
        groups = ["--groups", str(self.GROUPS), "--cluster-id", cluster_id]
        first = self.node(1).start(*groups)
        self.wait_ready(first)
        written = {}
        for i in range(12):
            self.assertEqual(self.put(first.http, "a%d" % i, "1")[0], 200)
            written["a%d" % i] = "1"
        joiners = [self.node(i).start("--join", "--member", first.spec, *groups) for i in (2, 3)]
        for j in joiners:
            wait_until("node %d up" % j.id,
                       lambda j=j: try_request(j.http, "GET", "/healthz")[0] == 200)
            self.change(first.http, "POST", "/v1/members", {
                "id": j.id, "raft": "127.0.0.1:%d" % j.raft, "http": "127.0.0.1:%d" % j.http,
                "role": "learner"})
            self.wait_ready(j)  # every group has a leader and is caught up here
            self.change(first.http, "POST", "/v1/members/%d/promote" % j.id)
        everyone = [first] + joiners
        for n in everyone:
            wait_until("every group has three voters on %d" % n.id, lambda n=n: all(
                len([m for m in request(n.http, "GET", "/v1/groups/%d" % g)[2]["members"]
                     if m.get("role", "voter") == "voter"]) == 3
                for g in range(1, self.GROUPS + 1)))
        for n in everyone:
            wait_until("member %d knows the processes" % n.id,
                       lambda n=n: self.members_file(n) == [1, 2, 3])
        for i in range(12):
            wait_until("b%d written" % i,
                       lambda i=i: self.follow(joiners[1].http, "PUT", "/v1/kv/b%d" % i,
                                               {"value": "3"})[0] == 200)
            written["b%d" % i] = "3"
        self.read_everywhere(everyone, written)
        # A joiner restarts from its data dir alone: its peers come from raftd.members.
        joiners[0].kill(signal.SIGTERM)
        joiners[0].start(minimal=True)
        self.wait_ready(joiners[0])
        self.read_everywhere([joiners[0]], written)

        # Back to one.
        for j in reversed(joiners):
            self.change(first.http, "DELETE", "/v1/members/%d" % j.id)
        wait_until("member 1 alone in raftd.members", lambda: self.members_file(first) == [1])
        self.wait_ready(first)
        for j in joiners:
            j.kill(signal.SIGTERM)
        for i in range(12):
            wait_until("c%d written" % i, lambda i=i: self.follow(
                first.http, "PUT", "/v1/kv/c%d" % i, {"value": "1"})[0] == 200)
            written["c%d" % i] = "1"
        self.read_everywhere([first], written)
        self.assertEqual(first.status()["groups"]["led_here"], self.GROUPS)

    def peers(self, n):
        return (n.status() or {}).get("groups", {}).get("peers")

    def test_a_stale_or_removed_peer_is_let_go_and_can_come_back(self):
        """The Host's peers follow the groups' members at run time: a --member
        entry for a process the cluster does not have (stale) goes once the
        joiner is in every group, a member removed from every group goes from
        every member, and no one dials either any more; a re-add works."""
        cluster_id = os.urandom(16).hex()
        groups = ["--groups", str(self.GROUPS), "--cluster-id", cluster_id]
        first = self.node(1).start(*groups)
        self.wait_ready(first)
        self.assertEqual(self.peers(first), [])
        second = self.node(2)  # not a member yet: its Raft port counts who dials it
        with DialCounter(second.raft) as dials:
            third = self.node(3).start("--join", "--member", first.spec, "--member", second.spec,
                                       *groups)
            wait_until("node 3 up", lambda: try_request(third.http, "GET", "/healthz")[0] == 200)
            self.assertEqual(self.peers(third), [1, 2])
            self.change(first.http, "POST", "/v1/members", {
                "id": 3, "raft": "127.0.0.1:%d" % third.raft, "http": "127.0.0.1:%d" % third.http,
                "role": "learner"})
            self.wait_ready(third)
            wait_until("stale peer 2 let go by node 3", lambda: self.peers(third) == [1])
            dials.assert_quiet(self)
        # Member 2 joins for real (the re-add of a process let go), then leaves.
        second.start("--join", "--member", first.spec, *groups)
        wait_until("node 2 up", lambda: try_request(second.http, "GET", "/healthz")[0] == 200)
        self.change(first.http, "POST", "/v1/members", {
            "id": 2, "raft": "127.0.0.1:%d" % second.raft, "http": "127.0.0.1:%d" % second.http,
            "role": "learner"})
        self.wait_ready(second)
        for n, others in ((first, [2, 3]), (second, [1, 3]), (third, [1, 2])):
            wait_until("node %d reaches %s" % (n.id, others), lambda n=n, o=others: self.peers(n) == o)
        wait_until("a write", lambda: self.follow(third.http, "PUT", "/v1/kv/x", {"value": "1"})[0] == 200)
        wait_until("x on node 2", lambda: (try_request(
            second.http, "GET", "/v1/kv/x?consistency=stale")[2] or {}).get("value") == "1")
        self.change(first.http, "DELETE", "/v1/members/2")
        for n, others in ((first, [3]), (third, [1])):
            wait_until("node %d lets 2 go" % n.id, lambda n=n, o=others: self.peers(n) == o)
        second.kill(signal.SIGTERM)
        with DialCounter(second.raft) as dials:
            dials.assert_quiet(self)

    def test_force_new_cluster_makes_the_survivor_the_only_voter_of_every_group(self):
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS))
        for n in nodes:
            self.wait_ready(n)
        written = {}
        for i in range(12):
            wait_until("k%d written" % i, lambda i=i: self.follow(
                nodes[0].http, "PUT", "/v1/kv/k%d" % i, {"value": "old"})[0] == 200)
            written["k%d" % i] = "old"
        self.read_everywhere([nodes[0]], written)
        # The majority is lost for good.
        for n in nodes[1:]:
            n.kill(signal.SIGKILL)
        first = nodes[0]
        first.kill(signal.SIGTERM)
        first.start("--force-new-cluster")
        self.wait_ready(first)
        status = first.status()
        self.assertEqual((status["groups"]["led_here"], len(status["members"])), (self.GROUPS, 1))
        self.read_everywhere([first], written)
        for i in range(12):
            self.assertEqual(self.put(first.http, "k%d" % i, "new")[0], 200)
            written["k%d" % i] = "new"
        wait_until("member 1 alone in raftd.members", lambda: self.members_file(first) == [1])
        # A restart without the flag: still alone, nothing lost.
        first.kill(signal.SIGTERM)
        first.start(minimal=True)
        self.wait_ready(first)
        self.assertEqual(first.status()["groups"]["led_here"], self.GROUPS)
        self.read_everywhere([first], written)

    def test_a_joiner_with_another_group_count_stops_before_writing(self):
        cluster_id = os.urandom(16).hex()
        first = self.node(1).start("--groups", str(self.GROUPS), "--cluster-id", cluster_id)
        self.wait_ready(first)
        self.assertEqual(request(first.http, "GET", "/healthz")[2],
                         {"status": "ok", "groups": self.GROUPS})
        # Fewer groups, more groups, or none: the member's /healthz says the
        # cluster's count, and the joiner stops with it before its data dir
        # holds anything.
        for node_id, flags, asked in ((2, ["--groups", "2"], "--groups 2"),
                                      (3, ["--groups", "6"], "--groups 6"),
                                      (4, [], "no --groups")):
            j = self.node(node_id).start("--join", "--member", first.spec,
                                         "--cluster-id", cluster_id, *flags)
            self.assertEqual(j.proc.wait(timeout=it.DEADLINE_S), 1, asked)
            self.assertIn("--join with %s: the cluster runs --groups %d" % (asked, self.GROUPS),
                          j.log_text())
            self.assertEqual(os.listdir(j.data_dir) if os.path.exists(j.data_dir) else [], [])
            # The same data dir then joins with the cluster's count.
        j = self.node(3).start("--join", "--member", first.spec, "--cluster-id", cluster_id,
                               "--groups", str(self.GROUPS))
        wait_until("node 3 up", lambda: try_request(j.http, "GET", "/healthz")[0] == 200)
        self.change(first.http, "POST", "/v1/members", {
            "id": 3, "raft": "127.0.0.1:%d" % j.raft, "http": "127.0.0.1:%d" % j.http,
            "role": "learner"})
        self.wait_ready(j)

    def test_a_joiner_that_cannot_ask_is_stopped_by_the_members_messages(self):
        """No member's HTTP port answers (a wrong one in --member): a joiner
        with fewer groups stops at the first message for a group it lacks."""
        cluster_id = os.urandom(16).hex()
        first = self.node(1).start("--groups", str(self.GROUPS), "--cluster-id", cluster_id)
        self.wait_ready(first)
        self.assertEqual(self.put(first.http, "k", "1")[0], 200)
        unreachable = "1,127.0.0.1:%d,127.0.0.1:%d" % (first.raft, it.free_port())
        fewer = self.node(2).start("--join", "--member", unreachable, "--groups", "2",
                                   "--cluster-id", cluster_id)
        wait_until("node 2 up", lambda: try_request(fewer.http, "GET", "/healthz")[0] == 200)
        self.assertIn("cannot ask member 1 for the cluster's group count", fewer.log_text())
        self.follow(first.http, "POST", "/v1/members", {
            "id": 2, "raft": "127.0.0.1:%d" % fewer.raft, "http": "127.0.0.1:%d" % fewer.http,
            "role": "learner"})
        self.assertEqual(fewer.proc.wait(timeout=it.DEADLINE_S), 1)
        self.assertIn("the cluster has more groups", fewer.log_text())

    def test_a_joiner_needs_the_cluster_id_and_members(self):
        n = self.node(2).start("--join", "--groups", "4")
        self.assertEqual(n.proc.wait(timeout=it.DEADLINE_S), 2)
        self.assertIn("--cluster-id", n.log_text())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
