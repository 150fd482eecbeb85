// tools/common/tls_session_cache.hpp — the TLS sessions an HTTP client keeps
// to resume its next handshake with the same server (RFC 8446 §2.2 tickets,
// or TLS 1.2 session ids), so that a connection skips the certificate
// signatures and chain checks a full handshake costs
// (docs/decisions/0046-member-tls-resumption.md).
//
// What a resumed session may be trusted for: OpenSSL does not check the
// server's certificate again on resumption; it cannot (the server sends
// none).  The session proves only that the server holds the secret of the
// one that passed the full handshake the session came from.  So a session
// is offered only where that handshake's checks would pass again:
//   - one cache belongs to one TLS context (http_client.cpp): one CA, one
//     client certificate, verification on — a session never crosses them;
//   - the key is the host name (or address) checked and sent as SNI, and the
//     port: a session from "a.example:443" is never offered to "b.example"
//     or to 10.0.0.1, even when they are the same server;
//   - a session whose server certificate has expired is not offered (a full
//     handshake then checks the new one), and OpenSSL itself skips a ticket
//     past the lifetime the server gave it.
//
// Bounded: at most `entries_max` keys, the least recently used dropped
// first; one session per key (the newest).  A session is shared by the
// connections made with it until a newer one replaces it: OpenSSL's
// stateless tickets (raftd's server) may be used more than once.
//
// Threads: every method from any thread, several at once (one mutex).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

typedef struct ssl_session_st SSL_SESSION;
typedef struct ssl_st SSL;

namespace keel::http_client {

// Counted since the cache was made: what the handshakes of its client did.
struct TlsSessionStats {
    std::uint64_t handshakes = 0;  // completed, full or resumed
    std::uint64_t resumed = 0;     // of which resumed a session
    std::uint64_t offered = 0;     // handshakes started with a session offered
    std::uint64_t refused = 0;     // of those offered, handshakes that failed
    std::uint64_t entries = 0;     // keys held now
};

class TlsSessionCache {
public:
    // 0 keeps nothing: every handshake is a full one.
    explicit TlsSessionCache(std::size_t entries_max);
    ~TlsSessionCache();
    TlsSessionCache(const TlsSessionCache&) = delete;
    TlsSessionCache& operator=(const TlsSessionCache&) = delete;

    // "host|port": host as checked and sent as SNI (no brackets for IPv6).
    static std::string key(const std::string& host, const std::string& port);

    // Before `ssl`'s handshake: sets the session kept for `key`, if any and
    // still usable.  Returns whether one was offered.
    bool offer(SSL* ssl, const std::string& key);

    // After `ssl`'s handshake succeeded (counts it, resumed or not).
    void handshake_done(SSL* ssl);
    // After `ssl`'s handshake failed; `offered` as offer() returned.  The
    // session kept for `key` is dropped when one was offered.
    void handshake_failed(const std::string& key, bool offered);

    // After an answer was read whole over `ssl` (TLS 1.3 tickets arrive
    // after the handshake, before the answer): keeps its session for `key`
    // when it can be resumed, replacing the older one.
    void keep(SSL* ssl, const std::string& key);

    TlsSessionStats stats() const;

private:
    struct Entry {
        SSL_SESSION* session;  // one reference owned by the cache
        std::list<std::string>::iterator recent;
    };

    const std::size_t entries_max_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
    std::list<std::string> recent_;                   // GUARDED_BY(mu_): most recent first
    std::atomic<std::uint64_t> handshakes_{0};
    std::atomic<std::uint64_t> resumed_{0};
    std::atomic<std::uint64_t> offered_{0};
    std::atomic<std::uint64_t> refused_{0};

    void drop_locked(std::unordered_map<std::string, Entry>::iterator it);  // REQUIRES: mu_
};

}  // namespace keel::http_client
