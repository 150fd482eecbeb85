// raftd — keel's HTTP/JSON daemon: a replicated key-value store.
//
// Start-up: flags -> node id (flag, or the one stored in the data dir) -> a
// joiner's look at the cluster's group count (cluster_probe.hpp) -> the
// group count and node id written on a first start, before anything else ->
// tokens -> the node or the groups (served.hpp) -> HTTP (http_front.hpp).
// SIGHUP re-reads the tokens file.  Shut-down on
// SIGTERM/SIGINT, in the order that costs clients least:
//   1. if this node leads a cluster, hand leadership to the most caught-up
//      voter (bounded), so that writers are redirected, not failed;
//   2. stop accepting connections, finish in-flight requests (bounded);
//   3. node->stop(true): stop keel's threads, close the WAL cleanly.
// The same (without 1) when keel fail-stops on a storage error
// (NodeOptions::on_failure), and then raftd exits with kExitStorageFailure,
// so that a supervisor restarts it and recovery reads the disk afresh.
// Exit codes: docs/operations.md, "Exit codes".
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <memory>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <fmt/format.h>

#include "auth_tokens.hpp"
#include "cluster_probe.hpp"
#include "flags.hpp"
#include "handlers.hpp"
#include "http_front.hpp"
#include "identity.hpp"
#include "keel/keel.hpp"
#include "member_client.hpp"
#include "member_origins.hpp"
#include "member_spec.hpp"
#include "restore_groups.hpp"
#include "served.hpp"

#ifndef RAFTD_VERSION
#define RAFTD_VERSION "dev"
#endif

