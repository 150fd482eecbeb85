/* kv_c.c — a replicated key-value map on keel, in C (keel/keel_c.h).
 *   cc -std=c11 kv_c.c $(pkg-config --cflags --libs keel) -o kv_c && ./kv_c /tmp/kv-c-data
 *
 * Alone, the node is a single-node cluster.  The program runs twice over
 * the same data dir: the first run writes "greeting=hello" and takes a
 * snapshot, the second reopens (keel restores the snapshot through
 * restore()) and reads the key back after a linearizable read barrier.
 * docs/embedding.md, "The C API", walks through it. */
#include <keel/keel_c.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The application state: a small map, applied on keel's threads ---- */

#define MAX_KEYS 64
#define MAX_KEY_BYTES 64
#define MAX_VALUE_BYTES 192

struct table {
    size_t count;
    char keys[MAX_KEYS][MAX_KEY_BYTES];
    char values[MAX_KEYS][MAX_VALUE_BYTES];
};

struct store {
    pthread_mutex_t mu; /* apply (keel's thread) writes, main reads */
    struct table table;
};

/* Sets key to value; 0 when the table is full or a string is too long. */
static int table_set(struct table* t, const char* key, size_t key_len, const char* value,
                     size_t value_len) {
    if (key_len >= MAX_KEY_BYTES || value_len >= MAX_VALUE_BYTES) return 0;
    size_t i = 0;
    while (i < t->count && (strlen(t->keys[i]) != key_len || memcmp(t->keys[i], key, key_len)))
        ++i;
    if (i == t->count) {
        if (t->count == MAX_KEYS) return 0;
        memcpy(t->keys[i], key, key_len);
        t->keys[i][key_len] = '\0';
        t->count++;
    }
    memcpy(t->values[i], value, value_len);
    t->values[i][value_len] = '\0';
    return 1;
}

/* Applies one "key=value" line; 0 if it is not one. */
static int table_apply(struct table* t, const char* line, size_t len) {
    const char* eq = memchr(line, '=', len);
    if (eq == NULL) return 0;
    return table_set(t, line, (size_t)(eq - line), eq + 1, len - (size_t)(eq - line) - 1);
}

/* ---- The state machine callbacks -------------------------------------- */

/* Entries are "key=value"; each gets the result "ok" or "bad command". */
static void kv_apply(void* ctx, const keel_entry* entries, size_t count, keel_results* results) {
    struct store* s = ctx;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < count; ++i) {
        const int ok = table_apply(&s->table, entries[i].data, entries[i].len);
        const char* result = ok ? "ok" : "bad command";
        keel_results_set(results, i, result, strlen(result));
    }
    pthread_mutex_unlock(&s->mu);
}

/* Between two applies: copy the table.  The copy is the image that
 * kv_snapshot_write later writes on a background thread while apply goes
 * on, and that kv_snapshot_release frees. */
static void* kv_snapshot_capture(void* ctx) {
    struct store* s = ctx;
    struct table* copy = malloc(sizeof *copy);
    if (copy == NULL) return NULL; /* kv_snapshot_write reports it */
    pthread_mutex_lock(&s->mu);
    *copy = s->table;
    pthread_mutex_unlock(&s->mu);
    return copy;
}

static keel_code kv_snapshot_write(void* ctx, void* image, keel_snapshot_writer* writer,
                                   keel_error* err) {
    (void)ctx;
    const struct table* t = image;
    if (t == NULL) {
        keel_error_set(err, KEEL_INTERNAL, "out of memory copying the table");
        return KEEL_INTERNAL;
    }
    for (size_t i = 0; i < t->count; ++i) {
        char line[MAX_KEY_BYTES + MAX_VALUE_BYTES + 2];
        const int n = snprintf(line, sizeof line, "%s=%s\n", t->keys[i], t->values[i]);
        const keel_code code = keel_snapshot_write(writer, line, (size_t)n, err);
        if (code != KEEL_OK) return code;
    }
    return KEEL_OK;
}

static void kv_snapshot_release(void* ctx, void* image) {
    (void)ctx;
    free(image);
}

