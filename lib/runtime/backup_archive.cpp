// runtime/backup_archive.cpp — the backup archive's codec
// (keel/backup_archive.hpp has the format): the reader that checks every
// byte of an archive, and the writer that makes one from snapshot files.
// Everything read comes from outside (a file an operator hands over):
// every field is checked before it is used, and a bad one is a Status.
#include "runtime/backup_archive.hpp"

#include <sys/uio.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "keel/wal/record.hpp"
#include "keel/wal/small_file.hpp"
#include "runtime/little_endian.hpp"
#include "runtime/snapshot_file.hpp"
#include "runtime/snapshot_store.hpp"

namespace keel {

Result<BackupArchiveInfo> verify_backup_archive(const std::string& path) {
    return runtime::read_backup_archive(*wal::default_file_system(), path);
}

Result<std::unique_ptr<BackupArchiveWriter>> BackupArchiveWriter::create(const std::string& path,
                                                                         std::size_t groups) {
    return runtime::create_backup_archive(*wal::default_file_system(), path, groups);
}

}  // namespace keel

namespace keel::runtime {
namespace {

constexpr std::string_view kHeaderMagic = "KEELBKUP";
constexpr std::string_view kFooterMagic = "KEELBEND";
constexpr std::size_t kHeaderBytes = 24;
constexpr std::size_t kSectionBytes = 40;
constexpr std::size_t kFooterBytes = 24;
constexpr std::size_t kCopyChunkBytes = 1 << 20;

std::uint32_t crc32_of(std::uint32_t crc, std::string_view bytes) {
    return static_cast<std::uint32_t>(::crc32_z(crc, reinterpret_cast<const Bytef*>(bytes.data()),
                                                static_cast<z_size_t>(bytes.size())));
}

using little_endian::get_u32;
using little_endian::get_u64;
using little_endian::put_u32;
using little_endian::put_u64;

std::string encode_header(std::uint32_t groups) {
    std::string h(kHeaderMagic);
    put_u32(h, kBackupArchiveVersion);
    put_u32(h, groups);
    put_u32(h, 0);  // flags
    put_u32(h, crc32_of(0, h));
    return h;
}

struct Section {
    GroupId group = 0;
    std::uint64_t snapshot_bytes = 0;
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    std::uint32_t data_crc32 = 0;
};

std::string encode_section(const Section& s) {
    std::string h;
    put_u64(h, s.group);
    put_u64(h, s.snapshot_bytes);
    put_u64(h, s.index);
    put_u64(h, s.term);
    put_u32(h, s.data_crc32);
    put_u32(h, crc32_of(0, h));
    return h;
}

std::string encode_footer(std::uint64_t size_bytes, std::uint32_t groups,
                          std::uint32_t sections_crc) {
    std::string f;
    put_u64(f, size_bytes);
    put_u32(f, groups);
    put_u32(f, sections_crc);
    f.append(kFooterMagic);
    return f;
}

// A read-only window on another file.
class FileSlice final : public wal::File {
public:
    FileSlice(std::shared_ptr<wal::File> file, std::uint64_t offset, std::uint64_t size)
        : file_(std::move(file)), offset_(offset), size_(size) {}
    Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) override {
        if (offset >= size_) return std::size_t{0};
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size, size_ - offset));
        return file_->pread(buf, n, offset_ + offset);
    }
    Status pwritev(const struct iovec*, int, std::uint64_t) override { return read_only(); }
    Status datasync() override { return read_only(); }
    Result<std::uint64_t> size() override { return size_; }
    Status truncate(std::uint64_t) override { return read_only(); }

private:
    static Status read_only() {
        return Status(ErrorCode::unsupported, "a snapshot inside a backup archive is read only");
    }
    std::shared_ptr<wal::File> file_;
    const std::uint64_t offset_;
    const std::uint64_t size_;
};

// The checks of one archive, in the order its bytes come.
class Reader {
public:
    Reader(std::string path, std::shared_ptr<wal::File> file, std::uint64_t size)
        : path_(std::move(path)), file_(std::move(file)), size_(size) {}

