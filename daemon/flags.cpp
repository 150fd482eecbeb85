#include "flags.hpp"

#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "kv_shards.hpp"
#include "kv_state_machine.hpp"

namespace keel::daemon {
namespace {

// "https://host[:port]" or "http://...", nothing after the authority.
bool valid_origin(const std::string& origin) {
    for (const char* scheme : {"http://", "https://"}) {
        const std::string prefix(scheme);
        if (origin.rfind(prefix, 0) != 0) continue;
        const std::string authority = origin.substr(prefix.size());
        return !authority.empty() && authority.find_first_of("/?#@ ") == std::string::npos;
    }
    return false;
}

std::string check_security(const DaemonConfig& config) {
    if (config.http_cert.empty() != config.http_key.empty()) {
        return "--http-cert and --http-key go together";
    }
    if (!config.http_client_ca.empty() && config.http_cert.empty()) {
        return "--http-client-ca needs --http-cert and --http-key";
    }
    if (config.http_client_cert.empty() != config.http_client_key.empty()) {
        return "--http-client-cert and --http-client-key go together";
    }
    // raftd asks the other members over the scheme it serves itself.
    if ((!config.http_ca.empty() || !config.http_client_cert.empty()) && config.http_cert.empty()) {
        return "--http-ca and --http-client-cert are for members serving HTTPS: they need "
               "--http-cert and --http-key";
    }
    if (!is_loopback_host(config.http.host) && config.auth_tokens.empty() &&
        !config.http_insecure) {
        return "--http " + config.http.to_string() +
               " is not a loopback address: give --auth-tokens FILE (and --http-cert/--http-key), "
               "or --http-insecure to serve it to anyone who can reach it";
    }
    for (const std::string& origin : config.allowed_origins) {
        if (!valid_origin(origin)) {
            return "--http-allowed-origin '" + origin + "': expected http(s)://host[:port]";
        }
    }
    for (const std::string& host : config.allowed_hosts) {
        if (host.empty() || host.find_first_of("/ ") != std::string::npos) {
            return "--http-allowed-host '" + host + "': expected a host name";
        }
    }
    if (config.header_timeout_ms == 0 || config.body_timeout_ms == 0 ||
        config.idle_timeout_ms == 0) {
        return "HTTP timeouts must be > 0";
    }
    if (config.max_conns == 0) return "--http-max-conns must be > 0";
    if (config.max_conns_per_client == 0 || config.max_conns_per_client > config.max_conns) {
        return "--http-max-conns-per-client must be in 1..--http-max-conns";
    }
    if (config.quota_bytes == 0 || config.quota_bytes > kMaxSnapshotBytes) {
        return fmt::format(
            "--quota-bytes must be in 1..{} (a larger state could not be restored from its "
            "snapshot)",
            kMaxSnapshotBytes);
    }
    return "";
}
constexpr std::uint64_t kMinWalSegmentBytes = 64 << 10;

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
    if (config.wal_segment_bytes < kMinWalSegmentBytes || config.wal_segment_bytes > (1ull << 30))
        return "--wal-segment-bytes must be in 65536..1073741824";
    static const std::set<std::string> levels = {"debug", "info", "warn", "error"};
    if (!levels.count(config.log_level)) return "--log-level is one of debug, info, warn, error";
    if (config.join && !config.id) return "--join needs --id (the id the leader will add)";
    if (!config.restore_file.empty() && (config.join || config.force_new_cluster))
        return "--restore builds a new cluster's data dir: no --join or --force-new-cluster";
    if (config.force_new_cluster && config.join)
        return "--force-new-cluster keeps this node's data: no --join";
    if (!config.cluster_id.empty() &&
        (config.cluster_id.size() != 32 ||
         config.cluster_id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
        return "--cluster-id is 32 hex digits (make one with: openssl rand -hex 16)";
    const PeerTls& tls = config.peer_tls;
    if (tls.enabled() && (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty()))
        return "--peer-cert, --peer-key and --peer-ca go together";
    if (tls.enabled() && config.peer_insecure)
        return "--peer-insecure contradicts --peer-cert/--peer-key/--peer-ca";
    if (config.groups > kGroupsMax) return fmt::format("--groups must be in 1..{}", kGroupsMax);
    // A joining process's Host must reach the members that will add it, and
    // a Host does not learn the cluster's id from a hello.
    if (config.groups != 0 && config.join && (config.members.empty() || config.cluster_id.empty()))
        return "--groups with --join needs --cluster-id and --member for the cluster's members";
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

void add_security_flags(CLI::App& app, DaemonConfig& config) {
    app.add_option("--http-cert", config.http_cert,
                   "Serve HTTPS: the server's certificate chain (PEM); needs --http-key");
    app.add_option("--http-key", config.http_key, "The private key of --http-cert (PEM)");
    app.add_option("--http-client-ca", config.http_client_ca,
                   "Require client certificates signed by this CA (PEM)");
    app.add_option("--http-ca", config.http_ca,
                   "The CA (PEM) of the other members' HTTP certificates, checked when raftd "
                   "asks them (a joiner's group count, a list across groups; default: the "
                   "system's CA store)");
    app.add_option("--http-client-cert", config.http_client_cert,
                   "The certificate (PEM) raftd presents to members whose --http-client-ca "
                   "requires one; needs --http-client-key");
    app.add_option("--http-client-key", config.http_client_key,
                   "The private key of --http-client-cert (PEM)");
    app.add_option("--auth-tokens", config.auth_tokens,
                   "File of `ROLE TOKEN` lines (read, write, admin); re-read on SIGHUP");
    app.add_flag("--http-insecure", config.http_insecure,
                 "Serve a non-loopback --http address without --auth-tokens");
    app.add_option("--http-allowed-origin", config.allowed_origins,
                   "An Origin browsers may send requests from; repeat it (default: none)");
    app.add_option("--http-allowed-host", config.allowed_hosts,
                   "A Host name accepted besides localhost, 127.0.0.1 and [::1] while --http is "
                   "loopback; repeat it");
    app.add_option("--http-header-timeout-ms", config.header_timeout_ms,
                   "Time to read a request's headers")
        ->capture_default_str();
    app.add_option("--http-body-timeout-ms", config.body_timeout_ms,
                   "Time to read a request's body")
        ->capture_default_str();
    app.add_option("--http-idle-timeout-ms", config.idle_timeout_ms,
                   "Time a keep-alive connection may stay idle")
        ->capture_default_str();
    app.add_option("--http-max-conns", config.max_conns, "Open HTTP connections, in all")
        ->capture_default_str();
    app.add_option("--http-max-conns-per-client", config.max_conns_per_client,
                   "Open HTTP connections from one client address")
        ->capture_default_str();
    app.add_option("--quota-bytes", config.quota_bytes,
                   "Refuse writes past this state machine size plus WAL size (e.g. 8GiB)")
        ->capture_default_str()
        ->transform(CLI::AsSizeValue(false));
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
                   "(ignored once the data dir holds state). With --join: optional, "
                   "existing members");
    app.add_flag("--join", config.join,
                 "Start empty and wait to be added by the leader, learning the cluster "
                 "(its id, its members) from it");
    app.add_option("--restore", config.restore_file,
                   "Build --data-dir (absent or empty) from this backup (keelctl snapshot "
                   "save: a snapshot file, or with --groups N the archive of N groups) for a "
                   "new cluster of the --member list, then exit")
        ->check(CLI::ExistingFile);
    app.add_option("--groups", config.groups,
                   "Shard the keys over this many Raft groups (fixed when the data dir is "
                   "created; a restart needs no flag)")
        ->check(CLI::PositiveNumber);
    app.add_flag("--quiesce", config.quiesce,
                 "Idle groups stop heartbeating and ticking; the process pings each peer "
                 "process instead, and a silent one wakes the groups it led (docs/groups.md)");
    app.add_flag("--force-new-cluster", config.force_new_cluster,
                 "Disaster recovery: keep this data dir's state and make this node the only "
                 "voter (when a majority is lost for good; use once)");
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
    app.add_option("--wal-segment-bytes", config.wal_segment_bytes,
                   "WAL segment size (each is preallocated whole)")
        ->capture_default_str();
    app.add_option("--log-level", config.log_level, "debug, info, warn or error")
        ->capture_default_str();
    add_security_flags(app, config);

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
    if (problem.empty()) problem = check_security(config);  // once --http is final
    if (!problem.empty()) return fail(problem);
    return config;
}

}  // namespace keel::daemon
