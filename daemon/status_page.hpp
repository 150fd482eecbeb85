// daemon/status_page.hpp — GET /ui, the status page: one self-contained HTML
// file (daemon/ui/status.html, embedded at build time by daemon/ui/embed.py)
// whose inline script polls /v1/status on this node and on the other members.
// It holds no data itself, so it needs no token; every call it makes does.
//
// It is served with headers that let it do nothing but that: a
// Content-Security-Policy that allows exactly its one inline <style> and one
// inline <script> (by their SHA-256, computed once here), connections to this
// origin and the members' only, no frames, no forms, no other resource; and
// nosniff, no framing, no referrer, no caching (the policy names the current
// members).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http_types.hpp"

namespace keel::daemon {

// The embedded daemon/ui/status.html (generated: status_page_html.cpp).
std::string_view status_page_html();

class StatusPage {
public:
    // REQUIRES: `html` holds exactly one "<style>...</style>" and one
    // "<script>...</script>" (no attributes): our own page, checked at build
    // time by embed.py; the hashes are of the text between the tags.
    explicit StatusPage(std::string_view html);

    // The page and its headers.  `connect_origins`: the origins besides
    // 'self' the page may fetch from (member_origins.hpp; they must be
    // browser origins as browser_origin() makes them).  Thread-safe.
    HttpResponse response(const std::vector<std::string>& connect_origins) const;
    std::string content_security_policy(const std::vector<std::string>& connect_origins) const;

    // "'sha256-BASE64'", as the policy names them.
    const std::string& script_source() const { return script_source_; }
    const std::string& style_source() const { return style_source_; }

private:
    std::string html_;
    std::string script_source_;
    std::string style_source_;
};

}  // namespace keel::daemon
