// The TLS sessions an HTTP client keeps.  See tls_session_cache.hpp.
#include "tls_session_cache.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace keel::http_client {
namespace {

// Whether `session` may still be offered: OpenSSL would resume it, and the
// server certificate it was verified with has not expired since.
bool usable(const SSL_SESSION* session) {
    if (SSL_SESSION_is_resumable(session) != 1) return false;
    X509* server = SSL_SESSION_get0_peer(const_cast<SSL_SESSION*>(session));
    // No certificate: not a session of a verified server (cannot happen with
    // verify_peer on, but then it is not offered).
    if (server == nullptr) return false;
    return X509_cmp_current_time(X509_get0_notAfter(server)) > 0;
}

}  // namespace

TlsSessionCache::TlsSessionCache(std::size_t entries_max) : entries_max_(entries_max) {}

TlsSessionCache::~TlsSessionCache() {
    for (auto& [key, entry] : entries_) SSL_SESSION_free(entry.session);
}

std::string TlsSessionCache::key(const std::string& host, const std::string& port) {
    return host + "|" + port;
}

bool TlsSessionCache::offer(SSL* ssl, const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    if (!usable(it->second.session)) {
        drop_locked(it);
        return false;
    }
    // SSL_set_session takes its own reference: the entry may be replaced or
    // dropped while the handshake runs.
    if (SSL_set_session(ssl, it->second.session) != 1) {
        drop_locked(it);
        return false;
    }
    recent_.splice(recent_.begin(), recent_, it->second.recent);
    offered_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void TlsSessionCache::handshake_done(SSL* ssl) {
    handshakes_.fetch_add(1, std::memory_order_relaxed);
    if (SSL_session_reused(ssl) == 1) resumed_.fetch_add(1, std::memory_order_relaxed);
}

void TlsSessionCache::handshake_failed(const std::string& key, bool offered) {
    if (!offered) return;
    refused_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) drop_locked(it);
}

void TlsSessionCache::keep(SSL* ssl, const std::string& key) {
    if (entries_max_ == 0) return;
    SSL_SESSION* session = SSL_get1_session(ssl);
    if (session == nullptr) return;
    if (!usable(session)) {
        SSL_SESSION_free(session);
        return;
    }
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
        SSL_SESSION_free(it->second.session);
        it->second.session = session;
        recent_.splice(recent_.begin(), recent_, it->second.recent);
        return;
    }
    recent_.push_front(key);
    entries_.emplace(key, Entry{session, recent_.begin()});
    if (entries_.size() > entries_max_) drop_locked(entries_.find(recent_.back()));
}

TlsSessionStats TlsSessionCache::stats() const {
    TlsSessionStats out;
    out.handshakes = handshakes_.load(std::memory_order_relaxed);
    out.resumed = resumed_.load(std::memory_order_relaxed);
    out.offered = offered_.load(std::memory_order_relaxed);
    out.refused = refused_.load(std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    out.entries = entries_.size();
    return out;
}

void TlsSessionCache::drop_locked(std::unordered_map<std::string, Entry>::iterator it) {
    SSL_SESSION_free(it->second.session);
    recent_.erase(it->second.recent);
    entries_.erase(it);
}

}  // namespace keel::http_client
