// The replica's side of the Raft port: the transport's handlers, the check
// of the port's security at start (peer_security.hpp), the cluster id a
// joiner learns from its first hello, where peers the configuration does not
// place listen (their hellos say it), and the refusals counted for status().
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include "runtime/cluster_identity.hpp"
#include "runtime/member_context.hpp"
#include "runtime/peer_security.hpp"
#include "runtime/replica.hpp"
#include "transport/codec.hpp"

namespace keel::runtime {

transport::MessageChannel::Handlers Replica::transport_handlers() {
    transport::MessageChannel::Handlers h;
    // Transport handlers run on the I/O thread.
    h.on_message = [this](raft::Message m) { on_message(m); };
    h.on_unreachable = [this](raft::NodeId peer) {
        with_core([this, peer]() REQUIRES(core_lock_) {
            if (shut_down()) return;
            core_->report_unreachable(peer);
            run_core();
        });
    };
    // Read whole against its checksums off the I/O thread first.
    h.on_snapshot = [this](raft::Message m, std::string path) {
        auto task = [this, m = std::move(m), path]() mutable {
            verify_received_snapshot(std::move(m), std::move(path));
        };
        if (!seat_.background.submit(std::move(task))) std::remove(path.c_str());
    };
    h.on_snapshot_sent = [this](raft::NodeId to, bool ok) {
        with_core([this, to, ok]() REQUIRES(core_lock_) {
            if (shut_down()) return;
            locked_.outgoing_snapshot.erase(to);
            core_->report_snapshot(to, ok);
            run_core();
        });
    };
    h.on_rejected = [this](std::string_view reason, std::string_view detail) {
        count_rejection(reason, detail);
    };
    return h;
}

// keel::Node's group only: its process's connections are its own.
ProcessTransportHooks Replica::process_transport_hooks() {
    ProcessTransportHooks h;
    h.on_rejected = [this](std::string_view reason, std::string_view detail) {
        count_rejection(reason, detail);
    };
    h.on_cluster_id = [this](const transport::ClusterId& id, raft::NodeId from) {
        return adopt_cluster_id(id, from);
    };
    h.on_hello = [this](raft::NodeId from, std::string_view address) {
        on_peer_hello(from, std::string(address));
    };
    return h;
}

std::string Replica::advertised_address() const {
    const raft::Configuration& config = core_->configuration();
    auto self = config.members.find(options_.id);
    if (self == config.members.end()) return {};
    std::string address = member_spec(options_.id, self->second).raft_address;
    // Port 0 is a listen address, not one to dial: the transport's bound one.
    if (address.ends_with(":0") || !transport::valid_hello_address(address)) return {};
    return address;
}

// A joiner, or a member that lags, answers a leader it knows only from its
// hello (peer_directory.hpp says why).  A plain-TCP node without
// peer_insecure learns loopback addresses only (peer_security.hpp).
void Replica::on_peer_hello(raft::NodeId from, std::string address) {
    if (address.empty()) return;
    with_core([this, from, address = std::move(address)]() REQUIRES(core_lock_) {
        if (shut_down()) return;
        if (Status s = check_new_member_address(options_, address); !s.ok()) {
            log(LogLevel::warn,
                fmt::format("not answering node {} at {}: {}", from, address, s.message()));
            return;
        }
        if (!locked_.directory.learn(from, address)) return;
        log(LogLevel::info, fmt::format("node {}, which the configuration does not place, said "
                                        "hello from {}: answering it there",
                                        from, address));
        update_peer_directory();
    });
}

void Replica::update_peer_directory() {
    std::map<raft::NodeId, std::string> peers = locked_.directory.addresses();
    if (transport_) {
        for (const auto& [id, address] : locked_.peers)
            if (!peers.count(id)) to_io([this, id = id] { transport_->remove_peer(id); });
        for (const auto& [id, address] : peers) {
            auto old = locked_.peers.find(id);
            if (old == locked_.peers.end() || old->second != address)
                to_io([this, id = id, address = address] { transport_->set_peer(id, address); });
        }
    }
    locked_.peers = std::move(peers);
}

Status Replica::check_peer_security() const {
    std::vector<std::string> addresses;
    if (core_)
        for (const auto& [id, info] : core_->configuration().members)
            addresses.push_back(member_spec(id, info).raft_address);
    for (const MemberSpec& m : options_.initial_members) addresses.push_back(m.raft_address);
    std::string warning;
    if (Status s = runtime::check_peer_security(options_, addresses, warning); !s.ok()) return s;
    if (!warning.empty() && core_) log(LogLevel::warn, warning);
    return Status::ok_status();
}

Status Replica::adopt_cluster_id(const transport::ClusterId& id, raft::NodeId from) {
    if (Status s = write_cluster_id(snapshots_->file_system(), options_.data_dir, id); !s.ok()) {
        log(LogLevel::error,
            fmt::format("cannot store the cluster id {}: {}", id.hex(), s.to_string()));
        return s;
    }
    log(LogLevel::info, fmt::format("joined cluster {} (learned from node {})", id.hex(), from));
    board_.set_cluster_id(id.hex());
    return Status::ok_status();
}

}  // namespace keel::runtime