    Result<BackupArchiveInfo> run() {
        std::uint32_t groups = 0;
        if (Status s = header(&groups); !s.ok()) return s;
        std::uint32_t sections_crc = 0;
        if (Status s = footer(groups, &sections_crc); !s.ok()) return s;
        BackupArchiveInfo info;
        info.version = kBackupArchiveVersion;
        info.size_bytes = size_;
        info.groups.reserve(groups);
        std::uint64_t at = kHeaderBytes;
        std::uint32_t crc = 0;
        for (std::uint32_t i = 0; i < groups; ++i) {
            auto group = section(i, at, info.groups.empty() ? nullptr : &info.groups.back(), &crc);
            if (!group.ok()) return group.status();
            at = group->offset + group->snapshot.size_bytes;
            info.groups.push_back(std::move(*group));
        }
        if (at != size_ - kFooterBytes)
            return bad(
                fmt::format("holds {} bytes between its last section and its footer "
                            "(bytes {}..{})",
                            size_ - kFooterBytes - at, at, size_ - kFooterBytes));
        if (crc != sections_crc)
            return bad("the section headers do not match the footer's checksum");
        return info;
    }

private:
    Status bad(const std::string& what) const {
        return Status(ErrorCode::corruption, fmt::format("backup archive {}: {}", path_, what));
    }

    Status read(char* out, std::size_t n, std::uint64_t at) const {
        auto got = file_->pread(out, n, at);
        if (!got.ok()) return got.status();
        if (*got != n)
            return bad(fmt::format("ends at byte {}, inside what needs {}", at + *got, at + n));
        return Status::ok_status();
    }

    Status header(std::uint32_t* groups) const {
        if (size_ < kHeaderBytes + kFooterBytes)
            return bad(fmt::format("is {} bytes, too short for a backup archive ({} at least)",
                                   size_, kHeaderBytes + kFooterBytes));
        char h[kHeaderBytes];
        if (Status s = read(h, sizeof h, 0); !s.ok()) return s;
        if (std::string_view(h, kHeaderMagic.size()) != kHeaderMagic)
            return bad("is not a keel backup archive (no \"KEELBKUP\" at byte 0)");
        if (crc32_of(0, std::string_view(h, 20)) != get_u32(h + 20))
            return bad("bad header checksum (bytes 0..20)");
        if (const std::uint32_t version = get_u32(h + 8); version != kBackupArchiveVersion)
            return Status(ErrorCode::unsupported,
                          fmt::format("backup archive {}: version {}, this keel reads version {}",
                                      path_, version, kBackupArchiveVersion));
        if (get_u32(h + 16) != 0) return bad(fmt::format("unknown flags {:#x}", get_u32(h + 16)));
        *groups = get_u32(h + 12);
        if (*groups == 0) return bad("holds no group");
        if (*groups > kBackupArchiveMaxGroups)
            return Status(ErrorCode::too_large,
                          fmt::format("backup archive {}: {} groups, more than the {} an archive "
                                      "may hold",
                                      path_, *groups, kBackupArchiveMaxGroups));
        return Status::ok_status();
    }

    Status footer(std::uint32_t groups, std::uint32_t* sections_crc) const {
        const std::uint64_t at = size_ - kFooterBytes;
        char f[kFooterBytes];
        if (Status s = read(f, sizeof f, at); !s.ok()) return s;
        if (std::string_view(f + 16, kFooterMagic.size()) != kFooterMagic)
            return bad(
                fmt::format("has no footer at byte {} (\"KEELBEND\" missing): it was cut "
                            "short or has bytes added",
                            at));
        if (get_u64(f) != size_)
            return bad(
                fmt::format("its footer says {} bytes, the file has {}: it was cut short "
                            "or has bytes added",
                            get_u64(f), size_));
        if (get_u32(f + 8) != groups)
            return bad(
                fmt::format("its header says {} groups, its footer {}", groups, get_u32(f + 8)));
        *sections_crc = get_u32(f + 12);
        return Status::ok_status();
    }

