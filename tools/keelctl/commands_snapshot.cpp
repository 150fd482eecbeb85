// keelctl snapshot save: a backup of a node's state.  Unless --latest, the
// node first takes a snapshot (POST /v1/snapshot), so that the backup holds
// everything it had applied; then its latest snapshot is downloaded.
//
// The file is downloaded to FILE.part next to FILE, fsynced, checked whole
// (keel::verify_snapshot_file: trailer, configuration, data checksum) and
// against what the server announced (index, term, data checksum), then
// renamed to FILE and the directory fsynced: FILE is either absent or a
// complete, checked snapshot.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>

#include <fmt/format.h>

#include "commands.hpp"
#include "keel/snapshot_file.hpp"

namespace keel::keelctl {
namespace {

Status errno_status(const std::string& what) {
    return Status(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_status("write " + path);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status();
}

Status sync_dir_of(const std::string& path) {
    const std::string dir = std::filesystem::absolute(path).parent_path().string();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("open " + dir);
    const int rc = ::fsync(fd);
    ::close(fd);
    return rc == 0 ? Status() : errno_status("fsync " + dir);
}

// "12.5 MiB / 100.0 MiB (12%)", redrawn in place on a terminal.
void show_progress(std::ostream& err, std::uint64_t done, std::uint64_t total) {
    err << "\rdownloading: " << human_bytes(done);
    if (total > 0) err << " / " << human_bytes(total) << " (" << done * 100 / total << "%)";
    err << "    " << std::flush;
}

// The downloaded file against the server's headers; "" when they agree.
std::string mismatch(const Response& answer, const SnapshotFileInfo& info) {
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", info.data_crc32);
    if (answer.header("x-keel-snapshot-index") != std::to_string(info.index))
        return fmt::format("index {}, announced {}", info.index,
                           answer.header("x-keel-snapshot-index"));
    if (answer.header("x-keel-snapshot-term") != std::to_string(info.term))
        return fmt::format("term {}, announced {}", info.term,
                           answer.header("x-keel-snapshot-term"));
    if (answer.header("x-keel-snapshot-data-crc32") != crc)
        return std::string("data checksum ") + crc + ", announced " +
               answer.header("x-keel-snapshot-data-crc32");
    return "";
}

}  // namespace

int cmd_snapshot_save(const Session& session, const std::string& file, bool latest) {
    if (!latest) {
        Result<Response> taken = session.call_any("POST", "/v1/snapshot");
        if (!taken.ok() || taken->status != 200) return session.finish(taken, [](const json&) {});
    }
    const std::string part = file + ".part";
    const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return session.fail(kExitRefused, errno_status("create " + part).message());
    Status written;
    std::uint64_t received = 0;
    const BodySink sink = [&](std::string_view piece, std::uint64_t total) {
        written = write_all(fd, piece, part);
        received += piece.size();
        if (session.tty()) show_progress(session.err(), received, total);
        return written.ok();
    };
    Result<Response> answer = session.call_any("GET", "/v1/snapshot", {}, &sink);
    if (session.tty() && received > 0) session.err() << '\n';
    if (written.ok() && answer.ok() && answer->status == 200 && ::fsync(fd) != 0)
        written = errno_status("fsync " + part);
    ::close(fd);
    auto give_up = [&](int code, const std::string& why) {
        std::remove(part.c_str());
        return session.fail(code, why);
    };
    if (!written.ok()) return give_up(kExitRefused, written.message());
    if (!answer.ok() || answer->status != 200) {
        std::remove(part.c_str());
        return session.finish(answer, [](const json&) {});
    }
    Result<SnapshotFileInfo> info = verify_snapshot_file(part);
    if (!info.ok())
        return give_up(kExitUnavailable,
                       "the download from " + answer->origin +
                           " is not a sound snapshot: " + info.status().message());
    if (std::string why = mismatch(*answer, *info); !why.empty())
        return give_up(kExitUnavailable, "the download from " + answer->origin +
                                             " is not the snapshot announced: " + why);
    if (std::rename(part.c_str(), file.c_str()) != 0)
        return give_up(kExitRefused, errno_status("rename " + part).message());
    if (Status s = sync_dir_of(file); !s.ok()) return session.fail(kExitRefused, s.message());
    if (session.format() == Format::json) {
        session.out() << json{{"file", file},
                              {"index", info->index},
                              {"term", info->term},
                              {"size_bytes", info->size_bytes},
                              {"members", info->members.size()},
                              {"from", answer->origin}}
                             .dump()
                      << '\n';
    } else {
        session.out() << "saved the snapshot at index " << info->index << " (term " << info->term
                      << ", " << human_bytes(info->size_bytes) << ") from " << answer->origin
                      << " to " << file << '\n';
    }
    return kExitOk;
}

}  // namespace keel::keelctl
