// What the replica's services call back: the WAL (its batches, its health)
// and the transport (messages, snapshots, peers).  Each callback records
// its news or takes the core lock (with_core); none blocks its caller's
// thread longer than that.
#include <algorithm>
#include <cstdio>

#include "runtime/replica.hpp"

namespace keel::runtime {

wal::Options Replica::wal_options(wal::FileSystem* fs) {
    wal::Options wo;
    wo.fs = fs;
    wo.segment_bytes = options_.wal_segment_bytes;
    wo.max_record_bytes = std::max<std::uint64_t>(options_.max_entry_bytes, 1 << 20);
    // The per-write callbacks only record progress; one commit per group
    // commit, so entries fsynced together are applied (and their proposers'
    // next proposals appended) together.
    wo.after_batch = [this] { on_wal_batch_done(); };
    // A failure or a full disk (and space coming back): settled under the
    // core lock like any other progress.
    wo.on_health_change = [this] {
        wal_health_pending_.store(true);
        if (running_.load()) kick_core();
    };
    // The core keeps the log in memory; the WAL is read at open only.
    wo.cache_bytes = 0;
    return wo;
}

// Transport handlers run on the I/O thread.
PeerTransport::Handlers Replica::transport_handlers() {
    PeerTransport::Handlers h;
    h.on_message = [this](raft::Message m) { on_message(m); };
    h.on_unreachable = [this](raft::NodeId peer) {
        with_core([this, peer] {
            if (shut_down_) return;
            core_->report_unreachable(peer);
            run_core();
        });
    };
    // Read whole against its checksums off the I/O thread first.
    h.on_snapshot = [this](raft::Message m, std::string path) {
        auto task = [this, m = std::move(m), path]() mutable {
            verify_received_snapshot(std::move(m), std::move(path));
        };
        if (!background_->submit(std::move(task))) std::remove(path.c_str());
    };
    h.on_snapshot_sent = [this](raft::NodeId to, bool ok) {
        with_core([this, to, ok] {
            if (shut_down_) return;
            outgoing_snapshot_.erase(to);
            core_->report_snapshot(to, ok);
            run_core();
        });
    };
    return h;
}

}  // namespace keel::runtime
