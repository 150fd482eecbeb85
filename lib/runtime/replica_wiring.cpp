// What the WAL calls back (its batches, its health; the transport's
// handlers are in replica_peers.cpp).  Each callback records its news or
// takes the core lock (with_core); none blocks its caller's thread longer
// than that.
#include <algorithm>
#include <cstdio>

#include "runtime/replica.hpp"

namespace keel::runtime {

wal::Options Replica::wal_options(wal::FileSystem* fs) {
    wal::Options wo;
    wo.fs = fs;
    wo.segment_bytes = options_.wal_segment_bytes;
    wo.write_path = options_.wal_direct_io ? wal::WritePath::automatic : wal::WritePath::buffered;
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

}  // namespace keel::runtime
