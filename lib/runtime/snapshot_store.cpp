#include "runtime/snapshot_store.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include "keel/wal/small_file.hpp"
#include "runtime/little_endian.hpp"

namespace keel::runtime {

namespace {

constexpr char kMagic[8] = {'K', 'E', 'E', 'L', 'S', 'N', 'A', 'P'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kTrailerBytes = 8 + 8 + 8 + 4 + 4 + 4 + 4 + 8;
constexpr std::size_t kWriteBufferBytes = 1 << 20;
constexpr std::size_t kVerifyChunkBytes = 1 << 20;
// A snapshot file is written back a buffer at a time as it is written
// (wal::WriteBackPacer): its flush then finds little left to write, and the
// log's durable writes never queue behind the whole file
// (docs/decisions/0052-large-snapshot-files.md).
constexpr std::uint64_t kWriteBackChunkBytes = kWriteBufferBytes;
// The checksums are CRC-32 (reflected, polynomial 0x04C11DB7, initial value
// and final XOR 0xFFFFFFFF) as zlib's crc32() computes it, stored with its 32
// bits in reverse order (docs/wire-format.md, "Snapshot files").  A running
// value is zlib's: the finished CRC of the bytes so far, which crc_update
// extends; kCrcInit is that of no bytes.
constexpr std::uint32_t kCrcInit = 0;

std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t n) {
    return static_cast<std::uint32_t>(
        ::crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(n)));
}
// The value a snapshot file holds for `crc`: its bits reversed (what the
// format's first implementation stored, Boost.CRC's interim remainder).
std::uint32_t crc_final(std::uint32_t crc) {
    crc = ((crc >> 1) & 0x55555555u) | ((crc & 0x55555555u) << 1);
    crc = ((crc >> 2) & 0x33333333u) | ((crc & 0x33333333u) << 2);
    crc = ((crc >> 4) & 0x0F0F0F0Fu) | ((crc & 0x0F0F0F0Fu) << 4);
    crc = ((crc >> 8) & 0x00FF00FFu) | ((crc & 0x00FF00FFu) << 8);
    return (crc >> 16) | (crc << 16);
}

using little_endian::get_u32;
using little_endian::get_u64;
using little_endian::put_u32;
using little_endian::put_u64;

Status corruption(const std::string& path, const std::string& what) {
    return Status(ErrorCode::corruption, fmt::format("snapshot {}: {}", path, what));
}

// Reads exactly n bytes at `offset`; a file shorter than that is corruption.
Status read_exact(wal::File& file, const std::string& path, char* data, std::size_t n,
                  std::uint64_t offset) {
    auto got = file.pread(data, n, offset);
    if (!got.ok()) return got.status();
    if (*got != n)
        return corruption(path,
                          fmt::format("truncated ({} bytes, needs {})", offset + *got, offset + n));
    return Status::ok_status();
}

Status write_at(wal::File& file, const char* data, std::size_t n, std::uint64_t offset) {
    struct iovec iov {
        const_cast<char*>(data), n
    };
    return file.pwritev(&iov, 1, offset);
}

std::string file_name(const raft::SnapshotMeta& meta) {
    char name[64];
    std::snprintf(name, sizeof name, "snapshot-%016" PRIx64 "-%016" PRIx64 ".snap", meta.index,
                  meta.term);
    return name;
}

std::string encode_trailer(const raft::SnapshotMeta& meta, std::uint64_t data_bytes,
                           std::uint32_t data_crc) {
    std::string t = raft::encode_configuration(meta.config);
    const auto config_bytes = static_cast<std::uint32_t>(t.size());
    put_u64(t, meta.index);
    put_u64(t, meta.term);
    put_u64(t, data_bytes);
    put_u32(t, config_bytes);
    put_u32(t, data_crc);
    put_u32(t, kVersion);
    put_u32(t, crc_final(crc_update(kCrcInit, t.data(), t.size())));
    t.append(kMagic, sizeof kMagic);
    return t;
}

// Reads and checks the trailer of an open snapshot file (not the data
// checksum, which takes reading the whole file: verify_data).
Result<SnapshotFile> inspect(wal::File& file, const std::string& path, std::uint32_t* data_crc) {
    auto size = file.size();
    if (!size.ok()) return size.status();
    const std::uint64_t file_bytes = *size;
    if (file_bytes < kTrailerBytes)
        return corruption(path, fmt::format("too short for a snapshot ({} bytes)", file_bytes));
    const std::uint64_t at = file_bytes - kTrailerBytes;
    char t[kTrailerBytes];
    if (Status s = read_exact(file, path, t, sizeof t, at); !s.ok()) return s;
    if (std::memcmp(t + kTrailerBytes - 8, kMagic, sizeof kMagic) != 0)
        return corruption(path, fmt::format("bad magic at offset {}", at + kTrailerBytes - 8));
    if (get_u32(t + 32) != kVersion)
        return Status(ErrorCode::unsupported,
                      fmt::format("snapshot {}: unknown version {}", path, get_u32(t + 32)));
    const std::uint64_t data_bytes = get_u64(t + 16);
    const std::uint32_t config_bytes = get_u32(t + 24);
    if (config_bytes > kMaxSnapshotConfigBytes ||
        data_bytes != file_bytes - kTrailerBytes - config_bytes)
        return corruption(
            path, fmt::format("trailer lengths do not match the file's {} bytes", file_bytes));
    std::string checked(config_bytes, '\0');
    if (Status s = read_exact(file, path, checked.data(), config_bytes, data_bytes); !s.ok())
        return s;
    checked.append(t, 36);
    if (crc_final(crc_update(kCrcInit, checked.data(), checked.size())) != get_u32(t + 36))
        return corruption(
            path, fmt::format("bad trailer checksum (configuration at offset {})", data_bytes));
    auto config = raft::decode_configuration(std::string_view(checked.data(), config_bytes));
    if (!config)
        return corruption(
            path, fmt::format("the configuration at offset {} does not decode", data_bytes));
    SnapshotFile f;
    f.meta.index = get_u64(t);
    f.meta.term = get_u64(t + 8);
    f.meta.config = std::move(*config);
    f.path = path;
    f.data_bytes = data_bytes;
    f.data_crc32 = get_u32(t + 28);
    if (data_crc) *data_crc = f.data_crc32;
    return f;
}

Result<SnapshotFile> inspect_path(wal::FileSystem& fs, const std::string& path,
                                  std::uint32_t* data_crc) {
    auto file = fs.open(path, wal::OpenMode::read_only);
    if (!file.ok()) return file.status();
    return inspect(**file, path, data_crc);
}

bool ends_with(const std::string& s, const char* suffix) {
    const std::size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

// ---- writer -----------------------------------------------------------------

SnapshotFileWriter::SnapshotFileWriter(wal::FileSystem& fs, std::unique_ptr<wal::File> file,
                                       std::string temp_path)
    : fs_(fs),
      file_(std::move(file)),
      temp_path_(std::move(temp_path)),
      crc_state_(kCrcInit),
      pacer_(kWriteBackChunkBytes) {
    buffer_.reserve(kWriteBufferBytes);
}

SnapshotFileWriter::~SnapshotFileWriter() {
    file_.reset();
    if (!published_) (void)fs_.remove(temp_path_);  // its space back; open() retries otherwise
}

Status SnapshotFileWriter::flush_buffer() {
    Status s = write_at(*file_, buffer_.data(), buffer_.size(), file_bytes_);
    if (s.ok()) {
        file_bytes_ += buffer_.size();
        pacer_.wrote(*file_, file_bytes_);
    }
    buffer_.clear();
    if (!s.ok()) {
        failed_ = true;
        out_of_space_ = s.code() == ErrorCode::no_space;
        io_failed_ = !out_of_space_;
    }
    return s;
}

Status SnapshotFileWriter::write(std::string_view bytes) {
    if (failed_ || finished_) return Status(ErrorCode::failed, "snapshot writer is closed");
    crc_state_ = crc_update(crc_state_, bytes.data(), bytes.size());
    data_bytes_ += bytes.size();
    if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
        if (Status s = flush_buffer(); !s.ok()) return s;
        // Whole buffers straight from `bytes`, each paced on its own.
        while (bytes.size() >= kWriteBufferBytes) {
            Status s = write_at(*file_, bytes.data(), kWriteBufferBytes, file_bytes_);
            if (!s.ok()) {
                failed_ = true;
                out_of_space_ = s.code() == ErrorCode::no_space;
                io_failed_ = !out_of_space_;
                return s;
            }
            file_bytes_ += kWriteBufferBytes;
            pacer_.wrote(*file_, file_bytes_);
            bytes.remove_prefix(kWriteBufferBytes);
        }
    }
    buffer_.append(bytes);
    return Status::ok_status();
}

Status SnapshotFileWriter::finish(const raft::SnapshotMeta& meta) {
    if (finished_ || failed_) return Status(ErrorCode::failed, "snapshot writer is closed");
    finished_ = true;
    buffer_ += encode_trailer(meta, data_bytes_, crc_final(crc_state_));
    if (Status s = flush_buffer(); !s.ok()) return s;
    file_.reset();
    return Status::ok_status();
}

// ---- reader -----------------------------------------------------------------

SnapshotFileReader::SnapshotFileReader(std::unique_ptr<wal::File> file, std::string path,
                                       std::uint64_t data_bytes, std::uint32_t expected_crc)
    : file_(std::move(file)),
      path_(std::move(path)),
      data_bytes_(data_bytes),
      expected_crc_(expected_crc),
      crc_state_(kCrcInit) {}

Result<std::size_t> SnapshotFileReader::read(char* buffer, std::size_t capacity) {
    const std::uint64_t remaining = data_bytes_ - offset_;
    if (remaining == 0 || capacity == 0) return std::size_t{0};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, remaining));
    if (Status s = read_exact(*file_, path_, buffer, n, offset_); !s.ok()) return s;
    offset_ += n;
    crc_state_ = crc_update(crc_state_, buffer, n);
    if (offset_ == data_bytes_ && crc_final(crc_state_) != expected_crc_)
        return corruption(path_, "the data does not match its checksum");
    return n;
}

