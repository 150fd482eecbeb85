#include "runtime/snapshot_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/crc.hpp>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace keel::runtime {

namespace {

constexpr char k_magic[8] = {'K', 'E', 'E', 'L', 'S', 'N', 'A', 'P'};
constexpr std::uint32_t k_version = 1;
constexpr std::size_t k_trailer_bytes = 8 + 8 + 8 + 4 + 4 + 4 + 4 + 8;
constexpr std::size_t k_write_buffer_bytes = 1 << 20;
constexpr std::uint32_t k_crc_init = 0xFFFFFFFFu;

std::uint32_t crc_update(std::uint32_t state, const void* data, std::size_t n) {
    boost::crc_32_type crc;
    crc.reset(state);
    crc.process_bytes(data, n);
    return crc.get_interim_remainder();
}
std::uint32_t crc_final(std::uint32_t state) {
    return state ^ 0xFFFFFFFFu;
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

Status errno_status(const std::string& what) {
    return Status(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

Status write_all(int fd, const char* data, std::size_t n, const std::string& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno_status("write " + path);
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return Status::ok_status();
}

Status read_exact(int fd, char* data, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        ssize_t r = ::pread(fd, data, n, static_cast<off_t>(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno_status("read snapshot");
        }
        if (r == 0) return Status(ErrorCode::corruption, "snapshot file is truncated");
        data += r;
        n -= static_cast<std::size_t>(r);
        offset += static_cast<std::uint64_t>(r);
    }
    return Status::ok_status();
}

Status sync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open dir " + dir);
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return errno_status("fsync dir " + dir);
    return Status::ok_status();
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
    put_u32(t, k_version);
    put_u32(t, crc_final(crc_update(k_crc_init, t.data(), t.size())));
    t.append(k_magic, sizeof k_magic);
    return t;
}

// Reads and checks the trailer of `path` (not the data checksum: that is
// verified while the data streams through a reader).
Result<SnapshotFile> inspect(const std::string& path, std::uint32_t* data_crc) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("open " + path);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno_status("stat " + path);
    const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
    if (file_bytes < k_trailer_bytes)
        return Status(ErrorCode::corruption, path + ": too short for a snapshot");
    char t[k_trailer_bytes];
    if (Status s = read_exact(fd, t, sizeof t, file_bytes - k_trailer_bytes); !s.ok()) return s;
    if (std::memcmp(t + k_trailer_bytes - 8, k_magic, sizeof k_magic) != 0)
        return Status(ErrorCode::corruption, path + ": bad magic");
    if (get_u32(t + 32) != k_version)
        return Status(ErrorCode::unsupported, path + ": unknown snapshot version");
    const std::uint64_t data_bytes = get_u64(t + 16);
    const std::uint32_t config_bytes = get_u32(t + 24);
    if (config_bytes > k_max_snapshot_config_bytes ||
        data_bytes != file_bytes - k_trailer_bytes - config_bytes)
        return Status(ErrorCode::corruption, path + ": lengths do not match the file");
    std::string checked(config_bytes, '\0');
    if (Status s = read_exact(fd, checked.data(), config_bytes, data_bytes); !s.ok()) return s;
    checked.append(t, 36);
    if (crc_final(crc_update(k_crc_init, checked.data(), checked.size())) != get_u32(t + 36))
        return Status(ErrorCode::corruption, path + ": bad trailer checksum");
    auto config = raft::decode_configuration(std::string_view(checked.data(), config_bytes));
    if (!config) return Status(ErrorCode::corruption, path + ": bad configuration");
    SnapshotFile f;
    f.meta.index = get_u64(t);
    f.meta.term = get_u64(t + 8);
    f.meta.config = std::move(*config);
    f.path = path;
    f.data_bytes = data_bytes;
    if (data_crc) *data_crc = get_u32(t + 28);
    return f;
}

bool ends_with(const std::string& s, const char* suffix) {
    const std::size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

// ---- writer -----------------------------------------------------------------

SnapshotFileWriter::SnapshotFileWriter(int fd, std::string temp_path)
    : fd_(fd), temp_path_(std::move(temp_path)), crc_state_(k_crc_init) {
    buffer_.reserve(k_write_buffer_bytes);
}

SnapshotFileWriter::~SnapshotFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temp_path_.c_str());  // never published (after a rename: no such file)
}

Status SnapshotFileWriter::flush_buffer() {
    Status s = write_all(fd_, buffer_.data(), buffer_.size(), temp_path_);
    buffer_.clear();
    if (!s.ok()) failed_ = true;
    return s;
}

Status SnapshotFileWriter::write(std::string_view bytes) {
    if (failed_ || finished_) return Status(ErrorCode::failed, "snapshot writer is closed");
    crc_state_ = crc_update(crc_state_, bytes.data(), bytes.size());
    data_bytes_ += bytes.size();
    if (buffer_.size() + bytes.size() > k_write_buffer_bytes) {
        if (Status s = flush_buffer(); !s.ok()) return s;
        if (bytes.size() >= k_write_buffer_bytes) {
            Status s = write_all(fd_, bytes.data(), bytes.size(), temp_path_);
            if (!s.ok()) failed_ = true;
            return s;
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
    if (::fdatasync(fd_) != 0) {
        failed_ = true;
        return errno_status("fdatasync " + temp_path_);
    }
    ::close(fd_);
    fd_ = -1;
    return Status::ok_status();
}

// ---- reader -----------------------------------------------------------------

SnapshotFileReader::SnapshotFileReader(int fd, std::uint64_t offset, std::uint64_t data_bytes,
                                       std::uint32_t expected_crc)
    : fd_(fd),
      offset_(offset),
      remaining_(data_bytes),
      data_bytes_(data_bytes),
      expected_crc_(expected_crc),
      crc_state_(k_crc_init) {}

SnapshotFileReader::~SnapshotFileReader() {
    ::close(fd_);
}

Result<std::size_t> SnapshotFileReader::read(char* buffer, std::size_t capacity) {
    if (remaining_ == 0 || capacity == 0) return std::size_t{0};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, remaining_));
    if (Status s = read_exact(fd_, buffer, n, offset_); !s.ok()) return s;
    offset_ += n;
    remaining_ -= n;
    crc_state_ = crc_update(crc_state_, buffer, n);
    if (remaining_ == 0 && crc_final(crc_state_) != expected_crc_)
        return Status(ErrorCode::corruption, "snapshot data checksum mismatch");
    return n;
}

// ---- store ------------------------------------------------------------------

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_status("mkdir " + dir);
    std::unique_ptr<SnapshotStore> store(new SnapshotStore(dir));
    const std::string staging = store->staging_dir();
    if (::mkdir(staging.c_str(), 0755) != 0 && errno != EEXIST)
        return errno_status("mkdir " + staging);
    if (DIR* sd = ::opendir(staging.c_str())) {
        // Whatever a previous run staged was never installed: it is stale.
        while (dirent* e = ::readdir(sd)) {
            const std::string name = e->d_name;
            if (name != "." && name != "..") ::unlink((staging + "/" + name).c_str());
        }
        ::closedir(sd);
    }
    DIR* d = ::opendir(dir.c_str());
    if (!d) return errno_status("opendir " + dir);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
    for (const std::string& name : names) {
        const std::string path = dir + "/" + name;
        if (ends_with(name, ".tmp")) {
            ::unlink(path.c_str());  // an unpublished snapshot from before a crash
        } else if (ends_with(name, ".snap")) {
            auto f = inspect(path, nullptr);
            if (f.ok()) store->files_.push_back(std::move(f.value()));
        }
    }
    std::sort(
        store->files_.begin(), store->files_.end(),
        [](const SnapshotFile& a, const SnapshotFile& b) { return a.meta.index < b.meta.index; });
    return store;
}

