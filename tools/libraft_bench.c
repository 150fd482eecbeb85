/* libraft-bench — canonical/raft (libraft, Debian's libraft-dev) on one node,
 * measured the way `raft-bench --mode single` measures keel: a closed loop of
 * K proposals in flight, each latency from raft_apply() to its apply callback
 * (durable, committed and applied to the state machine), 100-byte entries,
 * no snapshots.  A benchmark for comparison only, not part of keel: meson
 * builds it when libraft and libuv are found (docs/benchmarks.md).
 *
 *   libraft-bench --dir D [--seconds S] [--record-bytes B] [--outstanding 1,256]
 *
 * Prints one JSON object per K, with raft-bench's fields:
 *   {"bench":"libraft","mode":"single","outstanding":K,"record_bytes":B,
 *    "ops_per_s":...,"p50_us":...,"p99_us":...}
 * Each K runs on a fresh data directory D/libraft-K, removed afterwards.
 * The first min(1 s, S/4) are a warm-up and not counted, as in raft-bench. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

enum { kMaxOutstanding = 65536, kMaxKs = 64 };
static const uint64_t kLeaderDeadlineNs = 10ull * 1000 * 1000 * 1000;

struct options {
    const char* dir;
    double seconds;
    size_t record_bytes;
    int outstanding[kMaxKs];
    int n_outstanding;
};

/* One proposal slot of the closed loop; `req.data` points back to it. */
struct slot {
    struct raft_apply req;
    uint64_t start_ns;
    struct bench* bench;
};

struct bench {
    const struct options* options;
    int k;
    uv_loop_t loop;
    uv_timer_t timer;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    struct slot* slots;
    uint64_t measure_from_ns; /* end of the warm-up */
    uint64_t end_ns;          /* end of the measured window */
    bool leading;
    bool stop;
    bool closed;
    int in_flight;
    size_t ops_in_window;
    size_t failures;
    uint64_t applied; /* entries the state machine saw */
    double* latencies_us;
    size_t n_latencies, cap_latencies;
};

