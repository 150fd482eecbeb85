// keel/host.hpp — many Raft groups in one process, sharing its services.
//
//   auto host = keel::Host::open(host_options);
//   auto orders = host.value()->open_group(1, options, std::make_shared<Orders>());
//   auto stock = host.value()->open_group(2, options, std::make_shared<Stock>());
//   orders.value()->propose("...").get();
//
// A Host is what one process gives every group it serves: one WAL (every
// group's entries and hard state, one write and one fdatasync per batch
// whatever the groups: docs/groups.md, "One WAL per process"), one
// transport (messages carry their group's id), one I/O thread, one
// background thread, a few apply threads (apply_threads) that apply for
// every group, and one thread for every group's observer.  Each group is a
// keel::Node: the same calls (propose, reads, membership, leadership
// transfer, snapshots, status), its own state machine and snapshots; its
// applies and its observer's callbacks run on the shared threads, in its
// order and one at a time, as on threads of its own (keel/state_machine.hpp,
// keel/observer.hpp).  A group's members are
// processes, named by their NodeId on the process's transport; a group may
// have any subset of the processes as members.
//
// The transport is keel's TCP one (HostOptions::listen_address: one
// connection to each peer process whatever the number of groups, the
// cluster's id in every hello, mutual TLS or loopback, as keel::Node's) or
// the application's (HostOptions::transport).  With keel's, the Host's
// processes are HostOptions::peers when it opens, and add_peer/remove_peer
// change them while it runs; a group's members must be among them, at the
// addresses the Host has for them (open_group and add_member refuse
// anything else with invalid_argument): the Host dials its peers, whatever
// a group's log says their addresses are.  docs/groups.md, "keel's TCP
// transport in a Host".
//
// keel::Node::open is unchanged: a process with one group and a WAL of its
// own, in the data dir layout it always had.
//
// Threads: open_group, open_groups, status, add_peer, remove_peer, peers and stop from
// any thread but a keel callback;
// the groups' calls as keel::Node's.  A callback (a proposer's, an
// observer's, a state machine's) must not wait for another group's apply
// or event: the threads are shared, and a wait there could hold the one
// thread that would answer it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keel/node.hpp"
#include "keel/options.hpp"
#include "keel/transport.hpp"

namespace keel {

struct HostOptions {
    // Created if missing.  The shared WAL is data_dir/wal; group G keeps its
    // snapshots and cluster id in data_dir/groups/G unless its options name
    // another data dir.
    std::string data_dir;
    // The application's transport, shared by every group
    // (keel/transport.hpp); a group's members' raft_address is whatever it
    // understands.  Null: keel's TCP transport if listen_address is set,
    // else none (the groups have no peers: each must be a lone voter).
    // Not together with listen_address.
    std::shared_ptr<Transport> transport;

    // ---- keel's TCP transport (transport null, listen_address set) ----
    // This process on the cluster's transport: > 0, and every group's
    // NodeOptions::id.
    NodeId id = 0;
    // "host:port" where the Raft port listens (as NodeOptions::listen_address;
    // port 0: any free one).  This process's address in every group's
    // membership: a group member with this id must have this raft_address
    // (with port 0, the listen host and the port bound).
    std::string listen_address;
    // The other processes of the cluster: id -> "host:port" where each one's
    // Raft port listens, when the Host opens (Host::add_peer and remove_peer
    // change them later); a group member with an id listed here must have
    // this raft_address, and no group may have a member that is neither
    // here nor this process.
    std::map<NodeId, std::string> peers;
    // The cluster's id, 32 hex digits, kept in data_dir/cluster_id and sent
    // in every hello; all the Host's groups belong to it (a group's own
    // NodeOptions::cluster_id must be empty or this).  Empty: the stored
    // one; a Host without peers creates a random one on its first start; a
    // Host with peers needs it set on its first start (the same on each).
    std::string cluster_id;
    // The Raft port's security, exactly as NodeOptions' fields of the same
    // names: plain TCP only while listen_address and every peer are
    // loopback, unless peer_insecure says so; else mutual TLS.  A group's
    // own listen_address, peer_tls and peer_insecure must be unset.
    PeerTls peer_tls;
    bool peer_insecure = false;
    // Where the transport and the Host report (NodeOptions::logger's
    // contract).  Default: stderr for warn/error.
    std::function<void(LogLevel, const std::string&)> logger;