std::optional<SnapshotFile> SnapshotStore::latest() const {
    std::lock_guard lock(mu_);
    if (files_.empty()) return std::nullopt;
    return files_.back();
}

Result<std::unique_ptr<SnapshotFileWriter>> SnapshotStore::begin() {
    static std::atomic<std::uint64_t> sequence{0};
    const std::string temp_path = dir_ + "/incoming-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(++sequence) + ".tmp";
    int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("create " + temp_path);
    return std::unique_ptr<SnapshotFileWriter>(new SnapshotFileWriter(fd, temp_path));
}

Result<SnapshotFile> SnapshotStore::publish(SnapshotFileWriter& writer,
                                            const raft::SnapshotMeta& meta) {
    if (Status s = writer.finish(meta); !s.ok()) return s;
    const std::string final_path = dir_ + "/" + file_name(meta);
    if (::rename(writer.temp_path_.c_str(), final_path.c_str()) != 0)
        return errno_status("rename " + writer.temp_path_);
    if (Status s = sync_dir(dir_); !s.ok()) return s;
    SnapshotFile f;
    f.meta = meta;
    f.path = final_path;
    f.data_bytes = writer.data_bytes_;
    std::lock_guard lock(mu_);
    add_locked(f);
    return f;
}

Result<SnapshotFile> SnapshotStore::adopt(const std::string& path,
                                          const raft::SnapshotMeta& expected) {
    auto f = inspect(path, nullptr);
    if (!f.ok()) return f.status();
    if (!(f.value().meta == expected))
        return Status(ErrorCode::corruption,
                      path + ": snapshot metadata differs from the leader's");
    const std::string final_path = dir_ + "/" + file_name(expected);
    if (::rename(path.c_str(), final_path.c_str()) != 0) return errno_status("rename " + path);
    if (Status s = sync_dir(dir_); !s.ok()) return s;
    f.value().path = final_path;
    std::lock_guard lock(mu_);
    add_locked(f.value());
    return f;
}

Status SnapshotStore::verify(const std::string& path, const raft::SnapshotMeta& expected) const {
    std::uint32_t crc = 0;
    auto f = inspect(path, &crc);
    if (!f.ok()) return f.status();
    if (!(f.value().meta == expected))
        return Status(ErrorCode::corruption,
                      "the file's snapshot metadata differs from its message's");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("open " + path);
    SnapshotFileReader reader(fd, 0, f.value().data_bytes, crc);  // closes fd
    std::string buffer(k_write_buffer_bytes, '\0');
    for (;;) {
        auto n = reader.read(buffer.data(), buffer.size());
        if (!n.ok()) return n.status();  // the data's checksum fails at the end
        if (n.value() == 0) return Status::ok_status();
    }
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

void SnapshotStore::prune_locked() {
    while (files_.size() > k_snapshots_kept) {
        ::unlink(files_.front().path.c_str());  // best effort: a leftover is only disk space
        files_.erase(files_.begin());
    }
}

Result<std::unique_ptr<SnapshotFileReader>> SnapshotStore::open_reader(
    const SnapshotFile& file) const {
    std::uint32_t crc = 0;
    auto f = inspect(file.path, &crc);
    if (!f.ok()) return f.status();
    int fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("open " + file.path);
    return std::unique_ptr<SnapshotFileReader>(
        new SnapshotFileReader(fd, 0, f.value().data_bytes, crc));
}

}  // namespace keel::runtime
