// tests/daemon/fault_preload.cpp — an LD_PRELOAD shim for the storage tests
// of a real raftd: fdatasync(2) fails with EIO while the file named by the
// environment variable KEEL_FAULT_FDATASYNC_EIO exists (the test creates it
// at the instant it wants the disk to fail).  Nothing else changes.
#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

extern "C" int fdatasync(int fd) {
    using Fn = int (*)(int);
    static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fdatasync"));
    const char* trigger = std::getenv("KEEL_FAULT_FDATASYNC_EIO");
    struct stat st;
    if (trigger != nullptr && ::stat(trigger, &st) == 0) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
