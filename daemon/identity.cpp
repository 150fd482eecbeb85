#include "identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kv_shards.hpp"
#include "member_spec.hpp"

namespace keel::daemon {
namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

Status errno_status(const std::string& what, const std::string& path) {
    return Status(ErrorCode::io_error, what + " " + path + ": " + std::strerror(errno));
}

Status sync_dir(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status("cannot open", path);
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return errno_status("cannot fsync", path);
    return Status::ok_status();
}

// mkdir -p, each directory it creates 0700 and made durable in its parent.
Status make_private_dirs(const std::string& path) {
    std::string prefix;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string::npos) slash = path.size();
        prefix = path.substr(0, slash);
        start = slash + 1;
        if (prefix.empty() || prefix == "." || prefix == "..") continue;
        if (::mkdir(prefix.c_str(), kDirMode) == 0) {
            const std::size_t parent_end = prefix.find_last_of('/');
            const std::string parent = parent_end == std::string::npos
                                           ? "."
                                           : prefix.substr(0, std::max<std::size_t>(parent_end, 1));
            if (Status s = sync_dir(parent); !s.ok()) return s;
        } else if (errno != EEXIST) {
            return errno_status("cannot create", prefix);
        }
    }
    return Status::ok_status();
}

}  // namespace

Result<std::optional<NodeId>> read_node_id(const std::string& data_dir) {
    const std::string path = data_dir + "/" + kIdentityFileName;
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return std::optional<NodeId>();
        return Status(ErrorCode::io_error, "cannot read " + path + ": " + std::strerror(errno));
    }
    std::string line;
    std::getline(in, line);
    Result<NodeId> id = parse_node_id(line);
    if (!id.ok()) return Status(ErrorCode::corruption, path + ": " + id.status().message());
    return std::optional<NodeId>(*id);
}

namespace {

// Writes data_dir/name atomically and 0600 (temp file, fsync, rename, fsync
// the dir), creating data_dir if missing.
Status write_file_atomically(const std::string& data_dir, const char* name,
                             const std::string& text) {
    if (Status s = make_private_dirs(data_dir); !s.ok()) return s;
    const std::string path = data_dir + "/" + name;
    const std::string temp = path + ".tmp";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode);
    if (fd < 0)
        return Status(ErrorCode::io_error, "cannot create " + temp + ": " + std::strerror(errno));
    // A temp file left by a crash keeps its old mode through O_CREAT.
    const bool written =
        ::fchmod(fd, kFileMode) == 0 &&
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd) == 0;
    ::close(fd);
    if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
        return Status(ErrorCode::io_error, "cannot write " + path + ": " + std::strerror(errno));
    }
    return sync_dir(data_dir);
}

}  // namespace

Status write_node_id(const std::string& data_dir, NodeId id) {
    return write_file_atomically(data_dir, kIdentityFileName, fmt::format("{}\n", id));
}

Result<std::optional<std::size_t>> read_group_count(const std::string& data_dir) {
    const std::string path = data_dir + "/" + kGroupsFileName;
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return std::optional<std::size_t>();
        return Status(ErrorCode::io_error, "cannot read " + path + ": " + std::strerror(errno));
    }
    std::string line;
    std::getline(in, line);
    std::size_t count = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
    if (line.empty() || ec != std::errc() || end != line.data() + line.size() || count == 0 ||
        count > kGroupsMax) {
        return Status(ErrorCode::corruption,
                      fmt::format("{}: not a group count in 1..{}", path, kGroupsMax));
    }
    return std::optional<std::size_t>(count);
}

Status write_group_count(const std::string& data_dir, std::size_t count) {
    return write_file_atomically(data_dir, kGroupsFileName, fmt::format("{}\n", count));
}

Result<std::vector<MemberSpec>> read_members(const std::string& data_dir) {
    const std::string path = data_dir + "/" + kMembersFileName;
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return std::vector<MemberSpec>();
        return Status(ErrorCode::io_error, "cannot read " + path + ": " + std::strerror(errno));
    }
    std::vector<MemberSpec> members;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        Result<MemberSpec> member = parse_member_spec(line);
        if (!member.ok())
            return Status(ErrorCode::corruption, path + ": " + member.status().message());
        members.push_back(*member);
    }
    return members;
}

Status write_members(const std::string& data_dir, const std::vector<MemberSpec>& members) {
    std::string text;
    for (const MemberSpec& m : members)
        text += fmt::format("{},{},{}\n", m.id, m.raft_address, m.metadata);
    return write_file_atomically(data_dir, kMembersFileName, text);
}

}  // namespace keel::daemon
