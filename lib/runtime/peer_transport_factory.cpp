// Makes a replica's PeerTransport: a MessageChannel over the application's
// keel::Transport (NodeOptions::transport), or over the built-in TCP
// transport, with mutual TLS when NodeOptions::peer_tls is set.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "runtime/replica.hpp"
#include "transport/tcp_transport.hpp"
#include "transport/tls.hpp"

namespace keel::runtime {

namespace {

// The built-in transport: TCP, the TLS of options.peer_tls, the hello's
// cluster id and address going to the replica's handlers.
Result<std::shared_ptr<Transport>> make_tcp(boost::asio::io_context& io, const NodeOptions& options,
                                            const transport::ClusterId& cluster_id,
                                            const std::string& advertised_address,
                                            PeerTransport::Handlers& h) {
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
    hooks.log = h.log;
    return std::shared_ptr<Transport>(
        std::make_shared<transport::TcpTransport>(io, std::move(o), std::move(hooks)));
}

}  // namespace

TransportFactory default_transport_factory() {
    return [](boost::asio::io_context& io, const NodeOptions& options,
              const transport::ClusterId& cluster_id, const std::string& advertised_address,
              PeerTransport::Handlers h) -> Result<std::unique_ptr<PeerTransport>> {
        auto logger = options.logger;
        h.log = [logger](transport::LogLevel level, std::string_view what) {
            // Refused connects while peers start or stop are routine: info,
            // not warn.  Errors are for the operator (a certificate refused).
            const LogLevel l = level == transport::LogLevel::error     ? LogLevel::warn
                               : level == transport::LogLevel::warning ? LogLevel::info
                               : level == transport::LogLevel::info    ? LogLevel::info
                                                                       : LogLevel::debug;
            if (logger) logger(l, "transport: " + std::string(what));
        };
        std::shared_ptr<Transport> t = options.transport;
        if (!t) {
            auto tcp = make_tcp(io, options, cluster_id, advertised_address, h);
            if (!tcp.ok()) return tcp.status();
            t = std::move(*tcp);
        }
        transport::MessageChannelOptions o;
        o.self = options.id;
        o.staging_dir = options.data_dir + "/snapshots/incoming";
        // What a transport delivers on another thread goes over to the I/O
        // thread, where the replica's handlers run.
        PeerTransport::Executor executor;
        executor.on_owner_thread = [&io] { return io.get_executor().running_in_this_thread(); };
        executor.post = [&io](std::function<void()> f) { boost::asio::post(io, std::move(f)); };
        auto channel =
            std::make_unique<PeerTransport>(std::move(t), std::move(o), std::move(h), executor);
        if (Status s = channel->start(); !s.ok()) return s;
        return channel;
    };
}

}  // namespace keel::runtime
