/* keel/keel_c.h — keel's C API: a replicated state machine node for programs
 * written in C, or in any language that can call C (Rust, Go, Python, ...).
 *
 * It is keel::Node (keel/node.hpp) behind plain C types: open a node with a
 * state machine given as C callbacks, propose, read, change membership, ask
 * its status, close it.  docs/embedding.md, "The C API", shows it in use;
 * examples/kv_c.c is a complete program.
 *
 * Conventions (they hold for every function below):
 *   - Errors are codes.  Every function returns a keel_code, KEEL_OK (0) on
 *     success.  When its `err` argument is not NULL it also receives the code
 *     and a message.  A keel_error is the caller's memory (no allocation, no
 *     global or thread-local buffer), so any thread may use its own.
 *   - Pointers passed to keel are borrowed for the duration of the call:
 *     keel copies what it keeps (data, addresses, options, the callbacks
 *     struct).  The `ctx` pointers are kept and passed back as they are;
 *     they are the caller's, and keel never dereferences or frees them.
 *   - Pointers keel passes to a callback (entries, results, messages) are
 *     keel's and valid only until the callback returns: copy what you keep.
 *   - No C++ exception crosses this interface.  Callbacks must return
 *     normally: no longjmp out of them, and no unwinding through keel (in
 *     Rust, catch panics inside the callback).
 *   - Threads: every keel_node_* function may be called from any thread,
 *     concurrently, except keel_node_close (see there).  Callbacks run on
 *     keel's threads, as in keel/node.hpp: the state machine's apply and
 *     restore one at a time, never concurrently; completion callbacks on the
 *     thread that decided them (or on the calling thread, for a request
 *     refused at once).  A callback must not block and must not call
 *     keel_node_close; it may call the other functions of the node.
 *
 * Stability: structs may change only together with the shared library's
 * soname (libkeel.so.N); rebuild against the header of the library you link.
 */
#ifndef KEEL_KEEL_C_H
#define KEEL_KEEL_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------ */

/* The same codes, with the same values, as keel::ErrorCode (keel/status.hpp). */
typedef enum keel_code {
    KEEL_OK = 0,
    KEEL_INVALID_ARGUMENT = 1, /* the caller passed something malformed or out of range */
    KEEL_NOT_FOUND = 2,        /* a file, member or key that does not exist */
    KEEL_CORRUPTION = 3,       /* bytes on disk or on the wire fail their checks */
    KEEL_IO_ERROR = 4,         /* the operating system refused a read or write */
    KEEL_FAILED = 5,           /* the node has fail-stopped (a failed write or fsync) */
    KEEL_TOO_LARGE = 6,        /* over a configured limit (max_entry_bytes) */
    KEEL_BUSY = 7,             /* a bounded queue is full; retry later */
    KEEL_NOT_LEADER = 8,       /* needs the leader; see leader_hint */
    KEEL_ABORTED = 9,          /* cancelled: the node is closing, or leadership was lost */
    KEEL_TIMEOUT = 10,         /* a deadline passed */
    KEEL_UNSUPPORTED = 11,     /* a format version or feature this build does not know */
    KEEL_NO_SPACE = 12,        /* storage is full: writes are refused, reads go on */
    KEEL_INTERNAL = 13         /* keel itself failed unexpectedly (e.g. out of memory) */
} keel_code;

/* Room for a message, its NUL included; longer messages are truncated. */
#define KEEL_MESSAGE_BYTES 256

typedef struct keel_error {
    keel_code code;                   /* KEEL_OK when nothing went wrong */
    char message[KEEL_MESSAGE_BYTES]; /* NUL-terminated; "" with KEEL_OK */
} keel_error;

/* "ok", "not_leader", ...: a static string (never freed); "unknown" for a
 * value that is not a keel_code. */
const char* keel_code_name(keel_code code);

/* Sets err (when not NULL) to `code` and a copy of `message` (NULL: ""),
 * truncated to fit.  For state machine callbacks that report a failure. */
void keel_error_set(keel_error* err, keel_code code, const char* message);

