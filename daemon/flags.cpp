#include "flags.hpp"

#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

namespace keel::daemon {
namespace {

// Checks that need several flags at once; returns an error message or "".
std::string cross_check(DaemonConfig& config, bool http_set, bool raft_set) {
    if (config.election_min_ms == 0 || config.heartbeat_ms == 0) return "timings must be > 0";
    if (config.election_min_ms > config.election_max_ms) {
        return "--election-min-ms must not exceed --election-max-ms";
    }
    if (config.heartbeat_ms >= config.election_min_ms) {
        return "--heartbeat-ms must be below --election-min-ms";
    }
    if (config.max_value_bytes == 0 || config.max_value_bytes > config.max_body_bytes) {
        return "--max-value-bytes must be in 1..--max-body-bytes";
    }
    if (config.http_threads == 0 || config.http_threads > 64)
        return "--http-threads must be in 1..64";
    static const std::set<std::string> levels = {"debug", "info", "warn", "error"};
    if (!levels.count(config.log_level)) return "--log-level is one of debug, info, warn, error";
    if (config.join && !config.id) return "--join needs --id (the id the leader will add)";
    if (!config.cluster_id.empty() &&
        (config.cluster_id.size() != 32 ||
         config.cluster_id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
        return "--cluster-id is 32 hex digits (make one with: openssl rand -hex 16)";
    const PeerTls& tls = config.peer_tls;
    if (tls.enabled() && (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty()))
        return "--peer-cert, --peer-key and --peer-ca go together";
    if (tls.enabled() && config.peer_insecure)
        return "--peer-insecure contradicts --peer-cert/--peer-key/--peer-ca";
    if (config.members.empty()) return "";
    if (!config.id) return "--member needs --id (which member is this node?)";
    std::set<NodeId> ids;
    const MemberSpec* self = nullptr;
    for (const MemberSpec& member : config.members) {
        if (!ids.insert(member.id).second) return "--member ids must be unique";
        if (member.id == *config.id) self = &member;
    }
    // With --join, --member names existing members (so this node can answer
    // them before its log holds the configuration), not a bootstrap set.
    if (config.join) return self ? "with --join, --member lists the other members only" : "";
    if (!self) return "--id must be one of the --member ids";
    // This node listens where the cluster expects it, unless told otherwise.
    if (!raft_set) config.raft = *parse_host_port(self->raft_address, false);
    if (!http_set) config.http = *parse_host_port(self->metadata, false);
    return "";
}

}  // namespace

std::variant<DaemonConfig, FlagsExit> parse_flags(int argc, const char* const* argv,
                                                  std::string_view version) {
    DaemonConfig config;
    CLI::App app{"raftd: a replicated key-value store with an HTTP/JSON API, built on keel"};
    app.set_version_flag("--version", std::string(version));
    NodeId id = 0;
    std::string http = config.http.to_string(), raft = config.raft.to_string();
    std::vector<std::string> members;
    auto* id_option =
        app.add_option("--id", id, "This node's id (> 0; default: from the data dir, else 1)");
    app.add_option("--data-dir", config.data_dir, "Where the WAL, snapshots and node id live")
        ->capture_default_str();
    auto* http_option =
        app.add_option("--http", http, "HTTP listen address HOST:PORT")->capture_default_str();
    auto* raft_option = app.add_option("--raft", raft, "Raft transport listen address HOST:PORT")
                            ->capture_default_str();
    app.add_option("--member", members,
                   "ID,RAFT_HOST:PORT,HTTP_HOST:PORT of a founding member; repeat it "
                   "(ignored once the data dir holds state)");
    app.add_flag("--join", config.join, "Start empty and wait to be added by the leader");
    app.add_option("--cluster-id", config.cluster_id,
                   "The cluster's id, 32 hex digits: the same for every founding member of a "
                   "new cluster (default: the one stored in the data dir; a lone founder makes "
                   "one, a joiner learns it)");
    app.add_option("--peer-cert", config.peer_tls.cert_file,
                   "PEM certificate of this member, signed by --peer-ca (mutual TLS)");
    app.add_option("--peer-key", config.peer_tls.key_file, "PEM private key of --peer-cert");
    app.add_option("--peer-ca", config.peer_tls.ca_file,
                   "PEM certificate of the CA that signs every member's certificate");
    app.add_flag("--peer-insecure", config.peer_insecure,
                 "Allow plain TCP between members on non-loopback addresses");
    app.add_option("--heartbeat-ms", config.heartbeat_ms, "Leader heartbeat interval")
        ->capture_default_str();
    app.add_option("--election-min-ms", config.election_min_ms, "Election timeout, lower bound")
        ->capture_default_str();
    app.add_option("--election-max-ms", config.election_max_ms, "Election timeout, upper bound")
        ->capture_default_str();
    app.add_option("--max-body-bytes", config.max_body_bytes, "Largest HTTP request body")
        ->capture_default_str();
    app.add_option("--max-value-bytes", config.max_value_bytes, "Largest value")
        ->capture_default_str();
    app.add_option("--snapshot-every", config.snapshot_every_entries,
                   "Snapshot every this many applied entries (0: on request only)")
        ->capture_default_str();
    app.add_option("--http-threads", config.http_threads, "HTTP server threads")
        ->capture_default_str();
    app.add_option("--log-level", config.log_level, "debug, info, warn or error")
        ->capture_default_str();

    std::ostringstream out, err;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e, out, err);
        return FlagsExit{code, out.str() + err.str()};
    }
    auto fail = [](const std::string& message) {
        return FlagsExit{2, "raftd: " + message + "\nRun with --help for more information.\n"};
    };
    if (id_option->count() > 0) {
        if (id == 0) return fail("--id must be > 0");
        config.id = id;
    }
    Result<HostPort> http_address = parse_host_port(http, true);
    if (!http_address.ok()) return fail("--http: " + http_address.status().message());
    config.http = *http_address;
    Result<HostPort> raft_address = parse_host_port(raft, true);
    if (!raft_address.ok()) return fail("--raft: " + raft_address.status().message());
    config.raft = *raft_address;
    for (const std::string& text : members) {
        Result<MemberSpec> member = parse_member_spec(text);
        if (!member.ok()) return fail("--member " + text + ": " + member.status().message());
        config.members.push_back(*member);
    }
    std::string problem = cross_check(config, http_option->count() > 0, raft_option->count() > 0);
    if (!problem.empty()) return fail(problem);
    return config;
}

}  // namespace keel::daemon
