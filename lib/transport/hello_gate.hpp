// transport/hello_gate.hpp — what an accepted connection decides before its
// peer has said who it is.  A pure state machine: events in (the TLS
// handshake's outcome, the plaintext received so far, the deadline, the
// peer closing), a decision out; no Asio, clock or I/O, so that it can be
// unit-tested and fuzzed alone (tests/transport/handshake_fuzzer.cpp).
// InboundConnection feeds it and carries its decisions out.
//
//   tls_handshake --ok--> awaiting_hello --our cluster's hello--> identified
//        |                  |    \--a valid hello, and we have no
//        |                  |       cluster id yet (a fresh joiner)--> adopting
//        |                  |                    --persisted--> identified
//        |                  |                    --failed-----> refused
//        \--failed--> refused <--anything else, the deadline, a close mid-hello
//
// (Without TLS the gate starts in awaiting_hello.)  It looks at most at
// kHelloFrameBytes of plaintext: a length prefix announcing more is refused
// before the rest is read, so a stranger costs one small buffer, one CRC
// and, with TLS, one bounded handshake.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "keel/status.hpp"
#include "transport/cluster_id.hpp"
#include "transport/codec.hpp"
#include "transport/rejection.hpp"

namespace keel::transport {

using raft::NodeId;

class HelloGate {
public:
    enum class State { tls_handshake, awaiting_hello, adopting, identified, refused };
    enum class Action {
        wait,        // nothing to do until the next event
        identified,  // the peer is hello().from: frames follow the hello's `consumed` bytes
        adopt,       // persist hello().cluster_id as ours, then call on_adopted
        refuse,      // close the connection; count `reason`, log `detail`
        close,       // close quietly: the peer left without saying anything
    };
    struct Decision {
        Action action = Action::wait;
        std::size_t consumed = 0;  // identified / adopt: the hello frame's bytes
        Rejection reason = Rejection::hello;
        std::string detail;  // refuse / close
    };

    HelloGate(NodeId self, bool tls);

    State state() const { return state_; }
    // The peer's hello; REQUIRES: state() is adopting or identified.
    const Hello& hello() const;

    // REQUIRES: state() == tls_handshake.  `result`: ok once the handshake
    // is done, else why it failed.
    Decision on_tls_handshake(const Status& result);
    // REQUIRES: state() == awaiting_hello.  `received`: every plaintext byte
    // received and not consumed yet (what an earlier call saw, and more).
    // `ours`: the transport's cluster id now; unset for a fresh joiner, which
    // adopts that of the first valid hello.
    Decision on_bytes(std::string_view received, const ClusterId& ours);
    // REQUIRES: state() == adopting.  `persisted`: whether the adopted id is
    // now durable.
    Decision on_adopted(const Status& persisted);
    // The hello deadline passed.  REQUIRES: not identified (the connection
    // stops the deadline then) nor refused.
    Decision on_deadline();
    // The peer closed the connection having sent `pending_bytes` the gate
    // has not consumed (ciphertext during the TLS handshake).  REQUIRES: not
    // identified nor refused.
    Decision on_closed(std::size_t pending_bytes);

private:
    Decision refuse(Rejection reason, std::string detail);

    const NodeId self_;
    State state_;
    Hello hello_;
    std::size_t hello_bytes_ = 0;
};

const char* hello_gate_state_name(HelloGate::State state);

}  // namespace keel::transport
