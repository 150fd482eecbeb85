// libFuzzer target for the frame decoder (tests/fuzz/targets.txt: built with
// clang and run by scripts/fuzz.sh; `scripts/fuzz.sh --seconds 60 codec`).
// Every input must decode or fail cleanly; whatever decodes must re-encode
// to the same bytes (the format is canonical), and a messages frame joined
// with itself (frame_joiner.hpp) must be the frame of its messages twice.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "transport/codec.hpp"
#include "transport/frame_joiner.hpp"

using namespace keel::transport;

namespace {

CodecLimits small_limits() {
    CodecLimits l;
    l.frame_bytes_max = 1 << 16;
    l.messages_per_batch_max = 16;
    l.entries_per_message_max = 8;
    l.entry_bytes_max = 256;
    l.members_max = 8;
    l.context_bytes_max = 32;
    l.chunk_bytes_max = 512;
    return l;
}

void check(std::string_view bytes, const CodecLimits& limits) {
    keel::Result<Frame> r = decode_frame(bytes, limits);
    if (!r.ok()) return;
    std::string again;
    if (const auto* hello = std::get_if<Hello>(&*r)) {
        again = encode_hello(*hello);
    } else if (const auto* batch = std::get_if<MessageBatch>(&*r)) {
        again = *encode_messages(batch->messages, limits, batch->group);
        // Joined with itself it is the frame of its messages twice, or
        // declined when that would break a limit.
        MessageFrameJoiner joiner(limits.messages_per_batch_max, limits.frame_bytes_max);
        KEEL_ASSERT(joiner.add(bytes), "a messages frame joins");
        if (joiner.add(bytes)) {
            std::vector<keel::raft::Message> twice = batch->messages;
            twice.insert(twice.end(), batch->messages.begin(), batch->messages.end());
            KEEL_ASSERT(joiner.take() == *encode_messages(twice, limits, batch->group),
                        "a joined frame is the frame of all its messages");
        }
    } else {
        again = *encode_snapshot_chunk(std::get<SnapshotChunk>(*r), limits);
    }
    KEEL_ASSERT(again == bytes, "a decoded frame re-encodes to the same bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const CodecLimits limits = small_limits();
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    check(bytes, limits);
    // The same bytes as a payload behind a valid header and CRC, so the
    // parser is reached without the fuzzer having to forge checksums.
    if (size >= 1) {
        std::string sealed =
            seal_frame(static_cast<std::uint8_t>(1 + data[0] % 3), bytes.substr(1));
        check(sealed, limits);
    }
    return 0;
}
