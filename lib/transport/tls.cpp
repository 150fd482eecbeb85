// transport/tls.cpp — TlsContext and TlsSession over OpenSSL 3, with memory
// BIOs between the session and the socket.
#include "transport/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fmt/format.h>
#include <cstdio>
#include <utility>

namespace keel::transport {
namespace {

// Chains are short (a CA, perhaps an intermediate): refuse long ones
// before spending CPU on them.
constexpr int kVerifyDepthMax = 4;

// Every queued OpenSSL error, oldest first, "; "-separated (and clears the
// thread's queue).  "" when there is none.
std::string drain_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        // "error:0A000086:SSL routines::certificate verify failed": keep the reason.
        std::string text = buf;
        const std::size_t colon = text.rfind(':');
        if (colon != std::string::npos && colon + 1 < text.size()) text = text.substr(colon + 1);
        if (!out.empty()) out += "; ";
        out += text;
    }
    return out;
}

std::string name_of(X509_NAME* name) {
    if (!name) return "";
    char buf[256];
    X509_NAME_oneline(name, buf, sizeof buf);
    return buf;
}

Status file_error(const std::string& what, const std::string& path) {
    std::string why = drain_errors();
    if (why.empty()) return Status(ErrorCode::invalid_argument, fmt::format("{} {}", what, path));
    return Status(ErrorCode::invalid_argument, fmt::format("{} {}: {}", what, path, why));
}

// Whether `cert` is valid now and chains to the CA in `ctx`'s store.
Status check_own_certificate(SSL_CTX* ctx, X509* cert, const TlsFiles& files) {
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("certificate {} is not valid yet", files.cert_file));
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("certificate {} has expired", files.cert_file));
    X509_STORE_CTX* verify = X509_STORE_CTX_new();
    if (!verify) return Status(ErrorCode::io_error, "out of memory verifying " + files.cert_file);
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    Status result;
    if (X509_STORE_CTX_init(verify, SSL_CTX_get_cert_store(ctx), cert, chain) != 1 ||
        X509_verify_cert(verify) != 1) {
        const int code = X509_STORE_CTX_get_error(verify);
        drain_errors();
        result =
            Status(ErrorCode::invalid_argument,
                   fmt::format("certificate {} does not chain to the CA in {}: {}", files.cert_file,
                               files.ca_file, X509_verify_cert_error_string(code)));
    }
    X509_STORE_CTX_free(verify);
    return result;
}

}  // namespace

Result<std::shared_ptr<const TlsContext>> TlsContext::load(const TlsFiles& files) {
    if (files.cert_file.empty() || files.key_file.empty() || files.ca_file.empty())
        return Status(ErrorCode::invalid_argument,
                      "TLS needs a certificate, its key and the CA certificate");
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_method());
    if (!ctx) return Status(ErrorCode::io_error, "SSL_CTX_new: " + drain_errors());
    auto fail = [ctx](Status s) {
        SSL_CTX_free(ctx);
        return s;
    };
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
        return fail(Status(ErrorCode::unsupported, "TLS 1.3: " + drain_errors()));
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1)
        return fail(file_error("cannot load the certificate", files.cert_file));
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail(file_error("cannot load the private key", files.key_file));
    // (use_PrivateKey_file refuses a key that does not match the certificate.)
    if (SSL_CTX_load_verify_locations(ctx, files.ca_file.c_str(), nullptr) != 1)
        return fail(file_error("cannot load the CA certificate", files.ca_file));
    X509* own = SSL_CTX_get0_certificate(ctx);
    if (Status s = check_own_certificate(ctx, own, files); !s.ok()) return fail(s);

    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_verify_depth(ctx, kVerifyDepthMax);
    // Nothing after the handshake but application data: no tickets (a
    // server would send them to its client, which only writes), no
    // resumption, no renegotiation.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    // Present the chain in cert_file as it is, not one completed from the
    // CA file (a peer has the CA already).
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    std::string subject = name_of(X509_get_subject_name(own));
    return std::shared_ptr<const TlsContext>(new TlsContext(ctx, std::move(subject)));
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, Role role)
    : context_(std::move(context)) {
    KEEL_ASSERT(context_, "a TLS session needs a context");
    ssl_ = SSL_new(context_->native());
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    KEEL_ASSERT(ssl_ && in_ && out_, "out of memory creating a TLS session");
    // An empty input buffer means "wait for more", not end of stream.
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both now
    if (role == Role::client) {
        SSL_set_connect_state(ssl_);
    } else {
        SSL_set_accept_state(ssl_);
    }
}

