#include "metrics.hpp"

#include "alarms.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace keel::daemon {
namespace {

void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name,
                   type, name, value);
}

void histogram(std::string& out, const char* name, const char* help, const LatencyHistogram& h) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help,
                   name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.counts.size() && i < h.upper_bounds_us.size(); ++i) {
        cumulative += h.counts[i];
        const double bound = h.upper_bounds_us[i];
        if (std::isinf(bound)) break;  // +Inf is written below from the total count
        fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, bound / 1e6,
                       cumulative);
    }
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                   name, h.count, name, h.sum_us / 1e6, name, h.count);
}

void labelled(std::string& out, const char* name, const char* label, const char* help,
              const std::map<std::string, std::uint64_t>& counts) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} counter\n", name, help, name);
    for (const auto& [value, count] : counts) {
        fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", name, label, value, count);
    }
}

void daemon_metrics(std::string& out, const DaemonFigures& f) {
    scalar(out, "raftd_http_connections", "gauge", "HTTP connections open now.",
           static_cast<double>(f.connections));
    scalar(out, "raftd_http_requests_total", "counter", "HTTP requests handed to the routes.",
           static_cast<double>(f.requests));
    labelled(out, "raftd_http_requests_refused_total", "reason",
             "HTTP requests refused before their body was read, by reason.", f.requests_refused);
    labelled(out, "raftd_http_connections_refused_total", "reason",
             "HTTP connections closed at once, by reason.", f.connections_refused);
    labelled(out, "raftd_http_timeouts_total", "phase",
             "HTTP connections closed for a timeout, by phase.", f.timeouts);
    scalar(
        out, "raftd_http_tls_handshake_failures_total", "counter",
        "TLS handshakes that failed (plain HTTP on the TLS port, no or a bad client certificate).",
        static_cast<double>(f.tls_handshake_failures));
    scalar(out, "raftd_member_tls_handshakes_total", "counter",
           "TLS handshakes with the other members' HTTPS, full or resumed.",
           static_cast<double>(f.member_tls_handshakes));
    scalar(out, "raftd_member_tls_resumed_total", "counter",
           "TLS handshakes with the other members' HTTPS that resumed a session.",
           static_cast<double>(f.member_tls_resumed));
    scalar(out, "raftd_http_accept_backoffs_total", "counter",
           "Pauses of the acceptor after a failed accept (EMFILE, ENFILE, ...).",
           static_cast<double>(f.accept_backoffs));
    scalar(out, "raftd_state_bytes", "gauge",
           "The state machine's size as a snapshot writes it (counted by --quota-bytes).",
           static_cast<double>(f.state_bytes));
    scalar(out, "raftd_quota_bytes", "gauge",
           "--quota-bytes: cap on the state machine's size plus the WAL's.",
           static_cast<double>(f.quota_bytes));
    if (!f.groups) return;
    const GroupsSummary& g = *f.groups;
    scalar(out, "raftd_groups", "gauge", "Raft groups of the key space (--groups).",
           static_cast<double>(g.count));
    scalar(out, "raftd_groups_led", "gauge", "Groups this member leads.",
           static_cast<double>(g.led_here));
    scalar(out, "raftd_groups_quiescent", "gauge", "Groups quiescent here (no tick needed).",
           static_cast<double>(g.quiescent));
    scalar(out, "raftd_groups_without_leader", "gauge", "Groups with no known leader here.",
           static_cast<double>(g.without_leader));
    fmt::format_to(std::back_inserter(out),
                   "# HELP raftd_groups_alarmed Groups raising each alarm.\n"
                   "# TYPE raftd_groups_alarmed gauge\n");
    for (const auto& [alarm, count] : g.alarms) {
        fmt::format_to(std::back_inserter(out), "raftd_groups_alarmed{{alarm=\"{}\"}} {}\n", alarm,
                       count);
    }
}

}  // namespace

double histogram_quantile_us(const LatencyHistogram& h, double q) {
    if (h.count == 0) return 0;
    const double rank = q * static_cast<double>(h.count);
    std::uint64_t cumulative = 0;
    double lower = 0;
    for (std::size_t i = 0; i < h.counts.size() && i < h.upper_bounds_us.size(); ++i) {
        const double upper = h.upper_bounds_us[i];
        const std::uint64_t before = cumulative;
        cumulative += h.counts[i];
        if (static_cast<double>(cumulative) >= rank && h.counts[i] > 0) {
            if (std::isinf(upper) || upper > 1e299) return lower;
            const double within =
                (rank - static_cast<double>(before)) / static_cast<double>(h.counts[i]);
            return lower + (upper - lower) * within;
        }
        if (!std::isinf(upper) && upper <= 1e299) lower = upper;
    }
    return lower;
}

