// raftd — keel's HTTP/JSON daemon: a replicated key-value store.
//
// Start-up: flags -> node id (flag, or the one stored in the data dir) ->
// keel::Node::open -> HTTP server.  Shut-down on SIGTERM/SIGINT, in the
// order that costs clients least:
//   1. if this node leads a cluster, hand leadership to the most caught-up
//      voter (bounded), so that writers are redirected, not failed;
//   2. stop accepting connections, finish in-flight requests (bounded);
//   3. node->stop(true): stop keel's threads, close the WAL cleanly.
#include <csignal>
#include <filesystem>
#include <memory>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "errors.hpp"
#include "flags.hpp"
#include "handlers.hpp"
#include "http_server.hpp"
#include "identity.hpp"
#include "keel/keel.hpp"
#include "kv_state_machine.hpp"
#include "router.hpp"

#ifndef RAFTD_VERSION
#define RAFTD_VERSION "dev"
#endif

namespace keel::daemon {
namespace {

constexpr std::chrono::milliseconds kTransferWait{2000};
constexpr std::chrono::milliseconds kDrainGrace{5000};

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
    options.snapshot_every_entries = config.snapshot_every_entries;
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

void shut_down(Node& node, HttpServer& server, spdlog::logger& log) {
    NodeStatus status = node.status();
    if (status.role == "leader" && status.mode == Mode::cluster) {
        if (NodeId to = transfer_target(status); to != 0) {
            log.info("transferring leadership to node {} before stopping", to);
            auto done = node.transfer_leadership(to);
            if (done.wait_for(kTransferWait) != std::future_status::ready) {
                log.warn("leadership transfer did not finish in {} ms", kTransferWait.count());
            } else if (Status s = done.get(); !s.ok()) {
                log.warn("leadership transfer failed: {}", s.to_string());
            }
        }
    }
    log.info("HTTP: stop accepting, finishing in-flight requests");
    server.shutdown(kDrainGrace);
    log.info("stopping the node");
    node.stop(true);
    log.info("stopped cleanly");
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
    log->info("raftd {} starting: data dir {}, HTTP {}, Raft {}{}", RAFTD_VERSION, config.data_dir,
              config.http.to_string(), config.raft.to_string(), config.join ? ", joining" : "");

    auto kv = std::make_shared<KvStateMachine>();
    Result<std::unique_ptr<Node>> opened = Node::open(node_options(config, id, *log), kv);
    if (!opened.ok()) {
        log->error("cannot open the node: {}", opened.status().to_string());
        return 1;
    }
    std::unique_ptr<Node> node = std::move(opened.value());
    if (!*stored) {
        if (Status s = write_node_id(config.data_dir, id); !s.ok()) {
            log->error("{}", s.to_string());
            node->stop(false);
            return 1;
        }
    }

    HttpServerOptions http_options;
    http_options.host = config.http.host;
    http_options.port = config.http.port;
    http_options.max_body_bytes = config.max_body_bytes;
    http_options.threads = config.http_threads;
    Router router;
    std::unique_ptr<HttpServer> server;
    HandlerLimits limits;
    limits.max_value_bytes = config.max_value_bytes;
    HandlerContext context{*node, *kv, limits, [&server](std::function<void()> work) {
                               server->post(std::move(work));
                           }};
    add_kv_routes(router, context);
    add_admin_routes(router, context);
    server =
        std::make_unique<HttpServer>(http_options, [&router](HttpRequest request, Respond respond) {
            router.dispatch(std::move(request), std::move(respond));
        });
    Result<std::uint16_t> port = server->start();
    if (!port.ok()) {
        log->error("{}", port.status().to_string());
        node->stop(false);
        return 1;
    }
    NodeStatus status = node->status();
    log->info(
        "serving HTTP on {}:{}; role {}, term {}, mode {}, {} member(s), cluster {}, "
        "members over {}",
        config.http.host, *port, status.role, status.term, mode_string(status.mode),
        status.members.size(), status.cluster_id.empty() ? "not known yet" : status.cluster_id,
        config.peer_tls.enabled() ? "mutual TLS" : "plain TCP");

    boost::asio::io_context signals_context;
    boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        log->info("received signal {}: shutting down", signal);
        shut_down(*node, *server, *log);
    });
    signals_context.run();
    return 0;
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
