#!/usr/bin/env python3
"""The command sequences of README.md and docs/ run as written, against real
raftd processes: each section's ```sh blocks run, in order, as one bash script
(set -e), in a temporary directory with raftd and keelctl on the PATH.  Only the ports are
substituted (free ones for 8080-8084, 7080-7084, 8443 and 7443).

A curl command's HTTP status must be one of those its comment shows
(`# 200 ...`, `# 200, or 409 ...`); without one, below 400.  curl runs as
written: a shell function only adds `-w` to report each status on stderr.

    docs_test.py path/to/raftd path/to/keelctl [unittest args]
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raftd_integration_test as it  # noqa: E402
from raftd_integration_test import try_request, wait_until  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_PORTS = [8080, 8081, 8082, 8083, 8084, 7080, 7081, 7082, 7083, 7084, 8443, 7443]
SCRIPT_TIMEOUT_S = 180
KEELCTL = None  # path/to/keelctl, from the command line
STATUS_RE = re.compile(r"(?:^|[\s,(])([1-5]\d\d)(?=[\s,.):]|$)")


def sh_blocks(path, section=None):
    """The ```sh blocks of `path`, or those under the heading `section`
    (until the next heading of the same or a higher level)."""
    blocks, inside, level, current = [], section is None, 0, None
    with open(path) as f:
        for line in f:
            if current is not None:
                if line.startswith("```"):
                    if inside:
                        blocks.append("".join(current))
                    current = None
                else:
                    current.append(line)
                continue
            heading = re.match(r"(#+) (.*)", line)
            if heading and section is not None:
                depth, title = len(heading.group(1)), heading.group(2).strip()
                if title == section:
                    inside, level = True, depth
                elif inside and depth <= level:
                    inside = False
            elif line.startswith("```sh"):
                current = []
    return blocks


