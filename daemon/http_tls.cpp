// The TLS context raftd serves HTTPS with: TLS 1.2 or later, the server's
// certificate chain and key (PEM), and, with a client CA, a client
// certificate required and verified against it.  Sessions may be resumed
// (OpenSSL's defaults: TLS 1.3 stateless tickets under keys made at start,
// TLS 1.2 session ids in this context's cache), so a client resumes only
// with this process, under the client CA it was verified against
// (docs/decisions/0046-member-tls-resumption.md).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http_server_impl.hpp"

namespace keel::daemon {
namespace {

// Names the sessions this context makes.  OpenSSL refuses to resume, with a
// fatal handshake error, a session of a context that verifies client
// certificates and has no id context (it could not tell whether the session
// was verified under the same settings).  One value suffices: a session
// never leaves the context (and process) that made it.
constexpr unsigned char kSessionIdContext[] = "raftd-http";

Status tls_error(const std::string& what, const boost::system::error_code& ec) {
    return Status(ErrorCode::invalid_argument, what + ": " + ec.message());
}

}  // namespace

Result<std::unique_ptr<net::ssl::context>> make_tls_context(const HttpServerOptions& options) {
    auto context = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    boost::system::error_code ec;
    context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                             net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
                         ec);
    if (ec) return tls_error("TLS options", ec);
    if (context->use_certificate_chain_file(options.tls_cert_file, ec); ec) {
        return tls_error("--http-cert " + options.tls_cert_file, ec);
    }
    if (context->use_private_key_file(options.tls_key_file, net::ssl::context::pem, ec); ec) {
        return tls_error("--http-key " + options.tls_key_file, ec);
    }
    if (SSL_CTX_set_session_id_context(context->native_handle(), kSessionIdContext,
                                       sizeof kSessionIdContext - 1) != 1) {
        ERR_clear_error();
        return Status(ErrorCode::invalid_argument, "TLS session id context");
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
        ERR_clear_error();
        return Status(ErrorCode::invalid_argument, "--http-key " + options.tls_key_file +
                                                       " does not match --http-cert " +
                                                       options.tls_cert_file);
    }
    if (!options.tls_client_ca_file.empty()) {
        if (context->load_verify_file(options.tls_client_ca_file, ec); ec) {
            return tls_error("--http-client-ca " + options.tls_client_ca_file, ec);
        }
        // Tell clients which CA to pick a certificate for.
        if (STACK_OF(X509_NAME)* names =
                SSL_load_client_CA_file(options.tls_client_ca_file.c_str())) {
            SSL_CTX_set_client_CA_list(context->native_handle(), names);
        }
        context->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert, ec);
        if (ec) return tls_error("TLS verify mode", ec);
    }
    return context;
}

}  // namespace keel::daemon
