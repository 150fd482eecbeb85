#!/usr/bin/env python3
"""raftd's peer port against hand-built frames, as an attacker on the same
network would send them (issue 19): a default node and a 3-node loopback
cluster must survive every one with no abort, keep the term for anything a
non-member sends, count each refusal by reason in /metrics, and restart from
their data dirs.  Real processes, free ports, bounded polling waits.

    raftd_peer_attack_test.py path/to/raftd [unittest args]

The frames follow lib/transport/codec.hpp byte for byte; peer_hello() is the
one place that knows what a connection says first.
"""
import os
import re
import signal
import socket
import struct
import sys
import unittest

import raftd_integration_test as base
from raftd_integration_test import request, try_request, wait_until

U64_MAX = 2**64 - 1

# raft::MessageType
APPEND, APPEND_RESPONSE, VOTE, VOTE_RESPONSE, PRE_VOTE = 1, 2, 3, 4, 5
HEARTBEAT, HEARTBEAT_RESPONSE, SNAPSHOT, TIMEOUT_NOW = 7, 8, 9, 10
# transport::FrameKind
HELLO_FRAME, MESSAGES_FRAME, SNAPSHOT_CHUNK_FRAME = 1, 2, 3


# ---- the wire format (lib/transport/codec.hpp) -------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


WIRE_VERSION = 5  # transport::kWireVersion


def frame(kind, payload, version=WIRE_VERSION):
    """u32 length, u8 version, u8 kind, payload, u32 CRC-32C of version..payload."""
    body = struct.pack("<BB", version, kind) + payload
    return struct.pack("<I", len(body) + 4) + body + struct.pack("<I", crc32c(body))


def peer_hello(node_id, to_node, address=b""):
    """The first frame on every connection: the 16-byte cluster id of the
    node dialled (`to_node`, read from its /v1/status: what an attacker who
    learnt it, or a member gone rogue, can send), who speaks, and where it
    says it listens."""
    _, _, status = request(to_node.http, "GET", "/v1/status")
    cluster_id = bytes.fromhex(status["cluster_id"])
    assert len(cluster_id) == 16, status["cluster_id"]
    return frame(HELLO_FRAME, cluster_id + struct.pack("<QI", node_id, len(address)) + address)


def message(type_, frm, to, term, log_index=0, log_term=0, commit=0, index=0, reject=False,
            hint_index=0, hint_term=0, context=0, transfer=False, quiesce=False, entries=(),
            snapshot=None):
    """One raft::Message.  entries: (term, index, type, data) tuples; snapshot:
    (index, term, [(id, voter, context)])."""
    out = struct.pack("<BQQQQQQQBQQQBB", type_, frm, to, term, log_index, log_term, commit,
                      index, int(reject), hint_index, hint_term, context, int(transfer),
                      int(quiesce))
    out += struct.pack("<I", len(entries))
    for e_term, e_index, e_type, data in entries:
        out += struct.pack("<QQBI", e_term, e_index, e_type, len(data)) + data
    if snapshot is None:
        return out + b"\x00"
    s_index, s_term, members = snapshot
    out += b"\x01" + struct.pack("<QQI", s_index, s_term, len(members))
    for member_id, voter, context in members:
        out += struct.pack("<QBI", member_id, int(voter), len(context)) + context
    return out


def messages_frame(*messages, group=0):
    return frame(MESSAGES_FRAME, struct.pack("<QI", group, len(messages)) + b"".join(messages))


def snapshot_chunk_frame(snapshot_id, offset, total, data, final_message=None, group=0):
    payload = struct.pack("<QQQQI", group, snapshot_id, offset, total, len(data)) + data
    payload += b"\x01" + final_message if final_message is not None else b"\x00"
    return frame(SNAPSHOT_CHUNK_FRAME, payload)


def send_as(node, frm, *frames):
    """Dials `node`'s peer port as node `frm` and sends the frames; waits
    until the node has read them or closed the connection."""
    with socket.create_connection(("127.0.0.1", node.raft), timeout=5) as s:
        s.sendall(peer_hello(frm, node) + b"".join(frames))
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


def rejected(node):
    """keel_peer_messages_rejected_total by reason, from /metrics."""
    code, _, text = try_request(node.http, "GET", "/metrics")
    if code != 200:
        return {}
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^keel_peer_messages_rejected_total\{reason="([a-z_]+)"\} (\d+)$', text, re.M)}


# ---- the attacks ------------------------------------------------------------------------

STRANGER = 9
FORGED_TERM = 10**6  # above any term an election in these tests reaches


def stranger_frames(target_id, term):
    """What the issue lists, from a node that is not a member."""
    return [
        # Saved as term 2^64 - 1 before: every restart then aborted.
        messages_frame(message(HEARTBEAT, STRANGER, target_id, U64_MAX - 1)),
        # Aborted the process at once.
        messages_frame(message(TIMEOUT_NOW, STRANGER, target_id, U64_MAX)),
        # Made a lone leader step down and re-elect.
        messages_frame(message(APPEND, STRANGER, target_id, term + 1, log_index=1, log_term=1,
                               commit=1)),
        messages_frame(message(VOTE, STRANGER, target_id, FORGED_TERM, log_index=10**9,
                               log_term=FORGED_TERM),
                       message(PRE_VOTE, STRANGER, target_id, FORGED_TERM, log_index=10**9,
                               log_term=FORGED_TERM),
                       message(HEARTBEAT, STRANGER, target_id, FORGED_TERM, commit=10**9)),
    ]


