// The `meta` side file.  See metadata_file.hpp for the crash windows.
#include "metadata_file.hpp"

#include <fmt/format.h>

namespace keel::wal::detail {

Result<MetadataInfo> read_metadata_file(FileSystem& fs, const std::string& dir) {
    const std::string path = dir + "/" + k_metadata_file_name;
    auto exists = fs.exists(path);
    if (!exists.ok()) return exists.status();
    MetadataInfo info;
    if (!*exists) return info;
    auto file = fs.open(path, OpenMode::read_only);
    if (!file.ok()) return file.status();
    auto size = (*file)->size();
    if (!size.ok()) return size.status();
    if (*size > k_metadata_fixed_bytes + k_max_metadata_opaque_bytes)
        return Status(
            ErrorCode::corruption,
            fmt::format("metadata file {} is {} bytes, more than any valid one", path, *size));
    std::string bytes(*size, '\0');
    auto n = (*file)->pread(bytes.data(), bytes.size(), 0);
    if (!n.ok()) return n.status();
    bytes.resize(*n);
    auto decoded = decode_metadata(bytes);
    if (!decoded)
        return Status(ErrorCode::corruption,
                      fmt::format("metadata file {} is damaged (bad magic, size or CRC)", path));
    info.present = true;
    info.metadata = decoded->metadata;
    info.log_floor = decoded->log_floor;
    if (decoded->fence_set) info.fence = decoded->fence;
    return info;
}

Status write_metadata_file(FileSystem& fs, const std::string& dir, const MetadataFile& m) {
    const std::string tmp = dir + "/" + k_metadata_tmp_name;
    const std::string path = dir + "/" + k_metadata_file_name;
    const std::string bytes = encode_metadata(m);
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
        // Nothing refers to meta.tmp: give back what it holds (no_space
        // stays no_space, for the caller to retry).
        file->reset();
        (void)fs.remove(tmp);
        return s;
    }
    // A failed fdatasync is never taken for "no space, retry" (docs/wal.md).
    if (Status s = (*file)->datasync(); !s.ok()) return Status(ErrorCode::io_error, s.message());
    file->reset();
    if (Status s = fs.rename(tmp, path); !s.ok()) return Status(ErrorCode::io_error, s.message());
    if (Status s = fs.sync_dir(dir); !s.ok()) return Status(ErrorCode::io_error, s.message());
    return Status();
}

}  // namespace keel::wal::detail
