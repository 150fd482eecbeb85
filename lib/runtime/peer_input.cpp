// What other members send, on its way to the core: a received snapshot
// (checked against its checksums first, verify_received_snapshot) stepped in
// and staged, and every refusal counted by reason
// (NodeStatus::peer_messages_rejected) and logged without flooding the log.
// The core refuses what it must not act on (raft/admission.cpp).
#include <cstdio>

#include <fmt/format.h>
#include "runtime/replica.hpp"

namespace keel::runtime {

namespace {

bool power_of_two(std::uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

void Replica::on_message(raft::Message& message) {
    // A snapshot's metadata travels with its data (the transport's
    // on_snapshot): alone, in a frame of messages, the core would install a
    // snapshot whose data was never staged.  (The TCP transport refuses it
    // already; another transport might not.)
    if (message.type == raft::MessageType::snapshot)
        return count_rejection(
            kRejectedWrongFrameKind,
            fmt::format("snapshot message from node {} outside a snapshot stream", message.from));
    inline_.begin_message();
    with_core([this, &message]() REQUIRES(core_lock_) {
        if (halted()) return;
        board_.count_received(message);
        note_refusal(core_->step(message));
        run_core();
    });
    // Entries this thread is to write wait until the messages it has in
    // hand are stepped in too: one read of the leader's socket often brings
    // several appends, and each written alone cost an fdatasync.  A post to
    // this (the I/O) thread runs after the handler that delivered them.
    if (inline_.io_write_to_schedule()) post([this] { write_io_batch(); });
    inline_.end_message();
    // What the step claimed to apply waits for that write, if one is
    // scheduled: the leader waits for this member's acknowledgement, no one
    // for its apply.  write_io_batch applies it.
    if (!inline_.io_write_scheduled()) apply_io_claims();
}

void Replica::write_io_batch() {
    // The write before any apply: the leader waits for its acknowledgement,
    // which the commit after it (after_batch, on this thread) releases; no
    // one waits for a follower's apply.  The commit may append more:
    // written in turn.  If a batch is being written, its writer takes these
    // after it.
    inline_.begin_message();
    while (inline_.take_io_write()) (void)log_->wal().write_queued();
    inline_.end_message();
    apply_io_claims();
}

void Replica::apply_io_claims() {
    // The proposals the callbacks make (a closed-loop client's next one) are
    // sent to the followers as the lock is let go; the leader's own copy is
    // then written by this thread (io_writes), not handed to the flusher:
    // the acknowledgements that commit it wait in the socket meanwhile, and
    // cannot commit it before it is durable here anyway.
    // Written at once (nothing more to gather), a few rounds at most before
    // the I/O thread goes back to its sockets.
    constexpr int kMaxLeaderWriteRounds = 4;
    for (int round = 0;; ++round) {
        inline_.begin_io_apply();
        const std::uint64_t took = inline_.apply_io_claims(*apply_);
        inline_.end_io_apply();
        if (took != 0) {
            const std::uint64_t off = inline_.io_apply_off_batches();
            log(LogLevel::warn,
                off == kIoInlineApplyOffForGood
                    ? fmt::format("a batch applied inline on the I/O thread took {} us; from now "
                                  "on only the apply thread applies (NodeOptions::inline_apply)",
                                  took / 1000)
                    : fmt::format("a batch applied inline on the I/O thread took {} us; only the "
                                  "apply thread applies for the next {} batches "
                                  "(NodeOptions::inline_apply)",
                                  took / 1000, off));
        }
        if (!inline_.io_write_to_schedule()) return;
        if (round == kMaxLeaderWriteRounds) return post([this] { write_io_batch(); });
        inline_.begin_message();
        while (inline_.take_io_write()) (void)log_->wal().write_queued();
        inline_.end_message();
    }
}

void Replica::count_rejection(std::string_view reason, std::string_view detail) {
    const std::uint64_t count = board_.count_rejection(reason);
    // A peer that keeps sending what we refuse gets a log line per doubling,
    // not one per message.
    if (power_of_two(count))
        log(LogLevel::warn,
            fmt::format("peer refused ({}): {} [{} so far]", reason, detail, count));
}

void Replica::note_refusal(const Status& stepped) {
    const std::string_view reason = raft::refusal_reason(stepped);
    if (!reason.empty()) count_rejection(reason, stepped.message());
}

void Replica::on_snapshot_received(raft::Message message, std::string path) {
    if (halted() || !message.snapshot) {
        std::remove(path.c_str());
        return;
    }
    board_.count_received(message);
    const Status stepped = core_->step(message);
    if (!raft::refusal_reason(stepped).empty()) {
        std::remove(path.c_str());
        return note_refusal(stepped);
    }
    // Staged before the batch this step produced is carried out: its
    // install_snapshot looks the data up here.
    locked_.staged.stage(message.snapshot->index, message.snapshot->term, std::move(path));
    run_core();
}

}  // namespace keel::runtime
