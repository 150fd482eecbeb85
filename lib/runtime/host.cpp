// keel::Host: the process's services with a shared WAL, and its groups'
// handles.  See host.hpp.
#include "runtime/host.hpp"

#include <bit>
#include <cstdio>
#include <future>
#include <utility>

#include <fmt/format.h>

#include "keel/assert.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/peer_security.hpp"
#include "runtime/replica.hpp"
#include "runtime/replica_node.hpp"
#include "transport/tcp_transport.hpp"

namespace keel {

Result<std::unique_ptr<Host>> Host::open(const HostOptions& options) {
    auto host = runtime::HostImpl::open(options);
    if (!host.ok()) return host.status();
    return std::unique_ptr<Host>(std::move(host.value()));
}

}  // namespace keel

namespace keel::runtime {

namespace {

// "host:0" with the port the transport bound; any other address as it is.
std::string bound_address(const std::string& listen_address, const Transport& transport) {
    const auto* tcp = dynamic_cast<const transport::TcpTransport*>(&transport);
    if (tcp == nullptr || !listen_address.ends_with(":0")) return listen_address;
    return listen_address.substr(0, listen_address.size() - 1) + std::to_string(tcp->bound_port());
}

}  // namespace

// A group's handle: keel::Node's calls go to the group (replica_node.hpp);
// going, it stops the group and tells the Host.  On keel's TCP transport a
// new member must be one of the Host's processes (host_peers.hpp).
class HostImpl::Group final : public ReplicaNode {
public:
    Group(HostImpl& host, std::unique_ptr<Replica> group) : host_(host), group_(std::move(group)) {}

    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override {
        if (Status s = host_.check_member(member); !s.ok()) return done(s);
        ReplicaNode::add_member_async(member, std::move(done));
    }
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
    : options_(std::move(options)),
      fs_(fs),
      services_(std::make_unique<ProcessServices>()),
      transport_(options_.transport) {}

Result<std::unique_ptr<HostImpl>> HostImpl::open(const HostOptions& options, wal::FileSystem* fs) {
    if (options.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    std::string warning;
    if (Status s = check_host_options(options, warning); !s.ok()) return s;
    if (options.apply_threads < 1 || options.apply_threads > kMaxHostApplyThreads)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("apply_threads must be in [1, {}]", kMaxHostApplyThreads));
    if (Status s = create_directories(options.data_dir); !s.ok()) return s;
    std::unique_ptr<HostImpl> host(new HostImpl(options, fs));
    if (!warning.empty()) host->log(LogLevel::warn, warning);
    wal::Options wo;
    wo.fs = fs;
    wo.segment_bytes = options.wal_segment_bytes;
    wo.write_path = options.wal_direct_io ? wal::WritePath::automatic : wal::WritePath::buffered;
    wo.max_record_bytes = std::max<std::uint64_t>(options.max_entry_bytes, 1 << 20) + 8;
    // Its wakeups do not preempt the I/O thread handing it the groups'
    // records (decision 0054).
    wo.flusher_sched_batch = true;
    if (Status s = host->services_->open_wal(options.data_dir + "/wal", wo); !s.ok()) return s;
    HostImpl& h = *host;
    auto on_rejected = [&h](std::string_view reason, std::string_view detail) {
        h.count_rejection(reason, detail);
    };
    if (options.transport) {
        // Each send() of an application's transport is a buffer and a
        // hand-off: many groups' messages to a peer go in one
        // (coalesced_frames.hpp; decision 0026).
        host->services_->router().set_coalescing(true);
        if (Status s = host->services_->start_transport(options.transport, on_rejected); !s.ok())
            return s;
    } else if (uses_keel_tcp(options)) {
        if (Status s = host->start_keel_tcp(fs != nullptr ? *fs : *wal::default_file_system());
            !s.ok())
            return s;
    }
    host->services_->start_pools(options.apply_threads);
    host->services_->start_io();
    return host;
}

Status HostImpl::start_keel_tcp(wal::FileSystem& fs) {
    auto cluster_id = host_cluster_id(options_, fs);
    if (!cluster_id.ok()) return cluster_id.status();
    cluster_id_ = cluster_id.value();
    ProcessTransportHooks hooks;
    hooks.on_rejected = [this](std::string_view reason, std::string_view detail) {
        count_rejection(reason, detail);
    };
    auto tcp = make_host_transport(services_->io(), options_, cluster_id_, std::move(hooks));
    if (!tcp.ok()) return tcp.status();
    std::shared_ptr<Transport> transport = std::move(tcp.value());
    auto on_rejected = [this](std::string_view reason, std::string_view detail) {
        count_rejection(reason, detail);
    };
    // One send() per peer per I/O pass instead of one per group: one write
    // to the socket for many groups' messages (decision 0026).
    services_->router().set_coalescing(true);
    if (Status s = services_->start_transport(transport, on_rejected, options_.peers); !s.ok())
        return s;
    HostProcesses p;
    p.self = options_.id;
    p.self_address = options_.listen_address;
    p.self_bound_address = bound_address(options_.listen_address, *transport);
    p.peers = options_.peers;
    {
        MutexLock lock(processes_mu_);
        processes_ = std::move(p);
    }
    transport_ = std::move(transport);
    return Status::ok_status();
}

Status HostImpl::check_member(const MemberSpec& member) const {
    MutexLock lock(processes_mu_);
    if (!processes_) return Status::ok_status();
    return processes_->check_member(member);
}

Status HostImpl::check_new_peer(NodeId id, const std::string& address) const {
    auto invalid = [](std::string what) {
        return Status(ErrorCode::invalid_argument, std::move(what));
    };
    if (!processes_)
        return invalid("peer processes are keel's TCP transport's (HostOptions::listen_address)");
    if (id == 0) return invalid("a peer process has an id > 0");
    if (id == processes_->self)
        return invalid(fmt::format("process {} is this Host, not a peer", id));
    if (address.empty()) return invalid(fmt::format("peer process {} needs an address", id));
    if (address == processes_->self_address || address == processes_->self_bound_address)
        return invalid(
            fmt::format("{} is this Host's Raft address, not process {}'s", address, id));
    for (const auto& [other, other_address] : processes_->peers) {
        if (other == id && other_address != address)
            return invalid(
                fmt::format("process {} is a peer at {} already, not '{}' (remove it first)", id,
                            other_address, address));
        if (other != id && other_address == address)
            return invalid(fmt::format("{} is process {}'s Raft address, not process {}'s", address,
                                       other, id));
    }
    return check_new_member_address(process_node_options(options_), address);
}

Status HostImpl::add_peer(NodeId id, const std::string& address) {
    MutexLock change(change_mu_);
    {
        MutexLock lock(processes_mu_);
        if (Status s = check_new_peer(id, address); !s.ok()) return s;
        if (processes_->peers.count(id) != 0) return Status::ok_status();  // a retry
        // Known before the transport dials it: a group may add it as soon
        // as this returns, and a group's check reads this map.
        processes_->peers[id] = address;
    }
    on_io_and_wait([this, id, &address] { services_->router().add_process_peer(id, address); });
    log(LogLevel::info, fmt::format("peer process {} at {} added", id, address));
    return Status::ok_status();
}

Status HostImpl::remove_peer(NodeId id) {
    MutexLock change(change_mu_);
    {
        MutexLock lock(processes_mu_);
        if (!processes_)
            return Status(
                ErrorCode::invalid_argument,
                "peer processes are keel's TCP transport's (HostOptions::listen_address)");
        if (processes_->peers.count(id) == 0)
            return Status(ErrorCode::not_found,
                          fmt::format("process {} is not a peer of this Host", id));
        // A group that has the member would lose its way to it.
        std::vector<GroupId> groups = services_->router().groups_with(id);
        if (!groups.empty())
            return Status(ErrorCode::invalid_argument,
                          fmt::format("group {} has process {} as a member: remove it from every "
                                      "group first",
                                      groups.front(), id));
        processes_->peers.erase(id);
    }
    on_io_and_wait([this, id] { services_->router().remove_process_peer(id); });
    log(LogLevel::info, fmt::format("peer process {} removed", id));
    return Status::ok_status();
}

std::map<NodeId, std::string> HostImpl::peers() const {
    MutexLock lock(processes_mu_);
    if (!processes_) return {};
    return processes_->peers;
}

void HostImpl::on_io_and_wait(std::function<void()> f) {
    KEEL_ASSERT(!services_->on_io_thread(), "a Host's peers change from outside keel's threads");
    std::promise<void> done;
    services_->post([&f, &done] {
        f();
        done.set_value();
    });
    done.get_future().wait();
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
    std::vector<GroupToOpen> one;
    one.push_back(GroupToOpen{group, std::move(options), std::move(sm)});
    return std::move(open_groups(std::move(one)).front());
}

std::unique_ptr<Node> HostImpl::handle(std::unique_ptr<Replica> group) {
    return std::unique_ptr<Node>(new Group(*this, std::move(group)));
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
    MutexLock lock(rejected_mu_);
    for (const auto& [reason, count] : rejected_) s.peer_rejections[reason] = count;
    const ProcessLiveness& liveness = services_->liveness();
    s.timer_wakeups = services_->clock().wakeups() + liveness.rounds();
    s.peer_down_verdicts = liveness.verdicts();
    s.liveness_round_gap = liveness.round_gaps();
    s.liveness_round_gap_us_max = liveness.round_gap_us_max();
    s.liveness_ping_gap = liveness.ping_gaps();
    s.liveness_ping_gap_us_max = liveness.ping_gap_us_max();
    return s;
}

void HostImpl::count_rejection(std::string_view reason, std::string_view detail) {
    std::uint64_t count = 0;
    {
        MutexLock lock(rejected_mu_);
        auto it = rejected_.find(reason);
        if (it == rejected_.end()) it = rejected_.emplace(std::string(reason), 0).first;
        count = ++it->second;
    }
    // A peer that keeps sending what we refuse gets a log line per doubling.
    if (std::has_single_bit(count))
        log(LogLevel::warn,
            fmt::format("peer refused ({}): {} [{} so far]", reason, detail, count));
}

void HostImpl::log(LogLevel level, const std::string& message) const {
    if (options_.logger) {
        options_.logger(level, message);
    } else if (level == LogLevel::warn || level == LogLevel::error) {
        std::fprintf(stderr, "keel-host[%llu] %s: %s\n",
                     static_cast<unsigned long long>(options_.id),
                     level == LogLevel::warn ? "warn" : "error", message.c_str());
    }
}

}  // namespace keel::runtime
