// keel/options.hpp — how to create or reopen a node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keel/status.hpp"

namespace keel {

using NodeId = std::uint64_t;

class Observer;   // keel/observer.hpp
class Transport;  // keel/transport.hpp

// A member of the cluster as the application names it.
struct MemberSpec {
    NodeId id = 0;             // > 0, unique in the cluster
    std::string raft_address;  // "host:port" where its Raft transport listens
    std::string metadata;      // opaque to keel, replicated with the membership (raftd
                               // keeps the member's HTTP address here); at most 3,831
                               // bytes, so that address and metadata fit in 4 KiB
    bool voter = true;         // false: learner
};

enum class LogLevel { debug, info, warn, error };

// Mutual TLS between members (docs/operations.md, "Security"): every
// connection between two members is TLS 1.3, and each side presents its
// certificate and verifies the other's against ca_file.  A peer without a
// certificate signed by that CA is refused before it can say anything.
// PEM files, read once by Node::open (which fails if one is unreadable, the
// key does not match, or the certificate is expired or not signed by the
// CA).  All three or none.
struct PeerTls {
    std::string cert_file;  // this member's certificate (then any intermediates)
    std::string key_file;   // its private key, unencrypted
    std::string ca_file;    // the CA every member's certificate chains to

    bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

struct NodeOptions {
    NodeId id = 1;
    std::string data_dir;        // created if missing; holds the WAL, metadata, snapshots
    std::string listen_address;  // "host:port" for the Raft transport; port 0 = any

    // Bootstrap: the founding members of a new cluster (this node included).
    // Used only when data_dir holds no state yet; ignored afterwards, since
    // membership then comes from the log.  Empty + join=false: a single-node
    // cluster of this node alone.
    std::vector<MemberSpec> initial_members;
    // Start with an empty log and wait to be added by the cluster's leader.
    // The node learns the cluster from that leader: its id (cluster_id, if
    // unset), its address (from the hello of the leader's connection, so
    // that this node can answer it), then the members from the log.
    // initial_members may list existing members (with their raft_address),
    // any of them, or none; they are not a bootstrap configuration.
    bool join = false;

    // Disaster recovery, when a majority of the members is lost for good:
    // at open this node keeps its data and becomes the only voter of a new
    // configuration, written to its own log in a new term before anything
    // else runs (as etcd's --force-new-cluster).  Everything in its log is
    // then committed, also entries the old cluster had not committed.  Needs
    // a data dir that holds state; refused on a first start and with join.
    // For one start only (a later start with it set adds another such entry,
    // harmlessly).  The old members must never come back with their old
    // data: empty their data dirs and add them again as new members.
    bool force_new_cluster = false;

    // The cluster's id, 32 hex digits (docs/operations.md, "Cluster
    // identity").  Empty: the one stored in data_dir; a lone founding member
    // creates a random one at bootstrap, a joiner learns it from the leader
    // that adds it.  Set: it must equal the stored one; a data dir that has
    // none is given this one.  Required to bootstrap several founding
    // members (the same on each), and for a data dir that holds a log but
    // no id (written by a keel from before cluster ids).  A joiner given one
    // accepts only that cluster.
    std::string cluster_id;

    // How this node reaches the other members.  Null: keel's TCP transport,
    // listening at listen_address, with the security below.  Set: the
    // application's own (keel/transport.hpp says what it must do that the
    // TCP transport does: authenticate members, keep strangers out);
    // listen_address, peer_tls and peer_insecure are then ignored, and each
    // member's raft_address is whatever the transport understands.  One
    // transport per node.
    std::shared_ptr<Transport> transport;

    // Security of the Raft port.  Plain TCP while peer_tls is not set,
    // which Node::open allows only while listen_address and every member's
    // address are loopback: otherwise it fails, unless peer_insecure says
    // so explicitly (logged as a warning), and add_member refuses a
    // non-loopback member.
    PeerTls peer_tls;
    bool peer_insecure = false;

    // Timing.  Only armed in cluster mode: a lone voter runs no timer at all.
    std::uint32_t heartbeat_interval_ms = 50;
    std::uint32_t election_timeout_min_ms = 150;
    std::uint32_t election_timeout_max_ms = 300;
    bool pre_vote = true;
    bool check_quorum = true;
    // Quiescence (docs/groups.md, "Quiescence and liveness"): an idle group
    // stops heartbeating and ticking; its process pings each peer process
    // every quarter of election_timeout_max_ms (at least every heartbeat
    // interval) instead, and declares one down after
    // election_timeout_max_ms of silence, which wakes the groups it led.
    // Every group of a process with it on must have the same id.
    bool quiesce = false;

    // Snapshots: take one every this many applied entries (0 = only on request).
    // Between snapshots a cluster member keeps the log after the last one in
    // memory; a node alone (no other member) keeps only entries not yet
    // applied, and takes a snapshot when a member joins and needs it.  The
    // WAL's files are reclaimed only behind a snapshot, whatever the mode.
    std::uint64_t snapshot_every_entries = 10000;
    // Entries kept in the log behind a snapshot for slightly lagging followers.
    std::uint64_t snapshot_trailing_entries = 1024;

    // Limits (backpressure: past them calls answer "busy" at once).
    // Proposals accepted and not yet committed; committed ones wait for the
    // apply thread under max_apply_queue_entries.
    std::size_t max_pending_proposals = 65536;
    std::size_t max_pending_reads = 65536;
    std::size_t max_entry_bytes = 64 << 20;
    std::size_t max_apply_queue_entries = 65536;

    // Inline apply: a small committed batch, predicted from measured apply
    // times to be quick, is applied by the thread that committed it instead
    // of being handed to the apply thread, which saves the proposer a thread
    // wakeup: the WAL flusher in single-node mode (a batch predicted to take
    // about one write's time to durability at most), the I/O thread in
    // cluster mode (20 us at most; one that takes over 1 ms turns this off
    // on the I/O thread for the next 10,000 batches, with a warning, twice
    // as many after a second such batch, and for the node's lifetime at
    // the fourth: docs/runtime.md, "The cluster write path").  Off:
    // apply() always runs on the apply thread.  Turn it off for a state
    // machine whose apply time varies a lot from one batch to the next.
    bool inline_apply = true;

    // WAL segment size.
    std::uint64_t wal_segment_bytes = 64ull << 20;
    // The WAL writes with O_DIRECT|O_DSYNC where the file system accepts
    // O_DIRECT (probed at open), else through the page cache with
    // fdatasync; false: always the latter.  docs/wal.md, "Write paths".
    bool wal_direct_io = true;

    // Where keel reports what happens (one line per event).  Called from
    // keel's threads; must be thread-safe.  Default: stderr for warn/error.
    std::function<void(LogLevel, const std::string&)> logger;

    // Called once, on a keel thread, when the node fail-stops (a failed
    // write or fsync of data, never retried: NodeStatus::failure says why,
    // naming the file).  From then on every call fails; only a restart,
    // which reads the disk afresh, brings the node back.  Must not block
    // and must not call stop() (post to your own thread: raftd answers the
    // requests in flight, then exits with its storage-failure code).
    std::function<void(const Status& why)> on_failure;

    // Told of leadership, role, membership and snapshot changes, and of a
    // fail-stop, in order, on the node's event thread (keel/observer.hpp,
    // which says what is guaranteed).  Null: no event thread runs.
    std::shared_ptr<Observer> observer;
};

}  // namespace keel
