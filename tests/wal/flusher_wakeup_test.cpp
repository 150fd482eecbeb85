// When a batch a caller wrote (Wal::write_queued) ends, the flusher is woken
// only if it has something to take: what was queued meanwhile, or the WAL
// closing.  A Raft follower's I/O thread writes every small append itself
// (cluster3 K=1); waking the flusher after each one cost a context switch
// per write for nothing (docs/decisions/0053-follower-apply-after-its-write.md).
// The hand-over itself (a caller's batch during which something was queued)
// is write_queued_test.cpp's.  Also: the flusher's scheduling policy
// (Options::flusher_sched_batch).
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

// The voluntary context switches of thread `tid` of this process so far: a
// thread blocks in its wait again each time it is woken with nothing to do.
std::uint64_t voluntary_switches(pid_t tid) {
    std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
            return std::stoull(line.substr(line.find(':') + 1));
    FAIL("no voluntary_ctxt_switches for thread " << tid);
    return 0;
}

// Appends one record for the calling thread to write and asks to write it:
// true if this thread wrote it.  (Declined while the flusher still owns a
// batch, which it gives up only after that batch's callbacks: the flusher
// then writes the record.)
bool write_one_here(Wal& wal) {
    std::promise<std::thread::id> written;
    std::future<std::thread::id> by = written.get_future();
    const std::uint64_t index = wal.next_index();
    REQUIRE(wal.append(
                   make_records(index, 1),
                   [&written](Status s) {
                       if (s.ok()) written.set_value(std::this_thread::get_id());
                   },
                   Wal::Writer::caller)
                .ok());
    const bool wrote = wal.write_queued();
    REQUIRE(by.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return wrote && by.get() == std::this_thread::get_id();
}

}  // namespace

TEST_CASE("a caller's batch wakes the flusher only when something was queued meanwhile") {
    TempDir dir;
    Options o = small_options();
    o.segment_bytes = 4 << 20;  // no roll among these writes
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    // The flusher's thread id, from a callback it runs.
    std::promise<pid_t> flusher;
    std::future<pid_t> flusher_tid = flusher.get_future();
    REQUIRE(wal.append(make_record(wal.next_index()),
                       [&flusher](Status) {
                           flusher.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
                       })
                .ok());
    const pid_t tid = flusher_tid.get();
    // Once a write of this thread's went through, the flusher's batch is
    // over and it waits for work.
    bool wrote_here = false;
    for (int attempt = 0; attempt < 100 && !wrote_here; ++attempt) wrote_here = write_one_here(wal);
    REQUIRE(wrote_here);

    constexpr int kWrites = 200;
    const std::uint64_t before = voluntary_switches(tid);
    for (int i = 0; i < kWrites; ++i) REQUIRE(write_one_here(wal));
    const std::uint64_t woken = voluntary_switches(tid) - before;
    INFO("the flusher blocked " << woken << " times during " << kWrites << " caller writes");
    // Not 0: the flusher may still have been on its way to its wait.
    CHECK(woken < kWrites / 10);

    // Left asleep, the flusher still takes the next append meant for it.
    std::promise<Status> done;
    std::future<Status> flushed = done.get_future();
    REQUIRE(
        wal.append(make_record(wal.next_index()), [&done](Status s) { done.set_value(s); }).ok());
    REQUIRE(flushed.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    CHECK(flushed.get().ok());
}

// Options::flusher_sched_batch (decision 0054): a keel::Host's flusher,
// woken, does not preempt the thread that handed it records.
TEST_CASE("the flusher runs under SCHED_BATCH only when the options ask for it") {
    // Without the option the flusher keeps the policy it inherits from the
    // thread that opened the WAL (SCHED_OTHER unless the test runs under
    // another).
    const int inherited = sched_getscheduler(0);
    for (const bool batch : {false, true}) {
        TempDir dir;
        Options o = small_options();
        o.flusher_sched_batch = batch;
        auto opened = Wal::open(dir.path(), o);
        REQUIRE(opened.ok());
        // The policy of the thread that runs the callback: the flusher's.
        std::promise<int> policy;
        std::future<int> seen = policy.get_future();
        REQUIRE((*opened)
                    ->append(make_record((*opened)->next_index()),
                             [&policy](Status) { policy.set_value(sched_getscheduler(0)); })
                    .ok());
        REQUIRE(seen.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
        INFO("flusher_sched_batch " << batch);
        CHECK(seen.get() == (batch ? SCHED_BATCH : inherited));
    }
}
