"""Headless Chromium for tests, driven over the DevTools protocol with the
standard library only: Chromium is started with --remote-debugging-pipe and
reads commands from fd 3 and writes answers and events to fd 4, each a JSON
object ended by a NUL byte (no port, no websocket).

    browser = Chromium(work_dir, trusted_ca=None)   # fails if chromium is missing
    page = browser.open("http://127.0.0.1:8080/ui")     # a new tab
    page.wait_until("the table", "document.querySelectorAll('tr').length", lambda n: n > 2)
    page.screenshot(path)
    page.close()
    browser.close()

Every wait is bounded.  `trusted_ca`: a PEM CA certificate that Chromium
trusts through an NSS database made for it alone ($HOME/.pki/nssdb in a
fresh HOME, with certutil from libnss3-tools), so HTTPS is verified as in a
real browser rather than with --ignore-certificate-errors.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import time

# As the machine notes say: root needs --no-sandbox, and the background
# networking flags keep Chromium from calling out of a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage",
         "--remote-debugging-pipe"]
CALL_TIMEOUT_S = 20.0
POLL_S = 0.05
# Records Content-Security-Policy violations from the first script on: the
# page must cause none.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


class ChromiumError(AssertionError):
    pass


def _nss_db_trusting(home, ca_file):
    certutil = shutil.which("certutil")
    if not certutil:
        raise ChromiumError("certutil is missing (libnss3-tools): run scripts/install-deps.sh")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    subprocess.run([certutil, "-d", "sql:" + db, "-N", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run([certutil, "-d", "sql:" + db, "-A", "-t", "C,,", "-n", "keel-test-ca",
                    "-i", ca_file], check=True, capture_output=True)


class Chromium:
    def __init__(self, work_dir, trusted_ca=None):
        exe = shutil.which("chromium")
        if not exe:
            raise ChromiumError("chromium is missing: run scripts/install-deps.sh")
        home = os.path.join(work_dir, "chromium-home")
        os.makedirs(home)
        if trusted_ca:
            _nss_db_trusting(home, trusted_ca)
        self.log_path = os.path.join(work_dir, "chromium.log")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = [exe] + FLAGS + ["--user-data-dir=" + os.path.join(home, "profile"), "about:blank"]
        # bash moves the pipe ends to fds 3 and 4, where Chromium looks (dash
        # cannot name fds above 9).
        shell = 'exec "$@" 3<&%d 4>&%d' % (to_child_r, from_child_w)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["bash", "-c", shell, "bash"] + args,
                                         pass_fds=(to_child_r, from_child_w),
                                         env=dict(os.environ, HOME=home),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.call("Browser.getVersion")

    def log_tail(self, size=3000):
        with open(self.log_path, "rb") as f:
            return f.read()[-size:].decode("utf-8", "replace")

    def call(self, method, params=None, session=None, timeout_s=CALL_TIMEOUT_S):
        """Sends one command and returns its result; raises on an error answer."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") != self._next_id:
                    continue  # an event, or an answer nobody waits for
                if "error" in answer:
                    raise ChromiumError("%s: %s" % (method, answer["error"]))
                return answer.get("result", {})
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, left))
            if not ready:
                raise ChromiumError("no answer to %s within %.0f s\n%s" % (
                    method, timeout_s, self.log_tail()))
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise ChromiumError("chromium closed its pipe (exit %s)\n%s" % (
                    self.proc.poll(), self.log_tail()))
            self._buffer += chunk

    def open(self, url, width=1280, height=860):
        """A new tab showing `url` (navigation started, not awaited)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS})
        page.call("Page.navigate", {"url": url})
        return page

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout_s=5)
            except ChromiumError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass


class Page:
    def __init__(self, browser, session, target):
        self.browser = browser
        self.session = session
        self.target = target

    def close(self):
        """Closes the tab (the browser stays)."""
        try:
            self.browser.call("Target.closeTarget", {"targetId": self.target}, timeout_s=5)
        except ChromiumError:
            pass  # the browser is gone: nothing left to close

    def call(self, method, params=None):
        return self.browser.call(method, params, self.session)

    def eval(self, expression):
        """The value of a JavaScript expression (awaited if a promise)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise ChromiumError("%s: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_until(self, what, expression, predicate=bool, deadline_s=20.0):
        """Polls `expression` until predicate(value); returns the value."""
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            try:
                last = self.eval(expression)
            except ChromiumError as e:  # e.g. while the page navigates
                last = str(e)
            else:
                if predicate(last):
                    return last
            time.sleep(POLL_S)
        raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))

    def screenshot(self, path, down_to=None):
        """A PNG of the viewport; with `down_to` (a CSS selector), cut below
        that element's bottom edge."""
        params = {"format": "png"}
        if down_to:
            box = self.eval("(() => { const r = document.querySelector(%s)"
                            ".getBoundingClientRect(); return [innerWidth, r.bottom]; })()"
                            % json.dumps(down_to))
            params["clip"] = {"x": 0, "y": 0, "width": box[0], "height": min(box[1], 10000),
                              "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
