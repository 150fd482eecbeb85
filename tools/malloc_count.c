/* tools/malloc_count.c — counts a process's heap allocations, for
 * scripts/allocs-per-op.sh (docs/decisions/0050).
 *
 * Preloaded (LD_PRELOAD=build/tools/libkeel-malloc-count.so), it counts every
 * call of malloc, calloc and realloc, then passes it to glibc's own.  SIGUSR2
 * writes the count so far to stderr as "KEEL_MALLOCS <n>": a script reads it
 * at the start and the end of a window and divides by the operations done
 * in between.  A measuring aid, not part of keel; glibc only (__libc_*). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* p, size_t size);

static atomic_ulong calls;

void* malloc(size_t size) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_calloc(count, size);
}

void* realloc(void* p, size_t size) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return __libc_realloc(p, size);
}

/* Async-signal-safe: snprintf into a stack buffer is not formally, but it
 * touches no heap or lock for an integer; write(2) is. */
static void report(int sig) {
    (void)sig;
    char line[64];
    int n = snprintf(line, sizeof line, "KEEL_MALLOCS %lu\n", atomic_load(&calls));
    if (n > 0) (void)!write(STDERR_FILENO, line, (size_t)n);
}

__attribute__((constructor)) static void install(void) {
    signal(SIGUSR2, report);
}
