// transport/snapshot_files.cpp — see snapshot_files.hpp.
#include "transport/snapshot_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include "keel/wal/small_file.hpp"

namespace keel::transport {
namespace {

Status io_error(const std::string& what, const std::string& path, int err) {
    return Status(ErrorCode::io_error, fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

// mkdir -p of `dir`, each new directory 0700 (a snapshot holds the
// application's data).  Nothing relies on these names surviving a crash:
// whatever is staged is deleted at the next start, and the snapshot store
// makes its own directory durable before it adopts a staged file.
Status make_dirs(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status();
    if (errno != ENOENT) return io_error("cannot create staging directory", dir, errno);
    const std::size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash == 0)
        return io_error("cannot create staging directory", dir, ENOENT);
    if (Status s = make_dirs(dir.substr(0, slash)); !s.ok()) return s;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return io_error("cannot create staging directory", dir, errno);
    return Status();
}

}  // namespace

// ---- SnapshotReader ----

Result<SnapshotReader> SnapshotReader::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open snapshot", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return io_error("cannot stat snapshot", path, err);
    }
    return SnapshotReader(fd, static_cast<std::uint64_t>(st.st_size), path);
}

SnapshotReader::SnapshotReader(SnapshotReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_bytes_(other.size_bytes_),
      path_(std::move(other.path_)) {}

SnapshotReader& SnapshotReader::operator=(SnapshotReader&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        size_bytes_ = other.size_bytes_;
        path_ = std::move(other.path_);
    }
    return *this;
}

SnapshotReader::~SnapshotReader() {
    if (fd_ >= 0) ::close(fd_);
}

Result<std::string> SnapshotReader::read(std::uint64_t offset, std::size_t max_bytes) {
    KEEL_ASSERT(fd_ >= 0, "read on a moved-from SnapshotReader");
    KEEL_ASSERT(offset <= size_bytes_, "read past the end of the snapshot");
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, size_bytes_ - offset));
    std::string out(want, '\0');
    std::size_t done = 0;
    while (done < want) {
        ssize_t n = ::pread(fd_, out.data() + done, want - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error("cannot read snapshot", path_, errno);
        if (n == 0)
            return Status(ErrorCode::corruption,
                          fmt::format("snapshot {} shrank while being sent (end at byte {})", path_,
                                      offset + done));
        done += static_cast<std::size_t>(n);
    }
    return out;
}

// ---- StagingFile ----

Result<StagingFile> StagingFile::create(const std::string& dir, const std::string& name) {
    std::string path = dir + "/" + name + ".part";
    // A snapshot holds the application's data: readable by its user only.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        // The first snapshot this group receives: its directories are made
        // when first needed (docs/decisions/0047).
        if (Status s = make_dirs(dir); !s.ok()) return s;
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0) return io_error("cannot create staging file", path, errno);
    return StagingFile(fd, dir, name);
}

StagingFile::StagingFile(StagingFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      dir_(std::move(other.dir_)),
      name_(std::move(other.name_)),
      size_bytes_(other.size_bytes_) {}

StagingFile& StagingFile::operator=(StagingFile&& other) noexcept {
    if (this != &other) {
        abort();
        fd_ = std::exchange(other.fd_, -1);
        dir_ = std::move(other.dir_);
        name_ = std::move(other.name_);
        size_bytes_ = other.size_bytes_;
    }
    return *this;
}

StagingFile::~StagingFile() {
    abort();
}

std::string StagingFile::part_path() const {
    return dir_ + "/" + name_ + ".part";
}

Status StagingFile::append(std::string_view data) {
    KEEL_ASSERT(fd_ >= 0, "append to a finished or aborted staging file");
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error("cannot write staging file", part_path(), errno);
        done += static_cast<std::size_t>(n);
    }
    size_bytes_ += data.size();
    return Status();
}

Result<std::string> StagingFile::finish() {
    KEEL_ASSERT(fd_ >= 0, "finish of a finished or aborted staging file");
    const std::string part = part_path();
    const std::string name = name_ + ".snap";
    ::close(std::exchange(fd_, -1));
    if (Status s = wal::install_file(*wal::default_file_system(), part, dir_, name); !s.ok()) {
        // Not durable: the sender streams it again.
        ::unlink(part.c_str());
        ::unlink((dir_ + "/" + name).c_str());
        return Status(s.code(), fmt::format("cannot stage snapshot {}: {}", part, s.message()));
    }
    return dir_ + "/" + name;
}

void StagingFile::abort() {
    if (fd_ < 0) return;
    ::close(std::exchange(fd_, -1));
    ::unlink(part_path().c_str());
}

void remove_partial_snapshots(const std::string& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".part") std::filesystem::remove(e.path(), ec);
    }
}

}  // namespace keel::transport
