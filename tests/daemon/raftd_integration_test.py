#!/usr/bin/env python3
"""raftd with real processes on loopback: free ports, temp dirs, cleaned up
even on failure.  Waits poll HTTP endpoints against bounded deadlines; no
fixed sleeps as synchronisation and no timing assertions.

    raftd_integration_test.py path/to/raftd [unittest args, e.g. -k redirect]
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

RAFTD = None
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
DEADLINE_S = 30.0       # bound on any wait for the cluster to converge
POLL_S = 0.02


_ports_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_port_rng = random.Random()


def free_port():
    """A loopback port free now, below the kernel's ephemeral range, and never
    handed out before by this process.  A port the kernel gives for bind(0)
    is an ephemeral one: a member started only later (a joiner, a restart)
    could find it taken as the local port of some connection meanwhile; and
    two members of one test must not both be told to bind one port."""
    high = max(_ephemeral_low(), 1025 + 1000)
    low = max(1025, high - 12000)
    for _ in range(10000):
        port = _port_rng.randrange(low, high)
        if port in _ports_handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def request(port, method, path, body=None, timeout=5.0, headers=None):
    """Returns (status, headers dict, parsed JSON or text); never follows redirects.
    A body is sent as application/json unless `headers` name another type."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        headers = dict(headers or {})
        if data is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, hdrs, parsed
    finally:
        conn.close()


def try_request(port, method, path, body=None, timeout=2.0):
    try:
        return request(port, method, path, body, timeout)
    except (OSError, http.client.HTTPException):
        return None, {}, None


def wait_until(what, fn, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(POLL_S)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))



def write_until_killed(node, writers=8, at_least=200):
    """Eight writers PUT distinct keys to `node` until it has acknowledged
    `at_least` of them, then the node is killed (-9) under them.  Returns the
    acknowledged writes, {key: value}."""
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def writer(w):
        i = 0
        while not stop.is_set():
            key, value = "w%d-%d" % (w, i), "v%d" % i
            code, _, _ = try_request(node.http, "PUT", "/v1/kv/" + key, {"value": value})
            if code == 200:
                with lock:
                    acked[key] = value
            elif code is None:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    wait_until("%d acknowledged writes" % at_least, lambda: len(acked) >= at_least)
    node.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    return acked

def doc_block(doc, heading):
    """The first ```sh block after `heading` in docs/`doc`, as written."""
    with open(os.path.join(DOCS, doc)) as f:
        text = f.read()
    after = text[text.index(heading):]
    start = after.index("```sh\n") + len("```sh\n")
    return after[start:after.index("```", start)]


def metric(port, name, labels):
    """The value of `name{labels}` in /metrics, or 0 if absent."""
    code, _, text = try_request(port, "GET", "/metrics")
    if code != 200:
        return 0
    prefix = "%s{%s} " % (name, labels)
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0


