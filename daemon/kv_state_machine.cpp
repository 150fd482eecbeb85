#include "kv_state_machine.hpp"

#include <algorithm>
#include <memory>
#include <mutex>

namespace keel::daemon {
namespace {

constexpr char kMagic[8] = {'K', 'E', 'E', 'L', 'K', 'V', '\0', '\1'};
constexpr std::size_t kSnapshotChunkBytes = 256 * 1024;
constexpr std::size_t kRestoreReadBytes = 256 * 1024;

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t hash = 14695981039346656037ull) {
    for (unsigned char c : bytes) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

Status bad_snapshot(const char* what) {
    return Status(ErrorCode::corruption, std::string("kv snapshot: ") + what);
}

// Parses a whole snapshot into `map`; nothing is trusted.
Status parse_snapshot(std::string_view bytes, KvStateMachine::Map& map,
                      std::uint64_t& applied_index) {
    if (bytes.size() < sizeof(kMagic) + 24) return bad_snapshot("too short");
    if (bytes.substr(0, sizeof(kMagic)) != std::string_view(kMagic, sizeof(kMagic))) {
        return bad_snapshot("bad magic");
    }
    std::string_view body = bytes.substr(0, bytes.size() - 8);
    codec::Reader trailer(bytes.substr(bytes.size() - 8));
    std::uint64_t checksum = 0;
    KEEL_ASSERT(trailer.u64(checksum), "eight bytes remain for the checksum");
    if (checksum != fnv1a64(body)) return bad_snapshot("checksum mismatch");

    codec::Reader in(body.substr(sizeof(kMagic)));
    std::uint64_t count = 0;
    if (!in.u64(applied_index) || !in.u64(count)) return bad_snapshot("truncated header");
    // Each entry takes at least 16 bytes: bounds the loop before trusting count.
    if (count > in.remaining() / 16) return bad_snapshot("entry count exceeds size");
    const std::string* previous = nullptr;
    for (std::uint64_t i = 0; i < count; ++i) {
        std::string key;
        KvValue value;
        if (!in.bytes(key) || !in.bytes(value.value) || !in.u64(value.revision)) {
            return bad_snapshot("truncated entry");
        }
        if (previous && !(*previous < key)) return bad_snapshot("keys out of order");
        if (value.revision == 0 || value.revision > applied_index) {
            return bad_snapshot("revision out of range");
        }
        auto it = map.emplace_hint(map.end(), std::move(key), std::move(value));
        previous = &it->first;
    }
    if (!in.empty()) return bad_snapshot("trailing bytes");
    return Status::ok_status();
}

}  // namespace

KvResult KvStateMachine::apply_one(std::uint64_t index, std::string_view data) {
    Result<KvCommand> decoded = decode_command(data);
    if (!decoded.ok()) return KvResult{KvOutcome::invalid, 0, std::nullopt};
    KvCommand& command = decoded.value();

    auto it = map_.find(command.key);
    const bool exists = it != map_.end();
    bool holds = true;
    if (command.prev_value) holds = holds && exists && it->second.value == *command.prev_value;
    if (command.prev_revision) {
        holds = holds && (*command.prev_revision == 0
                              ? !exists
                              : exists && it->second.revision == *command.prev_revision);
    }
    if (!holds) {
        KvResult failed{KvOutcome::compare_failed, 0, std::nullopt};
        if (exists) failed.current = it->second;
        return failed;
    }
    std::uint64_t size = size_bytes_.load(std::memory_order_relaxed);
    if (command.op == KvOp::del) {
        if (!exists) return KvResult{KvOutcome::not_found, 0, std::nullopt};
        size_bytes_.store(size - entry_bytes(it->first, it->second.value),
                          std::memory_order_relaxed);
        map_.erase(it);
        return KvResult{KvOutcome::ok, index, std::nullopt};
    }
    if (exists) {
        size -= entry_bytes(it->first, it->second.value);
        size_bytes_.store(size + entry_bytes(command.key, command.value),
                          std::memory_order_relaxed);
        it->second = KvValue{std::move(command.value), index};
    } else {
        size_bytes_.store(size + entry_bytes(command.key, command.value),
                          std::memory_order_relaxed);
        map_.emplace(std::move(command.key), KvValue{std::move(command.value), index});
    }
    return KvResult{KvOutcome::ok, index, std::nullopt};
}

void KvStateMachine::apply(const std::vector<CommittedEntry>& entries,
                           std::vector<std::string>& results) {
    results.resize(entries.size());
    std::unique_lock lock(mutex_);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const CommittedEntry& entry = entries[i];
        KEEL_ASSERT(entry.index > applied_index_, "entries are applied in increasing index order");
        results[i] = encode_result(apply_one(entry.index, entry.data));
        applied_index_ = entry.index;
    }
}