/* ---- Members and options ---------------------------------------------- */

typedef uint64_t keel_node_id; /* > 0; 0 means "none" or "unknown" */

/* A member of the cluster (keel::MemberSpec). */
typedef struct keel_member {
    keel_node_id id;
    const char* raft_address; /* "host:port" of its Raft transport, NUL-terminated */
    const void* metadata;     /* opaque bytes replicated with the membership; may be */
    size_t metadata_len;      /* NULL when metadata_len is 0 (e.g. its HTTP address) */
    int voter;                /* nonzero: a voter; 0: a learner */
} keel_member;

typedef enum keel_log_level {
    KEEL_LOG_DEBUG = 0,
    KEEL_LOG_INFO = 1,
    KEEL_LOG_WARN = 2,
    KEEL_LOG_ERROR = 3
} keel_log_level;

/* How to create or reopen a node: keel::NodeOptions (keel/options.hpp), whose
 * comments say what each field does.  Fill it with keel_options_init first,
 * then set what you need.  Strings are NUL-terminated; NULL means "" (unset). */
typedef struct keel_options {
    keel_node_id id;
    const char* data_dir;       /* required; created if missing */
    const char* listen_address; /* "host:port" of the Raft transport; port 0: any */

    const keel_member* initial_members; /* founding members (this node included); */
    size_t initial_member_count;        /* none: a single-node cluster of this node */
    int join;                           /* nonzero: wait to be added by a leader */
    const char* cluster_id;             /* 32 hex digits, or NULL/"" */

    const char* peer_tls_cert_file; /* mutual TLS between members: all three or none */
    const char* peer_tls_key_file;
    const char* peer_tls_ca_file;
    int peer_insecure; /* nonzero: allow plain TCP beyond loopback */

    uint32_t heartbeat_interval_ms;
    uint32_t election_timeout_min_ms;
    uint32_t election_timeout_max_ms;
    int pre_vote;
    int check_quorum;

    uint64_t snapshot_every_entries; /* 0: only on request (keel_node_snapshot) */
    uint64_t snapshot_trailing_entries;

    size_t max_pending_proposals;
    size_t max_pending_reads;
    size_t max_entry_bytes;
    size_t max_apply_queue_entries;
    int inline_apply;
    uint64_t wal_segment_bytes;

    /* One line per event, from keel's threads (thread-safe, must not block).
     * `line` is valid during the call.  NULL: warnings and errors to stderr. */
    void (*logger)(void* ctx, keel_log_level level, const char* line);
    void* logger_ctx;
    /* Called once, on a keel thread, if the node fail-stops (a failed write or
     * fsync); from then on every call fails until the process reopens the
     * node.  Must not block and must not call keel_node_close.  May be NULL. */
    void (*on_failure)(void* ctx, const keel_error* why);
    void* on_failure_ctx;
} keel_options;

/* Every field to keel::NodeOptions' default (id 1, pointers NULL). */
void keel_options_init(keel_options* options);

/* ---- The state machine ------------------------------------------------ */

/* One committed entry: what a keel_node_propose call replicated. */
typedef struct keel_entry {
    uint64_t index; /* log index: unique, strictly increasing */
    uint64_t term;
    const void* data; /* the proposed bytes; valid during apply only */
    size_t len;
} keel_entry;

/* Where apply writes one result per entry (opaque, keel's). */
typedef struct keel_results keel_results;
/* The result of entries[i], handed to its proposer's completion (copied).
 * Unset results are empty.  KEEL_INVALID_ARGUMENT if i is out of range. */
keel_code keel_results_set(keel_results* results, size_t i, const void* bytes, size_t len);

/* A snapshot being written (opaque, keel's): append bytes to it. */
typedef struct keel_snapshot_writer keel_snapshot_writer;
keel_code keel_snapshot_write(keel_snapshot_writer* writer, const void* bytes, size_t len,
                              keel_error* err);

/* A snapshot being read back (opaque, keel's).  Reads up to `capacity`
 * bytes into `buffer` and stores how many in *read_bytes: 0 at the end. */
