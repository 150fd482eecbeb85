// raftd — keel's HTTP/JSON daemon: a replicated key-value store.
//
// Start-up: flags -> node id (flag, or the one stored in the data dir; on a
// first start written before anything else) -> tokens -> keel::Node::open ->
// HTTP server.  SIGHUP re-reads the tokens file.  Shut-down on
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
#include <filesystem>
#include <future>
#include <map>
#include <memory>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <fmt/format.h>

#include "auth_tokens.hpp"
#include "cluster_probe.hpp"
#include "cors.hpp"
#include "errors.hpp"
#include "flags.hpp"
#include "forward_pool.hpp"
#include "group_balancer.hpp"
#include "group_count_guard.hpp"
#include "group_host.hpp"
#include "handlers.hpp"
#include "http_get.hpp"
#include "http_server.hpp"
#include "identity.hpp"
#include "keel/keel.hpp"
#include "kv_state_machine.hpp"
#include "member_origins.hpp"
#include "member_spec.hpp"
#include "request_guard.hpp"
#include "restore_groups.hpp"
#include "router.hpp"
#include "status_page.hpp"
#include "storage_quota.hpp"

#ifndef RAFTD_VERSION
#define RAFTD_VERSION "dev"
#endif

namespace keel::daemon {
namespace {

constexpr std::chrono::milliseconds kTransferWait{2000};
constexpr std::chrono::milliseconds kDrainGrace{5000};
// How often --groups' leader rebalancer looks (group_balancer.hpp).
constexpr std::chrono::milliseconds kRebalanceInterval{1000};
// keel fail-stopped on a failed write or fsync (EX_IOERR, sysexits.h).
constexpr int kExitStorageFailure = 74;
// A joiner whose --groups is not the cluster's (group_count_guard.hpp).
constexpr int kExitGroupCount = 1;
// How long a member's part of a list across groups may take (handlers_list.cpp).
constexpr std::chrono::milliseconds kForwardTimeout{5000};
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
        switch (level) {
            case LogLevel::debug:
                log.debug("keel: {}", message);
                break;
            case LogLevel::info:
                log.info("keel: {}", message);
                break;
            case LogLevel::warn:
                log.warn("keel: {}", message);
                break;
            case LogLevel::error:
                log.error("keel: {}", message);
                break;
        }
    };
    return options;
}

// The most caught-up other voter, or 0.
NodeId transfer_target(const NodeStatus& status) {
    NodeId best = 0;
    std::uint64_t best_match = 0;
    for (const MemberStatus& member : status.members) {
        if (member.spec.id == status.id || !member.spec.voter) continue;
        if (best == 0 || member.match_index > best_match) {
            best = member.spec.id;
            best_match = member.match_index;
        }
    }
    return best;
}

// What this raftd serves: its one node, or with --groups a Host and its
// groups.  Main's thread only.
struct Served {
    std::shared_ptr<KvStateMachine> kv;  // without --groups
    std::unique_ptr<Node> node;          // without --groups
    std::unique_ptr<GroupHost> host;     // with --groups
    // With --groups: spreads the groups' leaders (after `host`: stops first).
    std::unique_ptr<GroupBalancer> balancer;
    // With --groups --join: stops raftd if the cluster has more groups.
    std::unique_ptr<GroupCountGuard> group_count;

    // The node, or group 1 (whose membership is every group's).
    Node& first() const { return host ? *host->groups.front() : *node; }
    KvStateMachine& first_kv() const { return host ? *host->maps.front() : *kv; }
    std::vector<Node*> nodes() const {
        if (!host) return {node.get()};
        std::vector<Node*> all;
        for (const std::unique_ptr<Node>& group : host->groups) all.push_back(group.get());
        return all;
    }
    void stop(bool transfer_leadership_first) {
        if (balancer) balancer->stop();
        for (Node* n : nodes()) n->stop(transfer_leadership_first);
    }
};

