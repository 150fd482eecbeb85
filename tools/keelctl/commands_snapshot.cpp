// keelctl snapshot save: a backup of a node's state.  Unless --latest, the
// node first takes a snapshot (POST /v1/snapshot: with --groups, every
// group takes one), so that the backup holds everything it had applied;
// then its latest snapshot is downloaded.
//
// Without groups, FILE is that snapshot file: downloaded to FILE.part next
// to FILE, fsynced, checked whole (keel::verify_snapshot_file: trailer,
// configuration, data checksum) and against what the server announced
// (index, term, data checksum), then renamed to FILE and the directory
// fsynced.  A raftd with --groups N (GET /healthz says "groups": N) has a
// snapshot per group (GET /v1/snapshot?group=G): each is downloaded and
// checked the same way, then copied into one archive of N groups
// (keel/backup_archive.hpp), written to FILE.part, checked whole and
// renamed to FILE.  Either way FILE is absent (or what it was) or a
// complete, checked backup.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "keel/backup_archive.hpp"
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

// A snapshot downloaded and checked.
struct Downloaded {
    SnapshotFileInfo info;
    std::string origin;
};

// Downloads `target` (GET) to `path`, fsynced, checked whole and against the
// server's headers.  kExitOk, or the exit code of a failure already
// reported (then `path` is gone).
int download(const Session& session, const std::string& target, const std::string& path,
             Downloaded& out) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return session.fail(kExitRefused, errno_status("create " + path).message());
    Status written;
    std::uint64_t received = 0;
    const BodySink sink = [&](std::string_view piece, std::uint64_t total) {
        written = write_all(fd, piece, path);
        received += piece.size();
        if (session.tty()) show_progress(session.err(), received, total);
        return written.ok();
    };
    Result<Response> answer = session.call_any("GET", target, {}, &sink);
    if (session.tty() && received > 0) session.err() << '\n';
    if (written.ok() && answer.ok() && answer->status == 200 && ::fsync(fd) != 0)
        written = errno_status("fsync " + path);
    ::close(fd);
    auto give_up = [&](int code, const std::string& why) {
        std::remove(path.c_str());
        return session.fail(code, why);
    };
    if (!written.ok()) return give_up(kExitRefused, written.message());
    if (!answer.ok() || answer->status != 200) {
        std::remove(path.c_str());
        return session.finish(answer, [](const json&) {});
    }
    Result<SnapshotFileInfo> info = verify_snapshot_file(path);
    if (!info.ok())
        return give_up(kExitUnavailable,
                       "the download from " + answer->origin +
                           " is not a sound snapshot: " + info.status().message());
    if (std::string why = mismatch(*answer, *info); !why.empty())
        return give_up(kExitUnavailable, "the download from " + answer->origin +
                                             " is not the snapshot announced: " + why);
    out.info = std::move(info.value());
    out.origin = answer->origin;
    return kExitOk;
}

// The node's group count (GET /healthz: "groups", absent without --groups):
// 0 without groups, or when the node is not healthy (the download then
// reports what it says); -1 (reported) when no endpoint answers.
int group_count(const Session& session, int& exit_code) {
    Result<Response> health = session.call_any("GET", "/healthz");
    if (!health.ok()) {
        exit_code = session.finish(health, [](const json&) {});
        return -1;
    }
    if (health->status != 200) return 0;
    const json body = parse_body(*health);
    if (!body.is_object() || !body.contains("groups")) return 0;
    const json& groups = body["groups"];
    if (!groups.is_number_unsigned() || groups.get<std::uint64_t>() == 0 ||
        groups.get<std::uint64_t>() > kBackupArchiveMaxGroups) {
        exit_code = session.fail(kExitUnavailable,
                                 health->origin + " answers GET /healthz with a bad group count");
        return -1;
    }
    return static_cast<int>(groups.get<std::uint64_t>());
}

// With --groups: every group's snapshot into one archive at `file`.
int save_archive(const Session& session, const std::string& file, int groups) {
    auto writer = BackupArchiveWriter::create(file, static_cast<std::size_t>(groups));
    if (!writer.ok()) return session.fail(kExitRefused, writer.status().message());
    std::string origin;
    for (int g = 1; g <= groups; ++g) {
        const std::string part = fmt::format("{}.group-{}.part", file, g);
        Downloaded one;
        const int code = download(session, fmt::format("/v1/snapshot?group={}", g), part, one);
        if (code != kExitOk) return code;
        Result<SnapshotFileInfo> added = (*writer)->add_group(static_cast<GroupId>(g), part);
        std::remove(part.c_str());
        if (!added.ok()) return session.fail(kExitRefused, added.status().message());
        origin = one.origin;
    }
    Result<BackupArchiveInfo> info = (*writer)->finish();
    if (!info.ok()) return session.fail(kExitRefused, info.status().message());
    if (session.format() == Format::json) {
        session.out() << json{{"file", file},
                              {"groups", info->groups.size()},
                              {"size_bytes", info->size_bytes},
                              {"members", info->groups.front().snapshot.members.size()},
                              {"from", origin}}
                             .dump()
                      << '\n';
    } else {
        session.out() << "saved the snapshots of " << info->groups.size() << " groups ("
                      << human_bytes(info->size_bytes) << ") from " << origin << " to " << file
                      << '\n';
    }
    return kExitOk;
}

}  // namespace

int cmd_snapshot_save(const Session& session, const std::string& file, bool latest) {
    int failed = kExitOk;
    const int groups = group_count(session, failed);
    if (groups < 0) return failed;
    if (!latest) {
        Result<Response> taken = session.call_any("POST", "/v1/snapshot");
        if (!taken.ok() || taken->status != 200) return session.finish(taken, [](const json&) {});
    }
    if (groups > 0) return save_archive(session, file, groups);
    const std::string part = file + ".part";
    Downloaded one;
    if (const int code = download(session, "/v1/snapshot", part, one); code != kExitOk) return code;
    const SnapshotFileInfo& info = one.info;
    if (std::rename(part.c_str(), file.c_str()) != 0) {
        std::remove(part.c_str());
        return session.fail(kExitRefused, errno_status("rename " + part).message());
    }
    if (Status s = sync_dir_of(file); !s.ok()) return session.fail(kExitRefused, s.message());
    if (session.format() == Format::json) {
        session.out() << json{{"file", file},
                              {"index", info.index},
                              {"term", info.term},
                              {"size_bytes", info.size_bytes},
                              {"members", info.members.size()},
                              {"from", one.origin}}
                             .dump()
                      << '\n';
    } else {
        session.out() << "saved the snapshot at index " << info.index << " (term " << info.term
                      << ", " << human_bytes(info.size_bytes) << ") from " << one.origin << " to "
                      << file << '\n';
    }
    return kExitOk;
}

}  // namespace keel::keelctl
