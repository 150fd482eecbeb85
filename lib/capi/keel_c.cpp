// capi/keel_c.cpp — the C API's node (keel/keel_c.h) over keel::Node.
//
// Each extern "C" function checks its pointers, converts the C arguments,
// calls the C++ API and converts back; every exception stops here
// (guarded / start_async).  Completions reach the C callback through a
// OnceGate, which makes "called exactly once when the call returned
// KEEL_OK, never otherwise" hold even if keel throws after taking one.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "capi/c_state_machine.hpp"
#include "capi/c_support.hpp"
#include "keel/keel.hpp"
#include "keel/keel_c.h"

struct keel_node {
    std::unique_ptr<keel::Node> node;
};

namespace keel::capi {

namespace {

// NodeStatus::role as the C enum: the one place the C API reads it.
keel_role to_role(const NodeStatus& status) {
    switch (status.role) {
        case Role::leader:
            return KEEL_ROLE_LEADER;
        case Role::candidate:
            return KEEL_ROLE_CANDIDATE;
        case Role::pre_candidate:
            return KEEL_ROLE_PRE_CANDIDATE;
        case Role::follower:
            return KEEL_ROLE_FOLLOWER;
    }
    return KEEL_ROLE_FOLLOWER;
}

keel_log_level to_level(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return KEEL_LOG_DEBUG;
        case LogLevel::info:
            return KEEL_LOG_INFO;
        case LogLevel::warn:
            return KEEL_LOG_WARN;
        case LogLevel::error:
            return KEEL_LOG_ERROR;
    }
    return KEEL_LOG_ERROR;
}

std::string str(const char* s) {
    return s == nullptr ? std::string() : std::string(s);
}

void copy_string(char* out, std::size_t capacity, const std::string& s) {
    const std::size_t n = std::min(s.size(), capacity - 1);
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
}

Result<MemberSpec> to_member(const keel_member& m) {
    if (m.metadata == nullptr && m.metadata_len > 0)
        return Status(ErrorCode::invalid_argument, "member metadata is NULL with a length");
    MemberSpec spec;
    spec.id = m.id;
    spec.raft_address = str(m.raft_address);
    if (m.metadata_len > 0)
        spec.metadata.assign(static_cast<const char*>(m.metadata), m.metadata_len);
    spec.voter = m.voter != 0;
    return spec;
}

Result<NodeOptions> to_node_options(const keel_options& o) {
    NodeOptions n;
    n.id = o.id;
    n.data_dir = str(o.data_dir);
    if (n.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is required");
    n.listen_address = str(o.listen_address);
    if (o.initial_members == nullptr && o.initial_member_count > 0)
        return Status(ErrorCode::invalid_argument, "initial_members is NULL with a count");
    for (std::size_t i = 0; i < o.initial_member_count; ++i) {
        Result<MemberSpec> m = to_member(o.initial_members[i]);
        if (!m.ok()) return m.status();
        n.initial_members.push_back(std::move(m.value()));
    }
    n.join = o.join != 0;
    n.cluster_id = str(o.cluster_id);
    n.peer_tls =
        PeerTls{str(o.peer_tls_cert_file), str(o.peer_tls_key_file), str(o.peer_tls_ca_file)};
    n.peer_insecure = o.peer_insecure != 0;
    n.heartbeat_interval_ms = o.heartbeat_interval_ms;
    n.election_timeout_min_ms = o.election_timeout_min_ms;
    n.election_timeout_max_ms = o.election_timeout_max_ms;
    n.pre_vote = o.pre_vote != 0;
    n.check_quorum = o.check_quorum != 0;
    n.snapshot_every_entries = o.snapshot_every_entries;
    n.snapshot_trailing_entries = o.snapshot_trailing_entries;
    n.max_pending_proposals = o.max_pending_proposals;
    n.max_pending_reads = o.max_pending_reads;
    n.max_entry_bytes = o.max_entry_bytes;
    n.max_apply_queue_entries = o.max_apply_queue_entries;
    n.inline_apply = o.inline_apply != 0;
    n.wal_segment_bytes = o.wal_segment_bytes;
    if (o.logger != nullptr) {
        n.logger = [logger = o.logger, ctx = o.logger_ctx](LogLevel level,
                                                           const std::string& line) {
            CallbackScope scope;
            logger(ctx, to_level(level), line.c_str());
        };
    }
    if (o.on_failure != nullptr) {
        n.on_failure = [on_failure = o.on_failure, ctx = o.on_failure_ctx](const Status& why) {
            const keel_error err = to_error(why);
            CallbackScope scope;
            on_failure(ctx, &err);
        };
    }
    return n;
}

// Lets a completion through once, unless the call that took it failed first.
class OnceGate {
public:
    // True for the one delivery; false once delivered or withdrawn.
    bool deliver() {
        int pending = kPending;
        return state_.compare_exchange_strong(pending, kDelivered);
    }
    // True when no delivery happened and none will.
    bool withdraw() {
        int pending = kPending;
        return state_.compare_exchange_strong(pending, kWithdrawn);
    }

private:
    static constexpr int kPending = 0, kDelivered = 1, kWithdrawn = 2;
    std::atomic<int> state_{kPending};
};

// Starts an asynchronous call: `start(gate)` hands keel a completion that
// passes through `gate`.  KEEL_OK exactly when the completion was or will
// be delivered.
template <typename Start>
keel_code start_async(keel_error* err, Start&& start) noexcept {
    std::shared_ptr<OnceGate> gate;
    const keel_code code = guarded(err, [&] {
        gate = std::make_shared<OnceGate>();
        start(gate);
        return KEEL_OK;
    });
    if (code == KEEL_OK || (gate != nullptr && !gate->withdraw())) {
        set_error(err, KEEL_OK, "");
        return KEEL_OK;
    }
    return code;
}

keel_code refuse_null(keel_error* err, const char* what) {
    set_error(err, KEEL_INVALID_ARGUMENT, fmt::format("{}: NULL node or callback", what));
    return KEEL_INVALID_ARGUMENT;
}

// A completion that carries a status alone.
std::function<void(Status)> status_completion(keel_done_fn done, void* ctx,
                                              std::shared_ptr<OnceGate> gate) {
    return [done, ctx, gate = std::move(gate)](Status s) {
        if (!gate->deliver()) return;
        const keel_error err = to_error(s);
        CallbackScope scope;
        done(ctx, &err);
    };
}

}  // namespace

}  // namespace keel::capi

