// Wal::write_queued() and append(..., Writer::caller): a caller writes and
// fdatasyncs the queued batch on its own thread.  What must hold: the batch
// and its callbacks and after_batch run on that thread before it returns;
// batches never overlap, so write_queued() declines while one is in progress
// (the flusher's, another caller's, or the one whose callback calls it) and
// the flusher writes what it declined; records nobody wrote are written on
// close; an fdatasync failure there is fail-stop as on the flusher.  (All
// of it racing: write_queued_race_test.cpp.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

// Every completion a test hands out a callback for: its status and the
// thread it ran on.  Filled by whichever thread writes the batch and read on
// the test thread, the only one that runs Catch assertions (they are not
// thread-safe).
class Completions {
public:
    struct Completion {
        std::uint64_t index = 0;  // first index of the append
        Status status;
        std::thread::id thread;
    };

    // `also` runs first, inside the callback, on the writing thread.
    Wal::Callback callback(std::uint64_t index, std::function<void()> also = {}) {
        return [this, index, also = std::move(also)](Status status) {
            if (also) also();
            std::lock_guard lock(mu_);
            done_.push_back({index, std::move(status), std::this_thread::get_id()});
            cv_.notify_all();
        };
    }
    // The completion of the append starting at `index`, if it has run.
    std::optional<Completion> find(std::uint64_t index) const {
        std::lock_guard lock(mu_);
        return find_locked(index);
    }
    // Blocks until the append starting at `index` has completed.
    Completion wait(std::uint64_t index) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return find_locked(index).has_value(); });
        return *find_locked(index);
    }
    // Every completion so far, in the order they ran.
    std::vector<Completion> all() const {
        std::lock_guard lock(mu_);
        return done_;
    }

private:
    std::optional<Completion> find_locked(std::uint64_t index) const {
        for (const Completion& c : done_)
            if (c.index == index) return c;
        return std::nullopt;
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Completion> done_;
};

// Appends the next record with the default writer and returns the thread its
// callback ran on: the flusher's (nobody calls write_queued() meanwhile).
std::thread::id learn_flusher_thread(Wal& wal, Completions& done) {
    const std::uint64_t index = wal.next_index();
    REQUIRE(wal.append(make_record(index), done.callback(index)).ok());
    return done.wait(index).thread;
}

// write_queued() declines while the flusher still owns its previous batch,
// and the flusher gives it up only after that batch's callbacks and
// after_batch have run, an instant the API does not show; right after open
// the flusher may also not be asleep yet and take what is queued.  So a test
// that needs a batch written on its own thread tries again: the flusher
// writes the records of a declined attempt, the test waits for them and
// queues the next ones.  What a test checks of the attempt that wrote is
// deterministic; only the number of attempts is not, and it is bounded.
constexpr int kMaxAttempts = 1000;

// One attempt: queues `appends` one-record appends with Writer::caller
// (`in_first_callback` runs inside the first one's callback) and calls
// write_queued().  Returns their first index when it wrote a batch and the
// flusher had not taken the first of them before; otherwise waits until the
// flusher has written them all and returns nothing.
std::optional<std::uint64_t> try_write_on_this_thread(
    Wal& wal, Completions& done, std::uint64_t appends = 1,
    std::function<void()> in_first_callback = {}) {
    const std::uint64_t first = wal.next_index();
    for (std::uint64_t i = first; i < first + appends; ++i) {
        auto callback = done.callback(i, i == first ? in_first_callback : nullptr);
        REQUIRE(wal.append(make_records(i, 1), std::move(callback), Wal::Writer::caller).ok());
    }
    if (wal.write_queued()) {
        // Had the flusher taken the first ones, its batch would have ended,
        // callbacks and all, before this one could start.
        const auto completion = done.find(first);
        if (!completion || completion->thread == std::this_thread::get_id()) return first;
    }
    for (std::uint64_t i = first; i < first + appends; ++i) {
        INFO("index " << i << ": write_queued() declined or wrote a later batch");
        REQUIRE(done.wait(i).thread != std::this_thread::get_id());
    }
    return std::nullopt;
}

