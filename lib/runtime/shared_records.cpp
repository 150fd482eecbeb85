// The shared WAL's record encodings (shared_records.hpp).
#include "runtime/shared_records.hpp"

#include <fmt/format.h>

namespace keel::runtime {

namespace {

constexpr std::uint64_t kImageHeaderBytes = 16;  // base, count
constexpr std::uint64_t kImageEntryBytes = 24;   // term, type, size
// Raft indexes stay far below this; a larger one on disk is damage.
constexpr std::uint64_t kMaxIndex = 1ull << 63;

bool valid_type(std::uint64_t type) {
    return type >= static_cast<std::uint64_t>(raft::EntryType::normal) &&
           type <= static_cast<std::uint64_t>(raft::EntryType::config);
}

Status bad(const std::string& why) {
    return Status(ErrorCode::invalid_argument, why);
}

}  // namespace

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    return v;
}

wal::Record encode_entry(const raft::Entry& e) {
    wal::Record r;
    r.term = e.term;
    r.type = static_cast<std::uint16_t>(kSharedEntryType + static_cast<std::uint16_t>(e.type));
    std::string payload;
    payload.reserve(8 + e.data.size());
    put_u64(payload, e.index);
    payload.append(e.data.view());
    r.payload = SharedBytes(std::move(payload));
    return r;
}

Result<raft::Entry> decode_entry(const wal::Record& r) {
    if (r.type < kSharedEntryType || !valid_type(r.type - kSharedEntryType))
        return bad(fmt::format("has an unknown type {}", r.type));
    if (r.payload.size() < 8) return bad("is an entry without its index");
    raft::Entry e;
    e.index = get_u64(r.payload.view());
    if (e.index == 0 || e.index >= kMaxIndex)
        return bad(fmt::format("holds entry index {}, out of range", e.index));
    e.term = r.term;
    e.type = static_cast<raft::EntryType>(r.type - kSharedEntryType);
    e.data = SharedBytes(r.payload.view().substr(8));
    return e;
}

wal::Record encode_reset(raft::Index index, raft::Term term) {
    wal::Record r;
    r.type = kSharedResetType;
    std::string payload;
    put_u64(payload, index);
    put_u64(payload, term);
    r.payload = SharedBytes(std::move(payload));
    return r;
}

Result<raft::Index> decode_reset(const wal::Record& r) {
    if (r.type != kSharedResetType) return bad(fmt::format("has an unknown type {}", r.type));
    if (r.payload.size() != 16) return bad("is a reset of the wrong size");
    const raft::Index index = get_u64(r.payload.view());
    if (index >= kMaxIndex) return bad(fmt::format("is a reset to index {}, out of range", index));
    return index;
}

wal::Record encode_image(raft::Index base, const std::vector<raft::Entry>& entries) {
    KEEL_ASSERT(entries.size() <= kMaxImageEntries, "an image holds at most kMaxImageEntries");
    std::uint64_t data_bytes = 0;
    for (const raft::Entry& e : entries) data_bytes += e.data.size();
    std::string payload;
    payload.reserve(kImageHeaderBytes + kImageEntryBytes * entries.size() + data_bytes);
    put_u64(payload, base);
    put_u64(payload, entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        KEEL_ASSERT(entries[i].index == base + 1 + i, "an image's entries are consecutive");
        put_u64(payload, entries[i].term);
        put_u64(payload, static_cast<std::uint64_t>(entries[i].type));
        put_u64(payload, entries[i].data.size());
    }
    for (const raft::Entry& e : entries) payload.append(e.data.view());
    wal::Record r;
    r.type = kSharedImageType;
    r.payload = SharedBytes(std::move(payload));
    return r;
}

Result<Image> decode_image(const wal::Record& r) {
    if (r.type != kSharedImageType) return bad(fmt::format("has an unknown type {}", r.type));
    std::string_view in = r.payload.view();
    if (in.size() < kImageHeaderBytes) return bad("is an image shorter than its header");
    Image image;
    image.base = get_u64(in);
    const std::uint64_t count = get_u64(in.substr(8));
    in.remove_prefix(kImageHeaderBytes);
    if (count > kMaxImageEntries)
        return bad(fmt::format("is an image of {} entries, more than the limit {}", count,
                               kMaxImageEntries));
    if (image.base >= kMaxIndex - count)
        return bad(fmt::format("is an image from index {}, out of range", image.base));
    if (in.size() < count * kImageEntryBytes) return bad("is an image that ends in its entries");
    std::string_view data = in.substr(count * kImageEntryBytes);
    image.entries.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::string_view fields = in.substr(i * kImageEntryBytes);
        const std::uint64_t type = get_u64(fields.substr(8));
        const std::uint64_t size = get_u64(fields.substr(16));
        if (!valid_type(type))
            return bad(fmt::format("is an image whose entry {} has an unknown type {}",
                                   image.base + 1 + i, type));
        if (size > data.size()) return bad("is an image that ends in its entries' data");
        raft::Entry e;
        e.index = image.base + 1 + i;
        e.term = get_u64(fields);
        e.type = static_cast<raft::EntryType>(type);
        e.data = SharedBytes(data.substr(0, size));
        data.remove_prefix(size);
        image.entries.push_back(std::move(e));
    }
    if (!data.empty()) return bad("is an image with bytes after its last entry");
    return image;
}

wal::Record encode_hard_state(const raft::HardState& hs) {
    wal::Record r;
    r.type = kSharedHardStateType;
    r.term = hs.term;
    std::string payload;
    payload.reserve(kHardStateRecordBytes);
    put_u64(payload, hs.term);
    put_u64(payload, hs.vote);
    put_u64(payload, hs.commit);
    r.payload = SharedBytes(std::move(payload));
    return r;
}

Result<raft::HardState> decode_hard_state(const wal::Record& r) {
    if (r.type != kSharedHardStateType) return bad(fmt::format("has an unknown type {}", r.type));
    const std::string_view in = r.payload.view();
    if (in.size() != kHardStateRecordBytes)
        return bad(
            fmt::format("is a hard state of {} bytes, not {}", in.size(), kHardStateRecordBytes));
    raft::HardState hs{get_u64(in), get_u64(in.substr(8)), get_u64(in.substr(16))};
    if (hs.term >= kMaxIndex || hs.commit >= kMaxIndex)
        return bad(fmt::format("is a hard state with term {} and commit {}, out of range", hs.term,
                               hs.commit));
    return hs;
}

}  // namespace keel::runtime