static void die(const char* what, const char* detail) {
    fprintf(stderr, "libraft-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static int fsm_apply(struct raft_fsm* fsm, const struct raft_buffer* buf, void** result) {
    struct bench* b = fsm->data;
    (void)buf;
    ++b->applied;
    *result = NULL;
    return 0;
}

/* Never called: the snapshot threshold is out of reach (no snapshots). */
static int fsm_snapshot(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
    (void)fsm;
    (void)bufs;
    (void)n_bufs;
    return RAFT_NOTFOUND;
}

static int fsm_restore(struct raft_fsm* fsm, struct raft_buffer* buf) {
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static void record_latency(struct bench* b, double us) {
    if (b->n_latencies == b->cap_latencies) {
        b->cap_latencies = b->cap_latencies ? 2 * b->cap_latencies : 1u << 16;
        b->latencies_us = realloc(b->latencies_us, b->cap_latencies * sizeof(double));
        if (!b->latencies_us) die("out of memory", NULL);
    }
    b->latencies_us[b->n_latencies++] = us;
}

static void issue(struct slot* s);
static void finish(struct bench* b);
static void timer_cb(uv_timer_t* timer);

static void apply_cb(struct raft_apply* req, int status, void* result) {
    struct slot* s = req->data;
    struct bench* b = s->bench;
    const uint64_t now = uv_hrtime();
    (void)result;
    --b->in_flight;
    if (status != 0) {
        ++b->failures;
    } else if (s->start_ns >= b->measure_from_ns) {
        /* As raft-bench: latencies of what started after the warm-up, ops
         * counted when they complete inside the window. */
        record_latency(b, (double)(now - s->start_ns) / 1000.0);
        if (now < b->end_ns) ++b->ops_in_window;
    }
    if (!b->stop)
        issue(s);
    else if (b->in_flight == 0)
        uv_timer_start(&b->timer, timer_cb, 0, 0); /* not from inside raft's callback */
}

static void issue(struct slot* s) {
    struct bench* b = s->bench;
    struct raft_buffer buf;
    buf.len = b->options->record_bytes;
    buf.base = raft_malloc(buf.len);
    if (!buf.base) die("out of memory", NULL);
    memset(buf.base, 'p', buf.len);
    s->req.data = s;
    s->start_ns = uv_hrtime();
    const int rv = raft_apply(&b->raft, &s->req, &buf, 1, apply_cb);
    if (rv != 0) die("raft_apply", raft_strerror(rv));
    ++b->in_flight;
}

static void close_cb(struct raft* raft) {
    struct bench* b = raft->data;
    raft_uv_close(&b->io);
    raft_uv_tcp_close(&b->transport);
    b->closed = true;
}

/* Closes raft once the window is over and nothing is in flight. */
static void finish(struct bench* b) {
    uv_close((uv_handle_t*)&b->timer, NULL);
    raft_close(&b->raft, close_cb);
}

/* Polls every millisecond until the node leads, then starts the loop and
 * fires once more at the end of the window (no wake-ups in between). */
static void timer_cb(uv_timer_t* timer) {
    struct bench* b = timer->data;
    const uint64_t now = uv_hrtime();
    if (b->leading) {
        b->stop = true;
        if (b->in_flight == 0) finish(b);
        return;
    }
    if (raft_state(&b->raft) != RAFT_LEADER) {
        if (now > b->end_ns) die("no leader", "a lone voter did not lead within 10 s");
        return;
    }
    b->leading = true;
    const double warmup_s = b->options->seconds * 0.25 < 1.0 ? b->options->seconds * 0.25 : 1.0;
    b->measure_from_ns = now + (uint64_t)(warmup_s * 1e9);
    b->end_ns = b->measure_from_ns + (uint64_t)(b->options->seconds * 1e9);
    uv_timer_stop(timer);
    uv_timer_start(timer, timer_cb, (b->end_ns - now + 999999) / 1000000, 0);
    for (int i = 0; i < b->k; ++i) issue(&b->slots[i]);
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char* path) {
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        die("cannot remove", path);
}

static int compare_double(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static double percentile(const double* sorted, size_t n, double p) {
    if (n == 0) return 0;
    size_t i = (size_t)(p * (double)n);
    return sorted[i < n - 1 ? i : n - 1];
}

static void run(const struct options* o, int k) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/libraft-%d", o->dir, k);
    remove_tree(dir);
    if (mkdir(dir, 0700) != 0) die("cannot create", dir);

    struct bench* b = calloc(1, sizeof *b);
    if (!b) die("out of memory", NULL);
    b->options = o;
    b->k = k;
    b->slots = calloc((size_t)k, sizeof *b->slots);
    if (!b->slots) die("out of memory", NULL);
    for (int i = 0; i < k; ++i) b->slots[i].bench = b;

    if (uv_loop_init(&b->loop) != 0) die("uv_loop_init", NULL);
    int rv = raft_uv_tcp_init(&b->transport, &b->loop);
    if (rv != 0) die("raft_uv_tcp_init", raft_strerror(rv));
    rv = raft_uv_init(&b->io, &b->loop, dir, &b->transport);
    if (rv != 0) die("raft_uv_init", raft_strerror(rv));
    b->fsm.version = 1;
    b->fsm.data = b;
    b->fsm.apply = fsm_apply;
    b->fsm.snapshot = fsm_snapshot;
    b->fsm.restore = fsm_restore;
    /* Port 0: a lone node never connects, the listener only has to bind. */
    const char* address = "127.0.0.1:0";
    rv = raft_init(&b->raft, &b->io, &b->fsm, 1, address);
    if (rv != 0) die("raft_init", raft_strerror(rv));
    b->raft.data = b;
    raft_set_snapshot_threshold(&b->raft, UINT_MAX);

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, 1, address, RAFT_VOTER);
    if (rv != 0) die("raft_configuration_add", raft_strerror(rv));
    rv = raft_bootstrap(&b->raft, &conf);
    if (rv != 0) die("raft_bootstrap", raft_strerror(rv));
    raft_configuration_close(&conf);
    rv = raft_start(&b->raft);
    if (rv != 0) die("raft_start", raft_errmsg(&b->raft));

    /* Until it leads: end_ns is the deadline; then the end of the window. */
    b->end_ns = uv_hrtime() + kLeaderDeadlineNs;
    uv_timer_init(&b->loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, timer_cb, 1, 1);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    if (!b->closed) die("the event loop ended before raft closed", NULL);
    uv_loop_close(&b->loop);

    qsort(b->latencies_us, b->n_latencies, sizeof(double), compare_double);
    const double ops_per_s = (double)b->ops_in_window / o->seconds;
    printf(
        "{\"bench\":\"libraft\",\"mode\":\"single\",\"outstanding\":%d,\"record_bytes\":%zu,"
        "\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f",
        k, o->record_bytes, ops_per_s, percentile(b->latencies_us, b->n_latencies, 0.50),
        percentile(b->latencies_us, b->n_latencies, 0.99));
    if (b->failures != 0) printf(",\"failures\":%zu", b->failures);
    printf("}\n");
    fflush(stdout);

    free(b->latencies_us);
    free(b->slots);
    free(b);
    remove_tree(dir);
}

static void parse_outstanding(struct options* o, const char* list) {
    char* copy = strdup(list);
    o->n_outstanding = 0;
    for (char* item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        const long k = strtol(item, NULL, 10);
        if (k < 1 || k > kMaxOutstanding) die("--outstanding values must be in [1, 65536]", item);
        if (o->n_outstanding == kMaxKs) die("--outstanding: too many values", list);
        o->outstanding[o->n_outstanding++] = (int)k;
    }
    free(copy);
    if (o->n_outstanding == 0) die("--outstanding: no value", list);
}

int main(int argc, char** argv) {
    struct options o = {.dir = NULL, .seconds = 3, .record_bytes = 100};
    parse_outstanding(&o, "1,256");
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "libraft-bench --dir D [--seconds S] [--record-bytes B] [--outstanding 1,256]\n");
            return 0;
        }
        if (i + 1 >= argc) die("missing value for", a);
        const char* v = argv[++i];
        if (strcmp(a, "--dir") == 0)
            o.dir = v;
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = strtod(v, NULL);
        else if (strcmp(a, "--record-bytes") == 0)
            o.record_bytes = strtoul(v, NULL, 10);
        else if (strcmp(a, "--outstanding") == 0)
            parse_outstanding(&o, v);
        else
            die("unknown argument (see --help)", a);
    }
    if (!o.dir) die("--dir is required", NULL);
    if (!(o.seconds > 0)) die("--seconds must be > 0", NULL);
    if (o.record_bytes < 1 || o.record_bytes > (64u << 20))
        die("--record-bytes must be in [1, 64 MiB]", NULL);
    mkdir(o.dir, 0700);
    for (int i = 0; i < o.n_outstanding; ++i) run(&o, o.outstanding[i]);
    return 0;
}