// Runs `attempt` (returning std::optional) until it reports a write.
template <typename Attempt>
auto until_written_on_this_thread(Attempt attempt) -> decltype(attempt()) {
    for (int i = 0; i < kMaxAttempts; ++i)
        if (auto wrote = attempt()) return wrote;
    return std::nullopt;
}

// The threads after_batch ran on, in order.
struct AfterBatchLog {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<std::thread::id> threads;

    void note() {
        std::lock_guard lock(mu);
        threads.push_back(std::this_thread::get_id());
        cv.notify_all();
    }
    void wait_for(std::size_t count) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return threads.size() >= count; });
    }
    std::size_t count_on(std::thread::id thread) const {
        std::lock_guard lock(mu);
        return static_cast<std::size_t>(std::count(threads.begin(), threads.end(), thread));
    }
    std::size_t size() const {
        std::lock_guard lock(mu);
        return threads.size();
    }
};

// Opens a WAL in `dir` whose after_batch notes the thread it runs on in `log`.
std::unique_ptr<Wal> open_noting_batches(const TempDir& dir, Options o, AfterBatchLog& log) {
    o.after_batch = [&log] { log.note(); };
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    return std::move(opened.value());
}

}  // namespace

TEST_CASE("write_queued writes a caller's append on the calling thread before it returns") {
    TempDir dir;
    AfterBatchLog after_batch;
    Completions done;  // outlives the Wal, whose callbacks record into it
    const auto opened = open_noting_batches(dir, small_options(), after_batch);
    Wal& wal = *opened;
    const std::thread::id me = std::this_thread::get_id();

    Stats before;
    std::size_t after_batches_here_before = 0;
    const auto index = until_written_on_this_thread([&] {
        before = wal.stats();
        after_batches_here_before = after_batch.count_on(me);
        return try_write_on_this_thread(wal, done);
    });
    REQUIRE(index);

    // Looked up without waiting: it ran before write_queued() returned.
    const auto completion = done.find(*index);
    REQUIRE(completion);
    REQUIRE(completion->thread == me);
    REQUIRE(completion->status.ok());
    require_log_is(wal, 1, *index);
    const Stats after = wal.stats();
    CHECK(after.fsyncs == before.fsyncs + 1);
    CHECK(after.batches == before.batches + 1);
    CHECK(after.records_written == before.records_written + 1);
    CHECK(after_batch.count_on(me) == after_batches_here_before + 1);
}

TEST_CASE("write_queued with nothing queued returns false and changes nothing") {
    TempDir dir;
    AfterBatchLog after_batch;
    const auto opened = open_noting_batches(dir, small_options(), after_batch);
    Wal& wal = *opened;

    auto require_no_effect = [&] {
        const Stats before = wal.stats();
        const std::size_t after_batches = after_batch.size();
        const auto files = dir_contents(dir.path());
        const std::uint64_t last = wal.last_index();
        REQUIRE_FALSE(wal.write_queued());
        const Stats after = wal.stats();
        CHECK(after.fsyncs == before.fsyncs);
        CHECK(after.batches == before.batches);
        CHECK(after.bytes_written == before.bytes_written);
        CHECK(after_batch.size() == after_batches);
        CHECK(wal.last_index() == last);
        CHECK(wal.next_index() == last + 1);
        CHECK(dir_contents(dir.path()) == files);
    };
    SECTION("on a new WAL") {
        require_no_effect();
    }
    SECTION("after appends were written") {
        REQUIRE(append_sync(wal, make_records(1, 3)).ok());
        // Its after_batch may still be to come (one append, one batch): wait
        // for it, so that nothing of that batch lands in the comparison.
        after_batch.wait_for(1);
        require_no_effect();
    }
}

