// Makes a process's transport (the application's keel::Transport, or the
// built-in TCP one with mutual TLS when NodeOptions::peer_tls is set) and
// each group's MessageChannel over it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "runtime/peer_transport.hpp"
#include "runtime/process_services.hpp"
#include "transport/tcp_transport.hpp"
#include "transport/tls.hpp"

namespace keel::runtime {

namespace {

// Refused connects while peers start or stop are routine: info, not warn.
// Errors are for the operator (a certificate refused).
LogLevel level_of(transport::LogLevel level) {
    return level == transport::LogLevel::error     ? LogLevel::warn
           : level == transport::LogLevel::warning ? LogLevel::info
           : level == transport::LogLevel::info    ? LogLevel::info
                                                   : LogLevel::debug;
}

std::function<void(transport::LogLevel, std::string_view)> transport_log(const NodeOptions& o) {
    return [logger = o.logger](transport::LogLevel level, std::string_view what) {
        if (logger) logger(level_of(level), "transport: " + std::string(what));
    };
}

}  // namespace

Result<std::shared_ptr<Transport>> make_process_transport(boost::asio::io_context& io,
                                                          const NodeOptions& options,
                                                          const transport::ClusterId& cluster_id,
                                                          const std::string& advertised_address,
                                                          ProcessTransportHooks h) {
    if (options.transport) return options.transport;
    transport::TcpTransportOptions o;
    o.self = options.id;
    o.cluster_id = cluster_id;
    if (options.peer_tls.enabled()) {
        auto tls = transport::TlsContext::load(transport::TlsFiles{
            options.peer_tls.cert_file, options.peer_tls.key_file, options.peer_tls.ca_file});
        if (!tls.ok()) return Status(tls.status().code(), "peer TLS: " + tls.status().message());
        o.tls = std::move(tls.value());
    }
    o.listen_address = options.listen_address;
    o.advertised_address = advertised_address;
    o.jitter_seed = options.id;
    transport::TcpTransportHooks hooks;
    hooks.on_rejected = [f = h.on_rejected](transport::Rejection reason, std::string_view detail) {
        if (f) f(transport::rejection_name(reason), detail);
    };
    hooks.on_cluster_id = std::move(h.on_cluster_id);
    hooks.on_hello = std::move(h.on_hello);
    hooks.log = transport_log(options);
    return std::shared_ptr<Transport>(
        std::make_shared<transport::TcpTransport>(io, std::move(o), std::move(hooks)));
}

Result<std::unique_ptr<PeerTransport>> make_group_channel(ProcessServices& services,
                                                          const NodeOptions& options, GroupId group,
                                                          transport::MessageChannel::Handlers h) {
    h.log = transport_log(options);
    transport::MessageChannelOptions o;
    o.self = options.id;
    o.group = group;
    o.staging_dir = options.data_dir + "/snapshots/incoming";
    // What a transport delivers on another thread goes over to the I/O
    // thread, where the group's handlers run.
    boost::asio::io_context& io = services.io();
    PeerTransport::Executor executor;
    executor.on_owner_thread = [&io] { return io.get_executor().running_in_this_thread(); };
    executor.post = [&io](std::function<void()> f) { boost::asio::post(io, std::move(f)); };
    auto channel = std::make_unique<PeerTransport>(services.router().link(group), std::move(o),
                                                   std::move(h), executor);
    if (Status s = channel->start(); !s.ok()) return s;
    return channel;
}

}  // namespace keel::runtime