std::string render_metrics(const NodeStatus& s, const std::vector<std::string>& alarms,
                           const DaemonFigures* daemon) {
    std::string out;
    out.reserve(4096);
    scalar(out, "keel_proposals_total", "counter", "Proposals accepted by this node.", s.proposals);
    scalar(out, "keel_commits_total", "counter", "Log entries applied on this node.", s.commits);
    scalar(out, "keel_elections_total", "counter", "Campaigns started by this node.", s.elections);
    scalar(out, "keel_term", "gauge", "Current Raft term.", s.term);
    fmt::format_to(std::back_inserter(out),
                   "# HELP keel_role Current Raft role (1 for the role this node is in).\n"
                   "# TYPE keel_role gauge\n");
    for (Role role : {Role::follower, Role::pre_candidate, Role::candidate, Role::leader}) {
        fmt::format_to(std::back_inserter(out), "keel_role{{role=\"{}\"}} {}\n", role_name(role),
                       s.role == role ? 1 : 0);
    }
    scalar(out, "keel_is_single_mode", "gauge", "1 while this node is the only member.",
           s.mode == Mode::single ? 1 : 0);
    scalar(out, "keel_leader_id", "gauge", "The known leader's id (0: none).",
           static_cast<double>(s.leader_id));
    scalar(out, "keel_members", "gauge", "Members in the current configuration.",
           static_cast<double>(s.members.size()));
    scalar(out, "keel_commit_index", "gauge", "Highest committed log index.", s.commit_index);
    scalar(out, "keel_applied_index", "gauge", "Highest applied log index.", s.applied_index);
    scalar(out, "keel_last_index", "gauge", "Last log index.", s.last_index);
    scalar(out, "keel_snapshot_index", "gauge", "Index of the latest snapshot.", s.snapshot_index);
    scalar(out, "keel_timer_wakeups_total", "counter", "Wakeups of any timer the node owns.",
           s.timer_wakeups);
    scalar(out, "keel_wal_segments", "gauge", "WAL segment files.", s.wal.segments);
    scalar(out, "keel_wal_bytes", "gauge", "Bytes in the WAL.", s.wal.bytes);
    scalar(out, "keel_wal_fsyncs_total", "counter", "WAL fdatasync calls.", s.wal.fsyncs);
    scalar(out, "keel_wal_records_total", "counter", "WAL records written.", s.wal.records);
    scalar(out, "keel_wal_records_per_fsync", "gauge", "Mean WAL records per fdatasync.",
           s.wal.records_per_fsync);
    histogram(out, "keel_commit_latency_seconds", "Propose to applied, on this node's proposals.",
              s.commit_latency);
    histogram(out, "keel_fsync_latency_seconds", "WAL write plus fdatasync.", s.fsync_latency);
    fmt::format_to(std::back_inserter(out),
                   "# HELP keel_peer_messages_rejected_total Peer connections and messages "
                   "refused, by reason.\n"
                   "# TYPE keel_peer_messages_rejected_total counter\n");
    for (const auto& [reason, count] : s.peer_messages_rejected) {
        fmt::format_to(std::back_inserter(out),
                       "keel_peer_messages_rejected_total{{reason=\"{}\"}} {}\n", reason, count);
    }
    scalar(out, "keel_failed", "gauge", "1 once the node has fail-stopped (restart it).",
           s.failure.empty() ? 0 : 1);
    scalar(out, "keel_snapshots_damaged_total", "counter",
           "Snapshot files found damaged and not used (at start-up, or received).",
           s.snapshots_damaged);
    fmt::format_to(std::back_inserter(out),
                   "# HELP keel_alarm Alarms raised now (1) or not (0).\n"
                   "# TYPE keel_alarm gauge\n");
    std::set<std::string> names(known_alarms().begin(), known_alarms().end());
    names.insert(alarms.begin(), alarms.end());
    for (const std::string& name : names) {
        const bool raised = std::find(alarms.begin(), alarms.end(), name) != alarms.end();
        fmt::format_to(std::back_inserter(out), "keel_alarm{{alarm=\"{}\"}} {}\n", name,
                       raised ? 1 : 0);
    }
    if (daemon) daemon_metrics(out, *daemon);
    return out;
}

}  // namespace keel::daemon