// ---- store ------------------------------------------------------------------

Result<SnapshotStore::Listing> SnapshotStore::list(const std::string& dir, wal::FileSystem& fs) {
    Listing listing;
    auto exists = fs.exists(dir);
    if (!exists.ok()) return exists.status();
    if (!*exists) return listing;
    auto names = fs.list(dir);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
        if (!ends_with(name, ".snap")) continue;
        const std::string path = dir + "/" + name;
        auto f = inspect_path(fs, path, nullptr);
        if (f.ok()) {
            listing.valid.push_back(std::move(f.value()));
        } else {
            listing.damaged.push_back(DamagedSnapshot{path, f.status()});
        }
    }
    std::sort(
        listing.valid.begin(), listing.valid.end(),
        [](const SnapshotFile& a, const SnapshotFile& b) { return a.meta.index < b.meta.index; });
    return listing;
}

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(const std::string& dir,
                                                           wal::FileSystem& fs) {
    std::unique_ptr<SnapshotStore> store(new SnapshotStore(dir, fs));
    auto exists = fs.exists(dir);
    if (!exists.ok()) return exists.status();
    if (!*exists) return store;  // made before the first file in it (ensure_dir)
    // Whatever a previous run staged was never installed: it is stale.
    const std::string staging = store->staging_dir();
    auto staging_exists = fs.exists(staging);
    if (!staging_exists.ok()) return staging_exists.status();
    if (*staging_exists) {
        auto staged = fs.list(staging);
        if (!staged.ok()) return staged.status();
        for (const std::string& name : *staged) (void)fs.remove(staging + "/" + name);
    }
    auto names = fs.list(dir);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names)
        if (ends_with(name, ".tmp")) (void)fs.remove(dir + "/" + name);  // unpublished
    auto listing = list(dir, fs);
    if (!listing.ok()) return listing.status();
    {
        MutexLock lock(store->dir_mu_);  // not shared yet; for the analysis
        // A .snap is put in the directory only after its name in the parent
        // was made durable (ensure_dir; or, for a directory an older keel
        // made at open, by the cluster id's write that fsynced the parent).
        // Without one, the directory may be a crash's leftover between its
        // mkdir and that fsync (or the transport's, made for incoming/).
        store->dir_durable_ = !listing->valid.empty() || !listing->damaged.empty();
    }
    {
        MutexLock lock(store->mu_);
        store->files_ = std::move(listing->valid);
        store->damaged_ = std::move(listing->damaged);
    }
    return store;
}

