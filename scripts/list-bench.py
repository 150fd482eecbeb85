#!/usr/bin/env python3
"""Latency of a linearizable list across groups (GET /v1/kv?prefix=x&limit=10
on member 1, which asks each other leader for its groups' part): one 3-member
cluster with --groups 9 per variant, all up at once on loopback, leaders
spread 3 each; rounds alternate between the variants (A B A B ...), each
round N lists in a row over one kept-alive client connection.  A variant is
NAME=RAFTD[,http]: HTTPS with tokens and client certificates both ways
(docs/operations.md, "Members over HTTPS"), or plain HTTP with tokens.
Prints one JSON line per round and, per variant, the median of its rounds'
medians and the ratio to the first variant's.

    scripts/list-bench.py base=OLD/daemon/raftd new=BUILD/daemon/raftd [--rounds 5] [--lists 300]
"""
import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))  # scripts/, also through a symlink
sys.path.insert(0, os.path.join(HERE, "..", "tests", "daemon"))
import raftd_integration_test as it  # noqa: E402

GROUPS = 9


class Cluster:
    def __init__(self, root, name, raftd, tls, certs, tokens):
        self.name, self.tls, self.certs = name, tls, certs
        self.read, self.write = tokens
        it.RAFTD = raftd
        where = os.path.join(root, name)
        os.makedirs(where)
        self.nodes = [it.Node(where, i) for i in (1, 2, 3)]
        members = ["--cluster-id", os.urandom(16).hex()]
        for n in self.nodes:
            members += ["--member", n.spec]
        for n in self.nodes:
            n.start(*members, "--groups", str(GROUPS), "--auth-tokens",
                    os.path.join(root, "tokens"), "--log-level", "warn", *self.flags(n.id))

    def flags(self, n):
        if not self.tls:
            return []
        mine = [os.path.join(self.certs, "http%d.%s" % (n, ext)) for ext in ("crt", "key")]
        ca = os.path.join(self.certs, "http-ca.crt")
        return ["--http-cert", mine[0], "--http-key", mine[1], "--http-client-ca", ca,
                "--http-ca", ca, "--http-client-cert", mine[0], "--http-client-key", mine[1]]

    def connect(self, port):
        if not self.tls:
            return http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        context = ssl.create_default_context(cafile=os.path.join(self.certs, "http-ca.crt"))
        context.load_cert_chain(os.path.join(self.certs, "http1.crt"),
                                os.path.join(self.certs, "http1.key"))
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)

    def get(self, conn, path, token):
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        return resp.status, resp.read()

    def spread(self):
        """Every member agrees on a leader for every group, 3 each."""
        views = []
        for n in self.nodes:
            conn = self.connect(n.http)
            try:
                code, raw = self.get(conn, "/v1/groups", self.read)
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()
            if code != 200:
                return False
            views.append({g["group"]: g["leader_id"] for g in json.loads(raw)["groups"]})
        if any(v != views[0] for v in views) or 0 in views[0].values():
            return False
        return all(list(views[0].values()).count(n.id) == GROUPS // 3 for n in self.nodes)

    def lists_us(self, count):
        """Times of `count` lists answered 200, and how many were not (a 503
        while a group's leader moves on a loaded machine: the round waits
        for the leaders to spread again, then goes on)."""
        conn = self.connect(self.nodes[0].http)
        out, refused = [], 0
        while len(out) < count:
            start = time.perf_counter()
            code, _ = self.get(conn, "/v1/kv?prefix=x&limit=10", self.read)
            if code != 200:
                refused += 1
                it.wait_until("%s: leaders spread again" % self.name, self.spread, deadline_s=120)
                continue
            out.append((time.perf_counter() - start) * 1e6)
        conn.close()
        return out, refused

    def stop(self):
        for n in self.nodes:
            n.kill()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+", help="NAME=RAFTD[,http]")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each variant")
    ap.add_argument("--lists", type=int, default=300, help="lists per round")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="raftd-list-", dir=os.environ.get("BENCH_DIR"))
    clusters = []
    try:
        certs = os.path.join(root, "certs")
        os.makedirs(certs)
        subprocess.run(["bash", "-euo", "pipefail", "-c",
                        it.doc_block("operations.md", "### Members over HTTPS")],
                       cwd=certs, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tokens = (os.urandom(16).hex(), os.urandom(16).hex())
        with open(os.path.join(root, "tokens"), "w") as f:
            f.write("read %s\nwrite %s\n" % tokens)
        os.chmod(os.path.join(root, "tokens"), 0o600)
        for v in args.variants:
            name, _, rest = v.partition("=")
            raftd, _, scheme = rest.partition(",")
            clusters.append(Cluster(root, name, os.path.abspath(raftd), scheme != "http", certs,
                                    tokens))
        for c in clusters:
            it.wait_until("%s: leaders spread" % c.name, c.spread, deadline_s=120)
        medians = {c.name: [] for c in clusters}
        for r in range(args.rounds):
            for c in clusters:
                us, refused = c.lists_us(args.lists)
                medians[c.name].append(statistics.median(us))
                print(json.dumps({"round": r, "variant": c.name, "median_us": round(
                    statistics.median(us)), "p90_us": round(pct(us, 0.9)), "not_200": refused,
                    "load": round(os.getloadavg()[0], 2)}), flush=True)
        first = statistics.median(medians[clusters[0].name])
        for c in clusters:
            m = statistics.median(medians[c.name])
            print(json.dumps({"variant": c.name, "median_of_medians_us": round(m),
                              "ratio_to_%s" % clusters[0].name: round(m / first, 3)}))
    finally:
        for c in clusters:
            c.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
