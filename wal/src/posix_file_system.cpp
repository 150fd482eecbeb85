// The POSIX FileSystem: pread/pwritev/fdatasync on plain file descriptors.
// Files are created 0600 and directories 0700: the log and snapshots hold
// whatever the application replicates, readable by its user alone.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "keel/wal/file_system.hpp"

namespace keel::wal {
namespace {

constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

ErrorCode code_of(int err) {
    switch (err) {
        case ENOENT:
            return ErrorCode::not_found;
        case ENOSPC:
        case EDQUOT:
            return ErrorCode::no_space;
        default:
            return ErrorCode::io_error;
    }
}

Status errno_status(const std::string& what, const std::string& path, int err) {
    return Status(code_of(err), fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

Status errno_status_at(const std::string& what, const std::string& path, std::uint64_t offset,
                       int err) {
    return Status(code_of(err),
                  fmt::format("{} {} at offset {}: {}", what, path, offset, std::strerror(err)));
}

class PosixFile final : public File {
public:
    // durable_writes: opened O_DSYNC, so a completed write is durable.
    PosixFile(int fd, std::string path, bool durable_writes)
        : fd_(fd), path_(std::move(path)), durable_writes_(durable_writes) {}
    ~PosixFile() override { ::close(fd_); }

    Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) override {
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::pread(fd_, static_cast<char*>(buf) + done, size - done,
                                static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno_status_at("pread", path_, offset + done, errno);
            }
            if (n == 0) break;
            done += static_cast<std::size_t>(n);
        }
        return done;
    }

    Status pwritev(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
        // Bounded: at most IOV_MAX entries per call, and we loop on short writes.
        std::vector<struct iovec> rest(iov, iov + iovcnt);
        std::size_t first = 0;
        while (first < rest.size()) {
            const int count = static_cast<int>(std::min<std::size_t>(rest.size() - first, IOV_MAX));
            ssize_t n = ::pwritev(fd_, rest.data() + first, count, static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno_status_at("pwritev", path_, offset, errno);
            }
            offset += static_cast<std::uint64_t>(n);
            auto left = static_cast<std::size_t>(n);
            while (first < rest.size() && left >= rest[first].iov_len) {
                left -= rest[first].iov_len;
                ++first;
            }
            if (left > 0) {
                rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
                rest[first].iov_len -= left;
            }
        }
        return Status();
    }

    Status datasync() override {
        if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
        return Status();
    }

    Status write_durable(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
        if (!durable_writes_) return File::write_durable(iov, iovcnt, offset);
        // O_DSYNC: the write returns once the data (and what is needed to
        // read it back) is on stable storage, as a write + fdatasync would.
        return pwritev(iov, iovcnt, offset);
    }

    Status write_back(std::uint64_t offset, std::uint64_t size, bool wait) override {
        const unsigned flags =
            wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
                 : SYNC_FILE_RANGE_WRITE;
        if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(size), flags) !=
            0)
            return errno_status("sync_file_range", path_, errno);
        return Status();
    }

    Status allocate(std::uint64_t offset, std::uint64_t size) override {
        if (::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(size)) == 0)
            return Status();
        if (errno == EOPNOTSUPP)
            return Status(ErrorCode::unsupported,
                          fmt::format("fallocate {}: not supported here", path_));
        return errno_status_at("fallocate", path_, offset, errno);
    }

    Result<std::uint64_t> size() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return errno_status("fstat", path_, errno);
        return static_cast<std::uint64_t>(st.st_size);
    }

    Status truncate(std::uint64_t size) override {
        if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
            return errno_status("ftruncate", path_, errno);
        return Status();
    }

private:
    int fd_;
    std::string path_;
    bool durable_writes_;
};

class PosixFileSystem final : public FileSystem {
public:
    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
        int flags = O_CLOEXEC;
        switch (mode) {
            case OpenMode::read_only:
                flags |= O_RDONLY;
                break;
            case OpenMode::read_write:
                flags |= O_RDWR;
                break;
            case OpenMode::create_new:
                flags |= O_RDWR | O_CREAT | O_EXCL;
                break;
            case OpenMode::write_direct:
                flags |= O_WRONLY | O_DIRECT | O_DSYNC;
                break;
            case OpenMode::fill_direct:
                flags |= O_WRONLY | O_DIRECT;
                break;
        }
        int fd = ::open(path.c_str(), flags, kFileMode);
        if (fd < 0) {
            // open(2) says EINVAL where the file system does not support O_DIRECT.
            if ((mode == OpenMode::write_direct || mode == OpenMode::fill_direct) &&
                errno == EINVAL)
                return Status(ErrorCode::unsupported,
                              fmt::format("open {}: the file system refuses O_DIRECT", path));
            return errno_status("open", path, errno);
        }
        return std::unique_ptr<File>(new PosixFile(fd, path, mode == OpenMode::write_direct));
    }

    Status rename(const std::string& from, const std::string& to) override {
        if (::rename(from.c_str(), to.c_str()) != 0) return errno_status("rename", from, errno);
        return Status();
    }

    Status remove(const std::string& path) override {
        if (::unlink(path.c_str()) != 0) return errno_status("unlink", path, errno);
        return Status();
    }

    Status sync_dir(const std::string& dir) override {
        int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return errno_status("open directory", dir, errno);
        int rc = ::fsync(fd);
        int err = errno;
        ::close(fd);
        if (rc != 0) return errno_status("fsync directory", dir, err);
        return Status();
    }

    Result<std::vector<std::string>> list(const std::string& dir) override {
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) return errno_status("opendir", dir, errno);
        std::vector<std::string> names;
        while (struct dirent* e = ::readdir(d)) {
            if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) {
                std::string name = e->d_name;
                if (name != "." && name != "..") names.push_back(std::move(name));
            }
        }
        ::closedir(d);
        return names;
    }

    Result<bool> exists(const std::string& path) override {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0) return true;
        if (errno == ENOENT) return false;
        return errno_status("stat", path, errno);
    }

    Status create_dir(const std::string& dir) override {
        if (::mkdir(dir.c_str(), kDirMode) != 0 && errno != EEXIST)
            return errno_status("mkdir", dir, errno);
        return Status();
    }

    Result<std::uint64_t> available_bytes(const std::string& path) override {
        struct statvfs st;
        if (::statvfs(path.c_str(), &st) != 0) return errno_status("statvfs", path, errno);
        return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    }
};

}  // namespace

FileSystem* default_file_system() {
    static PosixFileSystem fs;
    return &fs;
}

}  // namespace keel::wal
