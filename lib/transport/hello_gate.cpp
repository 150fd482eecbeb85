// transport/hello_gate.cpp — see hello_gate.hpp.
#include "transport/hello_gate.hpp"

#include <fmt/format.h>
#include <utility>
#include <variant>

namespace keel::transport {

HelloGate::HelloGate(NodeId self, bool tls)
    : self_(self), state_(tls ? State::tls_handshake : State::awaiting_hello) {}

const Hello& HelloGate::hello() const {
    KEEL_ASSERT(state_ == State::adopting || state_ == State::identified, "no hello yet");
    return hello_;
}

HelloGate::Decision HelloGate::refuse(Rejection reason, std::string detail) {
    state_ = State::refused;
    Decision d;
    d.action = Action::refuse;
    d.reason = reason;
    d.detail = std::move(detail);
    return d;
}

HelloGate::Decision HelloGate::on_tls_handshake(const Status& result) {
    KEEL_ASSERT(state_ == State::tls_handshake, "a TLS handshake outcome outside the handshake");
    if (!result.ok()) return refuse(Rejection::tls_handshake, result.message());
    state_ = State::awaiting_hello;
    return Decision{};
}

HelloGate::Decision HelloGate::on_bytes(std::string_view received, const ClusterId& ours) {
    KEEL_ASSERT(state_ == State::awaiting_hello, "bytes for the gate outside awaiting_hello");
    if (received.size() < kFrameLengthBytes) return Decision{};
    Result<std::uint32_t> length =
        decode_frame_length(received.substr(0, kFrameLengthBytes), kHelloFrameBytes);
    if (!length.ok())
        return refuse(Rejection::hello, length.status().message() + " (before hello)");
    const std::size_t frame_bytes = kFrameLengthBytes + *length;
    if (received.size() < frame_bytes) return Decision{};

    CodecLimits limits;  // the length check above is the only one that matters here
    limits.frame_bytes_max = kHelloFrameBytes;
    Result<Frame> frame = decode_frame_body(received.substr(kFrameLengthBytes, *length), limits);
    if (!frame.ok()) return refuse(Rejection::hello, "bad frame: " + frame.status().message());
    const Hello* hello = std::get_if<Hello>(&*frame);
    if (!hello) return refuse(Rejection::hello, "the first frame must be a hello");
    if (hello->from == self_)
        return refuse(Rejection::hello, fmt::format("hello from a node with our own id {}", self_));
    if (!ours.unset() && hello->cluster_id != ours)
        return refuse(Rejection::cluster_id,
                      fmt::format("hello from node {} of cluster {}, this is cluster {}",
                                  hello->from, hello->cluster_id.hex(), ours.hex()));
    hello_ = *hello;
    hello_bytes_ = frame_bytes;
    Decision d;
    d.consumed = frame_bytes;
    if (ours.unset()) {
        state_ = State::adopting;
        d.action = Action::adopt;
    } else {
        state_ = State::identified;
        d.action = Action::identified;
    }
    return d;
}

HelloGate::Decision HelloGate::on_adopted(const Status& persisted) {
    KEEL_ASSERT(state_ == State::adopting, "an adoption outside adopting");
    if (!persisted.ok())
        return refuse(Rejection::cluster_id,
                      fmt::format("cannot adopt cluster {} from node {}: {}",
                                  hello_.cluster_id.hex(), hello_.from, persisted.to_string()));
    state_ = State::identified;
    Decision d;
    d.action = Action::identified;
    d.consumed = hello_bytes_;
    return d;
}

HelloGate::Decision HelloGate::on_deadline() {
    KEEL_ASSERT(state_ != State::identified && state_ != State::refused,
                "a hello deadline after the gate decided");
    return refuse(Rejection::hello_timeout,
                  state_ == State::tls_handshake ? "no TLS handshake in time" : "no hello in time");
}

HelloGate::Decision HelloGate::on_closed(std::size_t pending_bytes) {
    KEEL_ASSERT(state_ != State::identified && state_ != State::refused,
                "a close before the hello after the gate decided");
    const bool handshaking = state_ == State::tls_handshake;
    if (pending_bytes == 0 && state_ != State::adopting) {
        state_ = State::refused;
        Decision d;
        d.action = Action::close;
        d.detail = "closed by peer before saying anything";
        return d;
    }
    return refuse(
        handshaking ? Rejection::tls_handshake : Rejection::hello,
        fmt::format("closed by peer {} ({} bytes received)",
                    handshaking ? "during the TLS handshake" : "in the middle of its hello",
                    pending_bytes));
}

const char* hello_gate_state_name(HelloGate::State state) {
    switch (state) {
        case HelloGate::State::tls_handshake:
            return "tls_handshake";
        case HelloGate::State::awaiting_hello:
            return "awaiting_hello";
        case HelloGate::State::adopting:
            return "adopting";
        case HelloGate::State::identified:
            return "identified";
        case HelloGate::State::refused:
            return "refused";
    }
    return "unknown";
}

}  // namespace keel::transport