Status SnapshotStore::ensure_dir() {
    MutexLock lock(dir_mu_);
    if (dir_durable_) return Status::ok_status();
    // A full disk may refuse the directory (no_space: retried once space is
    // back); a failed fsync is an I/O failure, never "retry".
    if (Status s = fs_.create_dir(dir_); !s.ok()) return s;
    if (Status s = fs_.sync_dir(parent_dir()); !s.ok())
        return Status(ErrorCode::io_error, s.message());
    dir_durable_ = true;
    return Status::ok_status();
}

std::string SnapshotStore::parent_dir() const {
    const std::size_t slash = dir_.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : dir_.substr(0, slash);
}

Result<std::uint64_t> SnapshotStore::available_bytes() const {
    // Before the first snapshot the directory may not exist yet; it will be
    // made in its parent, on the parent's file system.
    auto exists = fs_.exists(dir_);
    if (!exists.ok()) return exists.status();
    return fs_.available_bytes(*exists ? dir_ : parent_dir());
}

std::optional<SnapshotFile> SnapshotStore::latest() const {
    MutexLock lock(mu_);
    if (files_.empty()) return std::nullopt;
    return files_.back();
}

std::vector<SnapshotFile> SnapshotStore::all() const {
    MutexLock lock(mu_);
    return files_;
}