class Node:
    def __init__(self, root, node_id):
        self.id = node_id
        self.http = free_port()
        self.raft = free_port()
        self.raft_host = "127.0.0.1"
        self.data_dir = os.path.join(root, "node%d" % node_id)
        self.log_path = os.path.join(root, "node%d.log" % node_id)
        self.proc = None
        self.first_args = None

    @property
    def spec(self):
        return "%d,127.0.0.1:%d,127.0.0.1:%d" % (self.id, self.raft, self.http)

    def start(self, *extra, minimal=False):
        args = [RAFTD, "--data-dir", self.data_dir, "--http", "127.0.0.1:%d" % self.http,
                "--raft", "%s:%d" % (self.raft_host, self.raft)]
        if not minimal:
            args += ["--id", str(self.id)] + list(extra)
        if self.first_args is None:
            self.first_args = list(extra)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()
        return self

    def status(self):
        code, _, body = try_request(self.http, "GET", "/v1/status")
        return body if code == 200 else None

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class RaftdCase(unittest.TestCase):
    """Nodes in a temp dir, killed and shown (log tails) after a failure."""
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="raftd-test-")
        self.nodes = {}

    def tearDown(self):
        for node in self.nodes.values():
            node.kill()
        result = getattr(self._outcome, "result", None)
        failed = result is not None and any(
            test is self for test, _ in list(result.failures) + list(result.errors))
        if failed or os.environ.get("RAFTD_TEST_KEEP"):
            for node in self.nodes.values():
                if os.path.exists(node.log_path):
                    with open(node.log_path, "rb") as f:
                        tail = f.read()[-3000:].decode("utf-8", "replace")
                    sys.stderr.write("---- node %d log (tail) ----\n%s\n" % (node.id, tail))
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------
    def node(self, node_id):
        if node_id not in self.nodes:
            self.nodes[node_id] = Node(self.root, node_id)
        return self.nodes[node_id]

    def wait_ready(self, node):
        wait_until("node %d ready" % node.id,
                   lambda: try_request(node.http, "GET", "/readyz")[0] == 200)

    def leader_of(self, nodes):
        """Waits until the live nodes agree on one live leader; returns it."""
        def agreed():
            leaders = set()
            for n in nodes:
                s = n.status()
                if not s:
                    return None
                leaders.add(s["leader_id"])
            if len(leaders) == 1:
                leader = self.nodes.get(leaders.pop())
                if leader is not None and leader in nodes:
                    s = leader.status()
                    if s and s["role"] == "leader":
                        return leader
            return None
        return wait_until("an agreed leader", agreed)

    def put(self, port, key, value, **extra):
        body = {"value": value}
        body.update(extra)
        return request(port, "PUT", "/v1/kv/" + key, body)

    def put_via_any(self, nodes, key, value):
        """Writes through whichever node answers, following redirects."""
        def attempt():
            for n in nodes:
                code, hdrs, body = try_request(n.http, "PUT", "/v1/kv/" + key, {"value": value})
                if code == 307:
                    loc = hdrs["location"]
                    port = int(loc.split(":")[2].split("/")[0])
                    code, hdrs, body = try_request(port, "PUT", "/v1/kv/" + key, {"value": value})
                if code == 200:
                    return body
            return None
        return wait_until("a write of %s" % key, attempt)

    @staticmethod
    def member_flags(nodes):
        flags = []
        for n in nodes:
            flags += ["--member", n.spec]
        return flags

    def start_cluster(self, count, *extra, per_node=lambda n: []):
        """Founders share a cluster id (raftd refuses to bootstrap several without one)."""
        nodes = [self.node(i) for i in range(1, count + 1)]
        self.cluster_id = os.urandom(16).hex()
        members = ["--cluster-id", self.cluster_id]
        for n in nodes:
            members += ["--member", n.spec]
        for n in nodes:
            n.start(*(members + list(extra) + per_node(n)))
        return nodes

    def documented_certificates(self, name):
        """Runs the openssl commands of docs/operations.md as written, in a new directory."""
        where = os.path.join(self.root, name)
        os.makedirs(where)
        subprocess.run(["bash", "-euo", "pipefail", "-c",
                        doc_block("operations.md", "### Between members")],
                       cwd=where, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return where

    @staticmethod
    def tls_flags(certs):
        return lambda n: ["--peer-cert", os.path.join(certs, "member%d.crt" % n.id),
                          "--peer-key", os.path.join(certs, "member%d.key" % n.id),
                          "--peer-ca", os.path.join(certs, "ca.crt")]


class RaftdTest(RaftdCase):
    def test_single_node_put_get_cas_delete_and_restart(self):
        n = self.node(1).start()
        self.wait_ready(n)
        code, _, body = self.put(n.http, "a", "1")
        self.assertEqual(code, 200)
        rev = body["revision"]
        code, _, body = request(n.http, "GET", "/v1/kv/a")
        self.assertEqual((code, body["value"], body["revision"]), (200, "1", rev))
        code, _, body = self.put(n.http, "a", "2", prev_value="wrong")
        self.assertEqual(code, 409)
        self.assertEqual(body["current"]["value"], "1")
        code, _, body = self.put(n.http, "a", "2", prev_revision=rev)
        self.assertEqual(code, 200)
        self.assertEqual(self.put(n.http, "b", "keep")[0], 200)
        self.assertEqual(request(n.http, "DELETE", "/v1/kv/b")[0], 200)
        self.assertEqual(request(n.http, "GET", "/v1/kv/b")[0], 404)
        self.assertEqual(self.put(n.http, "c", "3")[0], 200)
        s = n.status()
        self.assertEqual(s["mode"], "single")
        for field in ("id", "role", "term", "leader_id", "commit_index", "applied_index",
                      "last_index", "members", "timer_wakeups", "wal"):
            self.assertIn(field, s)
        self.assertEqual(n.kill(signal.SIGTERM), 0)
        # Restart with only the data dir and addresses.
        n.start(minimal=True)
        self.wait_ready(n)
        self.assertEqual(request(n.http, "GET", "/v1/kv/a")[2]["value"], "2")
        self.assertEqual(request(n.http, "GET", "/v1/kv/c")[2]["value"], "3")
        self.assertEqual(request(n.http, "GET", "/v1/kv/b")[0], 404)
        self.assertEqual(n.status()["id"], 1)
        self.assertEqual(n.kill(signal.SIGTERM), 0)
        # Restart with exactly the flags of the first start.
        n.start(*n.first_args)
        self.wait_ready(n)
        self.assertEqual(request(n.http, "GET", "/v1/kv/a")[2]["value"], "2")

    def test_kill9_during_concurrent_writes_loses_no_acknowledged_write(self):
        n = self.node(1).start()
        self.wait_ready(n)
        acked = write_until_killed(n)
        n.start()
        self.wait_ready(n)
        snapshot = acked  # its writers have all returned
        for key, value in snapshot.items():
            code, _, body = request(n.http, "GET", "/v1/kv/" + key)
            self.assertEqual((code, body and body.get("value")), (200, value), key)

    def test_three_nodes_leader_kill9_failover_and_rejoin(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        self.put_via_any(nodes, "before", "1")
        leader.kill(signal.SIGKILL)
        survivors = [n for n in nodes if n is not leader]
        new_leader = self.leader_of(survivors)
        self.assertIsNot(new_leader, leader)
        for i in range(20):
            self.put_via_any(survivors, "after%d" % i, str(i))
        # The old leader rejoins with the flags of its first start and catches up.
        leader.start(*leader.first_args)
        target = new_leader.status()["commit_index"]
        wait_until("the old leader catching up",
                   lambda: (leader.status() or {}).get("applied_index", 0) >= target)
        code, _, body = request(leader.http, "GET", "/v1/kv/after19?consistency=stale")
        self.assertEqual((code, body["value"]), (200, "19"))
        self.leader_of(nodes)

    def test_follower_redirects_to_the_leader(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        follower = next(n for n in nodes if n is not leader)
        code, hdrs, body = self.put(follower.http, "r", "1")
        self.assertEqual(code, 307)
        self.assertEqual(hdrs["location"], "http://127.0.0.1:%d/v1/kv/r" % leader.http)
        self.assertEqual(body["leader_id"], leader.id)
        code, hdrs, _ = request(follower.http, "GET", "/v1/kv/r")
        self.assertEqual(code, 307)
        self.assertEqual(self.put(leader.http, "r", "1")[0], 200)
        # A stale read on the follower is served locally once it has applied.
        wait_until("the follower applying r", lambda: try_request(
            follower.http, "GET", "/v1/kv/r?consistency=stale")[0] == 200)

    def test_learner_added_promoted_and_removed(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        self.put_via_any(nodes, "x", "1")
        fourth = self.node(4).start("--join", *self.member_flags(nodes))
        code, _, body = request(leader.http, "POST", "/v1/members", {
            "id": 4, "raft": "127.0.0.1:%d" % fourth.raft, "http": "127.0.0.1:%d" % fourth.http,
            "role": "learner"})
        self.assertEqual(code, 200, body)
        wait_until("the learner applying x", lambda: try_request(
            fourth.http, "GET", "/v1/kv/x?consistency=stale")[0] == 200)
        roles = {m["id"]: m["role"] for m in request(leader.http, "GET", "/v1/members")[2]["members"]}
        self.assertEqual(roles[4], "learner")
        code, _, body = request(leader.http, "POST", "/v1/members/4/promote")
        self.assertEqual(code, 200, body)
        roles = {m["id"]: m["role"] for m in request(leader.http, "GET", "/v1/members")[2]["members"]}
        self.assertEqual(roles[4], "voter")
        code, _, body = request(leader.http, "DELETE", "/v1/members/4")
        self.assertEqual(code, 200, body)
        ids = [m["id"] for m in request(leader.http, "GET", "/v1/members")[2]["members"]]
        self.assertNotIn(4, ids)
        self.put_via_any(nodes, "y", "2")

    def test_one_to_three_to_one_with_timers_idle_in_single_mode(self):
        first = self.node(1).start()
        self.wait_ready(first)
        self.assertEqual(self.put(first.http, "k", "single")[0], 200)
        before = first.status()
        self.assertEqual(before["mode"], "single")
        for i in range(20):
            self.assertEqual(self.put(first.http, "s%d" % i, "v")[0], 200)
        self.assertEqual(first.status()["timer_wakeups"], before["timer_wakeups"])
        joiners = [self.node(i).start("--join", *self.member_flags([first])) for i in (2, 3)]
        for j in joiners:
            # As keel advises: add a learner, let it catch up, then promote it,
            # so the quorum never waits for an empty log.
            wait_until("node %d up" % j.id,
                       lambda j=j: try_request(j.http, "GET", "/healthz")[0] == 200)
            code, _, body = request(first.http, "POST", "/v1/members", {
                "id": j.id, "raft": "127.0.0.1:%d" % j.raft, "http": "127.0.0.1:%d" % j.http,
                "role": "learner"})
            self.assertEqual(code, 200, body)
            target = first.status()["commit_index"]
            wait_until("node %d catching up" % j.id,
                       lambda j=j: (j.status() or {}).get("applied_index", 0) >= target)
            code, _, body = request(first.http, "POST", "/v1/members/%d/promote" % j.id)
            self.assertEqual(code, 200, body)
        wait_until("cluster mode", lambda: (first.status() or {}).get("mode") == "cluster")
        everyone = [first] + joiners
        self.put_via_any(everyone, "k", "cluster")
        for j in joiners:
            wait_until("node %d applying k" % j.id, lambda j=j: (try_request(
                j.http, "GET", "/v1/kv/k?consistency=stale")[2] or {}).get("value") == "cluster")
        # Back to one: remove the two others through whoever leads.
        leader = self.leader_of(everyone)
        if leader is not first:
            code, _, body = request(leader.http, "POST", "/v1/leader/transfer", {"to": 1})
            self.assertEqual(code, 200, body)
            wait_until("node 1 leading", lambda: (first.status() or {}).get("role") == "leader")
        for j in joiners:
            code, _, body = request(first.http, "DELETE", "/v1/members/%d" % j.id)
            self.assertEqual(code, 200, body)
        wait_until("single mode", lambda: (first.status() or {}).get("mode") == "single")
        for j in joiners:
            j.kill(signal.SIGTERM)
        self.assertEqual(self.put(first.http, "k", "single again")[0], 200)
        idle = first.status()["timer_wakeups"]
        for i in range(20):
            self.assertEqual(self.put(first.http, "t%d" % i, "v")[0], 200)
        self.assertEqual(first.status()["timer_wakeups"], idle)

    def test_mutual_tls_cluster_with_the_documented_certificates(self):
        certs = self.documented_certificates("certs")
        for n in (1, 2, 3):
            self.assertEqual(os.stat(os.path.join(certs, "member%d.key" % n)).st_mode & 0o777, 0o600)
        nodes = self.start_cluster(3, per_node=self.tls_flags(certs))
        leader = self.leader_of(nodes)
        for i in range(10):
            self.put_via_any(nodes, "t%d" % i, str(i))
        for n in nodes:
            self.assertEqual(n.status()["cluster_id"], self.cluster_id)
            self.assertIn("members over mutual TLS", n.log_text())
        # Fail over, and the old leader rejoins over TLS and catches up.
        leader.kill(signal.SIGKILL)
        survivors = [n for n in nodes if n is not leader]
        self.assertIsNot(self.leader_of(survivors), leader)
        self.put_via_any(survivors, "after", "1")
        leader.start(*leader.first_args)
        target = self.leader_of(survivors).status()["commit_index"]
        wait_until("the old leader catching up",
                   lambda: (leader.status() or {}).get("applied_index", 0) >= target)
        for n in nodes:
            self.assertEqual(metric(n.http, "keel_peer_messages_rejected_total",
                                    'reason="tls_handshake"'), 0)

    def test_member_with_another_cas_certificate_is_refused_visibly(self):
        certs = self.documented_certificates("certs")
        other = self.documented_certificates("other")  # the same commands: another CA
        nodes = self.start_cluster(3, per_node=self.tls_flags(certs))
        leader = self.leader_of(nodes)
        self.put_via_any(nodes, "a", "1")
        impostor = next(n for n in nodes if n is not leader)
        impostor.kill(signal.SIGTERM)
        flags = [f for f in impostor.first_args if not f.startswith(certs)]
        flags = [f for f in flags if f not in ("--peer-cert", "--peer-key", "--peer-ca")]
        impostor.start(*(flags + self.tls_flags(other)(impostor)))
        wait_until("the impostor serving HTTP", lambda: impostor.status() is not None)
        self.put_via_any([leader], "b", "2")
        wait_until("a refusal counted on the leader", lambda: metric(
            leader.http, "keel_peer_messages_rejected_total", 'reason="tls_handshake"') > 0)
        wait_until("the refusal logged on the leader",
                   lambda: "peer refused (tls_handshake)" in leader.log_text() or
                   "not signed by our CA" in leader.log_text())
        self.assertEqual(try_request(impostor.http, "GET", "/v1/kv/b?consistency=stale")[0], 404)

    def test_plain_tcp_beyond_loopback_needs_peer_insecure(self):
        n = self.node(1)
        n.raft_host = "0.0.0.0"
        n.start()
        self.assertEqual(n.proc.wait(timeout=DEADLINE_S), 1)
        self.assertIn("is not loopback", n.log_text())
        n.start("--peer-insecure")
        self.wait_ready(n)
        self.assertIn("plain TCP although 0.0.0.0", n.log_text())

    def test_bad_input_matrix(self):
        n = self.node(1).start("--max-body-bytes", "4096", "--max-value-bytes", "1024")
        self.wait_ready(n)
        cases = [
            ("PUT", "/v1/kv/a", "{", 400, "bad_json"),
            ("PUT", "/v1/kv/a", "[]", 400, "bad_request"),
            ("PUT", "/v1/kv/a", '{"nope":1}', 400, "missing_field"),
            ("PUT", "/v1/kv/a", '{"value":5}', 400, "wrong_type"),
            ("PUT", "/v1/kv/a", '{"value":"x","prev_revision":"3"}', 400, "wrong_type"),
            ("PUT", "/v1/kv/a", '{"value":"%s"}' % ("v" * 2000), 413, "value_too_large"),
            ("PUT", "/v1/kv/a", '{"value":"%s"}' % ("v" * 10000), 413, "body_too_large"),
            ("GET", "/v1/nothing", None, 404, "not_found"),
            ("GET", "/v1/kv/missing", None, 404, "not_found"),
            ("PATCH", "/v1/kv/a", None, 405, "method_not_allowed"),
            ("DELETE", "/v1/status", None, 405, "method_not_allowed"),
            ("POST", "/v1/members", '{"id":"x","raft":"a:1","http":"b:2"}', 400, "wrong_type"),
            ("POST", "/v1/members", '{"id":2,"raft":"a","http":"b:2"}', 400, "invalid_member"),
            ("POST", "/v1/members", '{"id":2,"raft":"a:1","http":"b:70000"}', 400, "invalid_member"),
            ("POST", "/v1/members", '{"id":2,"raft":"a:1"}', 400, "missing_field"),
            ("POST", "/v1/members/zero/promote", None, 400, "invalid_member"),
            ("POST", "/v1/leader/transfer", '{"to":-1}', 400, "wrong_type"),
        ]
        for method, path, body, want_code, want_error in cases:
            code, _, answer = request(n.http, method, path, body)
            self.assertEqual((code, answer.get("error") if isinstance(answer, dict) else answer),
                             (want_code, want_error), "%s %s" % (method, path))
        # A raw, malformed request gets 400 and the node keeps serving.
        with socket.create_connection(("127.0.0.1", n.http), timeout=5) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))
        with socket.create_connection(("127.0.0.1", n.http), timeout=5) as s:
            s.sendall(b"PUT /v1/kv/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 413"))
        self.assertEqual(self.put(n.http, "a", "still serving")[0], 200)
        self.assertTrue(n.alive())
        self.assertEqual(request(n.http, "GET", "/healthz")[0], 200)
        code, hdrs, text = request(n.http, "GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertIn("keel_term", text)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
