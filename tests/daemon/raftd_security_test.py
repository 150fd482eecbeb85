#!/usr/bin/env python3
"""raftd's client API under attack, with real processes and real sockets:
browser-shaped requests (CSRF, DNS rebinding), tokens by role, HTTPS with
curl, slow clients, per-client caps, concurrent snapshots, the storage quota,
and the id file written first.  Waits poll against bounded deadlines; no
fixed sleeps as synchronisation and no timing assertions.

    raftd_security_test.py path/to/raftd [unittest args, e.g. -k quota]
"""
import http.client
import json
import os
import resource
import selectors
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raftd_integration_test as it  # noqa: E402  (Node, request helpers)
from raftd_integration_test import request, try_request, wait_until  # noqa: E402

MIB = 1 << 20


def write_tokens(path, tokens):
    """tokens: {role: token}; the file is 0600."""
    with open(path, "w") as f:
        f.write("# raftd tokens\n")
        for role, token in tokens.items():
            f.write("%s %s\n" % (role, token))
    os.chmod(path, 0o600)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def make_cert(directory, name="server", ca=None):
    """A self-signed certificate for localhost/127.0.0.1, or one signed by
    `ca` (a (cert, key) pair).  Returns (cert, key) paths."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + "-key.pem")
    if ca is None:
        cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=" + name,
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        subprocess.run(cmd, check=True, capture_output=True)
    else:
        csr = os.path.join(directory, name + ".csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                        "-subj", "/CN=" + name], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                        "-CAcreateserial", "-days", "2", "-out", cert],
                       check=True, capture_output=True)
    return cert, key


def https_request(port, method, path, cafile, body=None, headers=None, timeout=5.0):
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    try:
        headers = dict(headers or {})
        data = None if body is None else json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            json.loads(raw) if raw else None
    finally:
        conn.close()


def curl(*args):
    """Runs curl; returns (exit code, HTTP status, body)."""
    p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
                       capture_output=True, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return p.returncode, int(code or 0), body


def metric(port, name, token=None):
    code, _, text = request(port, "GET", "/metrics", headers=bearer(token) if token else None)
    assert code == 200, (code, text)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError("no metric %s" % name)


def rss_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return min(want, hard)


class Tricklers:
    """`per_source` connections from each source address, each sending a
    request header a byte at a time and never finishing it."""
    PARTIAL = b"PUT /v1/kv/slow HTTP/1.1\r\nHost: localhost\r\nX-Trickle: "

    def __init__(self, port, sources, per_source):
        self.socks = []
        for source in sources:
            for _ in range(per_source):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((source, 0))
                s.connect(("127.0.0.1", port))
                s.setblocking(False)
                self.socks.append(s)
        self.sent = [0] * len(self.socks)
        self.closed = set()  # indexes the server closed
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for i, s in enumerate(self.socks):
                if i in self.closed:
                    continue
                n = self.sent[i]
                byte = self.PARTIAL[n:n + 1] or b"a"
                try:
                    s.send(byte)
                    self.sent[i] += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.closed.add(i)
            self.stop.wait(0.2)

    def wait_all_closed_by_server(self, deadline_s):
        """Every connection sees end of stream or a reset while still trickling."""
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        end = time.monotonic() + deadline_s
        eof = set()
        while len(eof) < len(self.socks) and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.5):
                try:
                    data = key.fileobj.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except BlockingIOError:
                    continue
                if data == b"":
                    eof.add(key.data)
                    sel.unregister(key.fileobj)
        sel.close()
        return len(eof)

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


class SecurityTest(it.RaftdCase):

    def single(self, *extra, plain=True):
        """Node 1 alone; waits until it serves, unless it serves HTTPS only."""
        n = self.node(1).start(*extra)
        if plain:
            wait_until("node 1 serving", lambda: try_request(n.http, "GET", "/healthz")[0] == 200)
        return n

    def log_of(self, node):
        with open(node.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # -- browser attacks ------------------------------------------------------
    def test_csrf_shaped_requests_change_nothing(self):
        n = self.single("--http-allowed-origin", "https://ops.example")
        self.wait_ready(n)
        evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        member = '{"id":9,"raft":"127.0.0.1:1","http":"127.0.0.1:2","role":"voter"}'
        for method, path, body, headers, want in [
                ("POST", "/v1/members", member, evil, 403),
                ("PUT", "/v1/kv/csrf", '{"value":"owned"}', evil, 403),
                ("POST", "/v1/leader/transfer", '{"to":9}', evil, 403),
                ("POST", "/v1/members", member, {"Content-Type": "text/plain"}, 415),
                ("PUT", "/v1/kv/csrf", "value=owned",
                 {"Content-Type": "application/x-www-form-urlencoded"}, 415),
                ("PUT", "/v1/kv/csrf", '{"value":"owned"}',
                 {"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ]:
            code, _, answer = request(n.http, method, path, body, headers=headers)
            self.assertEqual(code, want, (method, path, headers, answer))
        self.assertEqual([m["id"] for m in n.status()["members"]], [1])
        self.assertEqual(request(n.http, "GET", "/v1/kv/csrf")[0], 404)
        # The allowed origin, with a JSON body, goes through.
        code, _, _ = request(n.http, "PUT", "/v1/kv/csrf", '{"value":"ok"}',
                             headers={"Origin": "https://ops.example"})
        self.assertEqual(code, 200)
        self.assertEqual(metric(n.http, 'raftd_http_requests_refused_total{reason="origin"}'), 4)

    def test_dns_rebinding_host_is_refused_on_loopback(self):
        n = self.single("--http-allowed-host", "raftd.test")
        self.wait_ready(n)
        for host in ["evil.example:%d" % n.http, "evil.example", "127.0.0.1.evil.example"]:
            for method, body in [("GET", None), ("PUT", '{"value":"x"}')]:
                code, _, answer = request(n.http, method, "/v1/kv/rebind", body,
                                          headers={"Host": host})
                self.assertEqual((code, answer["error"]), (403, "forbidden"), host)
        self.assertEqual(request(n.http, "GET", "/v1/kv/rebind")[0], 404)  # nothing written
        for host in ["localhost:%d" % n.http, "127.0.0.1:%d" % n.http, "[::1]:%d" % n.http,
                     "raftd.test:%d" % n.http]:
            code, _, _ = request(n.http, "PUT", "/v1/kv/rebind", '{"value":"x"}',
                                 headers={"Host": host})
            self.assertEqual(code, 200, host)

    # -- tokens ---------------------------------------------------------------
    def test_tokens_401_403_200_by_role_and_sighup(self):
        tokens = {"admin": "admin-" + os.urandom(16).hex(), "write": "write-" + os.urandom(16).hex(),
                  "read": "read-" + os.urandom(16).hex()}
        path = os.path.join(self.root, "tokens")
        write_tokens(path, tokens)
        n = self.single("--auth-tokens", path)
        wait_until("ready", lambda: try_request(n.http, "GET", "/readyz")[0] == 200)
        self.assertEqual(request(n.http, "GET", "/healthz")[0], 200)
        for method, path_, body in [("GET", "/v1/kv/a", None), ("PUT", "/v1/kv/a", {"value": "1"}),
                                    ("GET", "/metrics", None), ("GET", "/v1/status", None),
                                    ("POST", "/v1/snapshot", None)]:
            code, hdrs, answer = request(n.http, method, path_, body)
            self.assertEqual((code, answer["error"]), (401, "unauthorized"), path_)
            self.assertTrue(hdrs["www-authenticate"].startswith("Bearer"))
            code, _, _ = request(n.http, method, path_, body, headers=bearer("wrong-" + "x" * 20))
            self.assertEqual(code, 401)
        matrix = [  # role: GET kv, PUT kv, DELETE kv, GET /metrics, POST /v1/snapshot
            ("read", 404, 403, 403, 200, 403),
            ("write", 404, 200, 200, 200, 403),
            ("admin", 404, 200, 200, 200, 200),
        ]
        for role, get, put, delete, metrics, snap in matrix:
            h = bearer(tokens[role])
            got = (request(n.http, "GET", "/v1/kv/" + role, headers=h)[0],
                   request(n.http, "PUT", "/v1/kv/" + role + "-w", {"value": "v"}, headers=h)[0],
                   request(n.http, "DELETE", "/v1/kv/" + role + "-w", headers=h)[0],
                   request(n.http, "GET", "/metrics", headers=h)[0],
                   request(n.http, "POST", "/v1/snapshot", headers=h)[0])
            self.assertEqual(got, (get, put, delete, metrics, snap), role)
        code, _, answer = request(n.http, "PUT", "/v1/kv/x", {"value": "v"},
                                  headers=bearer(tokens["read"]))
        self.assertEqual(answer["error"], "forbidden")
        # SIGHUP re-reads the file: a new token works, a removed one no longer does.
        new_read = "read2-" + os.urandom(16).hex()
        write_tokens(path, {"admin": tokens["admin"], "read": new_read})
        n.proc.send_signal(signal.SIGHUP)
        wait_until("the new token", lambda: request(
            n.http, "GET", "/v1/status", headers=bearer(new_read))[0] == 200)
        self.assertEqual(request(n.http, "GET", "/v1/status", headers=bearer(tokens["read"]))[0],
                         401)
        # A bad file on SIGHUP keeps the tokens in force, and says why.
        with open(path, "w") as f:
            f.write("superuser " + "s" * 32 + "\n")
        n.proc.send_signal(signal.SIGHUP)
        wait_until("the log line", lambda: "kept the previous tokens" in self.log_of(n))
        self.assertIn("line 1: the role", self.log_of(n))
        self.assertEqual(request(n.http, "GET", "/v1/status", headers=bearer(new_read))[0], 200)
        self.assertTrue(n.alive())
        log = self.log_of(n)
        for token in list(tokens.values()) + [new_read, "s" * 32]:
            self.assertNotIn(token, log)

    def test_non_loopback_address_needs_tokens_or_insecure(self):
        port = it.free_port()
        p = subprocess.run([it.RAFTD, "--data-dir", os.path.join(self.root, "d"),
                            "--http", "0.0.0.0:%d" % port, "--raft", "127.0.0.1:%d" % it.free_port()],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--http-insecure", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d")))
        n = self.node(1)
        n.start("--http-insecure")  # still on 127.0.0.1: the flag is accepted, not needed
        n.kill()
        n.http = port
        args = [it.RAFTD, "--data-dir", n.data_dir, "--http", "0.0.0.0:%d" % port,
                "--raft", "127.0.0.1:%d" % n.raft, "--http-insecure"]
        with open(n.log_path, "ab") as log:
            n.proc = subprocess.Popen(args, stdout=log, stderr=log)
        self.wait_ready(n)
        self.assertIn("--http-insecure: serving", self.log_of(n))
        # Not a loopback listener: any Host is fine.
        self.assertEqual(request(port, "GET", "/v1/kv/x", headers={"Host": "raftd.lan"})[0], 404)

    # -- HTTPS ----------------------------------------------------------------
    def test_https_with_curl_cacert_and_tokens(self):
        cert, key = make_cert(self.root)
        token = os.urandom(32).hex()
        path = os.path.join(self.root, "tokens")
        write_tokens(path, {"admin": token})
        n = self.single("--http-cert", cert, "--http-key", key, "--auth-tokens", path, plain=False)
        url = "https://127.0.0.1:%d" % n.http
        wait_until("ready over TLS", lambda: curl("--cacert", cert, url + "/readyz")[1] == 200)
        rc, code, body = curl("--cacert", cert, "-H", "Authorization: Bearer " + token,
                              "-X", "PUT", "--json", '{"value":"over tls"}', url + "/v1/kv/t")
        self.assertEqual((rc, code), (0, 200), body)
        rc, code, body = curl("--cacert", cert, "-H", "Authorization: Bearer " + token,
                              url + "/v1/kv/t")
        self.assertEqual((code, json.loads(body)["value"]), (200, "over tls"))
        self.assertEqual(curl("--cacert", cert, url + "/v1/kv/t")[1], 401)
        self.assertEqual(curl(url + "/readyz")[0], 60)  # an unknown CA: curl refuses it
        # Plain HTTP on the TLS port gets no answer.
        self.assertIsNone(try_request(n.http, "GET", "/healthz")[0])
        self.assertEqual(https_request(n.http, "GET", "/v1/kv/t", cert, headers=bearer(token))[0],
                         200)

    def test_https_client_certificates_when_a_client_ca_is_given(self):
        server = make_cert(self.root, "server")
        ca = make_cert(self.root, "client-ca")
        client = make_cert(self.root, "client", ca=ca)
        other_ca = make_cert(self.root, "other-ca")
        stranger = make_cert(self.root, "stranger", ca=other_ca)
        n = self.single("--http-cert", server[0], "--http-key", server[1],
                        "--http-client-ca", ca[0], plain=False)
        url = "https://127.0.0.1:%d/healthz" % n.http
        mine = ["--cacert", server[0], "--cert", client[0], "--key", client[1]]
        wait_until("ready with a client certificate", lambda: curl(*mine, url)[1] == 200)
        self.assertNotEqual(curl("--cacert", server[0], url)[0], 0)
        self.assertNotEqual(curl("--cacert", server[0], "--cert", stranger[0], "--key",
                                 stranger[1], url)[0], 0)
        self.assertEqual(curl(*mine, "-X", "PUT", "--json", '{"value":"1"}',
                              url.replace("/healthz", "/v1/kv/m"))[1], 200)
        rc, code, text = curl(*mine, url.replace("/healthz", "/metrics"))
        self.assertIn("raftd_http_tls_handshake_failures_total 2\n", text)

    def test_https_redirects_name_https(self):
        cert, key = make_cert(self.root)
        nodes = [self.node(i) for i in (1, 2, 3)]
        flags = (["--cluster-id", os.urandom(16).hex()] + self.member_flags(nodes) +
                 ["--http-cert", cert, "--http-key", key])
        for n in nodes:
            n.start(*flags)

        def leader_id():
            # Every node answers (the follower asked below serves HTTPS) and
            # they agree on a leader.
            seen = set()
            for n in nodes:
                rc, code, body = curl("--cacert", cert, "https://127.0.0.1:%d/v1/status" % n.http)
                if code != 200:
                    return None
                seen.add(json.loads(body)["leader_id"])
            return seen.pop() if len(seen) == 1 and 0 not in seen else None
        lid = wait_until("a leader", leader_id)
        leader = self.nodes[lid]
        follower = next(n for n in nodes if n is not leader)
        code, hdrs, body = https_request(follower.http, "PUT", "/v1/kv/r", cert, {"value": "1"})
        self.assertEqual(code, 307)
        self.assertEqual(hdrs["location"], "https://127.0.0.1:%d/v1/kv/r" % leader.http)
        rc, code, _ = curl("-L", "--cacert", cert, "-X", "PUT", "--json", '{"value":"1"}',
                           "https://127.0.0.1:%d/v1/kv/r" % follower.http)
        self.assertEqual(code, 200)

    # -- limits ---------------------------------------------------------------
    def test_trickling_headers_hold_no_one_up_and_are_closed_after_the_header_timeout(self):
        raise_fd_limit(4096)
        sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        # Held: a header timeout long enough that none is closed meanwhile,
        # however slow the machine.
        n = self.single("--http-header-timeout-ms", "120000")
        self.wait_ready(n)
        slow = Tricklers(n.http, sources, 250)
        try:
            wait_until("1000 connections held", lambda: metric(
                n.http, "raftd_http_connections") >= 1000)
            for i in range(20):
                self.assertEqual(self.put(n.http, "while-held-%d" % i, "v")[0], 200)
            self.assertGreaterEqual(metric(n.http, "raftd_http_connections"), 1000)
            self.assertEqual(len(slow.closed), 0)
        finally:
            slow.close()
        n.kill()
        # Closing, deterministically: a short header timeout.
        n = self.node(2).start("--http-header-timeout-ms", "1000")
        wait_until("node 2 serving", lambda: try_request(n.http, "GET", "/healthz")[0] == 200)
        slow = Tricklers(n.http, sources, 250)
        try:
            closed = slow.wait_all_closed_by_server(it.DEADLINE_S)
            self.assertEqual(closed, 1000)
        finally:
            slow.close()
        self.assertGreaterEqual(metric(n.http, 'raftd_http_timeouts_total{phase="header"}'), 1000)
        self.assertEqual(self.put(n.http, "after", "v")[0], 200)

    def test_connections_per_client_are_capped(self):
        n = self.single("--http-max-conns-per-client", "4")
        self.wait_ready(n)
        held = []
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", n.http), timeout=5,
                                         source_address=("127.0.0.2", 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))
            held.append(s)
        fifth = socket.create_connection(("127.0.0.1", n.http), timeout=5,
                                         source_address=("127.0.0.2", 0))
        try:
            fifth.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(fifth.recv(100), b"")
        except ConnectionResetError:
            pass
        fifth.close()
        other = socket.create_connection(("127.0.0.1", n.http), timeout=5,
                                         source_address=("127.0.0.3", 0))
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(other.recv(100).startswith(b"HTTP/1.1 200"))
        other.close()
        self.assertEqual(
            metric(n.http, 'raftd_http_connections_refused_total{reason="max_conns_per_client"}'), 1)
        for s in held:
            s.close()

    def test_concurrent_snapshots_keep_memory_under_three_times(self):
        n = self.single("--snapshot-every", "0")
        self.wait_ready(n)
        value = "v" * (MIB - 64)
        for i in range(32):
            self.assertEqual(self.put(n.http, "big%d" % i, value)[0], 200)
        pid = n.proc.pid
        before = rss_kib(pid, "VmRSS")
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # resets VmHWM, the peak resident size, to now
        # 100 requests open at once, each sent after a write of its own: keel
        # skips a snapshot when nothing was applied since the last one, so
        # without the writes every request but the first would be cheap
        # whatever raftd did.
        count = 100
        turn = [threading.Event() for _ in range(count + 1)]
        answers = []
        lock = threading.Lock()

        def snapshot(i):
            conn = http.client.HTTPConnection("127.0.0.1", n.http, timeout=120)
            try:
                turn[i].wait()
                self.put(n.http, "s%d" % i, "x")
                conn.request("POST", "/v1/snapshot")
                turn[i + 1].set()
                resp = conn.getresponse()
                resp.read()
                with lock:
                    answers.append(resp.status)
            except (OSError, http.client.HTTPException):
                turn[i + 1].set()
            finally:
                conn.close()
        threads = [threading.Thread(target=snapshot, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        turn[0].set()
        for t in threads:
            t.join()
        peak = rss_kib(pid, "VmHWM")
        self.assertEqual(len(answers), count)
        self.assertTrue(all(code in (200, 429) for code in answers), answers)
        self.assertGreater(answers.count(200), 0)
        self.assertLess(peak, 3 * before, "peak RSS %d KiB, %d KiB before" % (peak, before))

    def test_quota_answers_507_raises_the_alarm_and_clears_by_itself(self):
        n = self.single("--quota-bytes", "80MiB", "--snapshot-every", "0")
        self.wait_ready(n)
        value = "q" * (MIB - 64)

        def fill(key_of):
            for i in range(200):
                code, _, body = self.put(n.http, key_of(i), value)
                if code == 507:
                    self.assertEqual(body["error"], "no_space")
                    return i
                self.assertEqual(code, 200, body)
            self.fail("the quota never refused a write")

        def alarms():
            return n.status()["alarms"]
        # Deletes bring the state back under, and compaction the WAL (each
        # is capped on its own, and both passed the quota together).
        written = fill(lambda i: "k%d" % i)
        self.assertGreater(written, 10)
        self.assertEqual(alarms(), ["no_space"])
        self.assertEqual(metric(n.http, 'keel_alarm{alarm="no_space"}'), 1)
        self.assertEqual(self.put(n.http, "small", "x")[0], 507)
        self.assertEqual(request(n.http, "GET", "/v1/kv/k0")[0], 200)
        # keel compacts its log only behind the older of its last two
        # snapshots (it keeps one to fall back to): two snapshots, each after
        # something new was applied, drop the old segments.
        def compact(applied_between):
            self.assertEqual(request(n.http, "POST", "/v1/snapshot")[0], 200)
            applied_between()
            wal_before = n.status()["wal"]["bytes"]
            self.assertEqual(request(n.http, "POST", "/v1/snapshot")[0], 200)
            wait_until("the WAL compacted", lambda: n.status()["wal"]["bytes"] < wal_before)

        for i in range(written - 1):
            self.assertEqual(request(n.http, "DELETE", "/v1/kv/k%d" % i)[0], 200)
        self.assertEqual(alarms(), ["no_space"])  # the WAL still holds every write
        last = "/v1/kv/k%d" % (written - 1)
        compact(lambda: self.assertEqual(request(n.http, "DELETE", last)[0], 200))
        self.assertLess(n.status()["state_bytes"], 1024)
        self.assertEqual(alarms(), [])
        self.assertEqual(self.put(n.http, "small", "x")[0], 200)
        # Compaction brings the WAL back under: one key rewritten until the
        # WAL alone passes the quota, then snapshots drop its old segments.
        fill(lambda i: "same")
        self.assertEqual(alarms(), ["no_space"])
        compact(lambda: self.assertEqual(request(n.http, "DELETE", "/v1/kv/small")[0], 200))
        self.assertEqual(alarms(), [])
        self.assertEqual(metric(n.http, 'keel_alarm{alarm="no_space"}'), 0)
        self.assertEqual(self.put(n.http, "small", "y")[0], 200)

    # -- the id file ----------------------------------------------------------
    def test_raftd_id_is_written_before_keel_creates_anything(self):
        n = self.node(5)
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.bind(("127.0.0.1", n.raft))
        blocker.listen()
        try:
            n.start()  # keel makes its directories, then cannot listen, and raftd exits
            self.assertEqual(n.proc.wait(timeout=it.DEADLINE_S), 1)
        finally:
            blocker.close()
        n.proc = None
        self.assertTrue(os.path.isdir(os.path.join(n.data_dir, "wal")))
        id_path = os.path.join(n.data_dir, "raftd.id")
        with open(id_path) as f:
            self.assertEqual(f.read(), "5\n")
        self.assertEqual(stat.S_IMODE(os.stat(id_path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(n.data_dir).st_mode), 0o700)
        # A restart without --id is node 5, not node 1.
        n.start(minimal=True)
        self.wait_ready(n)
        self.assertEqual(n.status()["id"], 5)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