    // Section `i` at byte `at`, after `previous` (null: the first).
    Result<BackupArchiveGroup> section(std::uint32_t i, std::uint64_t at,
                                       const BackupArchiveGroup* previous,
                                       std::uint32_t* crc) const {
        const std::uint64_t end = size_ - kFooterBytes;  // where the sections must stop
        if (at + kSectionBytes > end)
            return bad(
                fmt::format("its sections end at byte {}, before section {} (its "
                            "header's count)",
                            at, i + 1));
        char h[kSectionBytes];
        if (Status s = read(h, sizeof h, at); !s.ok()) return s;
        if (crc32_of(0, std::string_view(h, 36)) != get_u32(h + 36))
            return bad(fmt::format("bad checksum in section {}'s header at byte {}", i + 1, at));
        *crc = crc32_of(*crc, std::string_view(h, sizeof h));
        const Section s{get_u64(h), get_u64(h + 8), get_u64(h + 16), get_u64(h + 24),
                        get_u32(h + 32)};
        if (s.group > wal::kMaxGroup)
            return bad(fmt::format("section {} at byte {}: group id {} is past the largest, {}",
                                   i + 1, at, s.group, wal::kMaxGroup));
        if (previous && s.group == previous->group)
            return bad(
                fmt::format("holds group {} twice (section {} at byte {})", s.group, i + 1, at));
        if (previous && s.group < previous->group)
            return bad(
                fmt::format("section {} at byte {}: group {} after group {} (the groups "
                            "must ascend)",
                            i + 1, at, s.group, previous->group));
        if (s.snapshot_bytes > kBackupArchiveMaxSnapshotBytes)
            return Status(
                ErrorCode::too_large,
                fmt::format("backup archive {}: group {}'s snapshot is {} bytes, more "
                            "than the {} an archive may hold",
                            path_, s.group, s.snapshot_bytes, kBackupArchiveMaxSnapshotBytes));
        BackupArchiveGroup group;
        group.group = s.group;
        group.offset = at + kSectionBytes;
        if (s.snapshot_bytes > end - group.offset)
            return bad(
                fmt::format("group {}'s snapshot ({} bytes from byte {}) runs past the "
                            "footer at byte {}",
                            s.group, s.snapshot_bytes, group.offset, end));
        const std::string name = archived_snapshot_name(path_, group);
        FileSlice slice(file_, group.offset, s.snapshot_bytes);
        auto checked = SnapshotStore::verify_file(slice, name);
        if (!checked.ok()) return checked.status();
        if (checked->meta.index != s.index || checked->meta.term != s.term ||
            checked->data_crc32 != s.data_crc32)
            return bad(
                fmt::format("group {}'s section header announces index {} term {} data "
                            "checksum {:08x}, its snapshot holds index {} term {} data "
                            "checksum {:08x}",
                            s.group, s.index, s.term, s.data_crc32, checked->meta.index,
                            checked->meta.term, checked->data_crc32));
        group.snapshot = snapshot_file_info(*checked, s.snapshot_bytes);
        return group;
    }

    const std::string path_;
    const std::shared_ptr<wal::File> file_;
    const std::uint64_t size_;
};

class Writer final : public BackupArchiveWriter {
public:
    Writer(wal::FileSystem& fs, std::string path, std::unique_ptr<wal::File> file,
           std::size_t groups)
        : fs_(fs),
          path_(std::move(path)),
          part_(path_ + ".part"),
          file_(std::move(file)),
          groups_(groups) {}
    ~Writer() override {
        file_.reset();
        if (!finished_) (void)fs_.remove(part_);
    }

    Status start() { return write(encode_header(static_cast<std::uint32_t>(groups_))); }

