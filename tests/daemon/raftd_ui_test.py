#!/usr/bin/env python3
"""raftd's status page (GET /ui) in headless Chromium against real 3-node
clusters on loopback, and the cross-origin rules it relies on:

- the page served by a follower shows the three members (read from each,
  cross-origin), exactly one marked leader, and live charts, with no
  Content-Security-Policy violation; a screenshot is kept;
- over HTTPS (Chromium verifies the certificate against a test CA in an NSS
  database of its own) with --auth-tokens: a prompt without a token or with
  a wrong one, the members with a read token (kept in sessionStorage only);
- without a browser: the page's security headers (the CSP's hashes are
  those of the page's inline script and style), and CORS for the current
  members' origins only: any other Origin gets 403 and no Access-Control-*
  header, a preflight included; a removed member's origin loses it.

Waits poll the DOM or HTTP against bounded deadlines; no fixed sleeps as
synchronisation.  chromium and certutil come from scripts/install-deps.sh;
without them the test fails (it never skips).  Screenshots go to
$KEEL_UI_ARTEFACTS (meson sets the build dir) and their paths are printed;
docs/images/status-page.png (linked from README.md) is this test's
status-page.png: after changing the page, run `meson test -C build daemon_ui`,
look at build/tests/daemon/status-page.png and copy it there.

    raftd_ui_test.py path/to/raftd [unittest args]
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raftd_integration_test as it  # noqa: E402
from headless_chromium import Chromium  # noqa: E402
from raftd_integration_test import request, wait_until  # noqa: E402

ARTEFACTS = os.environ.get("KEEL_UI_ARTEFACTS") or os.getcwd()
PAGE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon", "ui",
                           "status.html")
POLL_QUERY = "?interval_ms=250"  # a faster poll than the page's 1 s, for a quick test
WRITES_MAX = 20000               # bound on the background traffic, per writer

# What the page shows, read from its DOM.
PAGE_STATE = """(() => {
  const rows = [...document.querySelectorAll('#members tbody tr')];
  const prompt = document.getElementById('prompt');
  const charts = {};
  for (const f of document.querySelectorAll('#charts figure')) {
    charts[f.id] = {samples: Number(f.dataset.samples), lines: f.querySelectorAll('polyline').length,
                    text: f.querySelector('p').textContent};
  }
  return {ids: rows.map((r) => Number(r.dataset.id)),
          leaders: rows.filter((r) => r.classList.contains('leader')).map((r) => Number(r.dataset.id)),
          answers: rows.map((r) => r.lastElementChild.textContent),
          roles: rows.map((r) => r.querySelector('.role').textContent),
          prompt: prompt.hidden ? '' : prompt.textContent,
          notice: document.getElementById('notice').hidden ? ''
              : document.getElementById('notice').textContent,
          charts, csp: window.__cspViolations || ['(not recorded)']};
})()"""


def shows_cluster(ids):
    """The page lists exactly `ids`, each answering, and marks one leader."""
    return lambda s: (isinstance(s, dict) and sorted(s["ids"]) == sorted(ids) and
                      len(s["leaders"]) == 1 and all(a == "ok" for a in s["answers"]))


def artefact(name):
    path = os.path.join(ARTEFACTS, name)
    print("\nscreenshot: %s" % path, flush=True)
    return path


def make_ca_and_cert(directory):
    """A CA, and a certificate it signs for 127.0.0.1 and localhost (every
    member uses it).  Returns (ca.crt, server.crt, server.key)."""
    ca_crt, ca_key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    crt, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-noenc", "-days", "2", "-subj", "/CN=keel ui test CA", "-keyout", ca_key, "-out", ca_crt)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-noenc", "-days", "2", "-subj", "/CN=raftd",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
        "-CA", ca_crt, "-CAkey", ca_key, "-keyout", key, "-out", crt)
    return ca_crt, crt, key


def https_status(port, cafile, token):
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
    try:
        conn.request("GET", "/v1/status", headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


class Writers:
    """Background PUTs, so the charts have something to show: to `port`,
    then to wherever a redirect points (the leader may change on a loaded
    machine); bounded in count and stopped by close()."""
    def __init__(self, port, count=4):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(port, w), daemon=True)
                        for w in range(count)]
        for t in self.threads:
            t.start()

    def _run(self, port, w):
        for i in range(WRITES_MAX):
            if self.stop.is_set():
                return
            code, hdrs, _ = it.try_request(port, "PUT", "/v1/kv/ui/%d/%d" % (w, i),
                                           {"value": "v%d" % i})
            if code == 307:
                port = urllib.parse.urlsplit(hdrs["location"]).port
            elif code != 200:
                self.stop.wait(0.05)  # no leader yet: do not spin through an election

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()


class UiTest(it.RaftdCase):
    # One Chromium for the class (its start is a good part of a test's
    # time), trusting a test CA from the start; each test has its own tab,
    # so its own sessionStorage.
    @classmethod
    def setUpClass(cls):
        cls.shared = tempfile.mkdtemp(prefix="raftd-ui-")
        cls.ca, cls.cert, cls.key = make_ca_and_cert(cls.shared)
        cls._browser = None

    @classmethod
    def tearDownClass(cls):
        if cls._browser:
            cls._browser.close()
        shutil.rmtree(cls.shared, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.page = None
        self.writers = None

    def tearDown(self):
        if self.writers:
            self.writers.close()
        if self.page:
            self.page.close()
        super().tearDown()

    def open_page(self, url):
        if UiTest._browser is None:
            UiTest._browser = Chromium(self.shared, trusted_ca=self.ca)
        self.page = UiTest._browser.open(url)
        return self.page

    def change_members(self, nodes, method, path, body, done):
        """Sends a membership change through whoever leads now (a loaded
        machine may change leaders) until `done(member ids)` holds on the
        leader: once only, since a 503 may hide a change that went through."""
        def attempt():
            now = self.leader_of(nodes)
            code, _, listed = it.try_request(now.http, "GET", "/v1/members")
            if code == 200 and done([m["id"] for m in listed["members"]]):
                return True
            it.try_request(now.http, method, path, body)
            return False
        wait_until("%s %s through the leader" % (method, path), attempt)

    def page_leader_is_the_cluster_leader(self, page, nodes):
        def agree():
            state = page.eval(PAGE_STATE)
            return state["leaders"] == [self.leader_of(nodes).id]
        wait_until("the page's leader to be the cluster's", agree)

    def test_page_shows_three_members_one_leader_and_live_charts(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        self.writers = Writers(leader.http)
        follower = next(n for n in nodes if n is not leader)
        page = self.open_page("http://127.0.0.1:%d/ui%s" % (follower.http, POLL_QUERY))
        state = page.wait_until("three members answering, one leader", PAGE_STATE,
                                shows_cluster([1, 2, 3]))
        self.page_leader_is_the_cluster_leader(page, nodes)
        # Live charts: several polls, commits on every member, and a commit
        # latency measured (on whichever node leads: it proposes).
        state = page.wait_until(
            "charts with samples and commits", PAGE_STATE,
            lambda s: all(c["samples"] >= 16 and c["lines"] >= 1 for c in s["charts"].values()) and
            all(re.search(r"node %d [1-9][0-9.]*/s" % n.id, s["charts"]["chart-commits"]["text"])
                for n in nodes) and
            re.search(r"latest: node \d+ [0-9.]+ (µs|ms)", s["charts"]["chart-commit"]["text"]))
        self.assertEqual(sorted(state["charts"]),
                         ["chart-commit", "chart-commits", "chart-fsync", "chart-records"])
        self.assertEqual(state["prompt"], "")
        self.assertEqual(state["csp"], [])
        self.assertIn("node %d (this page)" % follower.id,
                      page.eval("document.querySelector('#members tbody').textContent"))
        page.screenshot(artefact("status-page.png"), down_to="main")

        # A learner added while the page is open: listed at once, but the
        # page's policy predates it, so the page asks to be reloaded; once
        # reloaded it reaches the new member too.
        fourth = self.node(4).start("--join", *self.member_flags(nodes))
        self.change_members(nodes, "POST", "/v1/members", {
            "id": 4, "raft": "127.0.0.1:%d" % fourth.raft, "http": "127.0.0.1:%d" % fourth.http,
            "role": "learner"}, lambda ids: 4 in ids)
        state = page.wait_until("the page asking to be reloaded", PAGE_STATE,
                                lambda s: "reload it" in s["notice"] and len(s["ids"]) == 4)
        self.assertIn("127.0.0.1:%d" % fourth.http, state["notice"])
        page.call("Page.reload")
        state = page.wait_until("four members answering after a reload", PAGE_STATE,
                                shows_cluster([1, 2, 3, 4]))
        self.assertEqual((state["notice"], state["csp"]), ("", []))
        self.assertIn("learner", state["roles"][state["ids"].index(4)])

    def test_token_prompt_then_members_over_https(self):
        ca, cert, key = self.ca, self.cert, self.key
        read_token, write_token = os.urandom(16).hex(), os.urandom(16).hex()
        tokens = os.path.join(self.root, "tokens")
        with open(tokens, "w") as f:
            f.write("read %s\nwrite %s\n" % (read_token, write_token))
        os.chmod(tokens, 0o600)
        nodes = self.start_cluster(3, "--http-cert", cert, "--http-key", key,
                                   "--auth-tokens", tokens)

        def one_leader():
            statuses = [https_status(n.http, ca, read_token) for n in nodes]
            leaders = {s["leader_id"] for s in statuses if s}
            return None not in statuses and len(leaders) == 1 and 0 not in leaders
        wait_until("an agreed leader over HTTPS", one_leader)
        page = self.open_page("https://127.0.0.1:%d/ui%s" % (nodes[0].http, POLL_QUERY))
        state = page.wait_until("the token prompt", PAGE_STATE, lambda s: s["prompt"])
        self.assertIn("asks for a token (401)", state["prompt"])
        self.assertEqual(state["ids"], [])
        self.assertEqual(page.eval("location.protocol"), "https:")

        def give(token):
            page.eval("(() => { const i = document.getElementById('token'); i.value = %s;"
                      " document.getElementById('token-form').requestSubmit(); })()"
                      % json.dumps(token))
        give("not-a-token-of-this-cluster")
        page.wait_until("the refusal", PAGE_STATE, lambda s: "token was refused" in s["prompt"])
        give(read_token)
        state = page.wait_until("three members answering with the token", PAGE_STATE,
                                shows_cluster([1, 2, 3]))
        self.assertEqual(state["prompt"], "")
        self.assertEqual(state["csp"], [])
        # The token is in this tab's sessionStorage only: not in localStorage,
        # the URL or the field.
        self.assertEqual(page.eval("sessionStorage.getItem('raftd.token')"), read_token)
        self.assertEqual(page.eval("localStorage.length"), 0)
        self.assertNotIn(read_token, page.eval("location.href"))
        self.assertEqual(page.eval("document.getElementById('token').value"), "")
        page.screenshot(artefact("status-page-https.png"), down_to="main")
        # Forgetting it brings the prompt back and clears the data.
        page.eval("document.getElementById('forget').click()")
        state = page.wait_until("the prompt again", PAGE_STATE,
                                lambda s: "asks for a token" in s["prompt"] and not s["ids"])
        self.assertIsNone(page.eval("sessionStorage.getItem('raftd.token')"))

    def test_headers_and_cors_for_current_members_only(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        a = leader
        b, c = [n for n in nodes if n is not leader]
        origin = lambda n, scheme="http": "%s://127.0.0.1:%d" % (scheme, n.http)  # noqa: E731

        # The page: a CSP naming its own inline script's and style's hashes.
        code, hdrs, html = request(a.http, "GET", "/ui")
        self.assertEqual(code, 200)
        with open(PAGE_SOURCE, encoding="utf-8") as f:
            self.assertEqual(html, f.read())  # the file, embedded byte for byte
        self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
        policy = dict(d.strip().split(" ", 1) for d in hdrs["content-security-policy"].split(";"))
        for tag, directive in (("script", "script-src"), ("style", "style-src")):
            inline = re.findall(r"<%s>(.*?)</%s>" % (tag, tag), html, re.S)
            self.assertEqual(len(inline), 1, tag)
            digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
            self.assertEqual(policy[directive], "'sha256-%s'" % digest)
        self.assertEqual(policy["connect-src"].split(), ["'self'"] + [origin(n) for n in nodes])
        self.assertEqual((policy["default-src"], policy["frame-ancestors"], policy["form-action"]),
                         ("'none'", "'none'", "'none'"))
        self.assertEqual((hdrs["x-content-type-options"], hdrs["x-frame-options"],
                          hdrs["referrer-policy"]), ("nosniff", "DENY", "no-referrer"))

        # A member's origin reads, and is told so; the answer varies by Origin.
        code, hdrs, _ = request(a.http, "GET", "/v1/status", headers={"Origin": origin(b)})
        self.assertEqual((code, hdrs.get("access-control-allow-origin"), hdrs.get("vary")),
                         (200, origin(b), "Origin"))
        code, hdrs, body = request(a.http, "OPTIONS", "/v1/status", headers={
            "Origin": origin(b), "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        self.assertEqual(code, 204)
        self.assertEqual({k: v for k, v in hdrs.items() if k.startswith("access-control-")}, {
            "access-control-allow-origin": origin(b), "access-control-allow-methods": "GET",
            "access-control-allow-headers": "Authorization", "access-control-max-age": "600"})
        self.assertEqual((hdrs["vary"], body, "content-length" in hdrs), ("Origin", None, False))
        # ... but only reads.
        for method, path, payload in (("PUT", "/v1/kv/x", {"value": "1"}),
                                      ("DELETE", "/v1/kv/x", None),
                                      ("POST", "/v1/snapshot", None)):
            code, hdrs, body = request(a.http, method, path, payload,
                                       headers={"Origin": origin(b)})
            self.assertEqual((code, body["error"]), (403, "forbidden"), method)
        self.assertEqual(request(a.http, "GET", "/v1/kv/x")[0], 404)

        # Strangers: another port, the wrong scheme, another host, "null".
        strangers = ["http://127.0.0.1:%d" % it.free_port(), origin(b, "https"),
                     "http://evil.example", "null", "http://localhost:%d" % b.http]
        for stranger in strangers:
            for method, extra in (("GET", {}), ("OPTIONS", {"Access-Control-Request-Method": "GET"})):
                code, hdrs, body = request(a.http, method, "/v1/status",
                                           headers=dict(extra, Origin=stranger))
                self.assertEqual((code, body["error"]), (403, "forbidden"), (stranger, method))
                self.assertEqual([k for k in hdrs if k.startswith("access-control-")], [],
                                 (stranger, method))

        # A removed member's origin is a stranger at once, and the page no
        # longer connects to it.
        self.change_members(nodes, "DELETE", "/v1/members/%d" % c.id, None,
                            lambda ids: c.id not in ids)
        wait_until("node %d gone from nodes %d and %d" % (c.id, a.id, b.id), lambda: all(
            m["id"] != c.id for n in (a, b)
            for m in (n.status() or {"members": [{"id": c.id}]})["members"]))
        for n in (a, b):
            code, hdrs, _ = request(n.http, "GET", "/v1/status", headers={"Origin": origin(c)})
            self.assertEqual((code, hdrs.get("access-control-allow-origin")), (403, None))
            self.assertNotIn(origin(c), request(n.http, "GET", "/ui")[1]["content-security-policy"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