class PeerAttackTest(base.RaftdTest):
    def attack(self, node, frm, frames):
        for f in frames:  # one connection each: a refused frame may close it
            send_as(node, frm, f)

    def wait_rejected(self, node, want):
        """Waits until node counted at least `want` (reason -> count)."""
        def enough():
            if not node.alive():
                raise AssertionError("node %d died (exit %s)" % (node.id, node.proc.returncode))
            got = rejected(node)
            return got if all(got.get(r, 0) >= n for r, n in want.items()) else None
        return wait_until("node %d to count %r" % (node.id, want), enough)

    def check_terms(self, nodes, before):
        """No term moved to a forged one; unless an election ran meanwhile, none moved."""
        after = {n.id: n.status() for n in nodes}
        for n in nodes:
            self.assertTrue(n.alive(), "node %d died" % n.id)
            self.assertIsNotNone(after[n.id], "node %d does not answer" % n.id)
            self.assertLess(after[n.id]["term"], FORGED_TERM)
        if sum(s["elections"] for s in after.values()) == \
                sum(s["elections"] for s in before.values()):
            for n in nodes:
                self.assertEqual(after[n.id]["term"], before[n.id]["term"], "node %d" % n.id)

    def restart_all(self, nodes):
        """kill -9 and start again from the same data dirs."""
        for n in nodes:
            self.assertIsNotNone(n.kill(signal.SIGKILL))
        for n in nodes:
            n.start(*n.first_args)

    # -- tests ------------------------------------------------------------------------
    def test_default_node_survives_every_attack_frame(self):
        n = self.node(1).start()
        self.wait_ready(n)
        self.assertEqual(self.put(n.http, "before", "1")[0], 200)
        before = {1: n.status()}
        term = before[1]["term"]
        self.attack(n, STRANGER, stranger_frames(1, term))
        # A snapshot's metadata without its data (it aborted the process).
        self.attack(n, STRANGER, [messages_frame(
            message(SNAPSHOT, STRANGER, 1, term, snapshot=(1000, term, [(1, True, b"")])))])
        # Not a frame at all, after a valid hello.
        self.attack(n, STRANGER, [b"\x00\x00\x00\x10" + b"\xff" * 16])
        # A group this node does not serve; a frame that ends inside its group id.
        self.attack(n, STRANGER, [messages_frame(message(HEARTBEAT, STRANGER, 1, term), group=77),
                                  frame(MESSAGES_FRAME, b"\x07" * 5)])
        self.wait_rejected(n, {"term_out_of_range": 2, "not_a_member": 4,
                               "wrong_frame_kind": 1, "malformed": 2, "unknown_group": 1})
        self.check_terms([n], before)
        self.assertEqual(n.status()["role"], "leader")
        self.assertEqual(self.put(n.http, "after", "2")[0], 200)
        # The data dir reopens, with everything in it.
        self.restart_all([n])
        self.wait_ready(n)
        self.assertEqual(request(n.http, "GET", "/v1/kv/before")[2]["value"], "1")
        self.assertEqual(request(n.http, "GET", "/v1/kv/after")[2]["value"], "2")
        self.assertLess(n.status()["term"], FORGED_TERM)

    def test_three_node_cluster_survives_every_attack_frame(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        self.put_via_any(nodes, "before", "1")
        followers = [n for n in nodes if n is not leader]
        before = {n.id: n.status() for n in nodes}
        for n in nodes:
            self.attack(n, STRANGER, stranger_frames(n.id, before[n.id]["term"]))
        term = before[leader.id]["term"]
        f = followers[0]
        # In members' names: a snapshot's metadata without its data, the
        # leader's timeout_now at 2^64 - 1, an acknowledgement past the
        # leader's log (it aborted the leader), a hint past the rejected index.
        self.attack(f, leader.id, [
            messages_frame(message(SNAPSHOT, leader.id, f.id, term,
                                   snapshot=(10**6, term, [(n.id, True, b"") for n in nodes]))),
            messages_frame(message(TIMEOUT_NOW, leader.id, f.id, U64_MAX)),
        ])
        last = before[leader.id]["last_index"]
        self.attack(leader, f.id, [
            messages_frame(message(APPEND_RESPONSE, f.id, leader.id, term, index=last + 10**6)),
            messages_frame(message(APPEND_RESPONSE, f.id, leader.id, term, index=last,
                                   reject=True, hint_index=last + 5)),
        ])
        for n in nodes:
            self.wait_rejected(n, {"term_out_of_range": 2, "not_a_member": 4})
        self.wait_rejected(f, {"wrong_frame_kind": 1, "term_out_of_range": 3})
        self.wait_rejected(leader, {"index_out_of_range": 2})
        self.check_terms(nodes, before)
        self.put_via_any(nodes, "after", "2")
        # Every data dir reopens; the cluster elects and serves what it had.
        self.restart_all(nodes)
        self.leader_of(nodes)
        self.put_via_any(nodes, "restarted", "3")
        for n in nodes:
            wait_until("node %d to apply everything" % n.id,
                       lambda n=n: (try_request(n.http, "GET", "/v1/kv/restarted?consistency=stale")[0]
                                    == 200))
            self.assertLess(n.status()["term"], FORGED_TERM)


def load_tests(loader, standard_tests, pattern):
    """Only this file's tests (the base class's are raftd_integration_test's)."""
    del standard_tests, pattern
    suite = unittest.TestSuite()
    for name in sorted(PeerAttackTest.__dict__):
        if name.startswith("test"):
            suite.addTest(PeerAttackTest(name))
    return suite


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    base.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
