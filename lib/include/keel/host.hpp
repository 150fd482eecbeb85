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
// keel::Node::open is unchanged: a process with one group and a WAL of its
// own, in the data dir layout it always had.
//
// Threads: open_group, status and stop from any thread but a keel callback;
// the groups' calls as keel::Node's.  A callback (a proposer's, an
// observer's, a state machine's) must not wait for another group's apply
// or event: the threads are shared, and a wait there could hold the one
// thread that would answer it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "keel/node.hpp"
#include "keel/options.hpp"
#include "keel/transport.hpp"

namespace keel {

struct HostOptions {
    // Created if missing.  The shared WAL is data_dir/wal; group G keeps its
    // snapshots and cluster id in data_dir/groups/G unless its options name
    // another data dir.
    std::string data_dir;
    // The process's transport, shared by every group (keel/transport.hpp);
    // a group's members' raft_address is whatever it understands.  Null:
    // the groups have no peers (each must be a lone voter).  keel's TCP
    // transport is not offered for a Host yet (docs/groups.md).
    std::shared_ptr<Transport> transport;
    // The shared WAL's (NodeOptions' fields of the same names).
    std::uint64_t wal_segment_bytes = 64ull << 20;
    bool wal_direct_io = true;
    // The largest entry any group may write (a group's own
    // NodeOptions::max_entry_bytes may only be smaller).
    std::size_t max_entry_bytes = 64 << 20;
    // Threads that apply committed entries for every group (at most
    // kMaxHostApplyThreads).  A group's applies run on one of them at a
    // time; a group with a slow state machine holds up one thread while it
    // applies, so more threads keep others going meanwhile.
    std::size_t apply_threads = 2;
};

inline constexpr std::size_t kMaxHostApplyThreads = 64;

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
    // Expiries of the process's one tick timer (every group's ticks and the
    // liveness pings ride on it): what the process pays for timers, whatever
    // the number of groups.  Each group's own ticks are its
    // NodeStatus::timer_wakeups.
    std::uint64_t timer_wakeups = 0;
};

class Host {
public:
    // Opens the shared WAL (recovering every group's log in it) and starts
    // the I/O thread and the transport.
    static Result<std::unique_ptr<Host>> open(const HostOptions& options);
    // Stops the process's services.  REQUIRES: every group handle is gone.
    virtual ~Host() = default;

    // Opens group `group` (creating it on first start, as Node::open does)
    // with its own options and state machine.  options.transport must be
    // null or the Host's (the Host's is used); options.data_dir empty means
    // the Host's data_dir/groups/<group>; the WAL fields are the Host's.
    // busy when the group is open already.  The handle stops the group when
    // destroyed and must not outlive the Host.
    virtual Result<std::unique_ptr<Node>> open_group(GroupId group, NodeOptions options,
                                                     std::shared_ptr<StateMachine> sm) = 0;
    virtual HostStatus status() const = 0;
};

}  // namespace keel