std::optional<raft::Index> SnapshotStore::fallback_index() const {
    MutexLock lock(mu_);
    std::size_t durable_seen = 0;
    for (auto it = files_.rbegin(); it != files_.rend(); ++it)
        if (it->durable && ++durable_seen == 2) return it->meta.index;
    return std::nullopt;
}

std::optional<raft::Index> SnapshotStore::durable_index() const {
    MutexLock lock(mu_);
    for (auto it = files_.rbegin(); it != files_.rend(); ++it)
        if (it->durable) return it->meta.index;
    return std::nullopt;
}

std::size_t SnapshotStore::deferred_publishes() const {
    MutexLock lock(mu_);
    return deferred_publishes_;
}

std::vector<DamagedSnapshot> SnapshotStore::damaged() const {
    MutexLock lock(mu_);
    return damaged_;
}

void SnapshotStore::mark_damaged(const SnapshotFile& file, Status why) {
    MutexLock lock(mu_);
    files_.erase(std::remove_if(files_.begin(), files_.end(),
                                [&](const SnapshotFile& f) { return f.path == file.path; }),
                 files_.end());
    damaged_.push_back(DamagedSnapshot{file.path, std::move(why)});
}

Result<SnapshotFile> SnapshotStore::verify(wal::FileSystem& fs, const std::string& path,
                                           const raft::SnapshotMeta* expected) {
    auto file = fs.open(path, wal::OpenMode::read_only);
    if (!file.ok()) return file.status();
    return verify_file(**file, path, expected);
}

