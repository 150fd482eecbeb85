// The `meta` side file.  See metadata_file.hpp for the crash windows.
#include "metadata_file.hpp"

#include <fmt/format.h>

#include <string_view>

#include "keel/wal/small_file.hpp"

namespace keel::wal::detail {

Result<MetadataInfo> read_metadata_file(FileSystem& fs, const std::string& dir) {
    const std::string path = dir + "/" + kMetadataFileName;
    MetadataInfo info;
    auto bytes = read_file(fs, path, kMaxMetadataFileBytes);
    if (!bytes.ok()) {
        if (bytes.status().code() == ErrorCode::not_found) return info;
        return bytes.status();
    }
    auto decoded = decode_metadata(*bytes);
    if (!decoded)
        return Status(ErrorCode::corruption,
                      fmt::format("metadata file {} is damaged (bad magic, version, size or CRC, "
                                  "or a bad release table)",
                                  path));
    info.present = true;
    info.metadata = decoded->metadata;
    info.log_floor = decoded->log_floor;
    info.releases = decoded->releases;
    if (decoded->fence_set) info.fence = decoded->fence;
    return info;
}

Status write_metadata_file(FileSystem& fs, const std::string& dir, const MetadataFile& m) {
    static_assert(std::string_view(kMetadataTmpName) == "meta.tmp" &&
                      std::string_view(kMetadataFileName) == "meta",
                  "replace_file names its temp file <name>.tmp");
    return replace_file(fs, dir, kMetadataFileName, encode_metadata(m));
}

}  // namespace keel::wal::detail