namespace keel::daemon {
namespace {

// keel fail-stopped on a failed write or fsync (EX_IOERR, sysexits.h).
constexpr int kExitStorageFailure = 74;
// A joiner whose --groups is not the cluster's (group_count_guard.hpp).
constexpr int kExitGroupCount = 1;
// How long a joiner waits for each member's /healthz (cluster_probe.hpp).
constexpr std::chrono::milliseconds kProbeTimeout{3000};

std::shared_ptr<spdlog::logger> make_logger(NodeId id, const std::string& level) {
    auto logger = std::make_shared<spdlog::logger>(
        "raftd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern(fmt::format("%Y-%m-%dT%H:%M:%S.%e %l node={} %v", id));
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    return logger;
}

void log_at(spdlog::logger& log, LogLevel level, const std::string& message) {
    switch (level) {
        case LogLevel::debug:
            log.debug("{}", message);
            break;
        case LogLevel::info:
            log.info("{}", message);
            break;
        case LogLevel::warn:
            log.warn("{}", message);
            break;
        case LogLevel::error:
            log.error("{}", message);
            break;
    }
}

NodeOptions node_options(const DaemonConfig& config, NodeId id, spdlog::logger& log) {
    NodeOptions options;
    options.id = id;
    options.data_dir = config.data_dir;
    options.listen_address = config.raft.to_string();
    options.join = config.join;
    options.force_new_cluster = config.force_new_cluster;
    options.cluster_id = config.cluster_id;
    options.peer_tls = config.peer_tls;
    options.peer_insecure = config.peer_insecure;
    options.initial_members = config.members;
    // A single node still records its own HTTP address in the membership, so
    // that it can be named in redirects once the cluster grows.
    if (!config.join && options.initial_members.empty()) {
        options.initial_members.push_back(
            MemberSpec{id, config.raft.to_string(), config.http.to_string(), true});
    }
    options.heartbeat_interval_ms = config.heartbeat_ms;
    options.election_timeout_min_ms = config.election_min_ms;
    options.election_timeout_max_ms = config.election_max_ms;
    options.quiesce = config.quiesce;
    options.snapshot_every_entries = config.snapshot_every_entries;
    options.wal_segment_bytes = config.wal_segment_bytes;
    options.max_entry_bytes = config.max_body_bytes + 4096;
    options.logger = [&log](LogLevel level, const std::string& message) {
        log_at(log, level, "keel: " + message);
    };
    return options;
}

// How raftd asks the other members (member_client.hpp): over the scheme it
// serves.
MemberClientOptions member_client_options(const DaemonConfig& config) {
    MemberClientOptions options;
    options.tls = !config.http_cert.empty();
    options.ca_file = config.http_ca;
    options.cert_file = config.http_client_cert;
    options.key_file = config.http_client_key;
    return options;
}

// Connections are file descriptors: take what the hard limit allows.
void raise_fd_limit(spdlog::logger& log) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
        log.debug("open files limit raised from {} to {}", before, limit.rlim_cur);
    }
}

void warn_about_security(const DaemonConfig& config, spdlog::logger& log) {
    const bool loopback = is_loopback_host(config.http.host);
    if (!loopback && config.auth_tokens.empty()) {
        log.warn("--http-insecure: serving {} to anyone who can reach it, without tokens",
                 config.http.to_string());
    }
    if (!loopback && !config.auth_tokens.empty() && config.http_cert.empty()) {
        log.warn("tokens are sent in clear over plain HTTP on {}: add --http-cert and --http-key",
                 config.http.to_string());
    }
}

// SIGHUP: a file that cannot be read or parsed keeps the tokens in force.
void reload_tokens(const DaemonConfig& config, TokenStore* tokens, spdlog::logger& log) {
    if (!tokens) {
        log.info("SIGHUP: no --auth-tokens file to re-read");
        return;
    }
    Result<TokenFile> file = load_token_file(config.auth_tokens);
    if (!file.ok()) {
        log.error("SIGHUP: kept the previous tokens: {}", file.status().message());
        return;
    }
    for (const std::string& warning : file->warnings) log.warn("--auth-tokens: {}", warning);
    log.info("SIGHUP: {} token(s) re-read from {}", file->tokens.size(), config.auth_tokens);
    tokens->replace(std::move(file->tokens));
}

// The tokens file's set, or null without --auth-tokens; an error (logged)
// when the file cannot be read or parsed.
Result<std::shared_ptr<TokenStore>> load_tokens(const DaemonConfig& config, spdlog::logger& log) {
    if (config.auth_tokens.empty()) return std::shared_ptr<TokenStore>();
    Result<TokenFile> file = load_token_file(config.auth_tokens);
    if (!file.ok()) {
        log.error("--auth-tokens: {}", file.status().message());
        return file.status();
    }
    for (const std::string& warning : file->warnings) log.warn("--auth-tokens: {}", warning);
    log.info("--auth-tokens: {} token(s) from {}", file->tokens.size(), config.auth_tokens);
    return std::make_shared<TokenStore>(std::move(file->tokens));
}

// Runs the signals' context until raftd must stop: SIGHUP calls `reload`
// and waits on; SIGINT or SIGTERM call `stop` once; a fail-stop of keel
// (NodeOptions::on_failure posts to `context` and sets `exit_code` to
// kExitStorageFailure, possibly before this is called) calls `on_failure`
// once.  Returns when either has run.
void serve_until_stopped(boost::asio::io_context& context, boost::asio::signal_set& signals,
                         const std::atomic<int>& exit_code, const std::function<void()>& reload,
                         const std::function<void()>& stop, const std::function<void()>& on_failure,
                         spdlog::logger& log) {
    bool stopped = false;  // this thread only
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int signal) {
            if (ec || stopped) return;
            if (signal == SIGHUP) {
                reload();
                signals.async_wait(on_signal);
                return;
            }
            stopped = true;
            log.info("received signal {}: shutting down", signal);
            stop();
        };
    signals.async_wait(on_signal);
    while (!stopped) {
        if (exit_code == kExitStorageFailure) {
            stopped = true;
            signals.cancel();
            on_failure();
            break;
        }
        if (exit_code == kExitGroupCount) {  // logged where it was found
            stopped = true;
            signals.cancel();
            stop();
            break;
        }
        if (context.run_one() == 0) break;
    }
}

void log_serving(const DaemonConfig& config, const std::string& scheme, std::uint16_t port,
                 const NodeStatus& status, spdlog::logger& log) {
    log.info(
        "serving {} on {}:{}; role {}, term {}, mode {}, {} member(s), cluster {}, "
        "members over {}",
        scheme == "https" ? "HTTPS" : "HTTP", config.http.host, port, role_name(status.role),
        status.term, mode_string(status.mode), status.members.size(),
        status.cluster_id.empty() ? "not known yet" : status.cluster_id,
        config.peer_tls.enabled() ? "mutual TLS" : "plain TCP");
    const std::string& host = config.http.host;
    const std::string bracketed = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (std::optional<std::string> origin =
            browser_origin(scheme, fmt::format("{}:{}", bracketed, port))) {
        log.info("status page: {}/ui", *origin);
    }
}

