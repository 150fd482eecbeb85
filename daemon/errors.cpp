#include "errors.hpp"

#include <nlohmann/json.hpp>

namespace keel::daemon {

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
    nlohmann::json body = {{"error", code}, {"message", message}};
    HttpResponse response;
    response.status = status;
    // Messages may quote client input: never throw on invalid UTF-8.
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (status == 429 || status == 503) {
        response.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    }
    return response;
}

HttpResponse error_from_status(const Status& status) {
    switch (status.code()) {
        case ErrorCode::invalid_argument:
            return error_response(400, "invalid_argument", status.message());
        case ErrorCode::not_found:
            return error_response(404, "not_found", status.message());
        case ErrorCode::too_large:
            return error_response(413, "too_large", status.message());
        case ErrorCode::busy:
            return error_response(429, "busy", status.message());
        case ErrorCode::aborted:
            return error_response(503, "aborted", status.message());
        case ErrorCode::timeout:
            return error_response(503, "timeout", status.message());
        case ErrorCode::not_leader:
            return error_response(503, "no_leader", status.message());
        case ErrorCode::no_space:
            return error_response(507, "no_space", status.message());
        default:
            return error_response(500, error_code_name(status.code()), status.message());
    }
}

HttpResponse json_response(int status, std::string body) {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    return response;
}

}  // namespace keel::daemon
