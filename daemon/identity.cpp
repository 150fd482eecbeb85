#include "identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "member_spec.hpp"

namespace keel::daemon {

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

Status write_node_id(const std::string& data_dir, NodeId id) {
    const std::string path = data_dir + "/" + kIdentityFileName;
    const std::string temp = path + ".tmp";
    const std::string text = std::to_string(id) + "\n";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return Status(ErrorCode::io_error, "cannot create " + temp + ": " + std::strerror(errno));
    const bool written =
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd) == 0;
    ::close(fd);
    if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
        return Status(ErrorCode::io_error, "cannot write " + path + ": " + std::strerror(errno));
    }
    int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return Status::ok_status();
}

}  // namespace keel::daemon