// --restore FILE: a new data dir whose state is the snapshot file, for the
// cluster of the --member list (keel::restore_data_dir), then exit.
int run_restore(const DaemonConfig& config, NodeId id, spdlog::logger& log) {
    Result<SnapshotFileInfo> backup = verify_snapshot_file(config.restore_file);
    if (!backup.ok()) {
        log.error("--restore {}: {}{}", config.restore_file, backup.status().to_string(),
                  archive_hint(config.restore_file));
        return 1;
    }
    if (Status s = restore_data_dir(node_options(config, id, log), config.restore_file); !s.ok()) {
        log.error("--restore: {}", s.to_string());
        return 1;
    }
    if (Status s = write_node_id(config.data_dir, id); !s.ok()) {
        log.error("{}", s.to_string());
        return 1;
    }
    log.info(
        "restored {} into {}: index {}, term {}, {} bytes of state, {} member(s); start raftd on "
        "it as usual",
        config.restore_file, config.data_dir, backup->index, backup->term, backup->data_bytes,
        std::max<std::size_t>(config.members.size(), 1));
    return 0;
}

// The groups to run: --groups, or the count the data dir was made with
// (written now on a first start with --groups, before the node id); 0
// without groups.  An error (logged) when --groups contradicts the data dir.
Result<std::size_t> group_count(const DaemonConfig& config, bool data_dir_has_id,
                                spdlog::logger& log) {
    Result<std::optional<std::size_t>> stored = read_group_count(config.data_dir);
    if (!stored.ok()) {
        log.error("{}", stored.status().to_string());
        return stored.status();
    }
    if (config.groups == 0) return stored->value_or(0);
    if (*stored && **stored != config.groups) {
        log.error(
            "--groups {}: {} was created with --groups {}, and the keys' sharding is fixed for "
            "the data dir's life; start with --groups {} (or without --groups)",
            config.groups, config.data_dir, **stored, **stored);
        return Status(ErrorCode::invalid_argument, "group count");
    }
    if (!*stored && data_dir_has_id) {
        log.error(
            "--groups {}: {} was created without --groups (one node); start it without "
            "--groups, or use a new data dir",
            config.groups, config.data_dir);
        return Status(ErrorCode::invalid_argument, "group count");
    }
    if (!*stored) {
        if (Status s = write_group_count(config.data_dir, config.groups); !s.ok()) {
            log.error("{}", s.to_string());
            return s;
        }
    }
    return config.groups;
}

// The id: --id, else the one this data dir was created with, else 1; an
// error (printed: there is no logger before the id) when --id contradicts
// the data dir.
Result<NodeId> node_id(const DaemonConfig& config, const std::optional<NodeId>& stored) {
    if (config.id && stored && *stored != *config.id) {
        std::fprintf(stderr, "raftd: --id %llu but %s belongs to node %llu\n",
                     static_cast<unsigned long long>(*config.id), config.data_dir.c_str(),
                     static_cast<unsigned long long>(*stored));
        return Status(ErrorCode::invalid_argument, "node id");
    }
    return config.id ? *config.id : (stored ? *stored : 1);
}

// Serves HTTP for `served` until a signal or a fail-stop (serve_until_stopped),
// then stops in order (served.hpp); raftd's exit code.
int serve(const DaemonConfig& config, Served& served, const MemberClient& members,
          const std::shared_ptr<TokenStore>& tokens, boost::asio::io_context& signals_context,
          boost::asio::signal_set& signals, const std::atomic<int>& exit_code,
          spdlog::logger& log) {
    HttpFront front(config, served, members, tokens);
    Result<std::uint16_t> port = front.start();
    if (!port.ok()) {
        log.error("{}", port.status().to_string());
        served.stop(false);
        return 1;
    }
    log_serving(config, front.scheme(), *port, served.first().status(), log);
    serve_until_stopped(
        signals_context, signals, exit_code, [&] { reload_tokens(config, tokens.get(), log); },
        [&] { shut_down(served, front.server(), log); },
        [&] {
            // Answer what is in flight, stop, and exit for a restart.
            log.error(
                "keel stopped on a storage failure: {}; shutting down for a restart (exit {})",
                served.first().status().failure, kExitStorageFailure);
            shut_down(served, front.server(), log);
        },
        log);
    return exit_code;
}

