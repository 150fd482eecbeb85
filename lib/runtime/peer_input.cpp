// What other members send, on its way to the core: a received snapshot
// (checked against its checksums first, verify_received_snapshot) stepped in
// and staged, and every refusal counted by reason
// (NodeStatus::peer_messages_rejected) and logged without flooding the log.
// Messages themselves are stepped in by Replica::on_message (replica.cpp);
// the core refuses what it must not act on (raft/admission.cpp).
#include <cstdio>

#include "runtime/replica.hpp"

namespace keel::runtime {

namespace {

bool power_of_two(std::uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

void Replica::count_rejection(std::string_view reason, std::string_view detail) {
    std::uint64_t count = 0;
    {
        std::lock_guard lock(rejected_mu_);
        auto it = rejected_.find(reason);
        if (it == rejected_.end()) it = rejected_.emplace(std::string(reason), 0).first;
        count = ++it->second;
    }
    // A peer that keeps sending what we refuse gets a log line per doubling,
    // not one per message.
    if (power_of_two(count))
        log(LogLevel::warn, "peer refused (" + std::string(reason) + "): " + std::string(detail) +
                                " [" + std::to_string(count) + " so far]");
}

void Replica::note_refusal(const Status& stepped) {
    const std::string_view reason = raft::refusal_reason(stepped);
    if (!reason.empty()) count_rejection(reason, stepped.message());
}

void Replica::on_snapshot_received(raft::Message message, std::string path) {
    if (shut_down_ || failed_ || !message.snapshot) {
        std::remove(path.c_str());
        return;
    }
    const Status stepped = core_->step(message);
    if (!raft::refusal_reason(stepped).empty()) {
        std::remove(path.c_str());
        return note_refusal(stepped);
    }
    // Staged before the batch this step produced is carried out: its
    // install_snapshot looks the data up here.
    auto key = std::make_pair(message.snapshot->index, message.snapshot->term);
    if (auto old = staged_.find(key); old != staged_.end() && old->second != path)
        std::remove(old->second.c_str());
    staged_[key] = std::move(path);
    while (staged_.size() > k_max_staged_snapshots) {
        std::remove(staged_.begin()->second.c_str());
        staged_.erase(staged_.begin());
    }
    run_core();
}

}  // namespace keel::runtime
