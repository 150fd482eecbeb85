// Deleting a large file a step at a time.  See keel/wal/file_removal.hpp.
#include "keel/wal/file_removal.hpp"

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::wal {

Status remove_in_steps(FileSystem& fs, const std::string& path, std::uint64_t step_bytes) {
    KEEL_ASSERT(step_bytes > 0, "a removal step gives back at least a byte");
    {
        auto file = fs.open(path, OpenMode::read_write);
        if (!file.ok()) return file.status();
        auto size = (*file)->size();
        if (!size.ok()) return size.status();
        for (std::uint64_t left = *size; left > 0;) {
            left -= std::min(left, step_bytes);
            if (Status s = (*file)->truncate(left); !s.ok()) return s;
            if (Status s = (*file)->datasync(); !s.ok()) return s;
        }
    }
    return fs.remove(path);
}

}  // namespace keel::wal