int run(const DaemonConfig& config) {
    Result<std::optional<NodeId>> stored = read_node_id(config.data_dir);
    if (!stored.ok()) {
        std::fprintf(stderr, "raftd: %s\n", stored.status().to_string().c_str());
        return 1;
    }
    Result<NodeId> resolved_id = node_id(config, *stored);
    if (!resolved_id.ok()) return 1;
    const NodeId id = *resolved_id;
    auto log = make_logger(id, config.log_level);
    if (!config.restore_file.empty() && config.groups != 0)
        return run_restore_groups(config, node_options(config, id, *log), *log);
    if (!config.restore_file.empty()) return run_restore(config, id, *log);
    if (config.force_new_cluster) {
        if (!*stored) {
            log->error("--force-new-cluster keeps a data dir's state: {} holds none",
                       config.data_dir);
            return 1;
        }
        log->warn(
            "--force-new-cluster: node {} becomes the only voter of {}; entries the old cluster "
            "had not committed will be; the other old members must not come back with their data",
            id, config.data_dir);
    }
    // From now on SIGHUP, SIGINT and SIGTERM wait for serve_until_stopped
    // instead of killing the process (SIGHUP's default).
    boost::asio::io_context signals_context;
    boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM, SIGHUP);
    log->info("raftd {} starting: data dir {}, HTTP {}, Raft {}{}", RAFTD_VERSION, config.data_dir,
              config.http.to_string(), config.raft.to_string(), config.join ? ", joining" : "");
    Result<std::unique_ptr<MemberClient>> members =
        MemberClient::open(member_client_options(config));
    if (!members.ok()) {
        log->error("{}", members.status().message());
        return 1;
    }
    if (!*stored && !joiner_matches_cluster(config, **members, kProbeTimeout,
                                            [&log](LogLevel level, const std::string& message) {
                                                log_at(*log, level, message);
                                            }))
        return kExitGroupCount;
    Result<std::size_t> groups = group_count(config, stored->has_value(), *log);
    if (!groups.ok()) return 1;
    if (!*stored) {
        if (Status s = write_node_id(config.data_dir, id); !s.ok()) {
            log->error("{}", s.to_string());
            return 1;
        }
    }
    raise_fd_limit(*log);
    Result<std::shared_ptr<TokenStore>> tokens = load_tokens(config, *log);
    if (!tokens.ok()) return 1;
    warn_about_security(config, *log);

    // Set (through signals_context) once keel has fail-stopped, or a
    // joiner's group-count guard has found the cluster has more groups.
    std::atomic<int> exit_code{0};
    NodeOptions options = node_options(config, id, *log);
    // On a keel thread: only hand over (it must not block or stop the node).
    options.on_failure = [&signals_context, &exit_code](const Status&) {
        boost::asio::post(signals_context, [&exit_code] { exit_code = kExitStorageFailure; });
    };
    auto more_groups = [&signals_context, &exit_code, &log = *log,
                        count = *groups](std::uint64_t refusals) {
        log.error(
            "--groups {}: the cluster has more groups ({} message(s) from its members for groups "
            "this process does not serve); stopping. Empty the data dir and join again with the "
            "cluster's --groups (GET /v1/status: groups.count on a member)",
            count, refusals);
        boost::asio::post(signals_context, [&exit_code] { exit_code = kExitGroupCount; });
    };
    Result<std::unique_ptr<Served>> opened =
        open_served(config, options, *groups, more_groups, *log);
    if (!opened.ok()) return 1;
    return serve(config, **opened, **members, *tokens, signals_context, signals, exit_code, *log);
}

}  // namespace
}  // namespace keel::daemon

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    auto parsed = keel::daemon::parse_flags(argc, argv, RAFTD_VERSION);
    if (auto* exit = std::get_if<keel::daemon::FlagsExit>(&parsed)) {
        std::fputs(exit->text.c_str(), exit->code == 0 ? stdout : stderr);
        return exit->code;
    }
    try {
        return keel::daemon::run(std::get<keel::daemon::DaemonConfig>(parsed));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "raftd: fatal: %s\n", e.what());
        return 1;
    }
}
