// "Acknowledged means durable": a child process proposes with 16 proposals
// outstanding and reports each acknowledgement through a pipe; the parent
// SIGKILLs it mid-stream, reopens the data dir with a fresh state machine
// and checks that every acknowledged entry is there, at its index, with its
// data.  (The kill can land anywhere: inside a WAL write, between fsync and
// apply, during a snapshot.)  The same with two groups of a keel::Host
// writing into its one shared WAL at once.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "keel/host.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

NodeOptions crash_options(const std::string& dir, std::uint64_t snapshot_every) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir;
    o.snapshot_every_entries = snapshot_every;
    o.wal_segment_bytes = 256 * 1024;  // several segment rolls during the run
    return o;
}

[[noreturn]] void child_main(const std::string& dir, std::uint64_t snapshot_every, int fd) {
    auto node =
        Node::open(crash_options(dir, snapshot_every), std::make_shared<RecordingStateMachine>());
    if (!node.ok()) _exit(2);
    std::deque<std::pair<std::string, std::future<ProposeResult>>> window;
    for (std::uint64_t i = 0;; ++i) {
        std::string data = "crash-" + std::to_string(i) + std::string(200, 'p');
        window.emplace_back(data, node.value()->propose(data));
        if (window.size() < 16) continue;
        ProposeResult r = window.front().second.get();
        if (!r.status.ok()) _exit(3);
        std::string line = std::to_string(r.index) + " " + window.front().first + "\n";
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
        window.pop_front();
    }
}

void crash_and_recover(std::uint64_t snapshot_every) {
    TempDir dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        child_main(dir.path(), snapshot_every, fds[1]);
    }
    ::close(fds[1]);
    std::map<std::uint64_t, std::string> acked;
    std::string buffer;
    char chunk[4096];
    while (acked.size() < 3000) {
        ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        REQUIRE(n > 0);  // the child died early otherwise
        buffer.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::istringstream line(buffer.substr(0, nl));
            buffer.erase(0, nl + 1);
            std::uint64_t index;
            std::string data;
            line >> index >> data;
            acked[index] = data;
        }
    }
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    ::close(fds[0]);
    REQUIRE(WIFSIGNALED(wstatus));

    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = Node::open(crash_options(dir.path(), snapshot_every), sm);
    REQUIRE(node.ok());
    REQUIRE(node.value()->read_index(true).get().status.ok());
    auto applied = sm->applied();
    for (const auto& [index, data] : acked) {
        INFO("index " << index);
        REQUIRE(applied.count(index) == 1);
        REQUIRE(applied.at(index) == data);
    }
    CHECK(sm->duplicate_applies() == 0);
}

// Two groups of one Host, each a lone voter, each proposing from its own
// thread into the shared WAL.
constexpr GroupId kHostGroups[] = {1, 2};

HostOptions host_options(const std::string& dir) {
    HostOptions h;
    h.data_dir = dir;
    h.wal_segment_bytes = 256 * 1024;
    return h;
}

[[noreturn]] void host_child_main(const std::string& dir, std::uint64_t snapshot_every, int fd) {
    auto host = Host::open(host_options(dir));
    if (!host.ok()) _exit(2);
    std::vector<std::unique_ptr<Node>> groups;
    for (GroupId g : kHostGroups) {
        auto group = host.value()->open_group(g, crash_options("", snapshot_every),
                                              std::make_shared<RecordingStateMachine>());
        if (!group.ok()) _exit(2);
        groups.push_back(std::move(group.value()));
    }
    std::mutex write_mu;
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < groups.size(); ++k) {
        threads.emplace_back([&, k] {
            std::deque<std::pair<std::string, std::future<ProposeResult>>> window;
            for (std::uint64_t i = 0;; ++i) {
                std::string data = "g" + std::to_string(kHostGroups[k]) + "-" + std::to_string(i) +
                                   std::string(200, 'p');
                window.emplace_back(data, groups[k]->propose(data));
                if (window.size() < 16) continue;
                ProposeResult r = window.front().second.get();
                if (!r.status.ok()) _exit(3);
                std::string line = std::to_string(kHostGroups[k]) + " " + std::to_string(r.index) +
                                   " " + window.front().first + "\n";
                std::lock_guard lock(write_mu);
                if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
                    _exit(4);
                window.pop_front();
            }
        });
    }
    for (std::thread& t : threads) t.join();
    _exit(5);
}

void host_crash_and_recover(std::uint64_t snapshot_every) {
    TempDir dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        host_child_main(dir.path(), snapshot_every, fds[1]);
    }
    ::close(fds[1]);
    std::map<GroupId, std::map<std::uint64_t, std::string>> acked;
    std::string buffer;
    char chunk[4096];
    while (acked[1].size() < 1500 || acked[2].size() < 1500) {
        ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        REQUIRE(n > 0);  // the child died early otherwise
        buffer.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::istringstream line(buffer.substr(0, nl));
            buffer.erase(0, nl + 1);
            GroupId group;
            std::uint64_t index;
            std::string data;
            line >> group >> index >> data;
            acked[group][index] = data;
        }
    }
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    ::close(fds[0]);
    REQUIRE(WIFSIGNALED(wstatus));

    auto host = Host::open(host_options(dir.path()));
    REQUIRE(host.ok());
    for (GroupId g : kHostGroups) {
        auto sm = std::make_shared<RecordingStateMachine>();
        auto group = host.value()->open_group(g, crash_options("", snapshot_every), sm);
        REQUIRE(group.ok());
        REQUIRE(group.value()->read_index(true).get().status.ok());
        auto applied = sm->applied();
        for (const auto& [index, data] : acked[g]) {
            INFO("group " << g << " index " << index);
            REQUIRE(applied.count(index) == 1);
            REQUIRE(applied.at(index) == data);
        }
        CHECK(sm->duplicate_applies() == 0);
    }
}

}  // namespace

TEST_CASE("SIGKILL of a Host loses no acknowledged entry of any group") {
    host_crash_and_recover(0);
}

TEST_CASE("SIGKILL of a Host with snapshots and compaction loses no acknowledged entry") {
    host_crash_and_recover(500);
}

TEST_CASE("SIGKILL after acknowledgement loses no acknowledged entry") {
    crash_and_recover(0);
}

TEST_CASE("SIGKILL with snapshots and compaction running loses no acknowledged entry") {
    crash_and_recover(500);
}