using keel::capi::CallbackScope;
using keel::capi::guarded;
using keel::capi::OnceGate;
using keel::capi::refuse_null;
using keel::capi::set_error;
using keel::capi::start_async;
using keel::capi::status_completion;

extern "C" {

void keel_options_init(keel_options* options) {
    if (options == nullptr) return;
    const keel::NodeOptions d;
    *options = keel_options{};
    options->id = d.id;
    options->heartbeat_interval_ms = d.heartbeat_interval_ms;
    options->election_timeout_min_ms = d.election_timeout_min_ms;
    options->election_timeout_max_ms = d.election_timeout_max_ms;
    options->pre_vote = d.pre_vote ? 1 : 0;
    options->check_quorum = d.check_quorum ? 1 : 0;
    options->snapshot_every_entries = d.snapshot_every_entries;
    options->snapshot_trailing_entries = d.snapshot_trailing_entries;
    options->max_pending_proposals = d.max_pending_proposals;
    options->max_pending_reads = d.max_pending_reads;
    options->max_entry_bytes = d.max_entry_bytes;
    options->max_apply_queue_entries = d.max_apply_queue_entries;
    options->inline_apply = d.inline_apply ? 1 : 0;
    options->wal_segment_bytes = d.wal_segment_bytes;
}

keel_code keel_node_open(const keel_options* options, const keel_state_machine* state_machine,
                         keel_node** node, keel_error* err) {
    if (node != nullptr) *node = nullptr;
    if (options == nullptr || state_machine == nullptr || node == nullptr) {
        set_error(err, KEEL_INVALID_ARGUMENT, "keel_node_open: NULL argument");
        return KEEL_INVALID_ARGUMENT;
    }
    if (state_machine->apply == nullptr || state_machine->snapshot_write == nullptr ||
        state_machine->restore == nullptr) {
        set_error(err, KEEL_INVALID_ARGUMENT,
                  "keel_node_open: apply, snapshot_write and restore are required");
        return KEEL_INVALID_ARGUMENT;
    }
    return guarded(err, [&] {
        keel::Result<keel::NodeOptions> converted = keel::capi::to_node_options(*options);
        if (!converted.ok()) {
            set_error(err, converted.status());
            return keel::capi::to_code(converted.status().code());
        }
        auto sm = std::make_shared<keel::capi::CStateMachine>(*state_machine);
        auto opened = keel::Node::open(converted.value(), std::move(sm));
        if (!opened.ok()) {
            set_error(err, opened.status());
            return keel::capi::to_code(opened.status().code());
        }
        *node = new keel_node{std::move(opened.value())};
        set_error(err, KEEL_OK, "");
        return KEEL_OK;
    });
}

keel_code keel_node_propose(keel_node* node, const void* data, size_t len, keel_propose_fn done,
                            void* ctx, keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_propose");
    if (data == nullptr && len > 0) {
        set_error(err, KEEL_INVALID_ARGUMENT, "keel_node_propose: NULL data with a length");
        return KEEL_INVALID_ARGUMENT;
    }
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        keel::SharedBytes bytes(std::string_view(static_cast<const char*>(data), len));
        node->node->propose_async(std::move(bytes),
                                  [done, ctx, gate = std::move(gate)](keel::ProposeResult r) {
                                      if (!gate->deliver()) return;
                                      keel_propose_result result{};
                                      result.status = keel::capi::to_error(r.status);
                                      result.index = r.index;
                                      result.result = r.result.data();
                                      result.result_len = r.result.size();
                                      result.leader_hint = r.leader_hint;
                                      CallbackScope scope;
                                      done(ctx, &result);
                                  });
    });
}

