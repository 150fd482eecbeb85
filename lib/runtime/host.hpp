// runtime/host.hpp — keel::Host as the runtime builds it: one
// ProcessServices (process_services.hpp) with its shared WAL, and the groups
// (replica.hpp) opened on it, each behind a handle that stops and closes it.
//
// Owns: the services (and through them the WAL).  The groups belong to
// their handles, which must go before the Host.
// Threads: as keel::Host.
#pragma once

#include <atomic>
#include <memory>
#include <set>

#include "keel/host.hpp"
#include "runtime/process_services.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class HostImpl final : public Host {
public:
    // Host::open.  `fs`: where the WAL and the groups' files live (null:
    // the POSIX file system; tests inject faults).  Must outlive the Host.
    static Result<std::unique_ptr<HostImpl>> open(const HostOptions& options,
                                                  wal::FileSystem* fs = nullptr);
    ~HostImpl() override;

    Result<std::unique_ptr<Node>> open_group(GroupId group, NodeOptions options,
                                             std::shared_ptr<StateMachine> sm) override;
    HostStatus status() const override;

    // Tests: the services.
    ProcessServices& services() { return *services_; }

private:
    class Group;
    HostImpl(HostOptions options, wal::FileSystem* fs);
    void closed(GroupId group) EXCLUDES(mu_);

    const HostOptions options_;
    wal::FileSystem* const fs_;
    std::unique_ptr<ProcessServices> services_;
    mutable Mutex mu_;
    std::set<GroupId> open_ GUARDED_BY(mu_);
};

}  // namespace keel::runtime
