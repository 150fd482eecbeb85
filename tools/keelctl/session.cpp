#include "session.hpp"

#include <ostream>

#include <fmt/format.h>

namespace keel::keelctl {

Session::Session(HttpClient client, std::vector<Url> endpoints, Format format, bool tty,
                 std::ostream& out, std::ostream& err)
    : client_(std::move(client)),
      endpoints_(std::move(endpoints)),
      format_(format),
      tty_(tty),
      out_(out),
      err_(err) {}

Result<Response> Session::call_any(std::string_view method, std::string_view target,
                                   std::string_view body, const BodySink* sink) const {
    Status last(ErrorCode::invalid_argument, "no endpoints");
    for (const Url& endpoint : endpoints_) {
        Result<Response> answer = client_.call(endpoint, method, target, body, sink);
        if (answer.ok()) return answer;
        last = answer.status();
        const bool unreachable =
            last.code() == ErrorCode::io_error || last.code() == ErrorCode::timeout;
        if (!unreachable) return last;
    }
    return last;
}

int exit_code_for_failure(const Status& status) {
    switch (status.code()) {
        case ErrorCode::io_error:
        case ErrorCode::timeout:
            return kExitUnreachable;
        case ErrorCode::invalid_argument:
            return kExitUsage;
        default:
            return kExitUnavailable;
    }
}

json parse_body(const Response& response) {
    json body = json::parse(response.body, nullptr, false);
    return body.is_discarded() ? json() : body;
}

int Session::fail(int code, const std::string& message) const {
    err_ << "keelctl: " << message << '\n';
    return code;
}

int Session::finish(const Result<Response>& answer,
                    const std::function<void(const json&)>& table) const {
    if (!answer.ok())
        return fail(exit_code_for_failure(answer.status()), answer.status().message());
    const json body = parse_body(*answer);
    const int code = exit_code_for_status(answer->status);
    if (code != kExitOk) {
        std::string what = fmt::format("HTTP {}", answer->status);
        if (body.is_object() && body.contains("error")) {
            what = fmt::format("{}: {} ({})", body.value("error", std::string()),
                               body.value("message", std::string()), what);
        }
        if (format_ == Format::json && !body.is_null()) out_ << body.dump() << '\n';
        return fail(code, what + " from " + answer->origin);
    }
    if (format_ == Format::json) {
        out_ << (body.is_null() ? json::object() : body).dump() << '\n';
    } else {
        table(body);
    }
    return kExitOk;
}

}  // namespace keel::keelctl