typedef struct keel_snapshot_reader keel_snapshot_reader;
keel_code keel_snapshot_read(keel_snapshot_reader* reader, void* buffer, size_t capacity,
                             size_t* read_bytes, keel_error* err);
uint64_t keel_snapshot_size(const keel_snapshot_reader* reader);

/* The application's replicated state (keel::StateMachine, whose comments in
 * keel/state_machine.hpp are the full contract).  `ctx` is passed back to
 * every callback.  apply, snapshot_write and restore are required;
 * snapshot_capture and snapshot_release are optional. */
typedef struct keel_state_machine {
    void* ctx;

    /* Apply `count` committed entries, in index order (only proposed
     * entries: indexes may skip, never repeat or go back), and set one
     * result per entry with keel_results_set.  Deterministic: every replica
     * must reach the same state.  Never undone. */
    void (*apply)(void* ctx, const keel_entry* entries, size_t count, keel_results* results);

    /* A snapshot, in two steps, so that writing a large state does not hold
     * up apply:
     *   snapshot_capture runs between two apply calls and returns an image
     *     of the state as of the last applied entry (any pointer, NULL
     *     included: a copy, a reference-counted view, a file name, ...);
     *   snapshot_write runs later on a background thread, concurrently with
     *     further apply calls, and writes the image with keel_snapshot_write;
     *     it must not touch the state apply changes;
     *   snapshot_release frees the image: once per capture, after the write
     *     or instead of it (a snapshot abandoned at close), before
     *     keel_node_close returns.
     * Without snapshot_capture, snapshot_write is called between two apply
     * calls with image NULL, may read the state directly, and its bytes are
     * buffered in memory until keel writes them out: simple, at the cost of
     * holding up apply and of the snapshot's size in memory.
     * Return KEEL_OK, or an error code (and keel_error_set(err, ...)): the
     * snapshot is then dropped and the log kept. */
    void* (*snapshot_capture)(void* ctx);
    keel_code (*snapshot_write)(void* ctx, void* image, keel_snapshot_writer* writer,
                                keel_error* err);
    void (*snapshot_release)(void* ctx, void* image);

    /* Replace the whole state with the snapshot's (at open, or when the
     * leader sends one to a follower far behind).  An error fails the open
     * (or the install, which the leader then retries). */
    keel_code (*restore)(void* ctx, keel_snapshot_reader* reader, keel_error* err);
} keel_state_machine;

/* ---- The node --------------------------------------------------------- */

typedef struct keel_node keel_node; /* opaque */

/* Creates (first start) or reopens (data_dir holds state) a node, as
 * keel::Node::open does: on reopen restore and apply run before this returns.
 * On success *node is the new node, owned by the caller until
 * keel_node_close; on failure *node is NULL. */
keel_code keel_node_open(const keel_options* options, const keel_state_machine* state_machine,
                         keel_node** node, keel_error* err);

/* Asynchronous calls.  Each returns KEEL_OK when the request was taken: its
 * completion is then called exactly once (possibly before the function
 * returns, on the calling thread, e.g. with KEEL_NOT_LEADER or KEEL_BUSY),
 * and by keel_node_close at the latest (KEEL_ABORTED).  Any other return
 * (a NULL node or callback, out of memory) means the completion is never
 * called.  A completion's argument is valid during the call only. */

typedef struct keel_propose_result {
    keel_error status;  /* KEEL_OK: durable, committed and applied on this node */
    uint64_t index;     /* the entry's log index (KEEL_OK) */
    const void* result; /* what apply set with keel_results_set for it */
    size_t result_len;
    keel_node_id leader_hint; /* with KEEL_NOT_LEADER: the leader if known, else 0 */
} keel_propose_result;
typedef void (*keel_propose_fn)(void* ctx, const keel_propose_result* result);

/* Replicates `len` bytes of `data` (copied; len may be 0).  Completes once
 * the entry is applied on this node.  A follower refuses at once with
 * KEEL_NOT_LEADER. */
