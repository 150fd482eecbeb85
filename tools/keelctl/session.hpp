// tools/keelctl/session.hpp — what every keelctl command works with: the
// HTTP client, the endpoints, the output format, and the common way of
// turning an answer (or a failure to get one) into output and an exit code.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "output.hpp"

namespace keel::keelctl {

using nlohmann::json;
// The client is shared with raftd (tools/common/http_client.hpp).
using http_client::BodySink;
using http_client::ClientOptions;
using http_client::HttpClient;
using http_client::parse_url;
using http_client::Response;
using http_client::Url;

class Session {
public:
    Session(HttpClient client, std::vector<Url> endpoints, Format format, bool tty,
            std::ostream& out, std::ostream& err);

    // Sends the request to the first endpoint that answers at all (an
    // unreachable one is skipped), following redirects to the leader and
    // waiting out elections (HttpClient::call).  Every endpoint unreachable:
    // the last failure.
    Result<Response> call_any(std::string_view method, std::string_view target,
                              std::string_view body = {}, const BodySink* sink = nullptr) const;

    // The common ending of a command: on failure prints "keelctl: ..." to
    // err; on an HTTP error prints raftd's error code and message to err
    // (and, with -o json, its body to out); on success prints the body as
    // JSON (-o json) or calls `table` with it.  Returns the exit code.
    int finish(const Result<Response>& answer, const std::function<void(const json&)>& table) const;

    // Prints an error of keelctl's own and returns `code`.
    int fail(int code, const std::string& message) const;

    const HttpClient& client() const { return client_; }
    const std::vector<Url>& endpoints() const { return endpoints_; }
    Format format() const { return format_; }
    bool tty() const { return tty_; }
    std::ostream& out() const { return out_; }
    std::ostream& err() const { return err_; }

private:
    HttpClient client_;
    std::vector<Url> endpoints_;
    Format format_;
    bool tty_;
    std::ostream& out_;
    std::ostream& err_;
};

// The exit code for a failure to get any answer (HttpClient's Status).
int exit_code_for_failure(const Status& status);

// The body as JSON, or null when it is not JSON.
json parse_body(const Response& response);

}  // namespace keel::keelctl