TlsSession::~TlsSession() {
    SSL_free(ssl_);
}

void TlsSession::put_received(std::string_view bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
        std::size_t written = 0;
        const int ok = BIO_write_ex(in_, bytes.data() + at, bytes.size() - at, &written);
        // A memory BIO takes everything unless out of memory.
        KEEL_ASSERT(ok == 1, "out of memory buffering TLS input");
        at += written;
    }
}

std::string TlsSession::error_text(const char* what, int ret) const {
    const int code = SSL_get_error(ssl_, ret);
    std::string why = drain_errors();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
        why += fmt::format("{}peer certificate: {}", why.empty() ? "" : "; ",
                           X509_verify_cert_error_string(verify));
        if (verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
            verify == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
            verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
            why += " (not signed by our CA)";
    }
    if (why.empty()) {
        why = code == SSL_ERROR_ZERO_RETURN ? "the peer closed the TLS session"
              : code == SSL_ERROR_SYSCALL   ? "unexpected end of the TLS stream"
                                            : fmt::format("SSL error {}", code);
    }
    return fmt::format("{}: {}", what, why);
}

Result<TlsSession::Handshake> TlsSession::handshake() {
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) return Handshake::done;
    const int code = SSL_get_error(ssl_, ret);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return Handshake::in_progress;
    }
    return Status(ErrorCode::invalid_argument, error_text("TLS handshake failed", ret));
}

bool TlsSession::has_output() const {
    return BIO_ctrl_pending(out_) > 0;
}

void TlsSession::take_output(std::string& out) {
    const std::size_t pending = BIO_ctrl_pending(out_);
    if (pending == 0) return;
    const std::size_t at = out.size();
    out.resize(at + pending);
    std::size_t got = 0;
    const int ok = BIO_read_ex(out_, out.data() + at, pending, &got);
    KEEL_ASSERT(ok == 1 && got == pending, "a memory BIO hands back what it holds");
}

Status TlsSession::encrypt(std::string_view plain, std::string& out) {
    KEEL_ASSERT(SSL_is_init_finished(ssl_), "encrypt after the handshake only");
    ERR_clear_error();
    std::size_t at = 0;
    while (at < plain.size()) {
        std::size_t written = 0;
        const int ret = SSL_write_ex(ssl_, plain.data() + at, plain.size() - at, &written);
        if (ret != 1) return Status(ErrorCode::io_error, error_text("TLS write failed", ret));
        at += written;
    }
    take_output(out);
    return Status();
}

Result<std::size_t> TlsSession::decrypt(char* data, std::size_t capacity) {
    KEEL_ASSERT(capacity > 0, "decrypt into some space");
    ERR_clear_error();
    std::size_t got = 0;
    const int ret = SSL_read_ex(ssl_, data, capacity, &got);
    // A receiver never answers: drop whatever the session made of a
    // post-handshake message, so that a peer cannot grow it.
    if (BIO_ctrl_pending(out_) > 0) (void)BIO_reset(out_);
    if (ret == 1) return got;
    const int code = SSL_get_error(ssl_, ret);
    if (code == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        return std::size_t{0};
    }
    if (code == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return Status(ErrorCode::aborted, "the peer closed the TLS session");
    }
    return Status(ErrorCode::corruption, error_text("TLS read failed", ret));
}

std::string TlsSession::peer_subject() const {
    X509* peer = SSL_get0_peer_certificate(ssl_);
    return peer ? name_of(X509_get_subject_name(peer)) : std::string();
}

}  // namespace keel::transport