Result<SnapshotFile> SnapshotStore::verify_file(wal::File& file, const std::string& path,
                                                const raft::SnapshotMeta* expected) {
    std::uint32_t data_crc = 0;
    auto f = inspect(file, path, &data_crc);
    if (!f.ok()) return f.status();
    if (expected && !(f->meta == *expected))
        return corruption(
            path, fmt::format(
                      "holds the snapshot at index {} term {}, not the one at {} term {} announced",
                      f->meta.index, f->meta.term, expected->index, expected->term));
    std::string chunk(
        static_cast<std::size_t>(std::min<std::uint64_t>(kVerifyChunkBytes, f->data_bytes)), '\0');
    std::uint32_t crc = kCrcInit;
    for (std::uint64_t at = 0; at < f->data_bytes;) {
        const auto n =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), f->data_bytes - at));
        if (Status s = read_exact(file, path, chunk.data(), n, at); !s.ok()) return s;
        crc = crc_update(crc, chunk.data(), n);
        at += n;
    }
    if (crc_final(crc) != data_crc)
        return corruption(
            path, fmt::format("the data (bytes 0..{}) does not match its checksum", f->data_bytes));
    return f;
}

Status SnapshotStore::make_durable(const SnapshotFile& file) {
    if (Status s = ensure_dir(); !s.ok()) return s;
    auto f = fs_.open(file.path, wal::OpenMode::read_only);
    if (!f.ok()) return f.status();
    if (Status s = (*f)->datasync(); !s.ok()) return s;
    if (Status s = fs_.sync_dir(dir_); !s.ok()) return s;
    MutexLock lock(mu_);
    for (SnapshotFile& kept : files_)
        if (kept.path == file.path) kept.durable = true;
    return Status::ok_status();
}

Result<std::unique_ptr<SnapshotFileWriter>> SnapshotStore::begin() {
    // The directory's name durable before anything in it is relied on: a
    // snapshot published here may let the log be compacted.
    if (Status s = ensure_dir(); !s.ok()) return s;
    static std::atomic<std::uint64_t> sequence{0};
    const std::string temp_path =
        fmt::format("{}/incoming-{}-{}.tmp", dir_, ::getpid(), ++sequence);
    auto file = fs_.open(temp_path, wal::OpenMode::create_new);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SnapshotFileWriter>(
        new SnapshotFileWriter(fs_, std::move(*file), temp_path));
}

Result<SnapshotFile> SnapshotStore::publish(SnapshotFileWriter& writer,
                                            const raft::SnapshotMeta& meta, Durability durability) {
    if (Status s = writer.finish(meta); !s.ok()) return s;
    const std::string name = file_name(meta);
    const std::string final_path = dir_ + "/" + name;
    if (durability == Durability::deferred) {
        // Never put an unflushed file in place of a durable one of the same
        // name: a power loss could then leave the name with neither.
        MutexLock lock(mu_);
        for (const SnapshotFile& f : files_)
            if (f.path == final_path && f.durable) durability = Durability::now;
    }
    // Never "no space, retry": a failed fdatasync or rename is an I/O
    // failure (io_error), and the runtime fail-stops.
    Status s = durability == Durability::now ? wal::install_file(fs_, writer.temp_path_, dir_, name)
                                             : fs_.rename(writer.temp_path_, final_path);
    if (!s.ok()) {
        writer.failed_ = true;
        writer.io_failed_ = true;
        return Status(ErrorCode::io_error, s.message());
    }
    writer.published_ = true;
    SnapshotFile f;
    f.meta = meta;
    f.path = final_path;
    f.data_bytes = writer.data_bytes_;
    f.data_crc32 = crc_final(writer.crc_state_);
    f.durable = durability == Durability::now;
    {
        MutexLock lock(mu_);
        deferred_publishes_ = f.durable ? 0 : deferred_publishes_ + 1;
        add_locked(f);
    }
    start_removals();
    return f;
}

