// runtime/host.hpp — keel::Host as the runtime builds it: one
// ProcessServices (process_services.hpp) with its shared WAL and its
// transport (the application's, or keel's TCP one made from the Host's
// options: host_peers.hpp), and the groups (replica.hpp) opened on it, each
// behind a handle that stops and closes it.
//
// Owns: the services (and through them the WAL and the transport), the
// counts of peer input refused before any group saw it.  The groups belong
// to their handles, which must go before the Host.
// Threads: as keel::Host.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <set>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/host.hpp"
#include "runtime/host_peers.hpp"
#include "runtime/process_services.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class Replica;

class HostImpl final : public Host {
public:
    // Host::open.  `fs`: where the WAL and the groups' files live (null:
    // the POSIX file system; tests inject faults).  Must outlive the Host.
    static Result<std::unique_ptr<HostImpl>> open(const HostOptions& options,
                                                  wal::FileSystem* fs = nullptr);
    ~HostImpl() override;

    Result<std::unique_ptr<Node>> open_group(GroupId group, NodeOptions options,
                                             std::shared_ptr<StateMachine> sm) override;
    // host_open_groups.cpp.
    std::vector<Result<std::unique_ptr<Node>>> open_groups(
        std::vector<GroupToOpen> groups) override;
    HostStatus status() const override;
    Status add_peer(NodeId id, const std::string& address) override EXCLUDES(change_mu_);
    Status remove_peer(NodeId id) override EXCLUDES(change_mu_);
    std::map<NodeId, std::string> peers() const override EXCLUDES(processes_mu_);

    // Tests: the services, and the groups' transport.
    ProcessServices& services() { return *services_; }
    const std::shared_ptr<Transport>& transport() const { return transport_; }

private:
    class Group;
    HostImpl(HostOptions options, wal::FileSystem* fs);
    // keel's TCP transport: the cluster id, the transport started with the
    // Host's peers as its process peers, processes_ set.
    Status start_keel_tcp(wal::FileSystem& fs);
    // add_peer's checks (host.hpp), under processes_mu_.
    Status check_new_peer(NodeId id, const std::string& address) const REQUIRES(processes_mu_);
    // A new member of a group is one of the processes (host_peers.hpp).
    Status check_member(const MemberSpec& member) const EXCLUDES(processes_mu_);
    // Runs `f` on the I/O thread and waits for it (the transport's calls
    // belong there).  REQUIRES: not on the I/O thread.
    void on_io_and_wait(std::function<void()> f);
    void closed(GroupId group) EXCLUDES(mu_);
    // open_groups' steps (host_open_groups.cpp).  admit: open_group's
    // checks of one group, its options completed with the Host's, its id
    // reserved (open_) when ok.
    Status admit(GroupToOpen& group) EXCLUDES(processes_mu_, mu_);
    // Creates the data dirs of the groups whose status is ok and makes the
    // new ones durable; a group whose dir could not be made so fails.
    void make_data_dirs(const std::vector<GroupToOpen>& groups, std::vector<Status>& status);
    // The handle of an opened group (host.cpp).
    std::unique_ptr<Node> handle(std::unique_ptr<Replica> group);
    // Peer input refused before any group saw it (any thread).
    void count_rejection(std::string_view reason, std::string_view detail) EXCLUDES(rejected_mu_);
    void log(LogLevel level, const std::string& message) const;

    const HostOptions options_;
    wal::FileSystem* const fs_;
    std::unique_ptr<ProcessServices> services_;
    // With keel's TCP transport: its processes (the peers change at run
    // time: add_peer, remove_peer), and the cluster's id.
    mutable Mutex processes_mu_;
    std::optional<HostProcesses> processes_ GUARDED_BY(processes_mu_);
    transport::ClusterId cluster_id_;
    // Serialises add_peer and remove_peer: the processes and the
    // transport change together.
    Mutex change_mu_;
    // The groups' transport: the application's, keel's TCP one, or null.
    std::shared_ptr<Transport> transport_;
    mutable Mutex mu_;
    std::set<GroupId> open_ GUARDED_BY(mu_);
    mutable Mutex rejected_mu_;
    std::map<std::string, std::uint64_t, std::less<>> rejected_ GUARDED_BY(rejected_mu_);
};

}  // namespace keel::runtime
