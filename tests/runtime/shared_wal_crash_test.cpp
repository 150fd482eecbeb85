// Rewriting forward survives SIGKILL at any instant: a child process keeps
// ten idle groups (each with a replaced suffix and a hard state) on a shared
// WAL while a hot group appends and compacts and another thread rewrites
// the idle groups forward again and again (runtime/shared_wal.hpp,
// "Rewriting forward").  The parent kills it once rewrites have happened,
// reopens the WAL and checks that every idle group's log and hard state are
// exactly what they were (no entry lost, no voided entry back), and that the
// hot group keeps every entry it was told was durable.  (The kill can land
// inside an image's write, between the image and the release, inside the
// release's metadata write, or during the segment deletions.)  Three rounds,
// killed after more rewrites each time.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/temp_dir.hpp"
#include "runtime/shared_wal.hpp"

using namespace keel;
using namespace keel::runtime;

namespace {

constexpr GroupId kHot = 1;
constexpr GroupId kFirstIdle = 2;
constexpr GroupId kIdleGroups = 10;
const std::vector<std::string> kIdleLog{"1@1:a", "2@1:b", "3@2:X"};

raft::Entry entry(raft::Index index, raft::Term term, const std::string& data) {
    return raft::Entry{term, index, raft::EntryType::normal, SharedBytes(data)};
}

bool append(LogStore& log, std::vector<raft::Entry> entries) {
    std::promise<Status> done;
    if (!log.append(entries, wal::Wal::Writer::flusher,
                    [&done](Status s) { done.set_value(std::move(s)); })
             .ok())
        return false;
    return done.get_future().get().ok();
}

raft::HardState idle_hard_state(GroupId g) {
    return raft::HardState{2, g, 2};
}

std::unique_ptr<SharedWal> open_wal(const std::string& dir) {
    wal::Options o;
    o.segment_bytes = 4096;  // a roll every ~15 hot entries
    o.preallocate = false;
    RewritePolicy policy;
    policy.above_segments = 1;
    auto s = SharedWal::open(dir, o, policy);
    return s.ok() ? std::move(s.value()) : nullptr;
}

void report(int fd, const std::string& line) {
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
}

[[noreturn]] void child_main(const std::string& dir, int fd) {
    auto shared = open_wal(dir);
    if (!shared) _exit(2);
    std::vector<std::unique_ptr<LogStore>> idle;
    for (GroupId g = kFirstIdle; g < kFirstIdle + kIdleGroups; ++g) {
        auto log = shared->open_group(g, SharedWal::Hooks{});
        if (!log.ok()) _exit(2);
        idle.push_back(std::move(log.value()));
        // Entries 3 and 4 are replaced by a new leader's 3.
        if (!append(*idle.back(),
                    {entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c"), entry(4, 1, "d")}) ||
            !append(*idle.back(), {entry(3, 2, "X")}) ||
            !idle.back()->save_hard_state(idle_hard_state(g)).ok())
            _exit(3);
    }
    auto hot_log = shared->open_group(kHot, SharedWal::Hooks{});
    if (!hot_log.ok()) _exit(2);
    LogStore& hot = *hot_log.value();
    report(fd, "ready\n");
    std::thread rewriter([&] {
        std::uint64_t seen = 0;
        for (;;) {
            if (!shared->rewrite_pass().ok()) _exit(5);
            if (shared->rewritten_groups() != seen) {
                seen = shared->rewritten_groups();
                report(fd, "r " + std::to_string(seen) + "\n");
            }
            std::this_thread::yield();
        }
    });
    for (raft::Index i = 1;; ++i) {
        if (!append(hot, {entry(i, 1, "hot-" + std::to_string(i))})) _exit(6);
        report(fd, "h " + std::to_string(i) + "\n");
        if (i % 50 == 0 && !hot.compact_through(i - 50, hot.generation()).ok()) _exit(7);
    }
}

// A forked child that reports its progress as lines on a pipe: the test
// reads them until it has seen enough, then kills the child with SIGKILL.
class ReportingChild {
public:
    // Runs `child_main(write_fd)` in the child, which never returns.
    template <typename Main>
    explicit ReportingChild(Main child_main) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::close(fds[0]);
            child_main(fds[1]);
            _exit(0);
        }
        ::close(fds[1]);
        fd_ = fds[0];
    }

    // Hands each whole line read to `on_line` until `done()` holds.
    template <typename Done, typename OnLine>
    void read_until(Done done, OnLine on_line) {
        char chunk[4096];
        while (!done()) {
            ssize_t n = ::read(fd_, chunk, sizeof chunk);
            REQUIRE(n > 0);  // the child died early otherwise
            buffer_.append(chunk, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = buffer_.find('\n')) != std::string::npos) {
                std::istringstream line(buffer_.substr(0, nl));
                buffer_.erase(0, nl + 1);
                on_line(line);
            }
        }
    }

