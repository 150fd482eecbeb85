// One blocking GET to another member.  See member_client.hpp.
#include "member_client.hpp"

#include <fmt/format.h>

#include "member_spec.hpp"

namespace keel::daemon {

namespace {

constexpr const char* kUserAgent = "raftd";

}  // namespace

bool may_pass_credentials(bool tls, std::string_view host) {
    return tls || is_loopback_host(host);
}

Result<std::unique_ptr<MemberClient>> MemberClient::open(const MemberClientOptions& options) {
    http_client::ClientOptions client;
    client.user_agent = kUserAgent;
    if (options.tls) {
        client.cacert = options.ca_file;
        client.cert = options.cert_file;
        client.key = options.key_file;
    }
    http_client::HttpClient made(std::move(client));
    if (options.tls && !made.tls_status().ok())
        return Status(ErrorCode::invalid_argument,
                      "HTTPS to the other members: " + made.tls_status().message());
    return std::unique_ptr<MemberClient>(new MemberClient(options.tls, std::move(made)));
}

MemberClient::MemberClient(bool tls, http_client::HttpClient client)
    : tls_(tls), client_(std::move(client)) {}

Result<HttpAnswer> MemberClient::get(const std::string& address, const std::string& target,
                                     const std::string& authorization,
                                     std::chrono::milliseconds timeout,
                                     std::uint64_t body_max_bytes) const {
    Result<HostPort> where = parse_host_port(address, false);
    if (!where.ok()) return where.status();
    http_client::Url url;
    url.tls = tls_;
    url.host = where->host;
    url.port = std::to_string(where->port);
    http_client::ClientOptions options = client_.options();
    options.timeout = timeout;
    options.body_max_bytes = body_max_bytes;
    if (may_pass_credentials(tls_, where->host)) options.authorization = authorization;
    Result<http_client::Response> answer =
        client_.with_options(std::move(options)).send(url, "GET", target);
    if (!answer.ok())
        return Status(answer.status().code(),
                      fmt::format("GET {}{}: {}", url.origin(), target, answer.status().message()));
    return HttpAnswer{answer->status, std::move(answer->body)};
}

}  // namespace keel::daemon