std::string KvStateMachine::serialize(const Map& map, std::uint64_t applied_index) {
    std::string out(kMagic, sizeof(kMagic));
    codec::put_u64(out, applied_index);
    codec::put_u64(out, map.size());
    for (const auto& [key, value] : map) {
        codec::put_bytes(out, key);
        codec::put_bytes(out, value.value);
        codec::put_u64(out, value.revision);
    }
    codec::put_u64(out, fnv1a64(out));
    return out;
}

SnapshotFunction KvStateMachine::snapshot() {
    // Runs on the apply thread, the map's only writer: copy it, then stream the
    // immutable copy from the background thread while apply() goes on.
    std::shared_ptr<const Map> copy;
    std::uint64_t applied = 0;
    {
        std::shared_lock lock(mutex_);
        copy = std::make_shared<const Map>(map_);
        applied = applied_index_;
    }
    return [copy, applied](SnapshotWriter& writer) -> Status {
        std::string chunk(kMagic, sizeof(kMagic));
        codec::put_u64(chunk, applied);
        codec::put_u64(chunk, copy->size());
        std::uint64_t hash = 14695981039346656037ull;
        auto flush = [&]() -> Status {
            hash = fnv1a64(chunk, hash);
            Status status = writer.write(chunk);
            chunk.clear();
            return status;
        };
        for (const auto& [key, value] : *copy) {
            codec::put_bytes(chunk, key);
            codec::put_bytes(chunk, value.value);
            codec::put_u64(chunk, value.revision);
            if (chunk.size() >= kSnapshotChunkBytes) {
                if (Status status = flush(); !status.ok()) return status;
            }
        }
        if (Status status = flush(); !status.ok()) return status;
        codec::put_u64(chunk, hash);
        return writer.write(chunk);
    };
}

Status KvStateMachine::restore(SnapshotReader& reader) {
    const std::uint64_t size = reader.size_bytes();
    if (size > kMaxSnapshotBytes) return bad_snapshot("larger than kMaxSnapshotBytes");
    std::string bytes;
    bytes.reserve(static_cast<std::size_t>(size));
    std::string buffer(kRestoreReadBytes, '\0');
    for (;;) {
        Result<std::size_t> got = reader.read(buffer.data(), buffer.size());
        if (!got.ok()) return got.status();
        if (*got == 0) break;
        if (*got > buffer.size() || bytes.size() + *got > kMaxSnapshotBytes) {
            return bad_snapshot("reader returned more than allowed");
        }
        bytes.append(buffer.data(), *got);
    }
    Map map;
    std::uint64_t applied = 0;
    if (Status status = parse_snapshot(bytes, map, applied); !status.ok()) return status;
    std::uint64_t map_bytes = kEmptySnapshotBytes;
    for (const auto& [key, value] : map) map_bytes += entry_bytes(key, value.value);
    std::unique_lock lock(mutex_);
    map_ = std::move(map);
    applied_index_ = applied;
    size_bytes_.store(map_bytes, std::memory_order_relaxed);
    return Status::ok_status();
}

std::optional<KvValue> KvStateMachine::get(std::string_view key) const {
    std::shared_lock lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
}

KvListing KvStateMachine::list(std::string_view prefix, std::size_t limit) const {
    KvListing listing;
    std::shared_lock lock(mutex_);
    for (auto it = map_.lower_bound(prefix); it != map_.end(); ++it) {
        if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
        if (listing.items.size() == limit) {
            listing.truncated = true;
            break;
        }
        listing.items.emplace_back(it->first, it->second);
    }
    return listing;
}

std::size_t KvStateMachine::size() const {
    std::shared_lock lock(mutex_);
    return map_.size();
}

std::uint64_t KvStateMachine::last_applied_index() const {
    std::shared_lock lock(mutex_);
    return applied_index_;
}

}  // namespace keel::daemon