TEST_CASE("write_queued takes at most max_batch_bytes; the flusher writes the rest") {
    TempDir dir;
    AfterBatchLog after_batch;
    Options o = small_options();
    o.max_batch_bytes = 100;  // a batch takes ops while under 100 bytes: 3 records of 40
    constexpr std::uint64_t kAppendsPerBatch = 3;
    Completions done;  // outlives the Wal, whose callbacks record into it
    const auto opened = open_noting_batches(dir, o, after_batch);
    Wal& wal = *opened;
    const std::thread::id me = std::this_thread::get_id();

    constexpr std::uint64_t kAppends = 9;
    std::size_t after_batches_here_before = 0;
    const auto first = until_written_on_this_thread([&] {
        after_batches_here_before = after_batch.count_on(me);
        return try_write_on_this_thread(wal, done, kAppends);
    });
    REQUIRE(first);
    CHECK(after_batch.count_on(me) == after_batches_here_before + 1);
    for (std::uint64_t i = *first; i < *first + kAppends; ++i) {
        INFO("index " << i);
        const auto completion = done.wait(i);
        REQUIRE(completion.status.ok());
        // Exactly the first batch on this thread; nothing after it.
        REQUIRE((completion.thread == me) == (i < *first + kAppendsPerBatch));
    }
    require_log_is(wal, 1, *first + kAppends - 1);
}

TEST_CASE("write_queued declines during the flusher's batch; the flusher writes it next") {
    TempDir dir;
    Completions done;
    auto opened = Wal::open(dir.path(), small_options());
    REQUIRE(opened.ok());
    Wal& wal = **opened;

    // Record 1's callback holds the flusher inside its batch.
    std::latch flusher_inside(1), release_flusher(1);
    std::thread::id flusher;  // written before flusher_inside counts down
    auto hold_flusher = [&] {
        flusher = std::this_thread::get_id();
        flusher_inside.count_down();
        release_flusher.wait();
    };
    REQUIRE(wal.append(make_record(1), done.callback(1, hold_flusher)).ok());
    flusher_inside.wait();

    // Observed first, asserted after the release: a failed REQUIRE must not
    // leave the flusher held (closing the WAL would wait for it forever).
    const Status queued = wal.append(make_records(2, 1), done.callback(2), Wal::Writer::caller);
    const bool wrote = wal.write_queued();
    const std::uint64_t last_while_held = wal.last_index();
    const bool completed_while_held = done.find(2).has_value();
    release_flusher.count_down();

    REQUIRE(queued.ok());
    CHECK_FALSE(wrote);
    CHECK(last_while_held == 1);  // record 2 was not written
    CHECK_FALSE(completed_while_held);

    const auto second = done.wait(2);
    REQUIRE(second.status.ok());
    CHECK(second.thread == flusher);
    CHECK(second.thread != std::this_thread::get_id());
    const auto all = done.all();
    REQUIRE(all.size() == 2);
    CHECK(all[0].index == 1);
    CHECK(all[1].index == 2);
    require_log_is(wal, 1, 2);
}

TEST_CASE("write_queued declines during another caller's batch; the flusher writes it next") {
    TempDir dir;
    Completions done;
    // The test thread's batch holds it in after_batch while the other caller
    // tries (the flusher's batches, this thread's declined attempts, never hold).
    const std::thread::id me = std::this_thread::get_id();
    std::atomic<bool> held{false};
    std::latch other_may_try(1), other_tried(1);
    Options o = small_options();
    o.after_batch = [&] {
        if (std::this_thread::get_id() != me || held.exchange(true)) return;
        other_may_try.count_down();
        other_tried.wait();
    };
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    const std::thread::id flusher = learn_flusher_thread(wal, done);

    std::uint64_t other_index = 0;
    Status other_appended;
    bool other_wrote = true;
    std::uint64_t last_seen_by_other = 0;
    std::thread other_caller([&] {
        other_may_try.wait();
        other_index = wal.next_index();
        other_appended = wal.append(make_records(other_index, 1), done.callback(other_index),
                                    Wal::Writer::caller);
        other_wrote = wal.write_queued();
        last_seen_by_other = wal.last_index();
        other_tried.count_down();
    });
    const auto mine =
        until_written_on_this_thread([&] { return try_write_on_this_thread(wal, done); });
    // Never held (no batch of its own, or no after_batch in it): let the
    // other caller go anyway, so that the test fails instead of hanging.
    if (!held.load()) other_may_try.count_down();
    other_caller.join();
    REQUIRE(mine);
    REQUIRE(held.load());  // this thread's after_batch ran, and held it

    REQUIRE(other_appended.ok());
    CHECK_FALSE(other_wrote);
    CHECK(last_seen_by_other == *mine);  // it wrote nothing
    const auto completion = done.wait(other_index);
    REQUIRE(completion.status.ok());
    CHECK(completion.thread == flusher);
    CHECK(other_index == *mine + 1);
    require_log_is(wal, 1, other_index);
}

