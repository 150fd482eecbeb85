// keel::Host: the process's services with a shared WAL, and its groups'
// handles.  See host.hpp.
#include "runtime/host.hpp"

#include <utility>

#include <fmt/format.h>

#include "keel/assert.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/replica.hpp"
#include "runtime/replica_node.hpp"

namespace keel {

Result<std::unique_ptr<Host>> Host::open(const HostOptions& options) {
    auto host = runtime::HostImpl::open(options);
    if (!host.ok()) return host.status();
    return std::unique_ptr<Host>(std::move(host.value()));
}

}  // namespace keel

namespace keel::runtime {

// A group's handle: keel::Node's calls go to the group (replica_node.hpp);
// going, it stops the group and tells the Host.
class HostImpl::Group final : public ReplicaNode {
public:
    Group(HostImpl& host, std::unique_ptr<Replica> group) : host_(host), group_(std::move(group)) {}
    ~Group() override {
        const GroupId id = group_->group();
        group_->stop(false);
        group_.reset();  // its store leaves the shared WAL
        host_.closed(id);
    }

    void stop(bool transfer_leadership_first = false) override {
        group_->stop(transfer_leadership_first);
    }

private:
    Replica& replica() const override { return *group_; }

    HostImpl& host_;
    std::unique_ptr<Replica> group_;
};

HostImpl::HostImpl(HostOptions options, wal::FileSystem* fs)
    : options_(std::move(options)), fs_(fs), services_(std::make_unique<ProcessServices>()) {}

Result<std::unique_ptr<HostImpl>> HostImpl::open(const HostOptions& options, wal::FileSystem* fs) {
    if (options.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    if (options.apply_threads < 1 || options.apply_threads > kMaxHostApplyThreads)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("apply_threads must be in [1, {}]", kMaxHostApplyThreads));
    if (Status s = create_directories(options.data_dir); !s.ok()) return s;
    std::unique_ptr<HostImpl> host(new HostImpl(options, fs));
    wal::Options wo;
    wo.fs = fs;
    wo.segment_bytes = options.wal_segment_bytes;
    wo.write_path = options.wal_direct_io ? wal::WritePath::automatic : wal::WritePath::buffered;
    wo.max_record_bytes = std::max<std::uint64_t>(options.max_entry_bytes, 1 << 20) + 8;
    if (Status s = host->services_->open_wal(options.data_dir + "/wal", wo); !s.ok()) return s;
    if (options.transport) {
        if (Status s = host->services_->start_transport(options.transport, nullptr); !s.ok())
            return s;
    }
    host->services_->start_pools(options.apply_threads);
    host->services_->start_io();
    return host;
}

HostImpl::~HostImpl() {
    {
        MutexLock lock(mu_);
        KEEL_ASSERT(open_.empty(), "a group handle outlives its Host");
    }
    services_->stop();
}

Result<std::unique_ptr<Node>> HostImpl::open_group(GroupId group, NodeOptions options,
                                                   std::shared_ptr<StateMachine> sm) {
    if (options.transport && options.transport != options_.transport)
        return Status(ErrorCode::invalid_argument,
                      "a group of a Host uses the Host's transport (NodeOptions::transport)");
    if (options.max_entry_bytes > options_.max_entry_bytes)
        return Status(ErrorCode::invalid_argument,
                      "NodeOptions::max_entry_bytes is larger than the Host's");
    if (options.data_dir.empty())
        options.data_dir = fmt::format("{}/groups/{}", options_.data_dir, group);
    options.transport = options_.transport;
    {
        MutexLock lock(mu_);
        if (!open_.insert(group).second)
            return Status(ErrorCode::busy, fmt::format("group {} is open already", group));
    }
    auto replica = Replica::open_group(options, std::move(sm), *services_, group, fs_);
    if (!replica.ok()) {
        closed(group);
        return replica.status();
    }
    return std::unique_ptr<Node>(new Group(*this, std::move(replica.value())));
}

void HostImpl::closed(GroupId group) {
    MutexLock lock(mu_);
    open_.erase(group);
}

HostStatus HostImpl::status() const {
    HostStatus s;
    {
        MutexLock lock(mu_);
        s.groups = open_.size();
    }
    SharedWal& shared = *services_->wal();
    const wal::Stats w = shared.wal().stats();
    s.wal_segments = w.segments;
    s.wal_bytes = w.disk_bytes;
    s.wal_fsyncs = w.fsyncs;
    s.wal_records = w.records_written;
    s.wal_records_per_fsync = w.records_per_fsync();
    s.wal_shared_batches = shared.shared_batches();
    s.timer_wakeups = services_->clock().wakeups();
    return s;
}

}  // namespace keel::runtime
