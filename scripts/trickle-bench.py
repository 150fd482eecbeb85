#!/usr/bin/env python3
"""A normal client's PUT latency while 1,000 connections trickle request
headers (250 each from 127.0.0.2-127.0.0.5, a byte every 200 ms, never
finishing): one raftd, one client on 127.0.0.1 doing sequential PUTs over one
keep-alive connection, alternating rounds without and with the tricklers
(A B A B ...).  Prints one JSON line per round and a summary with the ratio of
the medians.

    scripts/trickle-bench.py BUILD/daemon/raftd [--rounds N] [--seconds S]
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "daemon"))
import raftd_integration_test as it  # noqa: E402
import raftd_security_test as st  # noqa: E402  (Tricklers, raise_fd_limit)

SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def put_latencies_us(port, seconds):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        conn.request("PUT", "/v1/kv/t%d" % (i % 1000), body='{"value":"x"}',
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - start) * 1e6)
        assert resp.status == 200, resp.status
        i += 1
    conn.close()
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftd")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    it.RAFTD = os.path.abspath(args.raftd)
    st.raise_fd_limit(4096)
    root = tempfile.mkdtemp(prefix="raftd-trickle-", dir=os.environ.get("BENCH_DIR"))
    node = it.Node(root, 1).start("--log-level", "warn")
    try:
        it.wait_until("ready", lambda: it.try_request(node.http, "GET", "/readyz")[0] == 200)
        p50s = {False: [], True: []}
        for r in range(2 * args.rounds):
            held = r % 2 == 1
            slow = st.Tricklers(node.http, SOURCES, 250) if held else None
            try:
                if held:
                    it.wait_until("1000 held", lambda: st.metric(
                        node.http, "raftd_http_connections") >= 1000)
                lat = put_latencies_us(node.http, args.seconds)
                if held:
                    assert len(slow.closed) == 0, "a trickler was closed during the round"
            finally:
                if slow:
                    slow.close()
            p50s[held].append(statistics.median(lat))
            print(json.dumps({"bench": "trickle", "tricklers": 1000 if held else 0, "puts": len(lat),
                              "p50_us": round(statistics.median(lat), 1),
                              "p99_us": round(pct(lat, 0.99), 1)}), flush=True)
        a, b = statistics.median(p50s[False]), statistics.median(p50s[True])
        print(json.dumps({"bench": "trickle_summary", "p50_us_without": round(a, 1),
                          "p50_us_with_1000_tricklers": round(b, 1), "ratio": round(b / a, 3)}))
    finally:
        node.kill()


if __name__ == "__main__":
    main()
