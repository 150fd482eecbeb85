// Small files replaced whole.  See keel/wal/small_file.hpp.
#include "keel/wal/small_file.hpp"

#include <sys/uio.h>

#include <fmt/format.h>
#include <memory>

namespace keel::wal {

Status replace_file(FileSystem& fs, const std::string& dir, const std::string& name,
                    std::string_view bytes) {
    const std::string path = dir + "/" + name;
    const std::string tmp = path + ".tmp";
    auto exists = fs.exists(tmp);
    if (!exists.ok()) return exists.status();
    if (*exists) {
        if (Status s = fs.remove(tmp); !s.ok()) return s;
    }
    auto file = fs.open(tmp, OpenMode::create_new);
    if (!file.ok()) return file.status();
    struct iovec iov {
        const_cast<char*>(bytes.data()), bytes.size()
    };
    if (Status s = (*file)->pwritev(&iov, 1, 0); !s.ok()) {
        // Nothing refers to the temp file: give back what it holds (no_space
        // stays no_space, for the caller to retry).
        file->reset();
        (void)fs.remove(tmp);
        return s;
    }
    file->reset();
    return install_file(fs, tmp, dir, name);
}

Status install_file(FileSystem& fs, const std::string& from, const std::string& dir,
                    const std::string& name) {
    // Every failure is io_error: a failed fdatasync is never taken for "no
    // space, retry" (docs/wal.md, "Failure policy").
    auto io_error = [](const Status& s) { return Status(ErrorCode::io_error, s.message()); };
    {
        // fdatasync on any descriptor of a file makes all its writes durable.
        auto file = fs.open(from, OpenMode::read_only);
        if (!file.ok()) return io_error(file.status());
        if (Status s = (*file)->datasync(); !s.ok()) return io_error(s);
    }
    if (Status s = fs.rename(from, dir + "/" + name); !s.ok()) return io_error(s);
    if (Status s = fs.sync_dir(dir); !s.ok()) return io_error(s);
    return Status();
}

Result<std::string> read_file(FileSystem& fs, const std::string& path, std::size_t max_bytes) {
    auto file = fs.open(path, OpenMode::read_only);
    if (!file.ok()) return file.status();
    auto size = (*file)->size();
    if (!size.ok()) return size.status();
    if (*size > max_bytes)
        return Status(
            ErrorCode::corruption,
            fmt::format("{} is {} bytes, more than any valid one ({})", path, *size, max_bytes));
    std::string bytes(*size, '\0');
    auto n = (*file)->pread(bytes.data(), bytes.size(), 0);
    if (!n.ok()) return n.status();
    bytes.resize(*n);
    return bytes;
}

}  // namespace keel::wal