namespace {

// From inside a batch (a callback or after_batch): queues the next record
// with Writer::caller and tries to write it at once, which must decline
// because the batch it is called from is still in progress.
struct NestedWrite {
    std::atomic<bool> tried{false};
    std::latch finished{1};
    std::uint64_t index = 0;  // these three are read after `finished`
    Status appended;
    bool wrote = true;

    void run(Wal& wal, Completions& done) {
        if (tried.exchange(true)) return;  // once
        index = wal.next_index();
        appended = wal.append(make_records(index, 1), done.callback(index), Wal::Writer::caller);
        wrote = wal.write_queued();
        finished.count_down();
    }
};

// What every nested-write test requires once it has run: declined, and the
// flusher wrote the record afterwards.
void require_declined_then_written(NestedWrite& nested, Completions& done, Wal& wal,
                                   std::thread::id flusher) {
    nested.finished.wait();
    REQUIRE(nested.appended.ok());
    CHECK_FALSE(nested.wrote);
    const auto completion = done.wait(nested.index);
    REQUIRE(completion.status.ok());
    CHECK(completion.thread == flusher);
    require_log_is(wal, 1, nested.index);
}

}  // namespace

TEST_CASE("write_queued inside a batch declines without deadlock; the flusher writes it next") {
    TempDir dir;
    Completions done;
    NestedWrite nested;
    // Set by a callback: the after_batch of that callback's batch (same
    // thread, right after) runs the nested write.
    std::atomic<Wal*> nest_in_after_batch{nullptr};
    Options o = small_options();
    o.after_batch = [&] {
        if (Wal* wal = nest_in_after_batch.exchange(nullptr)) nested.run(*wal, done);
    };
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    const std::thread::id flusher = learn_flusher_thread(wal, done);
    const std::thread::id me = std::this_thread::get_id();
    const std::uint64_t next = wal.next_index();
    // Only in a batch this thread writes (a declined attempt's callback runs on the flusher).
    auto if_mine = [me](std::function<void()> f) {
        return [me, f = std::move(f)] {
            if (std::this_thread::get_id() == me) f();
        };
    };

    SECTION("from a completion callback of the flusher's batch") {
        REQUIRE(wal.append(make_record(next), done.callback(next, [&] { nested.run(wal, done); }))
                    .ok());
        require_declined_then_written(nested, done, wal, flusher);
    }
    SECTION("from after_batch of the flusher's batch") {
        REQUIRE(wal.append(make_record(next),
                           done.callback(next, [&] { nest_in_after_batch.store(&wal); }))
                    .ok());
        require_declined_then_written(nested, done, wal, flusher);
    }
    SECTION("from a completion callback of a caller's batch") {
        REQUIRE(until_written_on_this_thread([&] {
            return try_write_on_this_thread(wal, done, 1, if_mine([&] { nested.run(wal, done); }));
        }));
        REQUIRE(nested.tried.load());  // inside this thread's batch, before it returned
        require_declined_then_written(nested, done, wal, flusher);
    }
    SECTION("from after_batch of a caller's batch") {
        REQUIRE(until_written_on_this_thread([&] {
            return try_write_on_this_thread(wal, done, 1,
                                            if_mine([&] { nest_in_after_batch.store(&wal); }));
        }));
        REQUIRE(nested.tried.load());  // inside this thread's batch, before it returned
        require_declined_then_written(nested, done, wal, flusher);
    }
}

TEST_CASE("a flusher append wakes the flusher to write the caller-queued records before it") {
    TempDir dir;
    Completions done;
    auto opened = Wal::open(dir.path(), small_options());
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    REQUIRE(wal.append(make_records(1, 2), done.callback(1), Wal::Writer::caller).ok());
    REQUIRE(wal.append(make_record(3), done.callback(3)).ok());  // wakes the flusher
    const auto last = done.wait(3);
    const auto all = done.all();
    REQUIRE(all.size() == 2);
    CHECK(all[0].index == 1);
    CHECK(all[0].status.ok());
    CHECK(all[0].thread == last.thread);
    CHECK(last.status.ok());
    CHECK(last.thread != std::this_thread::get_id());
    require_log_is(wal, 1, 3);
}