// Hands the leadership of every group this process leads in a cluster to
// its most caught-up other voter, all at once, waiting kTransferWait at most
// in all.
void transfer_leaderships(const Served& served, spdlog::logger& log) {
    std::vector<std::pair<NodeId, std::future<Status>>> transfers;
    for (Node* node : served.nodes()) {
        NodeStatus status = node->status();
        if (status.role != Role::leader || status.mode != Mode::cluster || !status.failure.empty())
            continue;
        if (NodeId to = transfer_target(status); to != 0)
            transfers.emplace_back(to, node->transfer_leadership(to));
    }
    if (transfers.empty()) return;
    log.info("transferring leadership of {} group(s) before stopping", transfers.size());
    const auto deadline = std::chrono::steady_clock::now() + kTransferWait;
    for (auto& [to, done] : transfers) {
        if (done.wait_until(deadline) != std::future_status::ready) {
            log.warn("leadership transfer to node {} did not finish in {} ms", to,
                     kTransferWait.count());
        } else if (Status s = done.get(); !s.ok()) {
            log.warn("leadership transfer to node {} failed: {}", to, s.to_string());
        }
    }
}

void shut_down(Served& served, HttpServer& server, spdlog::logger& log) {
    if (served.balancer) served.balancer->stop();  // it would move leaders back
    transfer_leaderships(served, log);
    log.info("HTTP: stop accepting, finishing in-flight requests");
    server.shutdown(kDrainGrace);
    log.info("stopping the node");
    served.stop(!served.host);
    log.info("stopped cleanly");
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

HttpServerOptions http_server_options(const DaemonConfig& config, const RequestGuard& guard) {
    HttpServerOptions options;
    options.host = config.http.host;
    options.port = config.http.port;
    options.max_body_bytes = config.max_body_bytes;
    options.threads = config.http_threads;
    options.max_connections = config.max_conns;
    options.max_connections_per_client = config.max_conns_per_client;
    options.header_timeout = std::chrono::milliseconds(config.header_timeout_ms);
    options.body_timeout = std::chrono::milliseconds(config.body_timeout_ms);
    options.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
    options.tls_cert_file = config.http_cert;
    options.tls_key_file = config.http_key;
    options.tls_client_ca_file = config.http_client_ca;
    options.gate = [&guard](const HttpRequest& head, const ConnectionInfo& conn) {
        return guard.check(head, conn);
    };
    return options;
}

DaemonFigures server_figures(const HttpServer& server, const RequestGuard& guard) {
    HttpServerStats stats = server.stats();
    DaemonFigures figures;
    figures.connections = stats.connections;
    figures.requests = stats.requests;
    figures.requests_refused = guard.refused();
    figures.connections_refused = stats.connections_refused;
    figures.accept_backoffs = stats.accept_backoffs;
    figures.timeouts = stats.timeouts;
    figures.tls_handshake_failures = stats.tls_handshake_failures;
    return figures;
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

std::string groups_phrase(std::size_t groups) {
    return groups == 0 ? std::string("no --groups") : fmt::format("--groups {}", groups);
}

// --join on a first start: the cluster's group count, asked of the --member
// list's HTTP ports before anything is written to the data dir
// (cluster_probe.hpp), so that a wrong --groups leaves it empty.  false
// (logged) when a member answers another count than --groups; true when one
// answers the same, or none can be asked (then group_count_guard.hpp is the
// only check, and it catches only a joiner with fewer groups).
bool joiner_matches_cluster(const DaemonConfig& config, spdlog::logger& log) {
    if (!config.join || config.members.empty()) return true;
    if (!config.http_cert.empty()) {
        log.warn(
            "--join over HTTPS: the cluster's group count is not asked of its members (no CA to "
            "check their certificates with); a joiner with another --groups than the cluster's "
            "is refused only once the members' messages arrive");
        return true;
    }
    for (const MemberSpec& member : config.members) {
        if (member.metadata.empty()) continue;
        Result<std::optional<std::size_t>> count =
            probe_group_count(member.metadata, kProbeTimeout);
        if (!count.ok()) {
            log.warn("--join: cannot ask member {} for the cluster's group count: {}", member.id,
                     count.status().to_string());
            continue;
        }
        const std::size_t cluster = count->value_or(0);
        if (cluster == config.groups) return true;
        log.error(
            "--join with {}: the cluster runs {} (member {} at {} says so), and the keys' "
            "sharding must be the cluster's; nothing was written to {}: start again with {}",
            groups_phrase(config.groups), groups_phrase(cluster), member.id, member.metadata,
            config.data_dir, groups_phrase(cluster));
        return false;
    }
    log.warn(
        "--join: no member answered GET /healthz; a joiner with another --groups than the "
        "cluster's is refused only once the members' messages arrive");
    return true;
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

// --groups' peers when the Host opens (the other processes: id -> Raft
// address): from --member (a joiner's: the members that will add it),
// stored in the data dir for the next starts, else the stored ones (which
// GroupPeerSync keeps equal to the groups' members); none with
// --force-new-cluster (this process alone).  An error (logged) when the
// file cannot be read or written.
Result<std::map<NodeId, std::string>> group_peers(const DaemonConfig& config, NodeId self,
                                                  spdlog::logger& log) {
    if (config.force_new_cluster) return std::map<NodeId, std::string>{};
    std::vector<MemberSpec> members = config.members;
    if (members.empty()) {
        Result<std::vector<MemberSpec>> stored = read_members(config.data_dir);
        if (!stored.ok()) {
            log.error("{}", stored.status().to_string());
            return stored.status();
        }
        members = std::move(stored.value());
    } else if (Status s = write_members(config.data_dir, members); !s.ok()) {
        log.error("{}", s.to_string());
        return s;
    }
    std::map<NodeId, std::string> peers;
    for (const MemberSpec& member : members) {
        if (member.id != self) peers[member.id] = member.raft_address;
    }
    return peers;
}

int run(const DaemonConfig& config) {
    // The id: --id, else the one this data dir was created with, else 1.
    Result<std::optional<NodeId>> stored = read_node_id(config.data_dir);
    if (!stored.ok()) {
        std::fprintf(stderr, "raftd: %s\n", stored.status().to_string().c_str());
        return 1;
    }
    if (config.id && *stored && **stored != *config.id) {
        std::fprintf(stderr, "raftd: --id %llu but %s belongs to node %llu\n",
                     static_cast<unsigned long long>(*config.id), config.data_dir.c_str(),
                     static_cast<unsigned long long>(**stored));
        return 1;
    }
    const NodeId id = config.id ? *config.id : (*stored ? **stored : 1);
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
    if (!*stored && !joiner_matches_cluster(config, *log)) return kExitGroupCount;
    Result<std::size_t> resolved = group_count(config, stored->has_value(), *log);
    if (!resolved.ok()) return 1;
    const std::size_t groups = *resolved;
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

    // Set (through signals_context) once keel has fail-stopped.
    std::atomic<int> exit_code{0};
    NodeOptions options = node_options(config, id, *log);
    // On a keel thread: only hand over (it must not block or stop the node).
    options.on_failure = [&signals_context, &exit_code](const Status&) {
        boost::asio::post(signals_context, [&exit_code] { exit_code = kExitStorageFailure; });
    };
    Served served;
    if (groups == 0) {
        served.kv = std::make_shared<KvStateMachine>();
        Result<std::unique_ptr<Node>> opened = Node::open(options, served.kv);
        if (!opened.ok()) {
            log->error("cannot open the node: {}", opened.status().to_string());
            return 1;
        }
        served.node = std::move(opened.value());
    } else {
        Result<std::map<NodeId, std::string>> peers = group_peers(config, id, *log);
        if (!peers.ok()) return 1;
        Result<std::unique_ptr<GroupHost>> opened =
            open_group_host(options, *peers, groups, options.logger);
        if (!opened.ok()) {
            log->error("cannot open the groups: {}", opened.status().to_string());
            return 1;
        }
        served.host = std::move(opened.value());
        log->info("{} group(s) open", groups);
        served.balancer = std::make_unique<GroupBalancer>(served.host->kv_groups());
        served.balancer->start(kRebalanceInterval);
        if (config.join) {
            served.group_count = std::make_unique<GroupCountGuard>(
                *served.host->host,
                [&signals_context, &exit_code, &log = *log, groups](std::uint64_t refusals) {
                    log.error(
                        "--groups {}: the cluster has more groups ({} message(s) from its members "
                        "for groups this process does not serve); stopping. Empty the data dir "
                        "and join again with the cluster's --groups (GET /v1/status: "
                        "groups.count on a member)",
                        groups, refusals);
                    boost::asio::post(signals_context,
                                      [&exit_code] { exit_code = kExitGroupCount; });
                });
        }
    }
    Node* const node = &served.first();

    Router router;
    std::unique_ptr<HttpServer> server;
    // With --groups over plain HTTP: calls to other members (reset before
    // the context and server go).
    std::unique_ptr<ForwardPool> forwards;
    HandlerLimits limits;
    limits.max_value_bytes = config.max_value_bytes;
    HandlerContext context{*node, served.first_kv(), limits, [&server](std::function<void()> work) {
                               server->post(std::move(work));
                           }};
    context.quota = std::make_shared<StorageQuota>(config.quota_bytes, context.alarms);
    if (served.host) {
        context.groups = served.host->kv_groups();
        context.add_process = [&peers = *served.host->peers](const MemberSpec& member) {
            return peers.add_process(member);
        };
        // Over plain HTTP only (http_get.hpp).
        if (config.http_cert.empty()) {
            forwards = std::make_unique<ForwardPool>();
            const std::uint64_t answer_max_bytes =
                limits.max_list_limit * (6 * limits.max_key_bytes + 64) + 4096;
            context.forward_get = [&pool = *forwards, answer_max_bytes](
                                      std::string address, std::string target,
                                      std::string credentials, HandlerContext::ForwardDone done) {
                return pool.submit([address = std::move(address), target = std::move(target),
                                    credentials = std::move(credentials), done = std::move(done),
                                    answer_max_bytes] {
                    done(http_get(address, target, credentials, kForwardTimeout, answer_max_bytes));
                });
            };
        }
        context.peer_processes = [&host = *served.host->host] {
            std::vector<NodeId> ids;
            for (const auto& [id, address] : host.peers()) ids.push_back(id);
            return ids;
        };
    }
    context.proposals =
        std::make_shared<ProposalBatcher>(served.nodes(), [&server](std::function<void()> work) {
            return server->post_after_ready(std::move(work));
        });
    context.url_scheme = config.http_cert.empty() ? "http" : "https";
    add_kv_routes(router, context);
    add_admin_routes(router, context);
    add_group_routes(router, context);
    add_ui_routes(router, context, std::make_shared<const StatusPage>(status_page_html()));
    // The members' status pages may read cross-origin (cors.hpp).
    auto cors = std::make_shared<const CorsPolicy>([&node = *node, scheme = context.url_scheme] {
        return member_origins(node.status(), scheme);
    });
    RequestGuard guard(GuardOptions{config.allowed_origins, config.allowed_hosts, cors}, *tokens,
                       router);
    server = std::make_unique<HttpServer>(
        http_server_options(config, guard),
        with_cors(cors, [&router](HttpRequest request, Respond respond) {
            router.dispatch(std::move(request), std::move(respond));
        }));
    context.server_figures = [&server, &guard] { return server_figures(*server, guard); };
    Result<std::uint16_t> port = server->start();
    if (!port.ok()) {
        log->error("{}", port.status().to_string());
        served.stop(false);
        return 1;
    }
    NodeStatus status = node->status();
    log->info(
        "serving {} on {}:{}; role {}, term {}, mode {}, {} member(s), cluster {}, "
        "members over {}",
        context.url_scheme == "https" ? "HTTPS" : "HTTP", config.http.host, *port,
        role_name(status.role), status.term, mode_string(status.mode), status.members.size(),
        status.cluster_id.empty() ? "not known yet" : status.cluster_id,
        config.peer_tls.enabled() ? "mutual TLS" : "plain TCP");
    const std::string& host = config.http.host;
    const std::string bracketed = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (std::optional<std::string> origin =
            browser_origin(context.url_scheme, fmt::format("{}:{}", bracketed, *port))) {
        log->info("status page: {}/ui", *origin);
    }

    serve_until_stopped(
        signals_context, signals, exit_code, [&] { reload_tokens(config, tokens->get(), *log); },
        [&] { shut_down(served, *server, *log); },
        [&] {
            // Answer what is in flight, stop, and exit for a restart.
            log->error(
                "keel stopped on a storage failure: {}; shutting down for a restart (exit {})",
                node->status().failure, kExitStorageFailure);
            shut_down(served, *server, *log);
        },
        *log);
    // Calls to other members still running finish while the context and the
    // server they answer through exist (the queued ones are dropped).
    forwards.reset();
    return exit_code;
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
