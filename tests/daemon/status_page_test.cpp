#include <catch2/catch.hpp>

#include "status_page.hpp"

using namespace keel::daemon;

namespace {

std::string header(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers)
        if (key == name) return value;
    return "";
}

}  // namespace

TEST_CASE("the page's policy allows its one inline script and style by their SHA-256",
          "[daemon][ui]") {
    // Digests from Python's hashlib: sha256("go()"), sha256("body{}").
    StatusPage page("<html><style>body{}</style><p>x</p><script>go()</script></html>");
    CHECK(page.script_source() == "'sha256-5KYv+PUboo5h+0+YAtGRPbwv5d/QxzHslP4YGnUaxRw='");
    CHECK(page.style_source() == "'sha256-fJgEClQWV1hGkK4qHMO0KotTsVnMYMXTq7/suurGyUo='");
    HttpResponse response = page.response({"http://127.0.0.1:8082", "http://127.0.0.1:8083"});
    CHECK(response.status == 200);
    CHECK(response.content_type == "text/html; charset=utf-8");
    CHECK(response.body == "<html><style>body{}</style><p>x</p><script>go()</script></html>");
    CHECK(header(response, "Content-Security-Policy") ==
          "default-src 'none'; script-src " + page.script_source() + "; style-src " +
              page.style_source() +
              "; connect-src 'self' http://127.0.0.1:8082 http://127.0.0.1:8083; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    CHECK(header(response, "X-Content-Type-Options") == "nosniff");
    CHECK(header(response, "X-Frame-Options") == "DENY");
    CHECK(header(response, "Referrer-Policy") == "no-referrer");
    CHECK(header(response, "Cache-Control") == "no-store");
}

TEST_CASE("the embedded page is the HTML file, with one inline script and style", "[daemon][ui]") {
    const std::string_view html = status_page_html();
    CHECK(html.substr(0, 15) == "<!doctype html>");
    CHECK(html.find("</html>") != std::string_view::npos);
    CHECK(html.find("sessionStorage") != std::string_view::npos);
    CHECK(html.find("localStorage.") == std::string_view::npos);
    CHECK(html.find("innerHTML") == std::string_view::npos);
    StatusPage page(html);  // asserts one of each
    CHECK(page.script_source() != page.style_source());
}
