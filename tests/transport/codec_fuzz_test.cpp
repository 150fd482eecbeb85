// Fuzz-style tests of the frame decoder: random bytes, every truncation of
// valid frames, and random mutations (with the CRC both broken and re-sealed,
// so that the parser itself meets the garbage).  Every input must either
// decode or return an error; never crash, hang or read out of bounds (run
// under ASan to prove the last).
//
// Seeded: the seed is printed at the start and on failure; set
// KEEL_FUZZ_SEED=<n> to replay, KEEL_FUZZ_ROUNDS=<n> to run longer.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "sample_messages.hpp"
#include "transport/codec.hpp"

using namespace keel;
using namespace keel::transport;

namespace {

std::uint64_t fuzz_seed() {
    if (const char* env = std::getenv("KEEL_FUZZ_SEED")) return std::strtoull(env, nullptr, 10);
    return std::random_device{}();
}

std::size_t fuzz_rounds(std::size_t fallback) {
    if (const char* env = std::getenv("KEEL_FUZZ_ROUNDS")) return std::strtoull(env, nullptr, 10);
    return fallback;
}

// Small limits so that limit checks are hit often, not just the defaults.
CodecLimits small_limits() {
    CodecLimits l;
    l.frame_bytes_max = 4096;
    l.messages_per_batch_max = 16;
    l.entries_per_message_max = 8;
    l.entry_bytes_max = 256;
    l.members_max = 8;
    l.context_bytes_max = 32;
    l.chunk_bytes_max = 512;
    return l;
}

std::vector<std::string> valid_frames() {
    std::vector<std::string> frames;
    frames.push_back(encode_hello(
        Hello{*ClusterId::parse_hex("99999999999999999999999999999999"), 3, "127.0.0.1:7"}));
    for (const auto& m : testing::sample_messages_of_every_type()) {
        std::vector<raft::Message> one{m};
        frames.push_back(*encode_messages(one, small_limits()));
    }
    frames.push_back(*encode_messages(testing::sample_messages_of_every_type(), small_limits()));
    frames.push_back(*encode_snapshot_chunk(
        SnapshotChunk{4, 10, 500, std::string(100, 's'), std::nullopt}, small_limits()));
    frames.push_back(
        *encode_snapshot_chunk(SnapshotChunk{4, 400, 500, std::string(100, 'e'),
                                             testing::sample_message(raft::MessageType::snapshot)},
                               small_limits()));
    return frames;
}

// Decoding must terminate with a value or an error; a value must survive a
// re-encode/decode unchanged (the decoder accepts only what the encoder
// could have produced).
void check_decodes_or_fails(const std::string& bytes, const CodecLimits& limits) {
    Result<Frame> r = decode_frame(bytes, limits);
    if (!r.ok()) {
        CHECK_FALSE(r.status().message().empty());
        return;
    }
    std::string again;
    if (const auto* hello = std::get_if<Hello>(&*r)) {
        again = encode_hello(*hello);
    } else if (const auto* batch = std::get_if<MessageBatch>(&*r)) {
        Result<std::string> e = encode_messages(batch->messages, limits, batch->group);
        REQUIRE(e.ok());
        again = *e;
    } else {
        Result<std::string> e = encode_snapshot_chunk(std::get<SnapshotChunk>(*r), limits);
        REQUIRE(e.ok());
        again = *e;
    }
    CHECK(again == bytes);
}

std::string payload_of(const std::string& frame) {
    return frame.substr(6, frame.size() - 10);
}

}  // namespace

TEST_CASE("random bytes never crash the decoder", "[transport][fuzz]") {
    const std::uint64_t seed = fuzz_seed();
    std::fprintf(stderr, "random bytes: KEEL_FUZZ_SEED=%llu\n", (unsigned long long)seed);
    INFO("replay with KEEL_FUZZ_SEED=" << seed);
    std::mt19937_64 rng(seed);
    const CodecLimits limits = small_limits();
    const std::size_t rounds = fuzz_rounds(20000);
    for (std::size_t i = 0; i < rounds; ++i) {
        std::string bytes(rng() % 300, '\0');
        for (auto& b : bytes) b = static_cast<char>(rng());
        check_decodes_or_fails(bytes, limits);
        // The same junk behind a correct length prefix and CRC reaches the parser.
        std::string sealed = seal_frame(static_cast<std::uint8_t>(1 + rng() % 3), bytes);
        check_decodes_or_fails(sealed, limits);
    }
}

