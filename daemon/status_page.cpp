#include "status_page.hpp"

#include <openssl/evp.h>

#include <array>

#include "keel/assert.hpp"

namespace keel::daemon {
namespace {

// The text between `open` and the next `close`.  REQUIRES: exactly one `open`.
std::string_view element_text(std::string_view html, std::string_view open,
                              std::string_view close) {
    const std::size_t start = html.find(open);
    KEEL_ASSERT(start != std::string_view::npos, "the status page has its inline element");
    KEEL_ASSERT(html.find(open, start + 1) == std::string_view::npos,
                "the status page has one such element only");
    const std::size_t text = start + open.size();
    const std::size_t end = html.find(close, text);
    KEEL_ASSERT(end != std::string_view::npos, "the status page's element is closed");
    return html.substr(text, end - text);
}

// A CSP hash source: 'sha256-' and the base64 of the text's SHA-256.
std::string hash_source(std::string_view text) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_bytes = 0;
    const int ok =
        EVP_Digest(text.data(), text.size(), digest.data(), &digest_bytes, EVP_sha256(), nullptr);
    KEEL_ASSERT(ok == 1 && digest_bytes == 32, "OpenSSL computes SHA-256");
    std::array<unsigned char, 4 * ((32 + 2) / 3) + 1> base64{};
    const int length = EVP_EncodeBlock(base64.data(), digest.data(), 32);
    return "'sha256-" + std::string(reinterpret_cast<const char*>(base64.data()), length) + "'";
}

}  // namespace

StatusPage::StatusPage(std::string_view html)
    : html_(html),
      script_source_(hash_source(element_text(html, "<script>", "</script>"))),
      style_source_(hash_source(element_text(html, "<style>", "</style>"))) {}

std::string StatusPage::content_security_policy(
    const std::vector<std::string>& connect_origins) const {
    std::string connect = "'self'";
    for (const std::string& origin : connect_origins) connect += " " + origin;
    return "default-src 'none'; script-src " + script_source_ + "; style-src " + style_source_ +
           "; connect-src " + connect +
           "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

HttpResponse StatusPage::response(const std::vector<std::string>& connect_origins) const {
    HttpResponse response;
    response.body = html_;
    response.content_type = "text/html; charset=utf-8";
    response.set_header("Content-Security-Policy", content_security_policy(connect_origins));
    response.set_header("X-Content-Type-Options", "nosniff");
    response.set_header("X-Frame-Options", "DENY");
    response.set_header("Referrer-Policy", "no-referrer");
    response.set_header("Cache-Control", "no-store");
    return response;
}

}  // namespace keel::daemon