def trailing_comment(line):
    """The comment at the end of a shell line, outside quotes, or ""."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1:]
    return ""


def instrument(script):
    """Numbers each command (KEEL_DOC_CMD=n before it) and returns the new
    script with {n: (command text, expected statuses or None)}."""
    out, commands = [], {}
    continuing = False
    last = None
    for line in script.splitlines():
        stripped = line.strip()
        if continuing:
            out.append(line)
            commands[last][0].append(line)
            continuing = line.endswith("\\")
            if not continuing:
                commands[last][1].append(trailing_comment(line))
            continue
        if not stripped:
            out.append(line)
            continue
        if stripped.startswith("#"):
            if last is not None:
                commands[last][1].append(stripped[1:])
            out.append(line)
            continue
        last = len(commands) + 1
        commands[last] = ([line], [])
        out.append("KEEL_DOC_CMD=%d" % last)
        out.append(line)
        continuing = line.endswith("\\")
        if not continuing:
            commands[last][1].append(trailing_comment(line))
    expected = {}
    for n, (text, comments) in commands.items():
        # Only the comments before the next command; the first that names
        # statuses counts.
        codes = None
        for comment in comments:
            found = STATUS_RE.findall(comment)
            if found:
                codes = {int(c) for c in found}
                break
        expected[n] = ("\n".join(text), codes)
    return "\n".join(out) + "\n", expected


def distinct_free_ports(names):
    """{name: a free port}, all different (each held until all are chosen)."""
    socks = []
    try:
        for _ in names:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return {name: s.getsockname()[1] for name, s in zip(names, socks)}
    finally:
        for s in socks:
            s.close()


# curl's own stderr (its messages and the status marker) goes to a file of its
# own: the raftd processes a script starts in the background share the
# script's stderr, and their log lines would otherwise split a marker line.
PRELUDE = r'''set -eo pipefail
curl() { command curl -w "%{stderr}KEELDOC ${KEEL_DOC_CMD:-0} %{http_code}\n" "$@" 2>>"$KEEL_DOC_CURL_ERR"; }
'''


class DocsTest(it.RaftdCase):
    def setUp(self):
        super().setUp()
        self.ports = distinct_free_ports(DOC_PORTS)
        self.work = os.path.join(self.root, "work")
        os.mkdir(self.work)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        result = getattr(self._outcome, "result", None)
        if result is not None and any(test is self for test, _ in
                                      list(result.failures) + list(result.errors)):
            for name in sorted(os.listdir(self.root)):
                if name.startswith("raftd-") and name.endswith(".log"):
                    with open(os.path.join(self.root, name), "rb") as f:
                        tail = f.read()[-2000:].decode("utf-8", "replace")
                    sys.stderr.write("---- %s (tail) ----\n%s\n" % (name, tail))
        super().tearDown()

    def port(self, doc_port):
        return self.ports[doc_port]

    def substitute(self, text):
        return re.sub(r"(?<=:)(%s)\b" % "|".join(str(p) for p in DOC_PORTS),
                      lambda m: str(self.ports[int(m.group(1))]), text)

    def raftd(self, *args):
        """A raftd the document expects to be running (as `make run` would)."""
        log = open(os.path.join(self.root, "raftd-%d.log" % len(self.procs)), "ab")
        p = subprocess.Popen([it.RAFTD, *args], stdout=log, stderr=log, cwd=self.root,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def run_script(self, script, what):
        script, expected = instrument(self.substitute(script))
        # keelctl's default endpoint is 127.0.0.1:8080: moved like the ports in the text.
        env = dict(os.environ, PATH=os.pathsep.join(
            [os.path.dirname(it.RAFTD), os.path.dirname(KEELCTL), os.environ["PATH"]]),
            KEEL_ENDPOINTS="http://127.0.0.1:%d" % self.port(8080),
            KEEL_DOC_CURL_ERR=os.path.join(self.root, "curl-err"))
        # Files, not pipes: raftd processes the script starts in the
        # background keep its output open after it exits.
        out_path, err_path = os.path.join(self.root, "out"), os.path.join(self.root, "err")
        with open(out_path, "w") as out_file, open(err_path, "w") as err_file:
            p = subprocess.Popen(["bash", "-c", PRELUDE + script], cwd=self.work, env=env,
                                 stdout=out_file, stderr=err_file, start_new_session=True)
        self.procs.append(p)
        try:
            p.wait(timeout=SCRIPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        with open(out_path) as f:
            out = f.read()
        with open(err_path) as f:
            err = f.read()
        curl_err = ""
        if os.path.exists(env["KEEL_DOC_CURL_ERR"]):
            with open(env["KEEL_DOC_CURL_ERR"]) as f:
                curl_err = f.read()
            os.unlink(env["KEEL_DOC_CURL_ERR"])
        self.assertIsNotNone(p.returncode)
        context = ("%s\n---- script ----\n%s\n---- stdout ----\n%s\n---- stderr ----\n%s"
                   "\n---- curl's stderr ----\n%s" % (
                       what, script, out[-4000:], err[-4000:], curl_err[-4000:]))
        self.assertEqual(p.returncode, 0, context)
        statuses = {}
        for line in curl_err.splitlines():
            m = re.match(r"KEELDOC (\d+) (\d+)$", line)
            if m:
                statuses.setdefault(int(m.group(1)), []).append(int(m.group(2)))
        for n, (text, codes) in expected.items():
            if not re.search(r"(^|[\s;(])curl\s", text):
                continue
            got = statuses.get(n, [])
            self.assertTrue(got, "no curl status for: %s\n%s" % (text, context))
            if text.lstrip().startswith("until "):
                got = [c for c in got if c != 0][-1:]  # the attempt that ended the loop
            for code in got:
                if codes:
                    self.assertIn(code, codes, "%s\n%s" % (text, context))
                else:
                    self.assertTrue(100 <= code < 400, "%s -> %d\n%s" % (text, code, context))
        return out

    def wait_http(self, doc_port, path="/readyz"):
        wait_until("127.0.0.1:%d%s" % (doc_port, path),
                   lambda: try_request(self.port(doc_port), "GET", path)[0] == 200)

    # -- the documents --------------------------------------------------------
    def test_readme_curl_sequence(self):
        self.raftd("--data-dir", "d", "--http", "127.0.0.1:%d" % self.port(8080),
                   "--raft", "127.0.0.1:%d" % self.port(7080))
        self.wait_http(8080)
        blocks = [b for b in sh_blocks(os.path.join(REPO, "README.md")) if "curl" in b]
        self.assertEqual(len(blocks), 1)
        out = self.run_script(blocks[0], "README.md")
        self.assertIn('"value":"hello"', out)
        # The status page's address as the README gives it, and its screenshot.
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        pages = re.findall(r"http://127\.0\.0\.1:8080/ui\b", readme)
        self.assertTrue(pages, "README.md names the status page")
        for url in set(pages):
            code, hdrs, html = it.request(self.port(8080), "GET", url[len("http://127.0.0.1:8080"):])
            self.assertEqual((code, hdrs["content-type"]), (200, "text/html; charset=utf-8"), url)
            self.assertIn("<title>raftd status</title>", html)
        for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme):
            self.assertTrue(os.path.isfile(os.path.join(REPO, image)), image)

    def test_readme_keelctl(self):
        self.raftd("--data-dir", "d", "--http", "127.0.0.1:%d" % self.port(8080),
                   "--raft", "127.0.0.1:%d" % self.port(7080))
        self.wait_http(8080)
        blocks = [b for b in sh_blocks(os.path.join(REPO, "README.md")) if "keelctl" in b]
        self.assertEqual(len(blocks), 1)
        # The README runs it from the repository's top, where meson builds into build/.
        script = blocks[0].replace("build/tools/keelctl", KEELCTL)
        out = self.run_script(script, "README.md, keelctl")
        self.assertIn("bonjour", out)
        self.assertIn("leader", out)

    def test_api_md_examples(self):
        # `make run`'s single node on 8080, `make cluster`'s three nodes on
        # 8081-8083 led by node 1, and node 4 waiting to be added.
        self.raftd("--data-dir", "single", "--http", "127.0.0.1:%d" % self.port(8080),
                   "--raft", "127.0.0.1:%d" % self.port(7080))
        # Founders share a cluster id (raftd refuses to bootstrap several without one).
        members = ["--cluster-id", os.urandom(16).hex()]
        for n in (1, 2, 3):
            members += ["--member", "%d,127.0.0.1:%d,127.0.0.1:%d" % (
                n, self.port(7080 + n), self.port(8080 + n))]
        for n in (1, 2, 3):
            self.raftd("--id", str(n), "--data-dir", "n%d" % n, *members)
        self.raftd("--id", "4", "--join", "--data-dir", "n4",
                   "--http", "127.0.0.1:%d" % self.port(8084),
                   "--raft", "127.0.0.1:%d" % self.port(7084), *members)
        self.wait_http(8080)
        for n in (1, 2, 3):
            self.wait_http(8080 + n)
        self.wait_http(8084, "/healthz")
        leader = it.request(self.port(8081), "GET", "/v1/status")[2]["leader_id"]
        if leader != 1:
            code, _, body = it.request(self.port(8080 + leader), "POST", "/v1/leader/transfer",
                                       {"to": 1})
            self.assertEqual(code, 200, body)
            wait_until("node 1 leading", lambda: (try_request(
                self.port(8081), "GET", "/v1/status")[2] or {}).get("role") == "leader")
        blocks = sh_blocks(os.path.join(REPO, "docs", "api.md"))
        self.assertGreater(len(blocks), 10)
        self.run_script("".join(blocks), "docs/api.md")

    def test_operations_md_growing_1_3_1(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "Growing 1 → 3 → 1")
        self.assertEqual(len(blocks), 1)
        self.run_script(blocks[0], "docs/operations.md, Growing 1 → 3 → 1")
        status = it.request(self.port(8081), "GET", "/v1/status")[2]
        self.assertEqual((status["mode"], len(status["members"])), ("single", 1))

    def test_operations_md_many_groups(self):
        # The first two; the third is "Growing 1 → 3 → 1 with groups" (below).
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "Many groups")
        self.assertEqual(len(blocks), 3)
        out = self.run_script("".join(blocks[:2]), "docs/operations.md, Many groups")
        self.assertIn("refused: g was created with --groups 16", out)
        self.assertIn('"count":16', out)
        self.assertIn('"group":3,', out)
        status = it.request(self.port(8080), "GET", "/v1/status")[2]
        self.assertEqual((status["groups"]["count"], status["keys"]), (16, 2))
        self.assertIn('"value":"1"', out)
        for n in (1, 2, 3):
            status = it.request(self.port(8080 + n), "GET", "/v1/status")[2]
            self.assertEqual((status["groups"]["count"], len(status["members"])), (6, 3))

    def test_operations_md_many_groups_growing_1_3_1(self):
        section = "Growing 1 → 3 → 1 with groups"
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), section)
        self.assertEqual(len(blocks), 1)
        out = self.run_script(blocks[0], "docs/operations.md, " + section)
        self.assertIn('"value":"before"', out)
        self.assertIn('"value":"after"', out)
        self.assertIn("3,127.0.0.1:%d,127.0.0.1:%d" % (self.port(7083), self.port(8083)), out)
        self.assertTrue(out.rstrip().endswith(
            "1,127.0.0.1:%d,127.0.0.1:%d" % (self.port(7081), self.port(8081))), out)
        status = it.request(self.port(8081), "GET", "/v1/status")[2]
        self.assertEqual((status["groups"]["count"], status["groups"]["led_here"],
                          len(status["members"])), (4, 4, 1))

    def test_operations_md_backup_and_restore(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "Backup and restore")
        self.assertEqual(len(blocks), 1)
        out = self.run_script(blocks[0], "docs/operations.md, Backup and restore")
        self.assertIn("hello", out)
        status = it.request(self.port(8083), "GET", "/v1/status")[2]
        self.assertEqual(sorted(m["id"] for m in status["members"]), [2, 3, 4])

    def test_operations_md_backup_and_restore_with_groups(self):
        section = "Backup and restore with groups"
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), section)
        self.assertEqual(len(blocks), 1)
        out = self.run_script(blocks[0], "docs/operations.md, " + section)
        fruits = ["apple", "banana", "cherry", "damson", "elder", "fig"]
        self.assertIn('"file":"backup.keel"', out)
        self.assertIn('"groups":3', out)
        for fruit in fruits:
            self.assertIn('"value":"%s"' % fruit, out)
        self.assertIn("refused (exit 1); r5 exists: no", out)
        with open(os.path.join(self.root, "err")) as f:
            self.assertIn("it holds 3 groups (the backup of a raftd with --groups 3), not 4: "
                          "restore it with --groups 3; nothing was written", f.read())
        self.assertFalse(os.path.exists(os.path.join(self.work, "r5.restoring")))
        # The keys were in several groups, and every restored member holds
        # each group's, with the three new members in every group.
        for member in (2, 3, 4):
            status = it.request(self.port(8080 + member), "GET", "/v1/status")[2]
            self.assertEqual((status["groups"]["count"], sorted(m["id"] for m in status["members"])),
                             (3, [2, 3, 4]))
            keys = [it.request(self.port(8080 + member), "GET", "/v1/groups/%d" % g)[2]["keys"]
                    for g in (1, 2, 3)]
            self.assertEqual(sum(keys), len(fruits), keys)
            self.assertGreaterEqual(sum(1 for k in keys if k > 0), 2, keys)
        # New writes go on, through the redirect to the key's group's leader.
        code, headers, body = it.request(self.port(8082), "PUT", "/v1/kv/fruit/grape",
                                         {"value": "g"})
        if code == 307:
            port = int(re.search(r":(\d+)/", headers["location"]).group(1))
            code, _, body = it.request(port, "PUT", "/v1/kv/fruit/grape", {"value": "g"})
        self.assertEqual(code, 200, body)

    def test_operations_md_lost_majority(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"),
                           "Recovering from a lost majority")
        self.assertEqual(len(blocks), 1)
        out = self.run_script(blocks[0], "docs/operations.md, Recovering from a lost majority")
        # Once from node 1 before the disaster, once from the new single node.
        self.assertEqual(out.count('"value":"hello"'), 2, out)
        status = it.request(self.port(8081), "GET", "/v1/status")[2]
        self.assertEqual((status["mode"], [m["id"] for m in status["members"]]), ("single", [1]))

    def test_keelctl_md_session(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "keelctl.md"), "A session")
        self.assertEqual(len(blocks), 2)
        out = self.run_script("".join(blocks), "docs/keelctl.md, A session")
        self.assertIn("bonjour", out)
        self.assertTrue(os.path.exists(os.path.join(self.work, "backup.snap")))
        status = it.request(self.port(8082), "GET", "/v1/status")[2]
        self.assertEqual(sorted(m["id"] for m in status["members"]), [1, 2, 3])

    def test_operations_md_when_an_add_goes_wrong(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "When an add goes wrong")
        self.assertEqual(len(blocks), 2)
        self.run_script("".join(blocks), "docs/operations.md, When an add goes wrong")
        members = it.request(self.port(8081), "GET", "/v1/members")[2]["members"]
        self.assertEqual([(m["id"], m["role"]) for m in members], [(1, "voter")])
        self.assertEqual(it.request(self.port(8081), "GET", "/v1/kv/k")[2]["value"], "kept")
        code, _, body = it.request(self.port(8081), "PUT", "/v1/kv/k", {"value": "again"})
        self.assertEqual(code, 200, body)

    def test_operations_md_client_security(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "Clients")
        self.assertEqual(len(blocks), 3)
        out = self.run_script("".join(blocks), "docs/operations.md, Security / Clients")
        self.assertIn('"value":"hello"', out)
        for name in ("cert.pem", "key.pem", "tokens", "ca.pem", "client.pem"):
            self.assertTrue(os.path.exists(os.path.join(self.work, name)), name)

    def test_operations_md_members_over_https(self):
        blocks = sh_blocks(os.path.join(REPO, "docs", "operations.md"), "Members over HTTPS")
        self.assertEqual(len(blocks), 2)
        out = self.run_script("".join(blocks), "docs/operations.md, Members over HTTPS")
        self.assertIn('{"count"', out, out)
        listing, _ = json.JSONDecoder().raw_decode(out[out.rindex('{"count"'):])
        self.assertEqual([k["key"] for k in listing["keys"]],
                         ["user/" + k for k in "abcdef"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    KEELCTL = os.path.abspath(sys.argv.pop(1))
    if not shutil.which("curl") or not shutil.which("openssl"):
        sys.exit("docs_test.py needs curl and openssl (scripts/install-deps.sh)")
    unittest.main(verbosity=2)