    Result<SnapshotFileInfo> add_group(GroupId group, const std::string& snapshot_path) override {
        if (added_ == groups_)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("the archive was made for {} groups", groups_));
        if (group > wal::kMaxGroup || (added_ > 0 && group <= last_group_))
            return Status(ErrorCode::invalid_argument,
                          fmt::format("group {} after group {}: each group once, ascending", group,
                                      last_group_));
        auto checked = SnapshotStore::verify(fs_, snapshot_path);
        if (!checked.ok()) return checked.status();
        auto source = fs_.open(snapshot_path, wal::OpenMode::read_only);
        if (!source.ok()) return source.status();
        auto size = (*source)->size();
        if (!size.ok()) return size.status();
        if (*size > kBackupArchiveMaxSnapshotBytes)
            return Status(ErrorCode::too_large,
                          fmt::format("{} is {} bytes, more than the {} an archive may hold",
                                      snapshot_path, *size, kBackupArchiveMaxSnapshotBytes));
        const std::string header = encode_section(
            Section{group, *size, checked->meta.index, checked->meta.term, checked->data_crc32});
        if (Status s = write(header); !s.ok()) return s;
        sections_crc_ = crc32_of(sections_crc_, header);
        if (Status s = copy(**source, *size, snapshot_path); !s.ok()) return s;
        ++added_;
        last_group_ = group;
        return snapshot_file_info(*checked, *size);
    }

    Result<BackupArchiveInfo> finish() override {
        if (added_ != groups_)
            return Status(
                ErrorCode::invalid_argument,
                fmt::format("{} groups added, the archive was made for {}", added_, groups_));
        if (Status s = write(encode_footer(written_ + kFooterBytes,
                                           static_cast<std::uint32_t>(groups_), sections_crc_));
            !s.ok())
            return s;
        file_.reset();
        auto info = read_backup_archive(fs_, part_);
        if (!info.ok()) return info.status();
        const std::filesystem::path target = std::filesystem::absolute(path_);
        if (Status s = wal::install_file(fs_, part_, target.parent_path().string(),
                                         target.filename().string());
            !s.ok())
            return s;
        finished_ = true;
        return info;
    }

private:
    Status write(std::string_view bytes) {
        struct iovec iov {
            const_cast<char*>(bytes.data()), bytes.size()
        };
        if (Status s = file_->pwritev(&iov, 1, written_); !s.ok()) return s;
        written_ += bytes.size();
        return Status::ok_status();
    }

    Status copy(wal::File& from, std::uint64_t size, const std::string& name) {
        std::string chunk(static_cast<std::size_t>(std::min<std::uint64_t>(kCopyChunkBytes, size)),
                          '\0');
        for (std::uint64_t at = 0; at < size;) {
            const auto want =
                static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - at));
            auto got = from.pread(chunk.data(), want, at);
            if (!got.ok()) return got.status();
            if (*got != want)
                return Status(
                    ErrorCode::io_error,
                    fmt::format("{} shrank to {} bytes while it was copied", name, at + *got));
            if (Status s = write(std::string_view(chunk.data(), want)); !s.ok()) return s;
            at += want;
        }
        return Status::ok_status();
    }

    wal::FileSystem& fs_;
    const std::string path_;
    const std::string part_;
    std::unique_ptr<wal::File> file_;
    const std::size_t groups_;
    std::size_t added_ = 0;
    GroupId last_group_ = 0;
    std::uint64_t written_ = 0;
    std::uint32_t sections_crc_ = 0;
    bool finished_ = false;
};

}  // namespace

std::string archived_snapshot_name(const std::string& path, const BackupArchiveGroup& group) {
    return fmt::format("{} (group {}, from byte {})", path, group.group, group.offset);
}

std::unique_ptr<wal::File> file_slice(std::shared_ptr<wal::File> file, std::uint64_t offset,
                                      std::uint64_t size) {
    return std::make_unique<FileSlice>(std::move(file), offset, size);
}

Result<BackupArchiveInfo> read_backup_archive(wal::FileSystem& fs, const std::string& path) {
    auto opened = fs.open(path, wal::OpenMode::read_only);
    if (!opened.ok()) return opened.status();
    std::shared_ptr<wal::File> file(std::move(opened.value()));
    auto size = file->size();
    if (!size.ok()) return size.status();
    return Reader(path, std::move(file), *size).run();
}

Result<std::unique_ptr<BackupArchiveWriter>> create_backup_archive(wal::FileSystem& fs,
                                                                   const std::string& path,
                                                                   std::size_t groups) {
    if (groups == 0 || groups > kBackupArchiveMaxGroups)
        return Status(
            ErrorCode::invalid_argument,
            fmt::format("an archive holds 1..{} groups, not {}", kBackupArchiveMaxGroups, groups));
    const std::string part = path + ".part";
    if (Status s = fs.remove(part); !s.ok() && s.code() != ErrorCode::not_found) return s;
    auto file = fs.open(part, wal::OpenMode::create_new);
    if (!file.ok()) return file.status();
    auto writer = std::make_unique<Writer>(fs, path, std::move(file.value()), groups);
    if (Status s = writer->start(); !s.ok()) return s;
    return std::unique_ptr<BackupArchiveWriter>(std::move(writer));
}

}  // namespace keel::runtime
