#!/usr/bin/env python3
"""A real raftd against its disk failing (helpers from raftd_integration_test.py).

 - A full disk: raftd runs on a small tmpfs mounted in a private mount
   namespace (`unshare -m`; needs root, skipped otherwise), whose free space
   the test fills with a file of its own.  raftd hits real ENOSPC from the
   kernel; it must answer 507 no_space, serve reads, show the alarm, resume
   by itself once the file is deleted, and after a restart hold every
   acknowledged key; `waldump --verify` finds the log clean.
 - A failed fdatasync: an LD_PRELOAD shim (fault_preload.cpp) makes
   fdatasync(2) fail with EIO from the instant the test creates a trigger
   file.  raftd must answer the request in flight, log the failure and exit
   with 74; a restart (without the fault) holds every acknowledged key.

    raftd_storage_test.py path/to/raftd [unittest args]
Environment: WALDUMP (the waldump binary), KEEL_FAULT_PRELOAD (the shim).
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import raftd_integration_test as it
from raftd_integration_test import DEADLINE_S, request, try_request, wait_until

EXIT_STORAGE_FAILURE = 74
SEGMENT_BYTES = 4 << 20      # --wal-segment-bytes: the next one is prepared at half of it
TMPFS_BYTES = 16 << 20
VALUE_BYTES = 256 << 10


class ExtraNode(it.Node):
    """A Node started with a command prefix (nsenter) and extra environment."""

    def __init__(self, root, node_id, prefix=(), env=None, data_dir=None):
        super().__init__(root, node_id)
        self.prefix = list(prefix)
        self.env = env
        if data_dir:
            self.data_dir = data_dir

    def start(self, *extra, minimal=False):
        args = self.prefix + [it.RAFTD, "--data-dir", self.data_dir,
                              "--http", "127.0.0.1:%d" % self.http,
                              "--raft", "127.0.0.1:%d" % self.raft, "--id", str(self.id)]
        args += list(extra)
        env = dict(os.environ)
        env.update(self.env or {})
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        log.close()
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class StorageTest(unittest.TestCase):
    # The integration tests' set-up, tear-down and waits (not their tests).
    setUp = it.RaftdTest.setUp
    tearDown = it.RaftdTest.tearDown
    wait_ready = it.RaftdTest.wait_ready

    def put_value(self, port, key, value):
        return try_request(port, "PUT", "/v1/kv/" + key, {"value": value}, timeout=10.0)

    def assert_has(self, node, acked):
        for key, value in acked.items():
            code, _, body = request(node.http, "GET", "/v1/kv/" + key)
            self.assertEqual((code, body and body.get("value")), (200, value), key)

    # -- a full disk ---------------------------------------------------------
    def mount_tmpfs(self):
        """A tmpfs of TMPFS_BYTES at <root>/disk in a private mount namespace,
        held by a process of its own; returns (holder, path inside, path seen
        from here)."""
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs in a private mount namespace")
        inside = os.path.join(self.root, "disk")
        os.mkdir(inside)
        holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             "mount -t tmpfs -o size=%d,mode=0700 tmpfs %s && echo mounted && exec sleep 100000"
             % (TMPFS_BYTES, inside)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (holder.kill(), holder.wait(), holder.stdout.close()))
        line = holder.stdout.readline().decode().strip()
        self.assertEqual(line, "mounted", "could not mount a tmpfs in a private namespace")
        outside = "/proc/%d/root%s" % (holder.pid, inside)
        st = os.statvfs(outside)
        self.assertEqual(st.f_blocks * st.f_frsize, TMPFS_BYTES)  # the tmpfs, not /tmp
        return holder, inside, outside

    def test_full_tmpfs_answers_507_serves_reads_and_resumes_by_itself(self):
        holder, inside, outside = self.mount_tmpfs()
        nsenter = ["nsenter", "-t", str(holder.pid), "-m", "--"]
        n = ExtraNode(self.root, 1, prefix=nsenter, data_dir=inside + "/node1")
        self.nodes[1] = n
        n.start("--wal-segment-bytes", str(SEGMENT_BYTES))
        self.wait_ready(n)
        acked = {}
        value = "v" * VALUE_BYTES
        self.assertEqual(self.put_value(n.http, "first", value)[0], 200)
        acked["first"] = value

        # Another process takes all but a little of the free space.
        st = os.statvfs(outside)
        filler = os.path.join(outside, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - VALUE_BYTES))

        # Writes go on into the preallocated segment until the next one,
        # prepared once it is half full, finds no room: then 507.
        refused = None
        for i in range(4 * SEGMENT_BYTES // VALUE_BYTES):
            key = "k%d" % i
            code, _, body = self.put_value(n.http, key, value)
            if code == 200:
                acked[key] = value
                continue
            refused = (code, body)
            break
        self.assertEqual(refused, (507, refused[1]), "no write was refused")
        self.assertEqual(refused[1]["error"], "no_space")
        self.assertGreater(len(acked), 3)
        # Reads are served, the alarm shows, the node is healthy (not failed).
        self.assert_has(n, acked)
        self.assertEqual(n.status()["alarms"], ["no_space"])
        code, _, text = request(n.http, "GET", "/metrics")
        self.assertIn('keel_alarm{alarm="no_space"} 1', text)
        self.assertEqual(request(n.http, "GET", "/healthz")[0], 200)
        self.assertEqual(request(n.http, "PUT", "/v1/kv/x", {"value": "small"})[0], 507)
        code, _, body = request(n.http, "POST", "/v1/snapshot")
        self.assertEqual((code, body["error"]), (507, "no_space"))

        # Space comes back: writes resume without a restart.
        os.unlink(filler)
        freed = time.monotonic()
        wait_until("the no_space alarm to clear", lambda: n.status()["alarms"] == [])
        sys.stderr.write("alarm cleared %.0f ms after the space was freed\n"
                         % ((time.monotonic() - freed) * 1000))
        self.assertIn('keel_alarm{alarm="no_space"} 0', request(n.http, "GET", "/metrics")[2])
        # Past the old segment's end: into the one prepared after the space came back.
        for i in range(SEGMENT_BYTES // VALUE_BYTES + 2):
            key = "after%d" % i
            code, _, body = self.put_value(n.http, key, value)
            self.assertEqual(code, 200, body)
            acked[key] = value
        self.assertGreaterEqual(n.status()["wal"]["segments"], 2)

        # A restart has every acknowledged key; the log verifies clean.
        self.assertEqual(n.kill(signal.SIGTERM), 0)
        verify = subprocess.run(nsenter + [os.environ["WALDUMP"], "--verify", inside + "/node1/wal"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(verify.returncode, 0, verify.stdout.decode("utf-8", "replace")[-2000:])
        n.start("--wal-segment-bytes", str(SEGMENT_BYTES))
        self.wait_ready(n)
        self.assert_has(n, acked)
        self.assertEqual(n.status()["alarms"], [])

    # -- a failed fdatasync --------------------------------------------------
    def test_failed_fdatasync_answers_in_flight_and_exits_74(self):
        preload = os.environ["KEEL_FAULT_PRELOAD"]
        trigger = os.path.join(self.root, "fail-fdatasync")
        n = ExtraNode(self.root, 1, env={"LD_PRELOAD": preload,
                                         "KEEL_FAULT_FDATASYNC_EIO": trigger})
        self.nodes[1] = n
        n.start()
        self.wait_ready(n)
        acked = {}
        for i in range(20):
            key = "a%d" % i
            self.assertEqual(self.put_value(n.http, key, "v%d" % i)[0], 200)
            acked[key] = "v%d" % i
        open(trigger, "w").close()
        # The write in flight when the disk fails is answered, not dropped.
        code, _, body = self.put_value(n.http, "lost", "never acknowledged")
        self.assertEqual((code, body and body.get("error")), (500, "failed"), body)
        self.assertIn(".wal", body.get("message", json.dumps(body)))
        # Then raftd exits with its storage-failure code, for a supervisor.
        n.proc.wait(timeout=DEADLINE_S)
        self.assertEqual(n.proc.returncode, EXIT_STORAGE_FAILURE)
        self.assertIn("storage failure", n.log_text())
        os.unlink(trigger)
        n.start()
        self.wait_ready(n)
        self.assert_has(n, acked)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    it.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
