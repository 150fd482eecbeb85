// keel/status.hpp — errors as values: Status and Result<T>.
//
// Inside the libraries an operation that can fail returns a Status (or a
// Result<T> carrying either a value or a Status); exceptions are used only
// at the edges (HTTP handlers, main).  A Status is cheap to copy when ok.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "keel/assert.hpp"

namespace keel {

enum class ErrorCode {
    ok = 0,
    invalid_argument,  // the caller passed something malformed or out of range
    not_found,         // a file, index or key that does not exist
    corruption,        // bytes on disk or on the wire fail their checks
    io_error,          // the operating system refused a read or write
    failed,            // the component is in its fail-stop state (e.g. after an fsync error)
    too_large,         // a record, frame or body over its configured limit
    busy,              // a bounded queue is full; retry later
    not_leader,        // the request needs the leader and this node is not it
    aborted,           // the operation was cancelled (shutdown, leadership lost)
    timeout,           // a deadline passed
    unsupported,       // a format version or feature this build does not know
    no_space,          // storage is full (or over its quota): writes are refused, reads go on
};

const char* error_code_name(ErrorCode code) noexcept;

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {
        KEEL_ASSERT(code != ErrorCode::ok, "an error Status needs an error code");
    }
    static Status ok_status() { return Status(); }

    bool ok() const noexcept { return code_ == ErrorCode::ok; }
    explicit operator bool() const noexcept { return ok(); }
    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    // "corruption: bad CRC in 00000001.wal at offset 4096 (index 17)"
    std::string to_string() const;

private:
    ErrorCode code_ = ErrorCode::ok;
    std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
    Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
        KEEL_ASSERT(!std::get<Status>(v_).ok(), "a Result holding a Status must hold an error");
    }

    bool ok() const noexcept { return std::holds_alternative<T>(v_); }
    explicit operator bool() const noexcept { return ok(); }

    const Status& status() const {
        static const Status ok_status;
        return ok() ? ok_status : std::get<Status>(v_);
    }
    T& value() & {
        KEEL_ASSERT(ok(), "value() on an error Result");
        return std::get<T>(v_);
    }
    const T& value() const& {
        KEEL_ASSERT(ok(), "value() on an error Result");
        return std::get<T>(v_);
    }
    T&& value() && {
        KEEL_ASSERT(ok(), "value() on an error Result");
        return std::get<T>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::variant<T, Status> v_;
};

inline const char* error_code_name(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::ok:
            return "ok";
        case ErrorCode::invalid_argument:
            return "invalid_argument";
        case ErrorCode::not_found:
            return "not_found";
        case ErrorCode::corruption:
            return "corruption";
        case ErrorCode::io_error:
            return "io_error";
        case ErrorCode::failed:
            return "failed";
        case ErrorCode::too_large:
            return "too_large";
        case ErrorCode::busy:
            return "busy";
        case ErrorCode::not_leader:
            return "not_leader";
        case ErrorCode::aborted:
            return "aborted";
        case ErrorCode::timeout:
            return "timeout";
        case ErrorCode::unsupported:
            return "unsupported";
        case ErrorCode::no_space:
            return "no_space";
    }
    return "unknown";
}

inline std::string Status::to_string() const {
    if (ok()) return "ok";
    return std::string(error_code_name(code_)) + ": " + message_;
}

}  // namespace keel
