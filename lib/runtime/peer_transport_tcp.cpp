// The TCP transport for replicas: a thin adapter from PeerTransport to
// keel::transport::TcpTransport (lib/transport/), with mutual TLS when
// NodeOptions::peer_tls is set.
#include <boost/asio/io_context.hpp>

#include "runtime/replica.hpp"
#include "transport/tcp_transport.hpp"
#include "transport/tls.hpp"

namespace keel::runtime {

namespace {

class TcpPeerTransport final : public PeerTransport {
public:
    TcpPeerTransport(boost::asio::io_context& io, transport::TcpTransportOptions options,
                     transport::TransportHandler handler)
        : host_(options.listen_address.substr(0, options.listen_address.rfind(':'))),
          tcp_(io, std::move(options), std::move(handler)) {}

    Status start() { return tcp_.start(); }

    std::string local_address() const override {
        return host_ + ":" + std::to_string(tcp_.bound_port());
    }
    void set_peer(raft::NodeId id, std::string address) override {
        tcp_.set_peer(id, std::move(address));
    }
    void remove_peer(raft::NodeId id) override { tcp_.remove_peer(id); }
    void send(std::vector<raft::Message> messages) override { tcp_.send(std::move(messages)); }
    void send_now(std::vector<raft::Message>& messages) override { tcp_.send_now(messages); }
    void send_snapshot(raft::Message message, std::string path) override {
        tcp_.send_snapshot(std::move(message), transport::SnapshotSource{std::move(path)});
    }
    void stop() override { tcp_.stop(); }

private:
    std::string host_;
    transport::TcpTransport tcp_;
};

}  // namespace

TransportFactory default_transport_factory() {
    return [](boost::asio::io_context& io, const NodeOptions& options,
              const transport::ClusterId& cluster_id, const std::string& advertised_address,
              PeerTransport::Handlers h) -> Result<std::unique_ptr<PeerTransport>> {
        transport::TcpTransportOptions o;
        o.self = options.id;
        o.cluster_id = cluster_id;
        if (options.peer_tls.enabled()) {
            auto tls = transport::TlsContext::load(transport::TlsFiles{
                options.peer_tls.cert_file, options.peer_tls.key_file, options.peer_tls.ca_file});
            if (!tls.ok())
                return Status(tls.status().code(), "peer TLS: " + tls.status().message());
            o.tls = std::move(tls.value());
        }
        o.listen_address = options.listen_address;
        o.advertised_address = advertised_address;
        o.staging_dir = options.data_dir + "/snapshots/incoming";
        o.jitter_seed = options.id;
        transport::TransportHandler th;
        th.on_message = std::move(h.on_message);
        th.on_snapshot = std::move(h.on_snapshot);
        th.on_unreachable = std::move(h.on_unreachable);
        th.on_snapshot_sent = std::move(h.on_snapshot_sent);
        th.on_rejected = [f = std::move(h.on_rejected)](transport::Rejection reason,
                                                        std::string_view detail) {
            if (f) f(transport::rejection_name(reason), detail);
        };
        th.on_cluster_id = std::move(h.on_cluster_id);
        th.on_hello = std::move(h.on_hello);
        auto logger = options.logger;
        th.log = [logger, id = options.id](transport::LogLevel level, std::string_view what) {
            // Refused connects while peers start or stop are routine: info,
            // not warn.  Errors are for the operator (a certificate refused).
            const LogLevel l = level == transport::LogLevel::error     ? LogLevel::warn
                               : level == transport::LogLevel::warning ? LogLevel::info
                               : level == transport::LogLevel::info    ? LogLevel::info
                                                                       : LogLevel::debug;
            if (logger) logger(l, "transport: " + std::string(what));
            (void)id;
        };
        auto t = std::make_unique<TcpPeerTransport>(io, std::move(o), std::move(th));
        if (Status s = t->start(); !s.ok()) return s;
        return std::unique_ptr<PeerTransport>(std::move(t));
    };
}

}  // namespace keel::runtime