/* Replaces the table with the snapshot's lines. */
static keel_code kv_restore(void* ctx, keel_snapshot_reader* reader, keel_error* err) {
    struct store* s = ctx;
    struct table t;
    t.count = 0;
    char line[MAX_KEY_BYTES + MAX_VALUE_BYTES + 2];
    size_t line_len = 0;
    char buffer[4096];
    for (;;) {
        size_t n = 0;
        const keel_code code = keel_snapshot_read(reader, buffer, sizeof buffer, &n, err);
        if (code != KEEL_OK) return code;
        if (n == 0) break;
        for (size_t i = 0; i < n; ++i) {
            if (buffer[i] != '\n') {
                if (line_len == sizeof line) {
                    keel_error_set(err, KEEL_CORRUPTION, "snapshot line too long");
                    return KEEL_CORRUPTION;
                }
                line[line_len++] = buffer[i];
                continue;
            }
            if (!table_apply(&t, line, line_len)) {
                keel_error_set(err, KEEL_CORRUPTION, "snapshot line is not key=value");
                return KEEL_CORRUPTION;
            }
            line_len = 0;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->table = t;
    pthread_mutex_unlock(&s->mu);
    return KEEL_OK;
}

/* Copies the value of `key` into out ("" when absent). */
static void kv_get(struct store* s, const char* key, char* out, size_t capacity) {
    pthread_mutex_lock(&s->mu);
    out[0] = '\0';
    for (size_t i = 0; i < s->table.count; ++i)
        if (strcmp(s->table.keys[i], key) == 0) snprintf(out, capacity, "%s", s->table.values[i]);
    pthread_mutex_unlock(&s->mu);
}

/* ---- Waiting for a completion (callbacks run on keel's threads) -------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    keel_error status;
    uint64_t index;
    char result[64];
};

static void waiter_init(struct waiter* w) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->done = 0;
}

static void waiter_finish(struct waiter* w, const keel_error* status, uint64_t index,
                          const void* result, size_t result_len) {
    pthread_mutex_lock(&w->mu);
    w->status = *status;
    w->index = index;
    if (result_len >= sizeof w->result) result_len = sizeof w->result - 1;
    if (result_len > 0) memcpy(w->result, result, result_len);
    w->result[result_len] = '\0';
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(struct waiter* w) {
    pthread_mutex_lock(&w->mu);
    while (!w->done) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void on_proposed(void* ctx, const keel_propose_result* r) {
    waiter_finish(ctx, &r->status, r->index, r->result, r->result_len);
}

static void on_read(void* ctx, const keel_read_result* r) {
    waiter_finish(ctx, &r->status, r->read_index, NULL, 0);
}

static void on_done(void* ctx, const keel_error* status) { waiter_finish(ctx, status, 0, NULL, 0); }

/* ---- The program ------------------------------------------------------ */

static const char* role_name(keel_role role) {
    switch (role) {
        case KEEL_ROLE_LEADER:
            return "leader";
        case KEEL_ROLE_CANDIDATE:
            return "candidate";
        case KEEL_ROLE_PRE_CANDIDATE:
            return "pre_candidate";
        default:
            return "follower";
    }
}

/* One open-use-close cycle; 0 on success. */
static int run_once(int run, const char* data_dir) {
    struct store store;
    pthread_mutex_init(&store.mu, NULL);
    store.table.count = 0;

    keel_options options;
    keel_options_init(&options);
    options.id = 1;
    options.data_dir = data_dir;

    keel_state_machine sm = {
        .ctx = &store,
        .apply = kv_apply,
        .snapshot_capture = kv_snapshot_capture,
        .snapshot_write = kv_snapshot_write,
        .snapshot_release = kv_snapshot_release,
        .restore = kv_restore,
    };

    keel_error err;
    keel_node* node = NULL;
    if (keel_node_open(&options, &sm, &node, &err) != KEEL_OK) {
        fprintf(stderr, "open: %s: %s\n", keel_code_name(err.code), err.message);
        return 1;
    }

    int failed = 0;
    if (run == 1) {
        /* Durable, committed and applied when the completion runs. */
        const char* command = "greeting=hello";
        struct waiter w;
        waiter_init(&w);
        if (keel_node_propose(node, command, strlen(command), on_proposed, &w, &err) != KEEL_OK) {
            fprintf(stderr, "propose: %s\n", err.message);
            keel_node_close(node, 0, NULL);
            return 1;
        }
        waiter_wait(&w);
        if (w.status.code != KEEL_OK) {
            fprintf(stderr, "propose: %s: %s\n", keel_code_name(w.status.code), w.status.message);
            failed = 1;
        } else {
            printf("wrote greeting at index %llu: %s\n", (unsigned long long)w.index, w.result);
        }

        /* A snapshot now, so that the next run starts from it (restore). */
        struct waiter snap;
        waiter_init(&snap);
        if (keel_node_snapshot(node, on_done, &snap, &err) == KEEL_OK) {
            waiter_wait(&snap);
            if (snap.status.code != KEEL_OK) failed = 1;
        } else {
            failed = 1;
        }
    }

    /* A linearizable read: wait until everything acknowledged is applied. */
    struct waiter barrier;
    waiter_init(&barrier);
    if (keel_node_read_index(node, 1, on_read, &barrier, &err) == KEEL_OK) {
        waiter_wait(&barrier);
        if (barrier.status.code != KEEL_OK) failed = 1;
    } else {
        failed = 1;
    }
    char greeting[MAX_VALUE_BYTES];
    kv_get(&store, "greeting", greeting, sizeof greeting);
    printf("run %d: greeting=%s\n", run, greeting);

    keel_status st;
    if (keel_node_status(node, &st, &err) == KEEL_OK) {
        printf("run %d: role=%s mode=%s commit=%llu snapshot=%llu\n", run, role_name(st.role),
               st.mode == KEEL_MODE_SINGLE ? "single" : "cluster",
               (unsigned long long)st.commit_index, (unsigned long long)st.snapshot_index);
    } else {
        failed = 1;
    }
    if (strcmp(greeting, "hello") != 0) failed = 1;

    if (keel_node_close(node, 0, &err) != KEEL_OK) {
        fprintf(stderr, "close: %s\n", err.message);
        failed = 1;
    }
    pthread_mutex_destroy(&store.mu);
    return failed;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    for (int run = 1; run <= 2; ++run) /* the second run reopens the same data dir */
        if (run_once(run, argv[1]) != 0) return 1;
    return 0;
}
