// keel/kv/kv_command.hpp — raftd's KV log entries and apply results, byte by byte.
//
// A command is what raftd proposes; a result is what its KvStateMachine::apply
// (daemon/) hands back to the proposer.  Both are versioned, compact binary
// records and are decoded with every length checked against what remains, so a
// corrupt or hostile entry yields an error value, never an out-of-bounds read.
// The codec is pure (standard library and keel/status.hpp) and lives apart from
// the daemon so that waldump (tools/) decodes raftd's entries with this code.
//
// Command (all integers little-endian):
//   u8  version (= 1)
//   u8  op            1 = put, 2 = delete
//   u8  flags         bit 0: prev_value present, bit 1: prev_revision present; others 0
//   u32 key length,   key bytes
//   u32 value length, value bytes          (put only)
//   u32 prev length,  prev_value bytes     (if flag 0)
//   u64 prev_revision                      (if flag 1)
// and nothing after it.
//
// Result:
//   u8  version (= 1)
//   u8  outcome       0 = ok, 1 = compare_failed, 2 = not_found, 3 = invalid
//   u64 revision      ok: the log index of the change; otherwise 0
//   u8  has_current   compare_failed: 1 when the key exists
//   u32 value length, value bytes, u64 revision   (if has_current)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel::kv {

inline constexpr std::uint8_t kKvCommandVersion = 1;

enum class KvOp : std::uint8_t { put = 1, del = 2 };

struct KvCommand {
    KvOp op = KvOp::put;
    std::string key;
    std::string value;                           // put only
    std::optional<std::string> prev_value;       // compare-and-set on the current value
    std::optional<std::uint64_t> prev_revision;  // compare-and-set on the revision;
                                                 // 0: the key must not exist

    bool operator==(const KvCommand&) const = default;
};

enum class KvOutcome : std::uint8_t { ok = 0, compare_failed = 1, not_found = 2, invalid = 3 };

struct KvValue {
    std::string value;
    std::uint64_t revision = 0;
    bool operator==(const KvValue&) const = default;
};

struct KvResult {
    KvOutcome outcome = KvOutcome::ok;
    std::uint64_t revision = 0;
    std::optional<KvValue> current;  // with compare_failed: the key's value, if it exists

    bool operator==(const KvResult&) const = default;
};

std::string encode_command(const KvCommand& command);
Result<KvCommand> decode_command(std::string_view bytes);

std::string encode_result(const KvResult& result);
Result<KvResult> decode_result(std::string_view bytes);

// Little-endian readers and writers shared with the snapshot format.
namespace codec {

void put_u8(std::string& out, std::uint8_t v);
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
// A u32 length followed by the bytes.  REQUIRES: bytes.size() < 2^32.
void put_bytes(std::string& out, std::string_view bytes);

// Reads from a view, failing (not asserting) on truncation.
class Reader {
public:
    explicit Reader(std::string_view bytes) : rest_(bytes) {}
    bool u8(std::uint8_t& v);
    bool u32(std::uint32_t& v);
    bool u64(std::uint64_t& v);
    bool bytes(std::string& v);  // u32 length + bytes, bounded by what remains
    bool empty() const { return rest_.empty(); }
    std::size_t remaining() const { return rest_.size(); }

private:
    std::string_view rest_;
};

}  // namespace codec
}  // namespace keel::kv
