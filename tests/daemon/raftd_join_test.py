#!/usr/bin/env python3
"""Growing a cluster with real raftd processes (issue 22, the join trap): a
joiner learns the cluster from the leader that adds it, with or without
--member, as a voter directly or as a learner then promoted; and an add
whose process never answers leaves the old members able to recover, as
docs/operations.md ("When an add goes wrong") says.  Free ports, temp
dirs; waits poll with bounded deadlines, nothing sleeps as synchronisation.

    raftd_join_test.py path/to/raftd [unittest args, e.g. -k never_started]
"""
import os
import sys
import unittest

import raftd_integration_test as rt
from raftd_integration_test import request, try_request, wait_until


class JoinCase(rt.RaftdCase):
    # -- helpers ---------------------------------------------------------------
    def lone(self):
        first = self.node(1).start()
        self.wait_ready(first)
        self.assertEqual(self.put(first.http, "before", "1")[0], 200)
        return first

    def joiner(self, node_id, *member_of):
        """An empty node started with --join, naming `member_of` with --member."""
        j = self.node(node_id).start("--join", *self.member_flags(member_of))
        wait_until("node %d up" % node_id,
                   lambda: try_request(j.http, "GET", "/healthz")[0] == 200)
        return j

    def add(self, leader, node, role, timeout=10.0):
        return request(leader.http, "POST", "/v1/members", {
            "id": node.id, "raft": "127.0.0.1:%d" % node.raft,
            "http": "127.0.0.1:%d" % node.http, "role": role}, timeout=timeout)

    def wait_caught_up(self, leader, node):
        target = leader.status()["commit_index"]
        wait_until("node %d catching up to %d" % (node.id, target),
                   lambda: (node.status() or {}).get("applied_index", 0) >= target)

    def add_learner_then_promote(self, leader, node):
        code, _, body = self.add(leader, node, "learner")
        self.assertEqual(code, 200, body)
        self.wait_caught_up(leader, node)
        code, _, body = request(leader.http, "POST", "/v1/members/%d/promote" % node.id)
        self.assertEqual(code, 200, body)

    def add_voter(self, leader, node):
        code, _, body = self.add(leader, node, "voter")
        if code == 503 and (body or {}).get("error") == "aborted":
            # The leader heard no quorum of the new configuration in time
            # (the new voter's first fsyncs are slow on a loaded machine)
            # and stepped down: the entry may still commit, once it leads
            # again with the new voter's vote.  Why docs/operations.md
            # advises a learner first.
            nodes = [n for n in self.nodes.values() if n.alive()]
            wait_until("node %d a voter" % node.id, lambda: self.roles(
                self.leader_of(nodes)).get(node.id) == "voter")
            return
        self.assertEqual(code, 200, body)

    def roles(self, node):
        return {m["id"]: m["role"] for m in request(node.http, "GET", "/v1/members")[2]["members"]}

    def check_everyone_applies(self, nodes, key, value):
        self.put_via_any(nodes, key, value)
        for n in nodes:
            wait_until("node %d applying %s" % (n.id, key), lambda n=n: (try_request(
                n.http, "GET", "/v1/kv/%s?consistency=stale" % key)[2] or {}).get("value") == value)
            self.assertEqual((n.status() or {}).get("cluster_id"), nodes[0].status()["cluster_id"])

    def grow_to_three(self, add, member_of_leader):
        """1 -> 2 -> 3, each joiner named the leader with --member or not."""
        first = self.lone()
        members = [first]
        for node_id in (2, 3):
            leader = self.leader_of(members)
            j = self.joiner(node_id, *([leader] if member_of_leader else []))
            add(leader, j)
            members.append(j)
            self.assertEqual(self.roles(self.leader_of(members))[node_id], "voter")
        everyone = members
        self.check_everyone_applies(everyone, "grown", "3")
        # Every node knows every member's addresses: a new leader works too.
        for n in everyone:
            wait_until("node %d knowing 3 members" % n.id,
                       lambda n=n: len((n.status() or {}).get("members", [])) == 3)
        leader = self.leader_of(everyone)
        if leader.id != 3:
            code, _, body = request(leader.http, "POST", "/v1/leader/transfer", {"to": 3})
            self.assertEqual(code, 200, body)
            self.assertEqual(self.leader_of(everyone).id, 3)
        self.check_everyone_applies(everyone, "after_transfer", "4")

    def wait_not_leading(self, node):
        wait_until("node %d to stop leading" % node.id,
                   lambda: (node.status() or {}).get("role") not in (None, "leader"))

    def stays_leader(self, leader, ticks):
        """Waits until `leader` has ticked `ticks` more times (several election
        timeouts), failing if it ever stopped leading or changed term."""
        before = leader.status()
        self.assertEqual(before["role"], "leader")

        def ticked():
            s = leader.status()
            self.assertEqual((s["role"], s["term"]), ("leader", before["term"]))
            return s["timer_wakeups"] >= before["timer_wakeups"] + ticks
        wait_until("node %d ticking %d times" % (leader.id, ticks), ticked)