Status SnapshotStore::flush() {
    std::vector<std::string> paths;
    {
        MutexLock lock(mu_);
        for (const SnapshotFile& f : files_)
            if (!f.durable) paths.push_back(f.path);
    }
    auto io_error = [](const Status& s) { return Status(ErrorCode::io_error, s.message()); };
    {
        // No snapshot was ever put here: nothing to flush (and perhaps no
        // directory yet).
        MutexLock lock(dir_mu_);
        if (paths.empty() && !dir_durable_) return Status::ok_status();
    }
    if (Status s = ensure_dir(); !s.ok()) return s;
    for (const std::string& path : paths) {
        auto file = fs_.open(path, wal::OpenMode::read_only);
        if (!file.ok()) {
            // Deleted meanwhile: a newer snapshot (an adopted one) replaced it.
            if (file.status().code() == ErrorCode::not_found && !listed(path)) continue;
            return io_error(file.status());
        }
        if (Status s = (*file)->datasync(); !s.ok()) return io_error(s);
    }
    if (Status s = fs_.sync_dir(dir_); !s.ok()) return io_error(s);
    {
        MutexLock lock(mu_);
        for (SnapshotFile& f : files_)
            if (std::find(paths.begin(), paths.end(), f.path) != paths.end()) f.durable = true;
        deferred_publishes_ = 0;
        prune_locked();
    }
    start_removals();
    return Status::ok_status();
}

bool SnapshotStore::listed(const std::string& path) const {
    MutexLock lock(mu_);
    return std::any_of(files_.begin(), files_.end(),
                       [&](const SnapshotFile& f) { return f.path == path; });
}

Result<SnapshotFile> SnapshotStore::adopt(const std::string& path,
                                          const raft::SnapshotMeta& expected) {
    auto f = inspect_path(fs_, path, nullptr);
    if (!f.ok()) return f.status();
    if (!(f.value().meta == expected))
        return corruption(path, "its metadata differs from the leader's");
    if (Status s = ensure_dir(); !s.ok()) return s;
    const std::string final_path = dir_ + "/" + file_name(expected);
    if (Status s = wal::install_file(fs_, path, dir_, file_name(expected)); !s.ok()) return s;
    f.value().path = final_path;
    f.value().durable = true;
    {
        MutexLock lock(mu_);
        deferred_publishes_ = 0;
        add_locked(f.value());
    }
    start_removals();
    return f;
}

void SnapshotStore::add_locked(SnapshotFile f) {
    files_.erase(std::remove_if(files_.begin(), files_.end(),
                                [&](const SnapshotFile& g) { return g.path == f.path; }),
                 files_.end());
    files_.push_back(std::move(f));
    std::sort(files_.begin(), files_.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
        return a.meta.index < b.meta.index;
    });
    prune_locked();
}

Result<std::unique_ptr<SnapshotFileReader>> SnapshotStore::open_reader(
    const SnapshotFile& file) const {
    SnapshotPin pinned = pin(file);
    auto f = fs_.open(file.path, wal::OpenMode::read_only);
    if (!f.ok()) return f.status();
    auto reader = open_reader(std::move(*f), file.path);
    if (reader.ok()) reader.value()->pin_ = std::move(pinned);
    return reader;
}

Result<std::unique_ptr<SnapshotFileReader>> SnapshotStore::open_reader(
    std::unique_ptr<wal::File> file, const std::string& path) {
    std::uint32_t crc = 0;
    auto checked = inspect(*file, path, &crc);
    if (!checked.ok()) return checked.status();
    std::unique_ptr<SnapshotFileReader> reader(
        new SnapshotFileReader(std::move(file), path, checked->data_bytes, crc));
    reader->index_ = checked->meta.index;
    return reader;
}

}  // namespace keel::runtime
