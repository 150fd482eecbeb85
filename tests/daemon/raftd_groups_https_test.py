#!/usr/bin/env python3
"""raftd --groups N members over HTTPS (docs/operations.md, "Members over
HTTPS"), with real processes: a joiner's group-count probe and a list across
groups, verified against --http-ca, with client certificates and the
client's token passed on, and TLS sessions resumed between members
(decision 0046).  Waits poll against bounded deadlines.

    raftd_groups_https_test.py path/to/raftd [unittest args]
"""
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raftd_integration_test as it  # noqa: E402
from raftd_integration_test import request, wait_until  # noqa: E402
from raftd_groups_test import group_of_key  # noqa: E402


def https_request(port, method, path, certs, client=None, body=None, token=None, timeout=5.0):
    """(status, headers, parsed JSON) over HTTPS, the server checked against
    certs' http-ca.crt, presenting member `client`'s certificate; never
    follows redirects.  (None, {}, None) when the connection fails."""
    context = ssl.create_default_context(cafile=os.path.join(certs, "http-ca.crt"))
    if client is not None:
        context.load_cert_chain(os.path.join(certs, "http%d.crt" % client),
                                os.path.join(certs, "http%d.key" % client))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    headers = {"Authorization": "Bearer " + token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            json.loads(raw) if raw else None
    except (OSError, http.client.HTTPException, ValueError):
        return None, {}, None
    finally:
        conn.close()


def member_tls(port, certs, token):
    """{"handshakes", "resumed"}: a member's TLS handshakes with the other
    members, from its /metrics over HTTPS."""
    context = ssl.create_default_context(cafile=os.path.join(certs, "http-ca.crt"))
    context.load_cert_chain(os.path.join(certs, "http1.crt"), os.path.join(certs, "http1.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5.0, context=context)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {}
    for name in ("handshakes", "resumed"):
        match = re.search(r"^raftd_member_tls_%s_total (\d+)" % name, text, re.M)
        out[name] = int(match.group(1))
    return out


class RaftdGroupsHttpsTest(it.RaftdCase):
    """Members serving HTTPS with the certificates of docs/operations.md,
    "Members over HTTPS", requiring client certificates from the same CA."""
    GROUPS = 9

    def http_certificates(self, name):
        """Runs the documented openssl commands as written, in a new directory."""
        where = os.path.join(self.root, name)
        os.makedirs(where)
        subprocess.run(["bash", "-euo", "pipefail", "-c",
                        it.doc_block("operations.md", "### Members over HTTPS")],
                       cwd=where, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return where

    @staticmethod
    def https_flags(certs, n, members_ca=None):
        """Member n's: its certificate as server and client; the members'
        CA, or `members_ca`, to check the others with."""
        mine = [os.path.join(certs, "http%d.%s" % (n, ext)) for ext in ("crt", "key")]
        ca = os.path.join(certs, "http-ca.crt")
        return ["--http-cert", mine[0], "--http-key", mine[1], "--http-client-ca", ca,
                "--http-ca", members_ca or ca, "--http-client-cert", mine[0],
                "--http-client-key", mine[1]]

    def wait_https(self, node, certs, path="/readyz", token=None):
        wait_until("node %d answering %s over HTTPS" % (node.id, path), lambda: https_request(
            node.http, "GET", path, certs, client=1, token=token)[0] == 200)

    def test_a_joiner_over_https_with_another_group_count_stops_before_writing(self):
        certs = self.http_certificates("certs")
        cluster_id = os.urandom(16).hex()
        first = self.node(1).start("--groups", str(self.GROUPS), "--cluster-id", cluster_id,
                                   *self.https_flags(certs, 1))
        self.wait_https(first, certs)
        j = self.node(2).start("--join", "--member", first.spec, "--cluster-id", cluster_id,
                               "--groups", "2", *self.https_flags(certs, 2))
        self.assertEqual(j.proc.wait(timeout=it.DEADLINE_S), 1)
        self.assertIn("--join with --groups 2: the cluster runs --groups %d" % self.GROUPS,
                      j.log_text())
        self.assertEqual(os.listdir(j.data_dir) if os.path.exists(j.data_dir) else [], [])
        # Checked, not trusted: with another CA as --http-ca the member's
        # certificate is refused, nothing is asked over plain HTTP instead,
        # and the joiner starts as one that could ask no member.
        other = self.http_certificates("other")
        blind = self.node(3).start(
            "--join", "--member", first.spec, "--cluster-id", cluster_id, "--groups", "2",
            *self.https_flags(certs, 3, members_ca=os.path.join(other, "http-ca.crt")))
        wait_until("node 3 gives up asking", lambda: "no member answered" in blind.log_text())
        log = blind.log_text()
        self.assertIn("cannot ask member 1 for the cluster's group count", log)
        self.assertIn("certificate verify failed", log)
        self.assertNotIn("http://127.0.0.1:%d" % first.http, log)
        self.assertTrue(blind.alive())
        blind.kill()
        # The right CA, but a certificate for another name than the member's
        # address (127.0.0.1): refused too.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-noenc", "-days", "1", "-subj", "/CN=misnamed",
                        "-addext", "subjectAltName=DNS:elsewhere.example",
                        "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                        "-CA", os.path.join(certs, "http-ca.crt"),
                        "-CAkey", os.path.join(certs, "http-ca.key"),
                        "-keyout", os.path.join(certs, "misnamed.key"),
                        "-out", os.path.join(certs, "misnamed.crt")],
                       check=True, capture_output=True)
        first.kill(signal.SIGTERM)
        flags = self.https_flags(certs, 1)
        flags[1], flags[3] = os.path.join(certs, "misnamed.crt"), os.path.join(certs, "misnamed.key")
        first.start(*flags)
        wait_until("node 1 serving HTTPS again",
                   lambda: first.log_text().count("serving HTTPS") == 2)
        misnamed = self.node(4).start("--join", "--member", first.spec, "--cluster-id", cluster_id,
                                      "--groups", "2", *self.https_flags(certs, 3))
        wait_until("node 4 gives up asking", lambda: "no member answered" in misnamed.log_text())
        self.assertIn("certificate verify failed", misnamed.log_text())
        self.assertTrue(misnamed.alive())

    def led_by(self, nodes, certs, token):
        """{member id: groups it leads} once every member agrees on a leader
        for every group, each leading its share; None before."""
        views = []
        for n in nodes:
            code, _, body = https_request(n.http, "GET", "/v1/groups", certs, client=1,
                                          token=token)
            if code != 200:
                return None
            views.append({g["group"]: g["leader_id"] for g in body["groups"]})
        if any(v != views[0] for v in views) or 0 in views[0].values():
            return None
        led = {n.id: 0 for n in nodes}
        for leader in views[0].values():
            led[leader] = led.get(leader, 0) + 1
        share = self.GROUPS // len(nodes)
        return led if all(c == share for c in led.values()) else None

    def put_following(self, port, certs, token, key):
        for _ in range(5):
            code, hdrs, body = https_request(port, "PUT", "/v1/kv/" + key, certs, client=1,
                                             body={"value": "v"}, token=token)
            if code != 307:
                return code
            port = int(hdrs["location"].split(":")[2].split("/")[0])
        return code

    def test_a_linearizable_list_over_https_asks_the_other_leaders_with_the_clients_token(self):
        certs = self.http_certificates("certs")
        other = self.http_certificates("other")
        tokens = os.path.join(self.root, "tokens")
        read, write = os.urandom(16).hex(), os.urandom(16).hex()
        with open(tokens, "w") as f:
            f.write("read %s\nwrite %s\n" % (read, write))
        os.chmod(tokens, 0o600)
        # Member 1 checks the others against another CA: it can ask no one.
        nodes = self.start_cluster(3, "--groups", str(self.GROUPS), "--auth-tokens", tokens,
                                   per_node=lambda n: self.https_flags(
                                       certs, n.id,
                                       os.path.join(other, "http-ca.crt") if n.id == 1 else None))
        wait_until("leaders spread", lambda: self.led_by(nodes, certs, read))
        acknowledged, i = set(), 0
        while len({group_of_key(k, self.GROUPS) for k in acknowledged}) < self.GROUPS:
            key = "h%d" % i
            wait_until("%s written" % key,
                       lambda: self.put_following(nodes[1].http, certs, write, key) == 200)
            acknowledged.add(key)
            i += 1
        for n in nodes[1:]:
            def listed(n=n):
                code, _, body = https_request(n.http, "GET", "/v1/kv?prefix=h&limit=1000", certs,
                                              client=1, token=read)
                return body if code == 200 else None  # 503 while a leader moves: retry
            body = wait_until("a list on member %d" % n.id, listed)
            got = [k["key"] for k in body["keys"]]
            self.assertEqual(got, sorted(acknowledged))
            # Asked again, the other leaders resume their TLS sessions.
            before = member_tls(n.http, certs, read)
            wait_until("another list on member %d" % n.id, listed)
            after = member_tls(n.http, certs, read)
            self.assertGreaterEqual(after["handshakes"] - before["handshakes"], 2, (before, after))
            self.assertEqual(after["resumed"] - before["resumed"],
                             after["handshakes"] - before["handshakes"], (before, after))
        # Member 1 leads its share only, and cannot verify the others: 503
        # naming the failure, never an answer got around the check.
        def refused():
            code, _, body = https_request(nodes[0].http, "GET", "/v1/kv?prefix=h", certs,
                                          client=1, token=read)
            return body if code == 503 and "certificate verify failed" in str(body) else None
        body = wait_until("member 1's list refused", refused)
        self.assertEqual(body["error"], "unavailable", body)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
