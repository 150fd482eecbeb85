// One blocking GET to another raftd.  See http_get.hpp.
#include "http_get.hpp"

#include <memory>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include "member_spec.hpp"

namespace keel::daemon {

namespace http = boost::beast::http;

Result<HttpAnswer> http_get(const std::string& address, const std::string& target,
                            const std::string& authorization, std::chrono::milliseconds timeout,
                            std::uint64_t body_max_bytes) {
    Result<HostPort> where = parse_host_port(address, false);
    if (!where.ok()) return where.status();
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, address);
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    http::response_parser<http::string_body> parser;
    parser.body_limit(body_max_bytes);
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    boost::asio::ip::tcp::resolver resolver(io);
    auto addresses = resolver.resolve(where->host, std::to_string(where->port), ec);
    if (!ec) {
        // One deadline for connecting, writing and reading.
        stream.expires_after(timeout);
        stream.async_connect(addresses, [&](const boost::system::error_code& e,
                                            const boost::asio::ip::tcp::endpoint&) {
            if ((ec = e)) return;
            http::async_write(
                stream, request, [&](const boost::system::error_code& e, std::size_t) {
                    if ((ec = e)) return;
                    http::async_read(
                        stream, buffer, parser,
                        [&](const boost::system::error_code& e, std::size_t) { ec = e; });
                });
        });
        io.run();
    }
    if (ec)
        return Status(ErrorCode::io_error,
                      fmt::format("GET http://{}{}: {}", address, target, ec.message()));
    return HttpAnswer{static_cast<int>(parser.get().result_int()), parser.get().body()};
}

}  // namespace keel::daemon
