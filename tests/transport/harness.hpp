// tests/transport/harness.hpp — shared pieces of the transport tests: a
// recorder of what a MessageChannel and its TcpTransport report, a
// temporary directory, and run_until (drive an io_context until a predicate
// holds, bounded by iterations, never by sleeping).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../common/temp_dir.hpp"
#include "transport/message_channel.hpp"
#include "transport/tcp_transport.hpp"

namespace keel::transport::testing {

// Runs handlers until `done()` holds; false if it still does not after
// `iterations_max` rounds (each waits at most 5 ms for a handler).
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      int iterations_max = 20000) {
    for (int i = 0; i < iterations_max; ++i) {
        if (done()) return true;
        if (io.stopped()) io.restart();
        io.run_one_for(std::chrono::milliseconds(5));
    }
    return done();
}

// Runs every handler that is ready now, without waiting for new ones.
inline void drain(boost::asio::io_context& io) {
    if (io.stopped()) io.restart();
    io.poll();
}

using keel::test::TempDir;

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(rng());
    return out;
}

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Everything the transport reported, in order.
struct Recorder {
    std::vector<raft::Message> messages;
    std::vector<std::pair<raft::Message, std::string>> snapshots;
    std::vector<NodeId> unreachable;
    std::vector<std::pair<NodeId, bool>> snapshots_sent;
    std::vector<std::string> logs;
    std::vector<std::pair<std::string, std::string>> rejections;  // (reason, detail)
    std::vector<std::pair<NodeId, std::string>> hellos;           // (from, address), on_hello

    // The reasons of every refusal so far, in order, by name.
    std::vector<std::string> rejection_names() const {
        std::vector<std::string> names;
        for (const auto& r : rejections) names.push_back(r.first);
        return names;
    }

    std::size_t rejected(Rejection reason) const {
        std::size_t n = 0;
        for (const auto& r : rejections) n += r.first == rejection_name(reason) ? 1 : 0;
        return n;
    }

    MessageChannel::Handlers handler() {
        MessageChannel::Handlers h;
        h.on_message = [this](raft::Message m) { messages.push_back(std::move(m)); };
        h.on_snapshot = [this](raft::Message m, std::string path) {
            snapshots.emplace_back(std::move(m), std::move(path));
        };
        h.on_unreachable = [this](NodeId id) { unreachable.push_back(id); };
        h.on_snapshot_sent = [this](NodeId id, bool ok) { snapshots_sent.emplace_back(id, ok); };
        h.log = [this](LogLevel, std::string_view line) { logs.emplace_back(line); };
        h.on_rejected = [this](std::string_view reason, std::string_view detail) {
            rejections.emplace_back(std::string(reason), std::string(detail));
            logs.push_back("refused (" + std::string(reason) + "): " + std::string(detail));
        };
        return h;
    }
    TcpTransportHooks hooks() {
        TcpTransportHooks h;
        h.log = [this](LogLevel, std::string_view line) { logs.emplace_back(line); };
        h.on_hello = [this](NodeId from, std::string_view address) {
            hellos.emplace_back(from, std::string(address));
        };
        h.on_rejected = [this](Rejection reason, std::string_view detail) {
            rejections.emplace_back(rejection_name(reason), std::string(detail));
            logs.push_back(std::string("refused (") + rejection_name(reason) +
                           "): " + std::string(detail));
        };
        return h;
    }
    bool logged(const std::string& needle) const {
        for (const auto& l : logs)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
    std::string all_logs() const {
        std::string out;
        for (const auto& l : logs) out += l + "\n";
        return out;
    }
};

inline raft::Message heartbeat(NodeId from, NodeId to, std::uint64_t context) {
    raft::Message m;
    m.type = raft::MessageType::heartbeat;
    m.from = from;
    m.to = to;
    m.term = 1;
    m.context = context;
    return m;
}

inline raft::Message snapshot_message(NodeId from, NodeId to) {
    raft::Message m;
    m.type = raft::MessageType::snapshot;
    m.from = from;
    m.to = to;
    m.term = 3;
    m.snapshot = raft::SnapshotMeta{};
    m.snapshot->index = 100;
    m.snapshot->term = 2;
    m.snapshot->config.members[from] = raft::MemberInfo{true, "a"};
    m.snapshot->config.members[to] = raft::MemberInfo{false, "b"};
    return m;
}

}  // namespace keel::transport::testing