keel_code keel_node_propose(keel_node* node, const void* data, size_t len, keel_propose_fn done,
                            void* ctx, keel_error* err);

typedef struct keel_read_result {
    keel_error status; /* KEEL_OK: leadership confirmed at read_index */
    uint64_t read_index;
    keel_node_id leader_hint;
} keel_read_result;
typedef void (*keel_read_fn)(void* ctx, const keel_read_result* result);

/* Linearizable read barrier (ReadIndex).  wait_applied nonzero: completes
 * once this node has applied read_index, so the local state then reflects
 * every write acknowledged before the call. */
keel_code keel_node_read_index(keel_node* node, int wait_applied, keel_read_fn done, void* ctx,
                               keel_error* err);

/* Membership changes, leader transfer and snapshots complete with a status
 * alone (KEEL_OK or the error). */
typedef void (*keel_done_fn)(void* ctx, const keel_error* status);

/* Leader only, one change at a time; each completes once the change is
 * committed and applied here.  Add a learner (voter = 0), let it catch up,
 * then promote it.  The node being added should be opened with join. */
keel_code keel_node_add_member(keel_node* node, const keel_member* member, keel_done_fn done,
                               void* ctx, keel_error* err);
keel_code keel_node_promote_member(keel_node* node, keel_node_id id, keel_done_fn done, void* ctx,
                                   keel_error* err);
keel_code keel_node_remove_member(keel_node* node, keel_node_id id, keel_done_fn done, void* ctx,
                                  keel_error* err);
keel_code keel_node_transfer_leadership(keel_node* node, keel_node_id to, keel_done_fn done,
                                        void* ctx, keel_error* err);
/* Take a state machine snapshot now and compact the log behind it. */
keel_code keel_node_snapshot(keel_node* node, keel_done_fn done, void* ctx, keel_error* err);

typedef enum keel_role {
    KEEL_ROLE_FOLLOWER = 0,
    KEEL_ROLE_PRE_CANDIDATE = 1,
    KEEL_ROLE_CANDIDATE = 2,
    KEEL_ROLE_LEADER = 3
} keel_role;

typedef enum keel_mode {
    KEEL_MODE_SINGLE = 0, /* the only member, and leading: commit on local fsync */
    KEEL_MODE_CLUSTER = 1
} keel_mode;

/* A point-in-time view of the node (part of keel::NodeStatus). */
typedef struct keel_status {
    keel_node_id id;
    char cluster_id[33]; /* 32 hex digits and a NUL; "" until a joiner hears its cluster */
    keel_role role;
    keel_mode mode;
    uint64_t term;
    keel_node_id leader_id; /* 0 when unknown */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t first_index;
    uint64_t last_index;
    uint64_t snapshot_index;
    size_t member_count; /* voters and learners */
    size_t voter_count;
    uint64_t proposals;               /* accepted since open */
    uint64_t commits;                 /* entries applied since open */
    uint64_t elections;               /* campaigns this node started */
    int failed;                       /* nonzero once the node has fail-stopped: */
    char failure[KEEL_MESSAGE_BYTES]; /* why, naming the file where known */
} keel_status;

/* Fills *status.  Cheap, never waits for the Raft core: callable from any
 * thread, callbacks included. */
keel_code keel_node_status(const keel_node* node, keel_status* status, keel_error* err);

/* Stops the node and frees it: stops accepting calls, completes every
 * pending call with KEEL_ABORTED, stops keel's threads, closes the WAL
 * cleanly, releases every snapshot image.  No callback runs after it
 * returns.  If transfer_leadership_first and this node leads a cluster,
 * hands leadership to the most caught-up voter first (bounded wait).
 * NULL: nothing to do.  It must not run concurrently with another call on
 * the same node, nor be followed by one; from a keel callback it refuses
 * with KEEL_INVALID_ARGUMENT and leaves the node open. */
keel_code keel_node_close(keel_node* node, int transfer_leadership_first, keel_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KEEL_KEEL_C_H */
