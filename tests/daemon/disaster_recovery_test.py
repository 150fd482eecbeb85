#!/usr/bin/env python3
"""Backups and disaster recovery with real processes: `keelctl snapshot save`
then `raftd --restore` builds a new cluster holding every key; a raftd with
--groups is backed up into one archive, restored only whole and with its
group count; and `raftd --force-new-cluster` brings back the last survivor
of three.  Free ports, temp dirs; waits poll with bounded deadlines.

    disaster_recovery_test.py path/to/raftd path/to/keelctl [unittest args]
"""
import json
import os
import signal
import subprocess
import sys
import unittest
import urllib.request

import raftd_integration_test as rt
from raftd_integration_test import request, try_request, wait_until

KEELCTL = None


def keelctl(*args):
    proc = subprocess.run([KEELCTL, "-o", "json"] + list(args), capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def restore(node, backup, *flags):
    """raftd --restore: returns (exit code, output)."""
    proc = subprocess.run([rt.RAFTD, "--restore", backup, "--id", str(node.id),
                           "--data-dir", node.data_dir] + list(flags),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


class DisasterRecoveryTest(rt.RaftdCase):
    def endpoint(self, node):
        return "http://127.0.0.1:%d" % node.http

    def cluster(self):
        nodes = self.start_cluster(3)
        for n in nodes:
            self.wait_ready(n)
        return nodes

    def test_snapshot_save_then_restore_builds_a_cluster_with_every_key(self):
        nodes = self.cluster()
        written = {}
        for i in range(100):
            body = self.put_via_any(nodes, "k%03d" % i, "v%d" % i)
            written["k%03d" % i] = body["revision"]
        leader = self.leader_of(nodes)
        # No snapshot taken yet: save has the node take one, holding every key.
        backup = os.path.join(self.root, "backup.snap")
        code, out, err = keelctl("--endpoints", self.endpoint(leader), "snapshot", "save", backup)
        self.assertEqual(code, 0, err)
        saved = json.loads(out)
        self.assertEqual(saved["members"], 3)
        self.assertFalse(os.path.exists(backup + ".part"))
        self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)

        # A new cluster of three from the backup, on new addresses.
        fresh = [rt.Node(self.root, i) for i in (11, 12, 13)]
        for n in fresh:
            self.nodes[n.id] = n
        cluster_id = os.urandom(16).hex()
        members = ["--cluster-id", cluster_id]
        for n in fresh:
            members += ["--member", n.spec]
        for n in fresh:
            code, text = restore(n, backup, *members)
            self.assertEqual(code, 0, text)
            self.assertIn("index %d" % saved["index"], text)
        # A restore refuses a data dir that holds anything.
        code, text = restore(fresh[0], backup, *members)
        self.assertEqual(code, 1, text)
        self.assertIn("not empty", text)
        for n in fresh:
            n.start(*members)
        for n in fresh:
            self.wait_ready(n)
        for key, revision in written.items():
            code, _, body = request(fresh[1].http, "GET", "/v1/kv/%s?consistency=stale" % key)
            self.assertEqual((code, body["revision"]), (200, revision), key)
        status = fresh[0].status()
        self.assertEqual(status["cluster_id"], cluster_id)
        self.assertEqual(sorted(m["id"] for m in status["members"]), [11, 12, 13])
        # Indexes continue after the backup's: a new write's revision is past it.
        body = self.put_via_any(fresh, "after", "restore")
        self.assertGreater(body["revision"], saved["index"])

    def test_a_damaged_backup_is_refused(self):
        n = self.node(1).start()
        self.wait_ready(n)
        self.assertEqual(self.put(n.http, "a", "1")[0], 200)
        code, _, err = keelctl("--endpoints", self.endpoint(n), "snapshot", "save", "--latest",
                               os.path.join(self.root, "none.snap"))
        self.assertEqual(code, 1, err)  # 404 no_snapshot: none taken yet
        self.assertIn("no_snapshot", err)
        self.assertEqual(request(n.http, "POST", "/v1/snapshot")[0], 200)
        backup = os.path.join(self.root, "backup.snap")
        code, _, err = keelctl("--endpoints", self.endpoint(n), "snapshot", "save", backup)
        self.assertEqual(code, 0, err)
        with open(backup, "r+b") as f:
            f.seek(3)
            byte = f.read(1)
            f.seek(3)
            f.write(bytes([byte[0] ^ 0x40]))
        target = rt.Node(self.root, 7)
        code, text = restore(target, backup)
        self.assertEqual(code, 1, text)
        self.assertIn("checksum", text)
        self.assertFalse(os.path.exists(target.data_dir))

    def test_a_backup_of_groups_is_restored_only_whole_and_with_its_group_count(self):
        n = self.node(1).start("--groups", "2")
        self.wait_ready(n)
        for i in range(20):
            self.assertEqual(self.put(n.http, "k%d" % i, "v%d" % i)[0], 200)
        archive = os.path.join(self.root, "backup.keel")
        code, out, err = keelctl("--endpoints", self.endpoint(n), "snapshot", "save", archive)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["groups"], 2)
        self.assertEqual([f for f in os.listdir(self.root) if f.startswith("backup.keel.")], [])
        # --latest: every group's latest snapshot as it is (the ones just taken).
        latest = os.path.join(self.root, "latest.keel")
        code, out, err = keelctl("--endpoints", self.endpoint(n), "snapshot", "save", "--latest",
                                 latest)
        self.assertEqual((code, json.loads(out)["groups"]), (0, 2), err)
        with open(archive, "rb") as a, open(latest, "rb") as b:
            self.assertEqual(a.read(), b.read())
        # Group 1's snapshot alone is a snapshot file, a backup without groups.
        plain = os.path.join(self.root, "plain.snap")
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/snapshot?group=1" % n.http) as r:
            with open(plain, "wb") as f:
                f.write(r.read())
        target = self.node(7)
        refusals = [
            (archive, ("--groups", "3"),
             "it holds 2 groups (the backup of a raftd with --groups 2), not 3"),
            (archive, (), "is the backup archive of 2 groups, from a raftd with --groups 2: "
                          "restore it with --groups 2"),
            (plain, ("--groups", "2"), "is one snapshot file, the backup of a raftd without "
                                       "--groups; restore it without --groups"),
        ]
        for backup, flags, message in refusals:
            code, text = restore(target, backup, *flags)
            self.assertEqual(code, 1, text)
            self.assertIn(message, text)
            self.assertFalse(os.path.exists(target.data_dir), flags)
            self.assertFalse(os.path.exists(target.data_dir + ".restoring"), flags)
        # A damaged archive: every byte counts (one in the middle here).
        damaged = os.path.join(self.root, "damaged.keel")
        with open(archive, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0x40
        with open(damaged, "wb") as f:
            f.write(data)
        code, text = restore(target, damaged, "--groups", "2")
        self.assertEqual(code, 1, text)
        self.assertIn("nothing was written", text)
        self.assertFalse(os.path.exists(target.data_dir))
        # The whole archive with its count: a data dir whose one process
        # serves every key after a restart without flags.
        code, text = restore(target, archive, "--groups", "2", "--member", target.spec)
        self.assertEqual(code, 0, text)
        target.start(minimal=True)
        self.wait_ready(target)
        for i in range(20):
            code, _, body = request(target.http, "GET", "/v1/kv/k%d" % i)
            self.assertEqual((code, body["value"]), (200, "v%d" % i))
        self.assertEqual(target.status()["groups"]["count"], 2)

    def test_force_new_cluster_brings_back_the_last_survivor(self):
        nodes = self.cluster()
        acknowledged = {}
        for i in range(50):
            acknowledged["k%d" % i] = self.put_via_any(nodes, "k%d" % i, "v%d" % i)["revision"]
        survivor = [n for n in nodes if n is not self.leader_of(nodes)][0]
        for n in nodes:
            if n is not survivor:
                n.kill()  # lost for good
        # Alone of three it has no quorum: no leader, no writes.
        wait_until("the survivor without a leader",
                   lambda: (survivor.status() or {}).get("leader_id") == 0)
        survivor.kill(signal.SIGTERM)
        survivor.start("--force-new-cluster")
        wait_until("the survivor leading alone",
                   lambda: (survivor.status() or {}).get("mode") == "single")
        for key, revision in acknowledged.items():
            code, _, body = request(survivor.http, "GET", "/v1/kv/" + key)
            self.assertEqual((code, body["value"], body["revision"]),
                             (200, "v" + key[1:], revision), key)
        self.assertEqual(self.put(survivor.http, "after", "recovery")[0], 200)
        self.assertEqual([m["id"] for m in survivor.status()["members"]], [survivor.id])
        # Later starts need no flag: the data dir holds the new configuration.
        survivor.kill(signal.SIGTERM)
        survivor.start()
        wait_until("single mode again", lambda: (survivor.status() or {}).get("mode") == "single")
        self.assertEqual(request(survivor.http, "GET", "/v1/kv/after")[0], 200)

    def test_force_new_cluster_needs_a_data_dir_with_state(self):
        n = self.node(1)
        n.start("--force-new-cluster")
        self.assertEqual(n.proc.wait(timeout=rt.DEADLINE_S), 1)
        n.proc = None
        with open(n.log_path) as f:
            self.assertIn("holds none", f.read())


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rt.RAFTD = os.path.abspath(sys.argv.pop(1))
    KEELCTL = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
