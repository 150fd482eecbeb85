// capi/c_support.hpp — what every part of the C API (keel/keel_c.h) shares:
// Status to keel_error, and the guard around each call into the
// application's C code.
//
// The C API is an edge of the library, like raftd's HTTP handlers: it uses
// the public C++ API only, and is where exceptions stop (no C++ exception
// may reach a C caller, so every extern "C" function catches them).
#pragma once

#include <exception>
#include <string_view>

#include "keel/keel_c.h"
#include "keel/status.hpp"

namespace keel::capi {

// Fills err (when not null) with `code` and `message`, truncated to fit.
void set_error(keel_error* err, keel_code code, std::string_view message) noexcept;
// The same for a Status (KEEL_OK and "" for an ok one).
void set_error(keel_error* err, const Status& status) noexcept;
// A keel_error holding `status`.
keel_error to_error(const Status& status) noexcept;
// What a C callback reported: its return code, and the message it set in
// `err` (or a generic one naming `what` when it set none).
Status from_callback(keel_code code, const keel_error& err, std::string_view what);

keel_code to_code(ErrorCode code) noexcept;

// Runs `body` (returning a keel_code) and turns any exception into
// KEEL_INTERNAL with its message: the body of every extern "C" function
// that may allocate or call into keel.
template <typename Body>
keel_code guarded(keel_error* err, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        set_error(err, KEEL_INTERNAL, e.what());
    } catch (...) {
        set_error(err, KEEL_INTERNAL, "unknown exception");
    }
    return KEEL_INTERNAL;
}

// Held while the application's C code runs on this thread (a state machine
// callback, a completion, the logger): keel_node_close refuses to run
// inside one, where stopping would wait for this very thread.
class CallbackScope {
public:
    CallbackScope() noexcept;
    ~CallbackScope();
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;

    static bool active() noexcept;
};

}  // namespace keel::capi
