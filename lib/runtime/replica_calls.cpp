// Node's public calls besides propose (write_path.cpp): validated on the
// caller's thread, then run under the core lock (or posted to the I/O thread
// when called from a callback that runs under it).
#include "runtime/member_context.hpp"
#include "runtime/peer_security.hpp"
#include "runtime/replica.hpp"
#include "runtime/snapshot_file.hpp"

namespace keel::runtime {

void Replica::run_or_post(std::function<void()> f) {
    if (holding_core()) {
        post([this, f = std::move(f)] { with_core(f); });
    } else {
        with_core(f);
    }
}

void Replica::read_index_async(bool wait_applied, std::function<void(ReadResult)> done) {
    if (stopping()) return done(ReadResult{Status(ErrorCode::aborted, "node stopped"), 0, 0});
    run_or_post([this, wait_applied, done = std::move(done)]() REQUIRES(core_lock_) mutable {
        if (halted()) return done(ReadResult{Status(ErrorCode::aborted, "node stopped"), 0, 0});
        if (locked_.reads.size() >= options_.max_pending_reads)
            return done(ReadResult{Status(ErrorCode::busy, "too many pending reads"), 0, 0});
        const std::uint64_t id = locked_.reads.add(wait_applied, std::move(done));
        if (Status s = core_->read_index(id); !s.ok()) locked_.reads.fail(id, s, core_->leader());
        run_core();
    });
}

void Replica::propose_config(raft::ConfigChange change, std::function<void(Status)> done) {
    if (stopping()) return done(Status(ErrorCode::aborted, "node stopped"));
    if (health_.no_space_causes.load() != 0)
        return done(Status(ErrorCode::no_space, "storage is full: writes are refused"));
    run_or_post(
        [this, change = std::move(change), done = std::move(done)]() REQUIRES(core_lock_) mutable {
            if (halted()) return done(Status(ErrorCode::aborted, "node stopped"));
            auto r = core_->propose_config_change(change);
            if (!r.ok()) {
                return announcer_.complete_after_events(
                    [done = std::move(done), s = r.status()]() mutable { done(std::move(s)); });
            }
            inbox_.pending().fetch_add(1, std::memory_order_relaxed);
            locked_.proposals.add(PendingProposal{
                r->index, r->term,
                [done = std::move(done)](ProposeResult pr) { done(std::move(pr.status)); }, 0});
            run_core();
        });
}

void Replica::add_member_async(const MemberSpec& member, std::function<void(Status)> done) {
    if (Status s = validate_member(member); !s.ok()) return done(s);
    if (Status s = check_new_member_address(options_, member.raft_address); !s.ok()) return done(s);
    raft::ConfigChange c;
    c.kind =
        member.voter ? raft::ConfigChange::Kind::add_voter : raft::ConfigChange::Kind::add_learner;
    c.node = member.id;
    c.context = encode_member_context(member);
    propose_config(std::move(c), std::move(done));
}

void Replica::promote_member_async(NodeId id, std::function<void(Status)> done) {
    raft::ConfigChange c;
    c.kind = raft::ConfigChange::Kind::promote;
    c.node = id;
    propose_config(std::move(c), std::move(done));
}

void Replica::remove_member_async(NodeId id, std::function<void(Status)> done) {
    raft::ConfigChange c;
    c.kind = raft::ConfigChange::Kind::remove;
    c.node = id;
    propose_config(std::move(c), std::move(done));
}

void Replica::transfer_leadership_async(NodeId to, std::function<void(Status)> done) {
    if (stopping()) return done(Status(ErrorCode::aborted, "node stopped"));
    run_or_post([this, to, done = std::move(done)]() REQUIRES(core_lock_) mutable {
        if (halted()) return done(Status(ErrorCode::aborted, "node stopped"));
        if (locked_.transfer)
            return done(Status(ErrorCode::busy, "a transfer is already under way"));
        if (Status s = core_->transfer_leadership(to); !s.ok()) return done(s);
        // Bounded: two maximal election timeouts.
        const std::uint64_t ticks =
            2 * (options_.election_timeout_max_ms / options_.heartbeat_interval_ms + 1);
        locked_.transfer = PendingTransfer{to, std::move(done), ticks};
        run_core();
    });
}

Result<std::unique_ptr<SnapshotFileSource>> Replica::open_latest_snapshot() {
    // The store may delete the newest file's predecessor between latest()
    // and the open (a newer snapshot came): then the next latest() has it.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::optional<SnapshotFile> latest = snapshots_->latest();
        if (!latest)
            return Status(ErrorCode::not_found, "this node has no snapshot yet: take one first");
        auto source =
            open_snapshot_source(snapshots_->file_system(), *latest, snapshots_->pin(*latest));
        if (source.ok() || source.status().code() != ErrorCode::not_found) return source;
    }
    return Status(ErrorCode::busy, "the snapshots changed while the latest was opened; try again");
}

void Replica::snapshot_async(std::function<void(Status)> done) {
    if (stopping()) return done(Status(ErrorCode::aborted, "node stopped"));
    ApplySnapshot request;
    request.done = std::move(done);
    apply_->enqueue(std::move(request));
}

}  // namespace keel::runtime
