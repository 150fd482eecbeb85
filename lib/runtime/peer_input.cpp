// What other members send, on its way to the core: snapshots checked before
// the core may install them, and every refusal counted by reason
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

void Replica::note_rejected(std::string_view reason, const std::string& detail) {
    std::uint64_t count = 0;
    {
        std::lock_guard lock(status_mu_);
        count = ++status_.peer_messages_rejected[std::string(reason)];
    }
    // A peer that keeps sending what we refuse gets a log line per doubling,
    // not one per message.
    if (power_of_two(count))
        log(LogLevel::warn, "refused from a peer (" + std::string(reason) + ", " +
                                std::to_string(count) + " so far): " + detail);
}

void Replica::note_refusal(const Status& stepped) {
    const std::string_view reason = raft::refusal_reason(stepped);
    if (!reason.empty()) note_rejected(reason, stepped.message());
}

void Replica::on_snapshot_arrived(raft::Message message, std::string path) {
    if (!message.snapshot) {  // the transport never hands one over without
        std::remove(path.c_str());
        return note_rejected(raft::kRefusedMalformed, "snapshot without metadata");
    }
    // Reading a large file here would hold up every peer's messages on the
    // I/O thread: the background thread checks it, then the core sees it.
    auto check = [this, message = std::move(message), path]() mutable {
        Status verified = snapshots_->verify(path, *message.snapshot);
        with_core([&] { on_snapshot_received(std::move(message), std::move(path), verified); });
    };
    if (!background_->submit(std::move(check))) {
        std::remove(path.c_str());
        log(LogLevel::warn, "snapshot from a peer dropped: background queue full or stopping");
    }
}

void Replica::on_snapshot_received(raft::Message message, std::string path,
                                   const Status& verified) {
    if (shut_down_ || failed_) {
        std::remove(path.c_str());
        return;
    }
    if (!verified.ok()) {
        std::remove(path.c_str());
        return note_rejected(
            raft::kRefusedMalformed,
            "snapshot from node " + std::to_string(message.from) + ": " + verified.to_string());
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
