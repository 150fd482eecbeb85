#include "capi/c_support.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace keel::capi {

namespace {

thread_local int t_callback_depth = 0;

}  // namespace

static_assert(KEEL_OK == static_cast<int>(ErrorCode::ok));
static_assert(KEEL_INVALID_ARGUMENT == static_cast<int>(ErrorCode::invalid_argument));
static_assert(KEEL_NOT_FOUND == static_cast<int>(ErrorCode::not_found));
static_assert(KEEL_CORRUPTION == static_cast<int>(ErrorCode::corruption));
static_assert(KEEL_IO_ERROR == static_cast<int>(ErrorCode::io_error));
static_assert(KEEL_FAILED == static_cast<int>(ErrorCode::failed));
static_assert(KEEL_TOO_LARGE == static_cast<int>(ErrorCode::too_large));
static_assert(KEEL_BUSY == static_cast<int>(ErrorCode::busy));
static_assert(KEEL_NOT_LEADER == static_cast<int>(ErrorCode::not_leader));
static_assert(KEEL_ABORTED == static_cast<int>(ErrorCode::aborted));
static_assert(KEEL_TIMEOUT == static_cast<int>(ErrorCode::timeout));
static_assert(KEEL_UNSUPPORTED == static_cast<int>(ErrorCode::unsupported));
static_assert(KEEL_NO_SPACE == static_cast<int>(ErrorCode::no_space));
// KEEL_INTERNAL has no ErrorCode: it is the C API's own (an exception caught).
static_assert(KEEL_INTERNAL == static_cast<int>(ErrorCode::no_space) + 1);

keel_code to_code(ErrorCode code) noexcept {
    return static_cast<keel_code>(static_cast<int>(code));
}

void set_error(keel_error* err, keel_code code, std::string_view message) noexcept {
    if (err == nullptr) return;
    err->code = code;
    const std::size_t n = std::min(message.size(), sizeof err->message - 1);
    std::memcpy(err->message, message.data(), n);
    err->message[n] = '\0';
}

void set_error(keel_error* err, const Status& status) noexcept {
    set_error(err, to_code(status.code()), status.message());
}

keel_error to_error(const Status& status) noexcept {
    keel_error err;
    set_error(&err, status);
    return err;
}

Status from_callback(keel_code code, const keel_error& err, std::string_view what) {
    if (code == KEEL_OK) return Status::ok_status();
    ErrorCode c = ErrorCode::failed;
    if (code > KEEL_OK && code < KEEL_INTERNAL) c = static_cast<ErrorCode>(static_cast<int>(code));
    // The message is the callback's: bounded by its buffer, NUL or not.
    const std::size_t n = strnlen(err.message, sizeof err.message);
    std::string message = n > 0 ? std::string(err.message, n)
                                : fmt::format("{} failed ({})", what, keel_code_name(code));
    return Status(c, std::move(message));
}

CallbackScope::CallbackScope() noexcept {
    ++t_callback_depth;
}
CallbackScope::~CallbackScope() {
    --t_callback_depth;
}
bool CallbackScope::active() noexcept {
    return t_callback_depth > 0;
}

}  // namespace keel::capi

extern "C" {

const char* keel_code_name(keel_code code) {
    if (code == KEEL_INTERNAL) return "internal";
    if (code < KEEL_OK || code > KEEL_NO_SPACE) return "unknown";
    return keel::error_code_name(static_cast<keel::ErrorCode>(static_cast<int>(code)));
}

void keel_error_set(keel_error* err, keel_code code, const char* message) {
    keel::capi::set_error(err, code, message == nullptr ? "" : message);
}

}  // extern "C"
