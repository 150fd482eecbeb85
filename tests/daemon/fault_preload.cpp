// tests/daemon/fault_preload.cpp — an LD_PRELOAD shim for the storage tests
// of a real raftd: while the file named by the environment variable
// KEEL_FAULT_FDATASYNC_EIO exists (the test creates it at the instant it
// wants the disk to fail), fdatasync(2) fails with EIO, and so does a
// pwritev(2) on a descriptor opened O_DIRECT|O_DSYNC (the WAL's direct
// path, whose write is its durability step: docs/wal.md, "Write paths").
// Nothing else changes.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdlib>

namespace {

bool disk_failed() {
    const char* trigger = std::getenv("KEEL_FAULT_FDATASYNC_EIO");
    struct stat st;
    return trigger != nullptr && ::stat(trigger, &st) == 0;
}

}  // namespace

extern "C" int fdatasync(int fd) {
    using Fn = int (*)(int);
    static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fdatasync"));
    if (disk_failed()) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

// With _FILE_OFFSET_BITS=64 (meson's default) <sys/uio.h> names this
// pwritev64, the symbol keel's WAL calls.
extern "C" ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
    using Fn = ssize_t (*)(int, const struct iovec*, int, off_t);
    static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pwritev64"));
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags != -1 && (flags & O_DIRECT) != 0 && (flags & O_DSYNC) != 0 && disk_failed()) {
        errno = EIO;
        return -1;
    }
    return real(fd, iov, iovcnt, offset);
}
