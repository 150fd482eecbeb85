// The `meta` side file.  See metadata_file.hpp for the crash windows.
#include "metadata_file.hpp"

#include <fmt/format.h>

#include <string_view>

#include "keel/wal/small_file.hpp"

namespace keel::wal::detail {

Result<MetadataInfo> read_metadata_file(FileSystem& fs, const std::string& dir) {
    const std::string path = dir + "/" + k_metadata_file_name;
    MetadataInfo info;
    auto bytes = read_file(fs, path, k_metadata_fixed_bytes + k_max_metadata_opaque_bytes);
    if (!bytes.ok()) {
        if (bytes.status().code() == ErrorCode::not_found) return info;
        return bytes.status();
    }
    auto decoded = decode_metadata(*bytes);
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
    static_assert(std::string_view(k_metadata_tmp_name) == "meta.tmp" &&
                      std::string_view(k_metadata_file_name) == "meta",
                  "replace_file names its temp file <name>.tmp");
    return replace_file(fs, dir, k_metadata_file_name, encode_metadata(m));
}

}  // namespace keel::wal::detail
