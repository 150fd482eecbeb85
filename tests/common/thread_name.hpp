// tests/common/thread_name.hpp — the calling thread's name, for tests that
// check which of keel's threads (keel-io, keel-apply, ...) did something.
#pragma once

#include <pthread.h>

#include <string>

namespace keel::test {

inline std::string thread_name() {
    char name[16] = {};  // the kernel's limit, terminator included
    pthread_getname_np(pthread_self(), name, sizeof name);
    return name;
}

}  // namespace keel::test
