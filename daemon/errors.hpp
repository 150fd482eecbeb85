// daemon/errors.hpp — raftd's JSON error bodies and how keel's error codes
// map to HTTP statuses.  Every error answer is {"error":"<code>","message":"..."}.
#pragma once

#include <string>
#include <string_view>

#include "http_types.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

// Seconds a client should wait before retrying a 429/503.
inline constexpr int kRetryAfterSeconds = 1;

HttpResponse error_response(int status, std::string_view code, std::string_view message);

// A keel Status that is not ok and not not_leader (the caller redirects
// those): invalid_argument 400, not_found 404, too_large 413, busy 429,
// aborted/timeout 503 (with Retry-After), everything else 500.
HttpResponse error_from_status(const Status& status);

// 200 with a JSON body.
HttpResponse json_response(int status, std::string body);

}  // namespace keel::daemon