    // SIGKILLs the child and requires that the signal, not an exit, ended it.
    void kill() {
        ::kill(pid_, SIGKILL);
        int wstatus = 0;
        ::waitpid(pid_, &wstatus, 0);
        ::close(fd_);
        REQUIRE(WIFSIGNALED(wstatus));
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buffer_;
};

void kill_during_rewrites(std::uint64_t rewrites_before_kill) {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    ReportingChild child([&](int fd) { child_main(wal_dir, fd); });
    raft::Index hot_acked = 0;
    std::uint64_t rewritten = 0;
    child.read_until([&] { return rewritten >= rewrites_before_kill; },
                     [&](std::istringstream& line) {
                         std::string kind;
                         std::uint64_t value = 0;
                         line >> kind >> value;
                         if (kind == "h") hot_acked = value;
                         if (kind == "r") rewritten = value;
                     });
    child.kill();
    INFO("killed after " << rewritten << " rewrites, hot entry " << hot_acked << " acknowledged");

    auto shared = open_wal(wal_dir);
    REQUIRE(shared);
    for (GroupId g = kFirstIdle; g < kFirstIdle + kIdleGroups; ++g) {
        INFO("group " << g);
        auto log = shared->open_group(g, SharedWal::Hooks{});
        REQUIRE(log.ok());
        auto entries = log.value()->entries_after(0, 0);
        REQUIRE(entries.ok());
        std::vector<std::string> got;
        for (const raft::Entry& e : entries.value())
            got.push_back(std::to_string(e.index) + "@" + std::to_string(e.term) + ":" +
                          e.data.str());
        CHECK(got == kIdleLog);
        CHECK(log.value()->next_index() == 4);
        CHECK(log.value()->hard_state() == idle_hard_state(g));
    }
    auto hot = shared->open_group(kHot, SharedWal::Hooks{});
    REQUIRE(hot.ok());
    const raft::Index first = hot.value()->first_index();
    REQUIRE(first <= hot_acked);
    auto entries = hot.value()->entries_after(first - 1, 1);
    REQUIRE(entries.ok());
    REQUIRE(entries.value().size() >= hot_acked - first + 1);
    for (const raft::Entry& e : entries.value()) {
        INFO("hot entry " << e.index);
        CHECK(e.data.str() == "hot-" + std::to_string(e.index));
    }
    CHECK(entries.value().front().index == first);
}

}  // namespace

TEST_CASE("SIGKILL during rewrites forward loses no entry and brings back no voided one") {
    for (std::uint64_t rewrites : {10, 60, 200}) {
        INFO("round killed after " << rewrites << " rewrites");
        kill_during_rewrites(rewrites);
    }
}