TEST_CASE("every truncation of a valid frame is refused", "[transport][fuzz]") {
    const CodecLimits limits = small_limits();
    for (const std::string& frame : valid_frames()) {
        REQUIRE(decode_frame(frame, limits).ok());
        for (std::size_t n = 0; n < frame.size(); ++n) {
            INFO("cut at " << n << " of " << frame.size());
            CHECK_FALSE(decode_frame(frame.substr(0, n), limits).ok());
        }
        // Truncated payloads behind a valid CRC: the parser must notice.
        std::string payload = payload_of(frame);
        for (std::size_t n = 0; n < payload.size(); ++n) {
            INFO("payload cut at " << n << " of " << payload.size());
            std::string sealed =
                seal_frame(static_cast<std::uint8_t>(frame[5]), payload.substr(0, n));
            CHECK_FALSE(decode_frame(sealed, limits).ok());
        }
    }
}

TEST_CASE("random mutations of valid frames never crash the decoder", "[transport][fuzz]") {
    const std::uint64_t seed = fuzz_seed();
    std::fprintf(stderr, "mutations: KEEL_FUZZ_SEED=%llu\n", (unsigned long long)seed);
    INFO("replay with KEEL_FUZZ_SEED=" << seed);
    std::mt19937_64 rng(seed);
    const CodecLimits limits = small_limits();
    const std::vector<std::string> frames = valid_frames();
    const std::size_t rounds = fuzz_rounds(20000);
    std::size_t unsealed_accepted = 0;
    for (std::size_t i = 0; i < rounds; ++i) {
        const std::string& original = frames[rng() % frames.size()];
        bool reseal = rng() % 2 == 0;
        std::string bytes = reseal ? payload_of(original) : original;
        std::size_t mutations = 1 + rng() % 4;
        for (std::size_t k = 0; k < mutations && !bytes.empty(); ++k) {
            std::size_t at = rng() % bytes.size();
            switch (rng() % 5) {
                case 0:
                    bytes[at] = static_cast<char>(rng());
                    break;  // overwrite
                case 1:
                    bytes[at] ^= static_cast<char>(1u << (rng() % 8));
                    break;  // flip a bit
                case 2:
                    bytes.erase(at, 1 + rng() % 8);
                    break;  // delete
                case 3:
                    bytes.insert(at, 1 + rng() % 8, static_cast<char>(rng()));
                    break;
                default:
                    bytes[at] = static_cast<char>(0xff);
                    break;  // huge lengths
            }
        }
        if (reseal) {
            bytes = seal_frame(static_cast<std::uint8_t>(original[5]), bytes);
        } else if (bytes != original && decode_frame(bytes, limits).ok()) {
            ++unsealed_accepted;  // only possible if the mutation kept length and CRC valid
        }
        INFO("round " << i);
        check_decodes_or_fails(bytes, limits);
    }
    CHECK(unsealed_accepted == 0);
}

// A receiver decodes frame after frame into one Frame (decode_frame_body_into,
// the batch's capacity reused): whatever came before, each decode must give
// what a fresh decode of the same bytes gives, success or error.
TEST_CASE("one Frame reused for frame after frame decodes as a fresh one", "[transport][fuzz]") {
    const std::uint64_t seed = fuzz_seed();
    std::fprintf(stderr, "reused frame: KEEL_FUZZ_SEED=%llu\n", (unsigned long long)seed);
    INFO("replay with KEEL_FUZZ_SEED=" << seed);
    std::mt19937_64 rng(seed);
    const CodecLimits limits = small_limits();
    // Frames whose messages lack what others' have (a snapshot, entries):
    // what a reused batch left behind would show in them.
    std::vector<std::string> frames = valid_frames();
    std::vector<raft::Message> bare = testing::sample_messages_of_every_type();
    for (raft::Message& m : bare) {
        m.snapshot.reset();
        m.entries.resize(m.entries.size() % 2);
    }
    bare.resize(3);
    frames.push_back(*encode_messages(bare, limits, 7));
    bare.resize(1);
    frames.push_back(*encode_messages(bare, limits, 8));
    Frame reused;
    std::size_t decoded = 0;
    const std::size_t rounds = fuzz_rounds(20000);
    for (std::size_t i = 0; i < rounds; ++i) {
        std::string frame = frames[rng() % frames.size()];
        if (rng() % 2 == 0) {  // a mutation, re-sealed so the parser meets it
            std::string payload = payload_of(frame);
            if (!payload.empty()) payload[rng() % payload.size()] = static_cast<char>(rng());
            frame = seal_frame(static_cast<std::uint8_t>(frame[5]), payload);
        }
        const std::string_view body = std::string_view(frame).substr(kFrameLengthBytes);
        const Result<Frame> fresh = decode_frame_body(body, limits);
        const Status into = decode_frame_body_into(body, limits, reused);
        INFO("round " << i);
        REQUIRE(into.ok() == fresh.ok());
        if (!fresh.ok()) {
            CHECK(into.to_string() == fresh.status().to_string());
            continue;
        }
        CHECK(reused == *fresh);
        ++decoded;
    }
    CHECK(decoded > rounds / 3);  // the comparison ran on successes too
}
