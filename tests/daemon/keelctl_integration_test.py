#!/usr/bin/env python3
"""keelctl against real raftd processes on loopback (free ports, temp dirs).
Every command of docs/keelctl.md runs here against a 3-node cluster; waits
poll with bounded deadlines, nothing sleeps as synchronisation.

    keelctl_integration_test.py path/to/raftd path/to/keelctl [unittest args]
"""
import json
import os
import signal
import subprocess
import sys
import unittest

import raftd_integration_test as rt
import raftd_security_test as sec

KEELCTL = None


class KeelctlTest(rt.RaftdCase):
    def keelctl(self, *args, endpoints=None, output="json", env=None, scheme="http"):
        """Runs keelctl; returns (exit code, stdout, stderr)."""
        nodes = endpoints if endpoints is not None else [n for n in self.nodes.values() if n.alive()]
        cmd = [KEELCTL, "--endpoints",
               ",".join("%s://127.0.0.1:%d" % (scheme, n.http) for n in nodes)]
        if output:
            cmd += ["-o", output]
        proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120,
                              env=env)
        return proc.returncode, proc.stdout, proc.stderr

    def keelctl_json(self, *args, **kw):
        code, out, err = self.keelctl(*args, **kw)
        self.assertEqual(code, 0, "keelctl %s: %s" % (" ".join(args), err))
        return json.loads(out)

    def cluster(self):
        nodes = self.start_cluster(3)
        for n in nodes:
            self.wait_ready(n)
        return nodes

    def test_status_shows_every_endpoint_and_fails_when_one_is_down(self):
        nodes = self.cluster()
        leader = self.leader_of(nodes)
        rows = self.keelctl_json("status")
        self.assertEqual([r["endpoint"] for r in rows],
                         ["http://127.0.0.1:%d" % n.http for n in nodes])
        self.assertEqual({r["status"]["leader_id"] for r in rows}, {leader.id})
        self.assertEqual(sorted(r["status"]["role"] for r in rows),
                         ["follower", "follower", "leader"])
        code, out, _ = self.keelctl("status", output="table")
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertTrue(lines[0].split()[:4] == ["ENDPOINT", "ID", "ROLE", "TERM"], out)
        self.assertEqual(len(lines), 4, out)
        down = [n for n in nodes if n is not leader][0]
        down.kill()
        code, out, _ = self.keelctl("status", endpoints=nodes)
        self.assertEqual(code, 3)  # unreachable
        rows = json.loads(out)
        self.assertEqual(len(rows), 3)
        self.assertIn("unreachable", [r for r in rows if "error" in r][0]["error"])

    def test_keys_through_a_follower_are_redirected_to_the_leader(self):
        nodes = self.cluster()
        leader = self.leader_of(nodes)
        follower = [n for n in nodes if n is not leader][0]
        put = self.keelctl_json("put", "dir/a b", "v1", endpoints=[follower])
        self.assertEqual(put["key"], "dir/a b")
        got = self.keelctl_json("get", "dir/a b", endpoints=[follower])
        self.assertEqual((got["value"], got["revision"]), ("v1", put["revision"]))
        # Compare-and-set: a stale revision is refused with exit code 1.
        code, out, err = self.keelctl("put", "dir/a b", "v2", "--prev-revision", "1",
                                      endpoints=[follower])
        self.assertEqual(code, 1, err)
        self.assertEqual(json.loads(out)["error"], "compare_failed")
        self.keelctl_json("put", "dir/a b", "v2", "--prev-value", "v1")
        self.keelctl_json("put", "dir/c", "x")
        listed = self.keelctl_json("ls", "dir/", "--limit", "1")
        self.assertEqual(([k["key"] for k in listed["keys"]], listed["truncated"]),
                         (["dir/a b"], True))
        code, out, _ = self.keelctl("get", "dir/c", "--stale", output="table", endpoints=[follower])
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines()[1].split()[:2], ["dir/c", "x"])
        self.keelctl_json("del", "dir/c")
        code, _, err = self.keelctl("get", "dir/c")
        self.assertEqual(code, 1, err)
        self.assertIn("not_found", err)

    def test_member_add_catch_up_promote_transfer_and_remove(self):
        nodes = self.cluster()
        for i in range(50):
            self.put_via_any(nodes, "k%d" % i, "v")
        joiner = self.node(4).start("--join", *self.member_flags(nodes))
        rt.wait_until("node 4 up", lambda: rt.try_request(joiner.http, "GET", "/healthz")[0] == 200)
        code, out, err = self.keelctl("member", "add", "4", "127.0.0.1:%d" % joiner.raft,
                                      "127.0.0.1:%d" % joiner.http, "--catch-up",
                                      endpoints=nodes, output="table")
        self.assertEqual(code, 0, err)
        self.assertIn("now a voter", out)
        members = self.keelctl_json("member", "list", endpoints=nodes)["members"]
        self.assertEqual(sorted((m["id"], m["role"]) for m in members),
                         [(1, "voter"), (2, "voter"), (3, "voter"), (4, "voter")])
        got = self.keelctl_json("get", "k49", "--stale", endpoints=[joiner])
        self.assertEqual(got["value"], "v")
        self.keelctl_json("leader", "transfer", "4", endpoints=nodes)
        rt.wait_until("node 4 leading", lambda: (joiner.status() or {}).get("role") == "leader")
        # Transferring to the leader itself asks for what holds: success.
        again = self.keelctl_json("leader", "transfer", "4", endpoints=nodes)
        self.assertEqual(again, {"transferred_to": 4, "already_leader": True})
        self.keelctl_json("member", "remove", "3", endpoints=nodes)
        members = self.keelctl_json("member", "list", endpoints=[joiner])["members"]
        self.assertEqual(sorted(m["id"] for m in members), [1, 2, 4])
        # A learner added without --catch-up, then promoted by hand.
        fifth = self.node(5).start("--join", *self.member_flags([nodes[0], nodes[1], joiner]))
        rt.wait_until("node 5 up", lambda: rt.try_request(fifth.http, "GET", "/healthz")[0] == 200)
        self.keelctl_json("member", "add", "5", "127.0.0.1:%d" % fifth.raft,
                          "127.0.0.1:%d" % fifth.http, "--learner", endpoints=[nodes[0]])
        rt.wait_until("node 5 caught up", lambda: (fifth.status() or {}).get("applied_index", 0) >=
                      (joiner.status() or {}).get("commit_index", 1))
        self.keelctl_json("member", "promote", "5", endpoints=[nodes[0]])
        voters = [m for m in self.keelctl_json("member", "list", endpoints=[joiner])["members"]
                  if m["role"] == "voter"]
        self.assertEqual(sorted(m["id"] for m in voters), [1, 2, 4, 5])

    def test_errors_have_distinct_exit_codes(self):
        n = self.node(1).start()
        self.wait_ready(n)
        code, _, err = self.keelctl("status", endpoints=[n], output=None)
        self.assertEqual(code, 0, err)
        # Usage errors: 2.
        self.assertEqual(self.keelctl("put", "only-a-key", endpoints=[n])[0], 2)
        self.assertEqual(self.keelctl("member", "promote", "0", endpoints=[n])[0], 2)
        proc = subprocess.run([KEELCTL, "--endpoints", "ftp://x", "status"], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        # A refused request: 1 (removing a member that does not exist).
        code, _, err = self.keelctl("member", "remove", "9", endpoints=[n])
        self.assertEqual(code, 1, err)
        # Nothing listens: 3.
        n.kill(signal.SIGTERM)
        code, _, err = self.keelctl("get", "a", endpoints=[n], output="table")
        self.assertEqual(code, 3, err)
        self.assertIn("cannot connect", err)

    def test_https_and_tokens_by_role(self):
        cert, key = sec.make_cert(self.root)
        tokens = {"admin": "admin-" + os.urandom(16).hex(), "read": "read-" + os.urandom(16).hex()}
        path = os.path.join(self.root, "tokens")
        sec.write_tokens(path, tokens)
        nodes = self.start_cluster(3, "--http-cert", cert, "--http-key", key, "--auth-tokens", path)
        env = dict(os.environ, KEEL_TOKEN=tokens["admin"])
        https = dict(scheme="https", endpoints=nodes)

        def ready():
            code, out, _ = self.keelctl("--cacert", cert, "status", env=env, **https)
            rows = json.loads(out) if out else []
            return code == 0 and len({r["status"]["leader_id"] for r in rows}) == 1 and \
                rows[0]["status"]["leader_id"] != 0
        rt.wait_until("an HTTPS cluster with a leader", ready)
        # Through any node: redirects to the leader name https://.
        for node in nodes:
            code, out, err = self.keelctl("--cacert", cert, "put", "k", "v", env=env,
                                          scheme="https", endpoints=[node])
            self.assertEqual(code, 0, err)
        # Without the CA the server's certificate is not trusted: unreachable.
        code, _, err = self.keelctl("status", env=env, **https)
        self.assertEqual(code, 3, err)
        self.assertIn("certificate verify failed", err)
        # No token: 401; a read token writing: 403.  Both exit 4.
        code, _, err = self.keelctl("--cacert", cert, "get", "k", **https)
        self.assertEqual(code, 4, err)
        self.assertIn("unauthorized", err)
        code, _, err = self.keelctl("--cacert", cert, "--token", tokens["read"], "put", "k", "w",
                                    **https)
        self.assertEqual(code, 4, err)
        self.assertIn("forbidden", err)
        got = self.keelctl_json("--cacert", cert, "--token", tokens["read"], "get", "k", **https)
        self.assertEqual(got["value"], "v")
        self.assertNotIn(tokens["admin"], err)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rt.RAFTD = os.path.abspath(sys.argv.pop(1))
    KEELCTL = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
