// runtime/cluster_identity.cpp — see cluster_identity.hpp.
#include "runtime/cluster_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keel::runtime {
namespace {

Status errno_status(const std::string& what) {
    return Status(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

Status write_all_and_sync(int fd, const std::string& text, const std::string& path) {
    std::size_t at = 0;
    while (at < text.size()) {
        ssize_t n = ::write(fd, text.data() + at, text.size() - at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_status("write " + path);
        at += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return errno_status("fsync " + path);
    return Status::ok_status();
}

}  // namespace

Result<std::optional<transport::ClusterId>> read_cluster_id(const std::string& data_dir) {
    const std::string path = data_dir + "/" + kClusterIdFileName;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<transport::ClusterId>();
        return errno_status("open " + path);
    }
    // 32 digits and a newline; read one more byte to notice a longer file.
    char buf[transport::ClusterId::kHexDigits + 2];
    std::size_t have = 0;
    while (have < sizeof buf) {
        ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    std::string_view text(buf, have);
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    Result<transport::ClusterId> id = transport::ClusterId::parse_hex(text);
    if (!id.ok()) return Status(ErrorCode::corruption, path + ": " + id.status().message());
    return std::optional<transport::ClusterId>(*id);
}

Status write_cluster_id(const std::string& data_dir, const transport::ClusterId& id) {
    KEEL_ASSERT(!id.unset(), "only a real cluster id is stored");
    const std::string path = data_dir + "/" + kClusterIdFileName;
    const std::string temp = path + ".tmp";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno_status("create " + temp);
    Status s = write_all_and_sync(fd, id.hex() + "\n", temp);
    ::close(fd);
    if (!s.ok()) return s;
    if (::rename(temp.c_str(), path.c_str()) != 0) return errno_status("rename " + temp);
    int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return errno_status("open " + data_dir);
    const int synced = ::fsync(dir);
    ::close(dir);
    if (synced != 0) return errno_status("fsync " + data_dir);
    return Status::ok_status();
}

Result<transport::ClusterId> resolve_cluster_id(const NodeOptions& options, bool has_state) {
    std::optional<transport::ClusterId> given;
    if (!options.cluster_id.empty()) {
        Result<transport::ClusterId> parsed = transport::ClusterId::parse_hex(options.cluster_id);
        if (!parsed.ok())
            return Status(ErrorCode::invalid_argument, "cluster_id: " + parsed.status().message());
        given = *parsed;
    }
    Result<std::optional<transport::ClusterId>> stored = read_cluster_id(options.data_dir);
    if (!stored.ok()) return stored.status();
    if (*stored) {
        if (given && *given != **stored)
            return Status(ErrorCode::invalid_argument,
                          options.data_dir + " belongs to cluster " + (*stored)->hex() +
                              ", not to the cluster_id given (" + given->hex() + ")");
        return **stored;
    }
    if (given) {
        if (Status s = write_cluster_id(options.data_dir, *given); !s.ok()) return s;
        return *given;
    }
    if (has_state)
        return Status(ErrorCode::invalid_argument,
                      options.data_dir +
                          " holds a log but no cluster id (it was written by a keel from "
                          "before cluster ids): make one id (openssl rand -hex 16) and start "
                          "every member once with it (raftd --cluster-id ID, "
                          "NodeOptions::cluster_id)");
    if (options.join) return transport::ClusterId{};
    // Founders that bootstrap apart must agree on one id without talking:
    // only the operator can give it to them.
    if (options.initial_members.size() > 1)
        return Status(ErrorCode::invalid_argument,
                      "bootstrapping a cluster of " +
                          std::to_string(options.initial_members.size()) +
                          " founding members needs the same cluster id on each: make one "
                          "(openssl rand -hex 16) and give it to every founder (raftd "
                          "--cluster-id ID, NodeOptions::cluster_id)");
    Result<transport::ClusterId> fresh = transport::ClusterId::random();
    if (!fresh.ok()) return fresh.status();
    if (Status s = write_cluster_id(options.data_dir, *fresh); !s.ok()) return s;
    return *fresh;
}

}  // namespace keel::runtime