keel_code keel_node_read_index(keel_node* node, int wait_applied, keel_read_fn done, void* ctx,
                               keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_read_index");
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->read_index_async(wait_applied != 0,
                                     [done, ctx, gate = std::move(gate)](keel::ReadResult r) {
                                         if (!gate->deliver()) return;
                                         keel_read_result result{};
                                         result.status = keel::capi::to_error(r.status);
                                         result.read_index = r.read_index;
                                         result.leader_hint = r.leader_hint;
                                         CallbackScope scope;
                                         done(ctx, &result);
                                     });
    });
}

keel_code keel_node_add_member(keel_node* node, const keel_member* member, keel_done_fn done,
                               void* ctx, keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_add_member");
    if (member == nullptr) {
        set_error(err, KEEL_INVALID_ARGUMENT, "keel_node_add_member: NULL member");
        return KEEL_INVALID_ARGUMENT;
    }
    keel::Result<keel::MemberSpec> spec = keel::capi::to_member(*member);
    if (!spec.ok()) {
        set_error(err, spec.status());
        return KEEL_INVALID_ARGUMENT;
    }
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->add_member_async(spec.value(), status_completion(done, ctx, std::move(gate)));
    });
}

keel_code keel_node_promote_member(keel_node* node, keel_node_id id, keel_done_fn done, void* ctx,
                                   keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_promote_member");
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->promote_member_async(id, status_completion(done, ctx, std::move(gate)));
    });
}

keel_code keel_node_remove_member(keel_node* node, keel_node_id id, keel_done_fn done, void* ctx,
                                  keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_remove_member");
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->remove_member_async(id, status_completion(done, ctx, std::move(gate)));
    });
}

keel_code keel_node_transfer_leadership(keel_node* node, keel_node_id to, keel_done_fn done,
                                        void* ctx, keel_error* err) {
    if (node == nullptr || done == nullptr)
        return refuse_null(err, "keel_node_transfer_leadership");
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->transfer_leadership_async(to, status_completion(done, ctx, std::move(gate)));
    });
}

keel_code keel_node_snapshot(keel_node* node, keel_done_fn done, void* ctx, keel_error* err) {
    if (node == nullptr || done == nullptr) return refuse_null(err, "keel_node_snapshot");
    return start_async(err, [&](std::shared_ptr<OnceGate> gate) {
        node->node->snapshot_async(status_completion(done, ctx, std::move(gate)));
    });
}

keel_code keel_node_status(const keel_node* node, keel_status* status, keel_error* err) {
    if (node == nullptr || status == nullptr) {
        set_error(err, KEEL_INVALID_ARGUMENT, "keel_node_status: NULL argument");
        return KEEL_INVALID_ARGUMENT;
    }
    return guarded(err, [&] {
        const keel::NodeStatus s = node->node->status();
        keel_status out{};
        out.id = s.id;
        keel::capi::copy_string(out.cluster_id, sizeof out.cluster_id, s.cluster_id);
        out.role = keel::capi::to_role(s);
        out.mode = s.mode == keel::Mode::single ? KEEL_MODE_SINGLE : KEEL_MODE_CLUSTER;
        out.term = s.term;
        out.leader_id = s.leader_id;
        out.commit_index = s.commit_index;
        out.applied_index = s.applied_index;
        out.first_index = s.first_index;
        out.last_index = s.last_index;
        out.snapshot_index = s.snapshot_index;
        out.member_count = s.members.size();
        for (const keel::MemberStatus& m : s.members) out.voter_count += m.spec.voter ? 1 : 0;
        out.proposals = s.proposals;
        out.commits = s.commits;
        out.elections = s.elections;
        out.failed = s.failure.empty() ? 0 : 1;
        keel::capi::copy_string(out.failure, sizeof out.failure, s.failure);
        *status = out;
        set_error(err, KEEL_OK, "");
        return KEEL_OK;
    });
}

keel_code keel_node_close(keel_node* node, int transfer_leadership_first, keel_error* err) {
    if (node == nullptr) {
        set_error(err, KEEL_OK, "");
        return KEEL_OK;
    }
    if (CallbackScope::active()) {
        // Stopping waits for keel's threads, this one among them.
        set_error(err, KEEL_INVALID_ARGUMENT, "keel_node_close from a keel callback");
        return KEEL_INVALID_ARGUMENT;
    }
    return guarded(err, [&] {
        node->node->stop(transfer_leadership_first != 0);
        node->node.reset();  // joins keel's threads, releases snapshot images
        delete node;
        set_error(err, KEEL_OK, "");
        return KEEL_OK;
    });
}

}  // extern "C"
