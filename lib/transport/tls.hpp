// transport/tls.hpp — mutual TLS between members: the configuration every
// connection shares (TlsContext) and one connection's TLS state machine
// (TlsSession), driven through memory buffers.
//
// No Asio here: a TlsSession is fed the bytes the socket received and hands
// back the bytes to send, so the transport decides which thread touches the
// socket and when.  That is what lets a non-I/O thread encrypt and write a
// frame under the transport's send lock (docs/decisions/0005-peer-tls-send-now.md).
//
// Policy (both roles): TLS 1.3 only; each side presents its certificate and
// verifies the other's chain against the CA file alone (not the system's
// store); no session tickets, resumption or renegotiation, so after the
// handshake nothing but application data and alerts ever flows.  Host names
// are not checked: membership of the CA is the credential, the cluster id
// and the hello say which cluster and which member (docs/operations.md,
// "Security").
//
// Threading: a TlsContext is immutable once loaded and may be shared by any
// number of threads and sessions.  A TlsSession is not thread-safe: one
// thread at a time (the transport holds its send lock, or is the I/O thread).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "keel/status.hpp"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace keel::transport {

// PEM files, as given to raftd --peer-cert/--peer-key/--peer-ca.
struct TlsFiles {
    std::string cert_file;  // this member's certificate, then any intermediates
    std::string key_file;   // its private key, unencrypted
    std::string ca_file;    // the CA certificate(s) every member's chain must end in
};

class TlsContext {
public:
    // Loads and checks the files: each readable and well-formed, the key
    // matching the certificate, the certificate valid now and chaining to
    // the CA (a member the others would refuse fails here, at start-up).
    // invalid_argument naming the file and OpenSSL's reason otherwise.
    static Result<std::shared_ptr<const TlsContext>> load(const TlsFiles& files);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    ssl_ctx_st* native() const { return ctx_; }
    // The subject of our own certificate, for logs.
    const std::string& subject() const { return subject_; }

private:
    TlsContext(ssl_ctx_st* ctx, std::string subject) : ctx_(ctx), subject_(std::move(subject)) {}
    ssl_ctx_st* ctx_;
    std::string subject_;
};

class TlsSession {
public:
    enum class Role { client, server };
    enum class Handshake { in_progress, done };

    TlsSession(std::shared_ptr<const TlsContext> context, Role role);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Bytes that arrived from the peer (any amount, any split).  The
    // session holds them until handshake() or decrypt() consumes them; the
    // caller bounds the total by feeding one socket read at a time and
    // draining before the next.
    void put_received(std::string_view bytes);

    // Advances the handshake with what has been received.  done once both
    // sides' certificates are verified as far as this side can tell (a TLS
    // 1.3 client learns that the server refused its certificate only from
    // the alert that follows: decrypt() reports it).  The error says why in
    // words an operator can act on (no certificate, unknown CA, not TLS).
    // Then call take_output(): the handshake may have bytes to send.
    Result<Handshake> handshake();

    // Appends whatever the session has to send (handshake flights, records
    // made by encrypt()) to `out`.
    void take_output(std::string& out);
    bool has_output() const;

    // After the handshake: appends `plain` as TLS records to `out` (with any
    // output already pending before it, in order).
    Status encrypt(std::string_view plain, std::string& out);
    // After the handshake: decrypts received records into [data, data +
    // capacity).  Returns the bytes written, 0 when a whole record has not
    // arrived yet (put_received more); aborted when the peer closed the
    // session (close_notify); corruption when it sent an alert or something
    // that is not a valid record.  Anything the session would answer (a receiver never
    // answers post-handshake messages) is discarded.
    Result<std::size_t> decrypt(char* data, std::size_t capacity);

    // "CN=..." of the peer's verified certificate, "" before the handshake.
    std::string peer_subject() const;

private:
    std::string error_text(const char* what, int ret) const;

    std::shared_ptr<const TlsContext> context_;
    ssl_st* ssl_ = nullptr;
    bio_st* in_ = nullptr;   // owned by ssl_: what the peer sent
    bio_st* out_ = nullptr;  // owned by ssl_: what to send
};

}  // namespace keel::transport