class GrowTest(JoinCase):
    def test_grow_1_2_3_as_voters_joiners_without_member(self):
        self.grow_to_three(self.add_voter, member_of_leader=False)

    def test_grow_1_2_3_as_learners_then_promoted_joiners_without_member(self):
        self.grow_to_three(self.add_learner_then_promote, member_of_leader=False)

    def test_grow_1_2_3_as_voters_joiners_naming_the_leader(self):
        self.grow_to_three(self.add_voter, member_of_leader=True)

    def test_grow_1_2_3_as_learners_then_promoted_joiners_naming_the_leader(self):
        self.grow_to_three(self.add_learner_then_promote, member_of_leader=True)

    def test_joiner_naming_a_follower_only_catches_up_from_the_leader(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        self.put_via_any(nodes, "x", "1")
        follower = [n for n in nodes if n is not leader][0]
        fourth = self.joiner(4, follower)
        self.add_learner_then_promote(leader, fourth)
        self.check_everyone_applies(nodes + [fourth], "y", "2")
        fifth = self.joiner(5, follower)
        self.add_voter(leader, fifth)
        self.check_everyone_applies(nodes + [fourth, fifth], "z", "3")


class FailedAddTest(JoinCase):
    def test_voter_never_started_wedges_one_node_until_it_is_started_then_removed(self):
        first = self.lone()
        ghost = self.node(2)  # its process is not started yet
        code, _, body = self.add(first, ghost, "voter", timeout=30.0)
        self.assertNotEqual(code, 200, body)  # no quorum of {1, 2} can commit it
        self.wait_not_leading(first)
        self.assertNotEqual(try_request(first.http, "PUT", "/v1/kv/k", {"value": "v"})[0], 200)
        # docs/operations.md, "When an add goes wrong": start the joiner.
        ghost.start("--join")
        both = [first, ghost]
        # 429 busy until the new leader's first entry is committed.  Asked of
        # whichever node leads at each attempt: on a loaded machine the two
        # may trade leadership before the removal commits.
        unanswered = []

        def removed():
            code = try_request(self.leader_of(both).http, "DELETE", "/v1/members/2",
                               timeout=10.0)[0]
            if code is None:
                unanswered.append(1)
            # 404 only after an attempt whose answer was lost: it removed node 2.
            return code == 200 or (code == 404 and unanswered)
        wait_until("the removal of node 2", removed)
        self.assertNotIn(2, self.roles(first))
        leader = self.leader_of([first])
        self.assertEqual(self.put(first.http, "k", "after")[0], 200)
        wait_until("single mode", lambda: (first.status() or {}).get("mode") == "single")

    def test_voter_never_started_then_force_new_cluster_on_the_survivor(self):
        first = self.lone()
        ghost = self.node(2)
        code, _, body = self.add(first, ghost, "voter", timeout=30.0)
        self.assertNotEqual(code, 200, body)
        self.wait_not_leading(first)
        first.kill(rt.signal.SIGTERM)
        first.start("--force-new-cluster")
        self.wait_ready(first)
        self.assertEqual(self.roles(first), {1: "voter"})
        self.assertEqual(request(first.http, "GET", "/v1/kv/before")[2]["value"], "1")
        self.assertEqual(self.put(first.http, "k", "after")[0], 200)

    def test_voter_never_started_in_three_nodes_is_removed_at_once(self):
        nodes = self.start_cluster(3)
        leader = self.leader_of(nodes)
        ghost = self.node(4)
        self.add_voter(leader, ghost)  # 3 of 4 voters answer: a quorum
        leader = self.leader_of(nodes)
        code, _, body = request(leader.http, "DELETE", "/v1/members/4")
        self.assertEqual(code, 200, body)
        self.check_everyone_applies(nodes, "k", "v")

    def test_leader_keeps_leading_while_a_learner_that_is_down_is_added(self):
        first = self.lone()
        ghost = self.node(2)
        code, _, body = self.add(first, ghost, "learner")
        self.assertEqual(code, 200, body)
        self.assertEqual(first.status()["mode"], "cluster")
        # Election timeouts are 150-300 ms, ticks 50 ms: 30 ticks are 5 of them at least.
        self.stays_leader(first, 30)
        self.assertEqual(self.put(first.http, "k", "v")[0], 200)
        code, _, body = request(first.http, "DELETE", "/v1/members/2")
        self.assertEqual(code, 200, body)
        wait_until("single mode", lambda: (first.status() or {}).get("mode") == "single")

    def test_a_node_of_another_cluster_added_as_learner_changes_nothing(self):
        first = self.lone()
        other = self.node(2).start()  # not --join: a lone cluster of its own
        self.wait_ready(other)
        code, _, body = self.add(first, other, "learner")
        self.assertEqual(code, 200, body)
        wait_until("node 2 refusing node 1's cluster", lambda: rt.metric(
            other.http, "keel_peer_messages_rejected_total", 'reason="cluster_id"') > 0)
        self.stays_leader(first, 30)
        self.assertEqual(self.roles(other), {2: "voter"})
        code, _, body = request(first.http, "DELETE", "/v1/members/2")
        self.assertEqual(code, 200, body)
        self.assertEqual(self.put(first.http, "k", "v")[0], 200)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rt.RAFTD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
