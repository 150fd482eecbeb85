// libFuzzer target for HelloGate, the decision an accepted connection makes
// before its peer has said who it is (transport/hello_gate.hpp).  The input
// is a script: a header choosing the gate's configuration, then events (bytes
// arriving in any split, a valid hello, the TLS handshake's outcome, the
// deadline, the peer closing, the cluster id stored or not) in any order the
// connection could produce them.  Nothing may abort, and every decision must
// be one the connection can act on safely:
//   - an identified peer said exactly one valid hello, of our cluster (or,
//     for a joiner, the one it adopted), not with our own id, and the gate
//     consumed exactly that hello's bytes;
//   - the gate never waits for more than a hello's bytes (a stranger cannot
//     make a connection buffer more);
//   - a TLS connection is never identified before its handshake succeeded.
//
// Build and run by hand (the build wires it with the other fuzzers):
//   clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
//     -Ilib -Iwal/include tests/transport/handshake_fuzzer.cpp \
//     lib/transport/hello_gate.cpp lib/transport/codec.cpp lib/transport/message_codec.cpp \
//     lib/transport/cluster_id.cpp \
//     wal/src/crc32c.cpp -o handshake_fuzzer
//   ./handshake_fuzzer -max_total_time=30 tests/fuzz/corpus/handshake
//
// Script format (bytes): [flags] [self] then ops, each [op] [argument...]:
//   flags bit 0: TLS; bit 1: a fresh joiner (no cluster id yet)
//   op % 7 == 0: [n] then n bytes arrive (n is clamped to what is left)
//   op % 7 == 1: [from] [cluster byte] a hello frame arrives (cluster byte
//                0: ours; else an id with that last byte)
//   op % 7 == 2: [ok] the TLS handshake ends (ok & 1: succeeded)
//   op % 7 == 3: the hello deadline passes
//   op % 7 == 4: the peer closes
//   op % 7 == 5: [ok] the adopted cluster id is stored (ok & 1) or not
//   op % 7 == 6: [from] [cut] only the first cut % size bytes of that hello
//                (of our cluster) arrive
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/codec.hpp"
#include "transport/hello_gate.hpp"

using namespace keel;
using namespace keel::transport;

namespace {

#define FUZZ_CHECK(cond, why) KEEL_ASSERT(cond, why)

ClusterId cluster_with_last_byte(std::uint8_t b) {
    ClusterId id;
    id.bytes[0] = 0x4b;
    id.bytes[ClusterId::kBytes - 1] = b;
    return id;
}

class Script {
public:
    Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool done() const { return at_ >= size_; }
    std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    std::string_view bytes(std::size_t n) {
        n = std::min(n, size_ - at_);
        std::string_view out(reinterpret_cast<const char*>(data_ + at_), n);
        at_ += n;
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

// What the connection does around the gate: buffers what arrived and was
// not consumed, stores the adopted id, stops at a final decision.
struct Connection {
    HelloGate gate;
    const bool tls;
    const NodeId self;
    ClusterId ours;
    std::string received;
    bool tls_done = false;
    bool finished = false;

    Connection(NodeId self_id, bool with_tls, ClusterId cluster)
        : gate(self_id, with_tls), tls(with_tls), self(self_id), ours(cluster) {}

    void check(const HelloGate::Decision& d) {
        using Action = HelloGate::Action;
        switch (d.action) {
            case Action::wait:
                FUZZ_CHECK(gate.state() == HelloGate::State::awaiting_hello ||
                               gate.state() == HelloGate::State::tls_handshake,
                           "waiting only before a decision");
                FUZZ_CHECK(received.size() < kHelloFrameBytes,
                           "the gate never waits on more than a hello's bytes");
                break;
            case Action::adopt:
                FUZZ_CHECK(ours.unset(), "only a node without a cluster id adopts one");
                FUZZ_CHECK(gate.state() == HelloGate::State::adopting, "adopting");
                break;
            case Action::identified: {
                FUZZ_CHECK(!tls || tls_done, "never identified before the TLS handshake");
                FUZZ_CHECK(d.consumed == encode_hello(gate.hello()).size() &&
                               d.consumed <= received.size(),
                           "exactly the hello is consumed");
                const Hello& h = gate.hello();
                FUZZ_CHECK(h.from != self && h.from != raft::kNoNode, "a real peer");
                FUZZ_CHECK(!ours.unset() && h.cluster_id == ours, "of our cluster");
                FUZZ_CHECK(encode_hello(h) == received.substr(0, d.consumed),
                           "the consumed bytes are that hello");
                finished = true;
                break;
            }
            case Action::refuse:
            case Action::close:
                FUZZ_CHECK(gate.state() == HelloGate::State::refused, "refused is final");
                finished = true;
                break;
        }
    }

    void arrive(std::string_view bytes) {
        if (gate.state() != HelloGate::State::awaiting_hello) return;
        received.append(bytes);
        HelloGate::Decision d = gate.on_bytes(received, ours);
        check(d);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Script script(data, size);
    const std::uint8_t flags = script.byte();
    const NodeId self = 1 + script.byte() % 4;
    const bool joiner = (flags & 2) != 0;
    const ClusterId cluster = cluster_with_last_byte(7);
    Connection c(self, (flags & 1) != 0, joiner ? ClusterId{} : cluster);

    for (int ops = 0; !script.done() && !c.finished && ops < 64; ++ops) {
        const std::uint8_t op = script.byte() % 7;
        const HelloGate::State state = c.gate.state();
        const bool open =
            state != HelloGate::State::identified && state != HelloGate::State::refused;
        if (op == 0) {
            c.arrive(script.bytes(script.byte()));
        } else if (op == 1 || op == 6) {
            const NodeId from = script.byte() % 4;  // 0 is invalid, self is refused
            const std::uint8_t which = script.byte();
            const ClusterId id = which == 0 || op == 6 ? cluster : cluster_with_last_byte(which);
            std::string frame = encode_hello(Hello{id, from, std::string(which % 16, 'a')});
            if (op == 6) frame.resize(which % frame.size());
            c.arrive(frame);
        } else if (op == 2) {
            const bool ok = (script.byte() & 1) != 0;
            if (state != HelloGate::State::tls_handshake) continue;
            c.tls_done = ok;
            c.check(c.gate.on_tls_handshake(
                ok ? Status() : Status(ErrorCode::invalid_argument, "handshake failed")));
        } else if (op == 3) {
            if (open) c.check(c.gate.on_deadline());
        } else if (op == 4) {
            if (open) c.check(c.gate.on_closed(c.received.size()));
        } else {
            const bool ok = (script.byte() & 1) != 0;
            if (state != HelloGate::State::adopting) continue;
            // The connection stores the id, then tells the gate.
            if (ok) c.ours = c.gate.hello().cluster_id;
            c.check(c.gate.on_adopted(ok ? Status() : Status(ErrorCode::io_error, "full")));
        }
    }
    return 0;
}