// Hard states as records (docs/decisions/0025): a child process moves eight
// groups through terms (each round queues every group's new term and vote
// at once, so they share writes, and reports each one once durable), while
// each group appends and compacts behind itself, a hot group fills
// segments, and a thread rewrites idle groups forward: releases drop hard-
// state records all the time.  After SIGKILL no group's term is behind the
// last one reported durable, and its vote is the one cast in that term.
namespace {

constexpr GroupId kVoterGroups = 8;
constexpr GroupId kFirstVoter = 20;

raft::NodeId vote_in(raft::Term term, GroupId g) {
    return 1 + (term + g) % 5;
}

[[noreturn]] void voters_main(const std::string& dir, int fd) {
    auto shared = open_wal(dir);
    if (!shared) _exit(2);
    std::vector<std::unique_ptr<LogStore>> groups;
    for (GroupId g = kFirstVoter; g < kFirstVoter + kVoterGroups; ++g) {
        auto log = shared->open_group(g, SharedWal::Hooks{});
        if (!log.ok()) _exit(2);
        groups.push_back(std::move(log.value()));
    }
    auto hot_log = shared->open_group(kHot, SharedWal::Hooks{});
    if (!hot_log.ok()) _exit(2);
    LogStore& hot = *hot_log.value();
    std::thread rewriter([&] {
        for (;;) {
            if (!shared->rewrite_pass().ok()) _exit(5);
            std::this_thread::yield();
        }
    });
    raft::Index hot_next = 1;
    for (raft::Term term = 1;; ++term) {
        std::vector<std::promise<Status>> durable(groups.size());
        for (std::size_t i = 0; i < groups.size(); ++i) {
            const GroupId g = kFirstVoter + i;
            const raft::HardState hs{term, vote_in(term, g), 0};
            auto done = [&durable, i, fd, g, term](Status s) {
                if (s.ok())
                    report(fd, "t " + std::to_string(g) + " " + std::to_string(term) + "\n");
                durable[i].set_value(std::move(s));
            };
            if (!groups[i]->queue_hard_state(hs, done).ok()) _exit(3);
        }
        for (auto& d : durable)
            if (!d.get_future().get().ok()) _exit(3);
        // Every third term a group writes an entry of it and compacts
        // behind it (a release that may drop its hard-state records).
        for (std::size_t i = 0; i < groups.size(); ++i) {
            if ((term + i) % 3 != 0) continue;
            LogStore& log = *groups[i];
            const raft::Index next = log.next_index();
            if (!append(log, {entry(next, term, "v")})) _exit(6);
            if (next > 2 && !log.compact_through(next - 1, log.generation()).ok()) _exit(7);
        }
        for (int k = 0; k < 4; ++k, ++hot_next)
            if (!append(hot, {entry(hot_next, 1, std::string(100, 'h'))})) _exit(6);
        if (hot_next > 60 && !hot.compact_through(hot_next - 40, hot.generation()).ok()) _exit(7);
    }
}

void kill_while_terms_change(std::uint64_t terms_before_kill) {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    ReportingChild child([&](int fd) { voters_main(wal_dir, fd); });
    std::map<GroupId, raft::Term> durable;
    child.read_until(
        [&] {
            return durable.size() >= kVoterGroups && durable.begin()->second >= terms_before_kill;
        },
        [&](std::istringstream& line) {
            std::string kind;
            GroupId g = 0;
            raft::Term term = 0;
            line >> kind >> g >> term;
            if (kind == "t") durable[g] = std::max(durable[g], term);
        });
    child.kill();

    auto shared = open_wal(wal_dir);
    REQUIRE(shared);
    INFO("killed after term " << terms_before_kill << "; " << shared->rewritten_groups()
                              << " groups rewritten since the restart");
    for (GroupId g = kFirstVoter; g < kFirstVoter + kVoterGroups; ++g) {
        INFO("group " << g << ", term " << durable[g] << " reported durable");
        auto log = shared->open_group(g, SharedWal::Hooks{});
        REQUIRE(log.ok());
        const raft::HardState hs = log.value()->hard_state();
        CHECK(hs.term >= durable[g]);           // no term goes back
        CHECK(hs.term <= durable[g] + 1);       // and none that was never queued
        CHECK(hs.vote == vote_in(hs.term, g));  // the vote cast in that term
    }
}

}  // namespace

TEST_CASE("SIGKILL while groups change term and vote and compact forgets no term or vote") {
    for (std::uint64_t terms : {20, 80, 200}) {
        INFO("round killed after term " << terms);
        kill_while_terms_change(terms);
    }
}
