// daemon/member_client.hpp — raftd asking another member's HTTP port, one
// blocking GET: a joiner's look at the cluster (cluster_probe.hpp) and a
// member's part of a list across groups (handlers_list.cpp).
//
// Every member serves the same scheme, so raftd asks over the one it serves:
// plain HTTP, or with --http-cert HTTPS only (never plain HTTP to an HTTPS
// member, whatever fails).  Over HTTPS the member's certificate must chain
// to --http-ca (the system's CA store without it) and name the host of its
// HTTP address (a DNS name, or an IP address in an IP SAN); with
// --http-client-cert raftd presents that certificate, for members whose
// --http-client-ca requires one.  The client is tools/common/http_client.hpp,
// keelctl's: it keeps each member's TLS session and resumes it on the next
// call (tls_session_cache.hpp says why that skips no check).
//
// A client's credentials (the Authorization header raftd passes on) go only
// where nothing on the way can read them: over TLS to a member whose
// certificate was verified, or over plain HTTP to a loopback address.
// Elsewhere the call goes without them (a member that asks for tokens then
// answers 401).  The addresses are the members' own (the membership's HTTP
// addresses, or --member), never a client's.
//
// The answer comes from outside the process: its body is capped
// (body_max_bytes) and the callers validate it.
// Threads: get() from any thread, several at once; each call blocks for at
// most `timeout` from connecting to the answer's last byte (resolving a
// host name is not bounded by it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http_client.hpp"
#include "http_types.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

struct MemberClientOptions {
    bool tls = false;       // --http-cert: the members serve HTTPS
    std::string ca_file;    // --http-ca: the CA of the members' HTTP certificates; "": the system's
    std::string cert_file;  // --http-client-cert: presented to the members; "": none
    std::string key_file;   // --http-client-key
};

// Whether a client's credentials may go to a member at `host` (a name or
// IP address, without brackets): over TLS (the member's certificate is
// verified), or to a loopback address.
bool may_pass_credentials(bool tls, std::string_view host);

class MemberClient {
public:
    // Loads the TLS files of `options` (when options.tls): invalid_argument,
    // naming the file, when one cannot be read or does not match.
    static Result<std::unique_ptr<MemberClient>> open(const MemberClientOptions& options);

    // GET `target` from the member whose HTTP address is `address`
    // ("host:port"), with `authorization` as the Authorization header when
    // not empty and allowed (above).  invalid_argument for a malformed
    // address; io_error when it cannot be reached or verified (TLS) or
    // answers not HTTP; timeout; too_large past body_max_bytes.  Any HTTP
    // status is an answer.
    Result<HttpAnswer> get(const std::string& address, const std::string& target,
                           const std::string& authorization, std::chrono::milliseconds timeout,
                           std::uint64_t body_max_bytes) const;

    // "https" or "http": what get() speaks.
    const char* scheme() const { return tls_ ? "https" : "http"; }

    // What the TLS handshakes with the members did, resumed or not.
    http_client::TlsSessionStats tls_sessions() const { return client_.tls_sessions(); }

private:
    MemberClient(bool tls, http_client::HttpClient client);

    const bool tls_;
    const http_client::HttpClient client_;
};

}  // namespace keel::daemon