    // The shared WAL's (NodeOptions' fields of the same names).
    std::uint64_t wal_segment_bytes = 64ull << 20;
    bool wal_direct_io = true;
    // The largest entry any group may write (a group's own
    // NodeOptions::max_entry_bytes may only be smaller).
    std::size_t max_entry_bytes = 64 << 20;
    // Threads that apply committed entries for every group (at most
    // kMaxHostApplyThreads).  A group's applies run on one of them at a
    // time; a group with a slow state machine holds up one thread while it
    // applies, so more threads keep others going meanwhile.  They run under
    // SCHED_BATCH (sched(7)), as the shared WAL's flusher does: woken, they
    // wait for the running thread's slice rather than preempt it
    // (docs/groups.md, "Threads").
    std::size_t apply_threads = 2;
};

inline constexpr std::size_t kMaxHostApplyThreads = 64;

// One group of Host::open_groups: what Host::open_group takes.
struct GroupToOpen {
    GroupId group = 0;
    NodeOptions options;
    std::shared_ptr<StateMachine> state_machine;
};

// The most groups Host::open_groups opens at once (threads of the call).
inline constexpr std::size_t kOpenGroupsConcurrencyMax = 32;

// The process's shared WAL, for monitoring.
struct HostStatus {
    std::uint64_t groups = 0;  // open now
    std::uint64_t wal_segments = 0;
    std::uint64_t wal_bytes = 0;
    std::uint64_t wal_fsyncs = 0;
    std::uint64_t wal_records = 0;
    double wal_records_per_fsync = 0;
    // Batches (one write and one fdatasync) that made writes of more than
    // one group durable.
    std::uint64_t wal_shared_batches = 0;
    // Peer input refused before any group saw it, by reason: a connection
    // refused at its hello (another cluster, a malformed frame, a failed
    // TLS handshake: transport/rejection.hpp's names), or bytes for a group
    // this process does not serve ("unknown_group").
    std::map<std::string, std::uint64_t> peer_rejections;
    // Expiries of the process's timers: its one tick timer (every group's
    // ticks ride on it) and the liveness rounds' (about one per ping
    // interval, a quarter of the election timeout): what the process pays for timers,
    // whatever the number of groups.  Each group's own ticks are its
    // NodeStatus::timer_wakeups.
    std::uint64_t timer_wakeups = 0;
    // Host liveness (quiescence on; docs/groups.md "Quiescence and
    // liveness"), since start: peer processes this process declared down
    // (each verdict counted once, when the peer goes from up to down);
    // the time between two liveness rounds of this process (one ping
    // interval, a quarter of the election timeout, when on time and no
    // peer is down; a heartbeat interval while one is); and the
    // time between two pings received from the same peer (how late a busy
    // or stalled peer's heartbeat arrives).  Maxima in microseconds.
    std::uint64_t peer_down_verdicts = 0;
    LatencyHistogram liveness_round_gap;
    std::uint64_t liveness_round_gap_us_max = 0;
    LatencyHistogram liveness_ping_gap;
    std::uint64_t liveness_ping_gap_us_max = 0;
};

class Host {
public:
    // Opens the shared WAL (recovering every group's log in it) and starts
    // the I/O thread and the transport.  invalid_argument when the options
    // contradict each other (transport with listen_address; id 0 or peers
    // without listen_address; a peer with id 0, this id or no address; the
    // Raft port's security as Node::open checks it) or the cluster id does
    // not match the stored one; io_error when the port cannot be bound.
    static Result<std::unique_ptr<Host>> open(const HostOptions& options);
    // Stops the process's services.  REQUIRES: every group handle is gone.
    virtual ~Host() = default;

    // Opens group `group` (creating it on first start, as Node::open does)
    // with its own options and state machine.  options.transport must be
    // null or the Host's (the Host's is used); options.data_dir empty means
    // the Host's data_dir/groups/<group>; the WAL fields are the Host's.
    // With keel's TCP transport, invalid_argument unless options.id is the
    // Host's, options.cluster_id is empty or the Host's, the group's own
    // listen_address, peer_tls and peer_insecure are unset, and every
    // initial member is one of the Host's processes at its address (see
    // HostOptions::peers); the group's add_member refuses the same way.
    // busy when the group is open already.  The handle stops the group when
    // destroyed and must not outlive the Host.
    virtual Result<std::unique_ptr<Node>> open_group(GroupId group, NodeOptions options,
                                                     std::shared_ptr<StateMachine> sm) = 0;
    // Opens many groups, as open_group would open each, in a fraction of
    // the time (docs/groups.md, "Opening many groups").  Returns one result
    // per entry of `groups`, in their order: the group's handle, or why it
    // did not open (open_group's errors; busy for a group named twice in
    // the batch, the later entry).
    //
    // Each group opens or fails alone: a failure of one neither stops nor
    // closes the others (the caller destroys the handles it does not
    // want), and a group that failed is not open (it may be opened again,
    // in this process or after a restart).
    //
    // Crash safety.  The batch first creates the data dirs that do not
    // exist and makes them durable (one fsync of each parent directory for
    // the whole batch) before any group writes anything, so a group's
    // records in the WAL never outlive its directory.  Then each group
    // writes what open_group writes (its cluster id, its first entries and
    // hard state), in its own order: a crash at any instant leaves each
    // group as a crash during its open_group would, and a group that failed
    // as one that stopped: at most an empty data dir or one with its
    // cluster id only (its next open is a first start), or, when it failed
    // after its first records were durable, a group that reopens with them.
    //
    // Cost: up to kOpenGroupsConcurrencyMax groups open at once on threads
    // of the call, so that their first writes share the WAL's batches and
    // their files' fsyncs overlap; a lone voter's first election is waited
    // for once every group opened (open_group waits for each).
    // Threads: as open_group; blocks until every group opened or failed.
    virtual std::vector<Result<std::unique_ptr<Node>>> open_groups(
        std::vector<GroupToOpen> groups) = 0;
    virtual HostStatus status() const = 0;

    // ---- the peer processes, with keel's TCP transport ----
    // The Host reaches process `id` at `address` from now on: a group may
    // then have it as a member (add_member), and the groups that have it
    // already reach it.  Not kept across a restart: the application gives
    // the processes in HostOptions::peers again.  ok when `id` is a peer at
    // `address` already (a retry); invalid_argument without keel's TCP
    // transport, for id 0 or this Host's id, an empty address, an address
    // that is this Host's or another peer's, an address the Raft port's
    // security refuses (plain TCP and not loopback, without peer_insecure),
    // or an `id` that is a peer at another address (remove it first).
    virtual Status add_peer(NodeId id, const std::string& address) = 0;
    // The Host no longer reaches process `id` (its connection is closed).
    // not_found when it is not a peer; invalid_argument without keel's TCP
    // transport, or while an open group has it as a member (remove it from
    // every group first: a removal appended to a group's log counts).
    virtual Status remove_peer(NodeId id) = 0;
    // The peer processes now (id -> address); empty without keel's TCP
    // transport.
    virtual std::map<NodeId, std::string> peers() const = 0;
};

}  // namespace keel
