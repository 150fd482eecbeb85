// StrandPool::Batch (runtime/strand_pool.hpp): a thread that hands many
// strands over in one pass holds them until its batch ends (or holds
// kBatchStrandsMax), then queues them together, in the order scheduled; a
// strand it holds can be taken back by it.  The pool's one thread is held
// at a gate meanwhile, so what waits in the run queue is exact.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "../common/gate.hpp"
#include "runtime/strand_pool.hpp"

namespace {

using keel::runtime::StrandPool;
using keel::test::Gate;

// What ran, in order, and a way to wait for a count of it.
struct Journal {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int> ran;

    void add(int id) {
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(id);
        cv.notify_all();
    }
    std::vector<int> wait_for(std::size_t count) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return ran.size() >= count; });
        return ran;
    }
};

// A strand with one piece of work: note its id.
class Noting final : public StrandPool::Strand {
public:
    Noting(Journal& journal, int id) : journal_(journal), id_(id) {}
    bool run_slice() override {
        journal_.add(id_);
        return false;
    }

private:
    Journal& journal_;
    const int id_;
};

// Holds the pool's thread at a gate until released.
class Blocker final : public StrandPool::Strand {
public:
    bool run_slice() override {
        gate.wait_open();
        return false;
    }
    Gate gate;
};

// A one-thread pool whose thread is held at a gate from construction until
// release() (or destruction, so that a failed check does not leave the
// pool's destructor waiting on the gate): what waits in its run queue is
// exactly what the test scheduled.
struct HeldPool {
    StrandPool pool{1, "batch-test"};
    Blocker blocker;

    HeldPool() {
        pool.schedule(blocker);
        blocker.gate.wait_entered();
    }
    ~HeldPool() { release(); }
    HeldPool(const HeldPool&) = delete;
    HeldPool& operator=(const HeldPool&) = delete;

    void release() { blocker.gate.release(); }
};

std::vector<std::unique_ptr<Noting>> strands(Journal& journal, std::size_t count) {
    std::vector<std::unique_ptr<Noting>> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(std::make_unique<Noting>(journal, static_cast<int>(i)));
    return out;
}

}  // namespace

TEST_CASE("a batch holds the strands it schedules and queues them together, in order, at its end",
          "[strand_pool]") {
    HeldPool held;
    StrandPool& pool = held.pool;
    Journal journal;
    auto s = strands(journal, 5);
    {
        StrandPool::Batch batch(&pool);
        for (auto& strand : s) pool.schedule(*strand);
        CHECK(pool.queued() == 0);
    }
    CHECK(pool.queued() == 5);
    held.release();
    CHECK(journal.wait_for(5) == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("a batch that holds kBatchStrandsMax strands queues them at once and holds the next",
          "[strand_pool]") {
    constexpr std::size_t kMax = StrandPool::kBatchStrandsMax;
    HeldPool held;
    StrandPool& pool = held.pool;
    Journal journal;
    auto s = strands(journal, kMax + 1);
    {
        StrandPool::Batch batch(&pool);
        for (std::size_t i = 0; i + 1 < kMax; ++i) pool.schedule(*s[i]);
        CHECK(pool.queued() == 0);
        pool.schedule(*s[kMax - 1]);
        CHECK(pool.queued() == kMax);
        pool.schedule(*s[kMax]);
        CHECK(pool.queued() == kMax);
    }
    CHECK(pool.queued() == kMax + 1);
    held.release();
    const std::vector<int> ran = journal.wait_for(kMax + 1);
    REQUIRE(ran.size() == kMax + 1);
    for (std::size_t i = 0; i < ran.size(); ++i) CHECK(ran[i] == static_cast<int>(i));
}

TEST_CASE("the thread holding a strand in its batch takes it back; it is never queued",
          "[strand_pool]") {
    HeldPool held;
    StrandPool& pool = held.pool;
    Journal journal;
    auto s = strands(journal, 2);
    {
        StrandPool::Batch batch(&pool);
        pool.schedule(*s[0]);
        pool.schedule(*s[1]);
        CHECK(pool.take_back(*s[0]));
        CHECK_FALSE(pool.take_back(*s[0]));
    }
    CHECK(pool.queued() == 1);
    CHECK(pool.take_back(*s[1]));  // out of the run queue, as before batches
    CHECK(pool.queued() == 0);
    held.release();
}

TEST_CASE("an inner batch, another pool's batch and a null pool's hold nothing", "[strand_pool]") {
    HeldPool held;
    StrandPool& pool = held.pool;
    StrandPool other(1, "batch-other");
    Journal journal;
    auto s = strands(journal, 3);
    {
        StrandPool::Batch none(nullptr);
        pool.schedule(*s[0]);
        CHECK(pool.queued() == 1);
    }
    {
        StrandPool::Batch elsewhere(&other);
        pool.schedule(*s[1]);
        CHECK(pool.queued() == 2);
    }
    {
        StrandPool::Batch outer(&pool);
        {
            StrandPool::Batch inner(&pool);
            pool.schedule(*s[2]);
        }
        CHECK(pool.queued() == 2);  // the outer batch holds it still
    }
    CHECK(pool.queued() == 3);
    held.release();
    CHECK(journal.wait_for(3) == std::vector<int>{0, 1, 2});
}
