// TcpTransport::send_now, the call any thread may make: what it writes at
// once, what it leaves for send(), and order under a full socket with the
// sender's io_context on a thread of its own.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;  // with its asio and tcp aliases

TEST_CASE("send_now writes to an idle connection at once and leaves the rest in order",
          "[transport][tcp][send_now]") {
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io;
    TempDir dir;
    auto [a, b] = start_pair(io, with_tls(options_for(1, dir.path()), tls),
                             with_tls(options_for(2, dir.path()), tls));
    a->transport->set_peer(3, "127.0.0.1:1");  // never connected

    // Not connected yet: nothing is written, nothing is taken.
    std::vector<raft::Message> msgs = numbered_heartbeats(1, 2, 1);
    a->transport->send_now(msgs);
    CHECK(msgs.size() == 1);
    a->transport->send(std::move(msgs));  // connects, says hello, sends 0
    REQUIRE(run_until(io, [&] { return a->tcp->stats().buffers_sent == 1; }));

    // Idle: the messages to 2 are written now (without running the
    // io_context), the one to 3 is left.
    msgs = numbered_heartbeats(1, 2, 5, 1);
    msgs.insert(msgs.begin() + 2, heartbeat(1, 3, 99));
    a->transport->send_now(msgs);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].to == 3);
    CHECK(a->tcp->stats().buffers_sent_now == 1);  // one buffer for node 2's five
    msgs = numbered_heartbeats(1, 2, 5, 6);
    a->transport->send_now(msgs);
    CHECK(msgs.empty());

    // A queued write in flight (its completion not run yet): send_now
    // leaves everything, and send() keeps the order.
    a->transport->send(numbered_heartbeats(1, 2, 5, 11));
    msgs = numbered_heartbeats(1, 2, 5, 16);
    a->transport->send_now(msgs);
    CHECK(msgs.size() == 5);
    CHECK(a->tcp->stats().buffers_sent_now == 2);
    a->transport->send(std::move(msgs));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 21; }));
    CHECK(in_order(b->rec.messages, 21));
}

// The sender's io_context runs on its own thread while this thread calls
// send_now, as keel's runtime does (run it under ThreadSanitizer too).  The
// receiver reads nothing until this thread has written everything, so the
// socket fills: send_now meets partial writes (the rest goes first in the
// next write) and refusals; everything still arrives once, in order.
TEST_CASE("send_now from another thread keeps order under a full socket",
          "[transport][tcp][send_now]") {
    // Under TLS the records send_now makes on this thread and those the I/O
    // thread makes share one session: any overlap or reordering would break
    // the record sequence and the receiver would refuse the stream.
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io_a, io_b;
    TempDir dir;
    auto [a, b] = start_pair(io_a, with_tls(options_for(1, dir.path()), tls), io_b,
                             with_tls(options_for(2, dir.path()), tls));
    auto work = asio::make_work_guard(io_a);
    std::thread io_thread([&] { io_a.run(); });
    // Runs `f` on the sender's I/O thread and waits for it.
    auto on_a = [&](std::function<void()> f) {
        std::promise<void> done;
        asio::post(io_a, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    };

    const std::size_t n = 401;
    const std::string payload(64 * 1024, 'x');  // 25 MiB in all: more than loopback buffers
    auto numbered = [&](std::size_t from, std::size_t count) {
        std::vector<raft::Message> msgs;
        for (std::size_t j = from; j < from + count; ++j) {
            raft::Message m = heartbeat(1, 2, j);
            m.type = raft::MessageType::append;
            m.entries.push_back(raft::Entry{1, j + 1, raft::EntryType::normal, payload});
            msgs.push_back(std::move(m));
        }
        return msgs;
    };
    // Message 0 through send(): connects, says hello; once its write has
    // completed the connection is idle, so the first send_now below writes.
    // The receiver runs meanwhile (a TLS handshake needs its answers).
    on_a([&] { a->transport->send(numbered(0, 1)); });
    bool connected = false;
    REQUIRE(run_until(io_b, [&] {
        on_a([&] { connected = a->tcp->stats().buffers_sent == 1; });
        return connected;
    }));
    std::size_t sent_now = 0;  // buffers: one per call that took its four
    for (std::size_t i = 1; i < n; i += 4) {
        std::vector<raft::Message> msgs = numbered(i, 4);
        a->transport->send_now(msgs);
        sent_now += msgs.empty() ? 1 : 0;
        // What is left goes through send() before the next send_now, as the
        // contract asks.
        if (!msgs.empty()) on_a([&] { a->transport->send(std::move(msgs)); });
    }
    REQUIRE(run_until(io_b, [&] { return b->rec.messages.size() == n; }));
    on_a([&] { a->transport->stop(); });
    work.reset();
    io_thread.join();
    CHECK(in_order(b->rec.messages, n));
    CHECK(b->rec.rejections.empty());
    CHECK(sent_now > 0);
    CHECK(a->tcp->stats().buffers_sent_now == sent_now);
}
