// raftd's HTTP side wired together.  See http_front.hpp.
#include "http_front.hpp"

#include <chrono>
#include <utility>
#include <vector>

#include "member_origins.hpp"
#include "status_page.hpp"

namespace keel::daemon {
namespace {

// How long a member's part of a list across groups may take (handlers_list.cpp).
constexpr std::chrono::milliseconds kForwardTimeout{5000};

HandlerLimits handler_limits(const DaemonConfig& config) {
    HandlerLimits limits;
    limits.max_value_bytes = config.max_value_bytes;
    return limits;
}

std::string url_scheme(const DaemonConfig& config) {
    return config.http_cert.empty() ? "http" : "https";
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

DaemonFigures server_figures(const HttpServer& server, const RequestGuard& guard,
                             const MemberClient& members) {
    HttpServerStats stats = server.stats();
    DaemonFigures figures;
    figures.connections = stats.connections;
    figures.requests = stats.requests;
    figures.requests_refused = guard.refused();
    figures.connections_refused = stats.connections_refused;
    figures.accept_backoffs = stats.accept_backoffs;
    figures.timeouts = stats.timeouts;
    figures.tls_handshake_failures = stats.tls_handshake_failures;
    const http_client::TlsSessionStats member_tls = members.tls_sessions();
    figures.member_tls_handshakes = member_tls.handshakes;
    figures.member_tls_resumed = member_tls.resumed;
    return figures;
}

}  // namespace

HttpFront::HttpFront(const DaemonConfig& config, const Served& served, const MemberClient& members,
                     std::shared_ptr<TokenStore> tokens)
    : context_{served.first(), served.first_kv(), handler_limits(config),
               [this](std::function<void()> work) { server_->post(std::move(work)); }},
      // The members' status pages may read cross-origin (cors.hpp).
      cors_(
          std::make_shared<const CorsPolicy>([&node = served.first(), scheme = url_scheme(config)] {
              return member_origins(node.status(), scheme);
          })),
      guard_(GuardOptions{config.allowed_origins, config.allowed_hosts, cors_}, std::move(tokens),
             router_) {
    context_.quota = std::make_shared<StorageQuota>(config.quota_bytes, context_.alarms);
    context_.url_scheme = url_scheme(config);
    if (served.host) {
        context_.groups = served.host->kv_groups();
        context_.add_process = [&peers = *served.host->peers](const MemberSpec& member) {
            return peers.add_process(member);
        };
        forwards_ = std::make_unique<ForwardPool>();
        const HandlerLimits& limits = context_.limits;
        const std::uint64_t answer_max_bytes =
            limits.max_list_limit * (6 * limits.max_key_bytes + 64) + 4096;
        context_.forward_get = [&pool = *forwards_, &members, answer_max_bytes](
                                   std::string address, std::string target, std::string credentials,
                                   HandlerContext::ForwardDone done) {
            return pool.submit([&members, address = std::move(address), target = std::move(target),
                                credentials = std::move(credentials), done = std::move(done),
                                answer_max_bytes] {
                done(members.get(address, target, credentials, kForwardTimeout, answer_max_bytes));
            });
        };
        context_.peer_processes = [&host = *served.host->host] {
            std::vector<NodeId> ids;
            for (const auto& [id, address] : host.peers()) ids.push_back(id);
            return ids;
        };
        context_.leader_transfers = [&balancer = *served.balancer] {
            return std::pair{balancer.moves(), balancer.failed_moves()};
        };
    }
    context_.proposals = std::make_shared<ProposalBatcher>(
        served.nodes(),
        [this](std::function<void()> work) { return server_->post_after_ready(std::move(work)); });
    add_kv_routes(router_, context_);
    add_admin_routes(router_, context_);
    add_group_routes(router_, context_);
    add_ui_routes(router_, context_, std::make_shared<const StatusPage>(status_page_html()));
    server_ =
        std::make_unique<HttpServer>(http_server_options(config, guard_),
                                     with_cors(cors_, [this](HttpRequest request, Respond respond) {
                                         router_.dispatch(std::move(request), std::move(respond));
                                     }));
    context_.server_figures = [this, &members] {
        return server_figures(*server_, guard_, members);
    };
}

HttpFront::~HttpFront() {
    forwards_.reset();
}

}  // namespace keel::daemon
