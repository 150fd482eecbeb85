// tests/runtime/test_state_machine.hpp — a state machine for runtime tests:
// it records every applied entry (index, data) and answers "ok:<index>".
// Snapshots serialise the record; restore replaces it.  Thread-safe reads
// for the test thread (the apply thread writes under a mutex).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "../common/thread_name.hpp"
#include "keel/keel.hpp"

namespace keel::test {

// Something observable changed in some node of this process: an entry was
// applied, a snapshot restored, a node logged an event (role changes, for
// one).  Waiters re-check their condition on each change (eventually()).
class ProgressSignal {
public:
    static ProgressSignal& instance() {
        static ProgressSignal signal;
        return signal;
    }
    void notify() {
        {
            std::lock_guard lock(mu_);
            ++changes_;
        }
        cv_.notify_all();
    }
    std::uint64_t changes() const {
        std::lock_guard lock(mu_);
        return changes_;
    }
    // Waits until something changes after `seen`, or `at_most` passes.
    void wait_for_change(std::uint64_t seen, std::chrono::milliseconds at_most) const {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, at_most, [&] { return changes_ != seen; });
    }

private:
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::uint64_t changes_ = 0;
};

class RecordingStateMachine : public StateMachine {
public:
    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const CommittedEntry& e = entries[i];
            if (e.index <= last_index_) duplicate_applies_++;
            last_index_ = e.index;
            applied_[e.index] = std::string(e.data);
            results[i] = "ok:" + std::to_string(e.index);
        }
        apply_calls_++;
        apply_threads_.insert(thread_name());
        cv_.notify_all();
        ProgressSignal::instance().notify();
    }

    SnapshotFunction snapshot() override {
        std::lock_guard lock(mu_);
        // Capture a copy (cheap enough for tests); the function writes it later.
        auto copy = std::make_shared<std::map<std::uint64_t, std::string>>(applied_);
        snapshots_taken_++;
        return [copy](SnapshotWriter& w) -> Status {
            for (const auto& [index, data] : *copy) {
                std::string rec(8 + 4, '\0');
                std::memcpy(rec.data(), &index, 8);
                const auto n = static_cast<std::uint32_t>(data.size());
                std::memcpy(rec.data() + 8, &n, 4);
                rec += data;
                if (Status s = w.write(rec); !s.ok()) return s;
            }
            return Status::ok_status();
        };
    }

    Status restore(SnapshotReader& r) override {
        std::string all;
        char buf[4096];
        for (;;) {
            auto n = r.read(buf, sizeof buf);
            if (!n.ok()) return n.status();
            if (n.value() == 0) break;
            all.append(buf, n.value());
        }
        std::map<std::uint64_t, std::string> applied;
        std::size_t pos = 0;
        while (pos < all.size()) {
            if (all.size() - pos < 12) return Status(ErrorCode::corruption, "short record");
            std::uint64_t index;
            std::uint32_t n;
            std::memcpy(&index, all.data() + pos, 8);
            std::memcpy(&n, all.data() + pos + 8, 4);
            pos += 12;
            if (all.size() - pos < n) return Status(ErrorCode::corruption, "short data");
            applied[index] = all.substr(pos, n);
            pos += n;
        }
        std::lock_guard lock(mu_);
        applied_ = std::move(applied);
        last_index_ = applied_.empty() ? 0 : applied_.rbegin()->first;
        restores_++;
        cv_.notify_all();
        ProgressSignal::instance().notify();
        return Status::ok_status();
    }

    std::map<std::uint64_t, std::string> applied() const {
        std::lock_guard lock(mu_);
        return applied_;
    }
    std::uint64_t last_index() const {
        std::lock_guard lock(mu_);
        return last_index_;
    }
    // Names of the threads apply() ran on (keel names its threads).
    std::set<std::string> apply_threads() const {
        std::lock_guard lock(mu_);
        return apply_threads_;
    }
    int duplicate_applies() const {
        std::lock_guard lock(mu_);
        return duplicate_applies_;
    }
    int snapshots_taken() const {
        std::lock_guard lock(mu_);
        return snapshots_taken_;
    }
    int restores() const {
        std::lock_guard lock(mu_);
        return restores_;
    }
    // Blocks until an entry with `data` has been applied.
    bool has_data(const std::string& data) const {
        std::lock_guard lock(mu_);
        for (const auto& [i, d] : applied_)
            if (d == data) return true;
        return false;
    }
    // Blocks until `pred()` (evaluated under the lock) holds.
    template <typename Pred>
    void wait(Pred pred) const {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return pred(applied_); });
    }

private:
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::map<std::uint64_t, std::string> applied_;
    std::uint64_t last_index_ = 0;
    int duplicate_applies_ = 0;
    int apply_calls_ = 0;
    std::set<std::string> apply_threads_;
    int snapshots_taken_ = 0;
    int restores_ = 0;
};

}  // namespace keel::test