TEST_CASE("records a caller queued and never wrote are written when the WAL closes") {
    TempDir dir;
    Completions done;  // outlives the Wal: its callbacks run while closing
    constexpr std::uint64_t kRecords = 5;
    {
        auto opened = Wal::open(dir.path(), small_options());
        REQUIRE(opened.ok());
        for (std::uint64_t i = 1; i <= kRecords; ++i)
            REQUIRE(
                (*opened)->append(make_records(i, 1), done.callback(i), Wal::Writer::caller).ok());
    }
    const auto all = done.all();
    REQUIRE(all.size() == kRecords);
    for (std::uint64_t i = 1; i <= kRecords; ++i) {
        CHECK(all[i - 1].index == i);
        CHECK(all[i - 1].status.ok());
    }
    auto reopened = Wal::open(dir.path(), small_options());
    REQUIRE(reopened.ok());
    require_log_is(**reopened, 1, kRecords);
}

TEST_CASE("an fdatasync failure in a caller's batch puts the WAL in the failed state for good") {
    TempDir base;
    FaultFs fs;
    const std::string dir = base.sub("wal");
    Completions done;
    auto opened = Wal::open(dir, small_options(&fs));
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    REQUIRE(append_sync(wal, make_records(1, 3)).ok());

    // Fails the first fdatasync this thread issues (on the direct path: the
    // first durable write), which is that of the batch it writes (the
    // flusher writes a declined attempt, and its syncs succeed).
    const std::thread::id me = std::this_thread::get_id();
    const char* sync_op = test_write_path() == WritePath::direct ? "write " : "datasync ";
    std::atomic<bool> armed{true};
    fs.set_before_mutation([&](const std::string& what) {
        if (what.rfind(sync_op, 0) == 0 && what.find(".wal") != std::string::npos &&
            std::this_thread::get_id() == me && armed.exchange(false))
            fs.datasyncs_until_failure = 0;
    });
    // One append per attempt: with more, a flusher still awake could take
    // the first (and succeed) and this thread fail the rest.
    const auto failed_index =
        until_written_on_this_thread([&] { return try_write_on_this_thread(wal, done); });
    REQUIRE(failed_index);
    fs.set_before_mutation(nullptr);
    fs.datasyncs_until_failure = -1;  // even once the disk "recovers"
    const std::uint64_t acked = *failed_index - 1;

    const auto completion = done.find(*failed_index);
    REQUIRE(completion);
    CHECK(completion->thread == me);
    CHECK(completion->status.code() == ErrorCode::failed);
    CHECK_THAT(completion->status.message(), Catch::Contains("injected fdatasync failure"));
    REQUIRE(wal.failed());
    const std::uint64_t next = *failed_index + 1;
    CHECK(wal.append(make_records(next, 1), nullptr, Wal::Writer::caller).code() ==
          ErrorCode::failed);
    CHECK(wal.append(make_record(next), nullptr).code() == ErrorCode::failed);
    CHECK(wal.truncate_after(1, nullptr).code() == ErrorCode::failed);
    CHECK(wal.save_metadata(Metadata{}).code() == ErrorCode::failed);
    const std::uint64_t fsyncs = wal.stats().fsyncs;
    CHECK_FALSE(wal.write_queued());
    CHECK(wal.stats().fsyncs == fsyncs);
    CHECK(wal.last_index() == acked);
    opened->reset();

    // A power failure now keeps only what was fdatasynced: the failed batch is gone.
    const std::string power_lost = base.sub("power-lost");
    fs.copy_dropping_unsynced(dir, power_lost);
    auto after_power_loss = Wal::open(power_lost, small_options());
    REQUIRE(after_power_loss.ok());
    require_log_is(**after_power_loss, 1, acked);
    // Without one, the written but unsynced batch may be there, whole and valid.
    auto reopened = Wal::open(dir, small_options());
    REQUIRE(reopened.ok());
    const std::uint64_t last = (*reopened)->last_index();
    REQUIRE((last == acked || last == acked + 1));
    require_log_is(**reopened, 1, last);
}
