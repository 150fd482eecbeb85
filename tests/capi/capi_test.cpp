// The C API (keel/keel_c.h) end to end on real single nodes: errors as
// codes with messages, the state machine callbacks (apply and results,
// two-step snapshots with every image released, restore at reopen, their
// errors), completions called exactly once (also those pending at close),
// close refused from a callback, membership, status, logger.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/temp_dir.hpp"
#include "keel/keel_c.h"

using keel::test::TempDir;

namespace {

// Small segments: preallocating keel's default 64 MiB ones costs seconds here.
constexpr std::uint64_t kSegmentBytes = 1 << 20;

// The application: a log of applied entries; results are "ok:<data>".
struct App {
    std::mutex mu;
    std::vector<std::string> applied;
    std::string restored;
    int restores = 0;
    std::atomic<int> captures{0};
    std::atomic<int> releases{0};
    std::atomic<int> writes{0};
    keel_code write_fails_with = KEEL_OK;
    keel_code restore_fails_with = KEEL_OK;
    bool results_out_of_range_refused = false;
};

void app_apply(void* ctx, const keel_entry* entries, size_t count, keel_results* results) {
    App* app = static_cast<App*>(ctx);
    std::lock_guard lock(app->mu);
    for (size_t i = 0; i < count; ++i) {
        std::string data(static_cast<const char*>(entries[i].data), entries[i].len);
        app->applied.push_back(data);
        const std::string result = "ok:" + data;
        REQUIRE(keel_results_set(results, i, result.data(), result.size()) == KEEL_OK);
    }
    app->results_out_of_range_refused =
        keel_results_set(results, count, "x", 1) == KEEL_INVALID_ARGUMENT;
}

// The image is a copy of the applied entries, joined.
void* app_capture(void* ctx) {
    App* app = static_cast<App*>(ctx);
    app->captures++;
    std::lock_guard lock(app->mu);
    std::string joined;
    for (const std::string& e : app->applied) joined += e + "\n";
    return new std::string(joined);
}

keel_code app_write(void* ctx, void* image, keel_snapshot_writer* writer, keel_error* err) {
    App* app = static_cast<App*>(ctx);
    app->writes++;
    if (app->write_fails_with != KEEL_OK) {
        keel_error_set(err, app->write_fails_with, "the application's disk is on fire");
        return app->write_fails_with;
    }
    const std::string* bytes = static_cast<const std::string*>(image);
    if (bytes == nullptr) {  // no capture step: read the state directly
        std::lock_guard lock(app->mu);
        std::string joined;
        for (const std::string& e : app->applied) joined += e + "\n";
        return keel_snapshot_write(writer, joined.data(), joined.size(), err);
    }
    return keel_snapshot_write(writer, bytes->data(), bytes->size(), err);
}

void app_release(void* ctx, void* image) {
    static_cast<App*>(ctx)->releases++;
    delete static_cast<std::string*>(image);
}

keel_code app_restore(void* ctx, keel_snapshot_reader* reader, keel_error* err) {
    App* app = static_cast<App*>(ctx);
    if (app->restore_fails_with != KEEL_OK) {
        keel_error_set(err, app->restore_fails_with, "restore refused by the application");
        return app->restore_fails_with;
    }
    std::string all;
    char buffer[7];  // small: several reads
    for (;;) {
        size_t n = 0;
        if (keel_code c = keel_snapshot_read(reader, buffer, sizeof buffer, &n, err); c != KEEL_OK)
            return c;
        if (n == 0) break;
        all.append(buffer, n);
    }
    REQUIRE(all.size() == keel_snapshot_size(reader));
    std::lock_guard lock(app->mu);
    app->restored = all;
    app->restores++;
    return KEEL_OK;
}

keel_state_machine callbacks(App& app, bool two_step = true) {
    keel_state_machine sm{};
    sm.ctx = &app;
    sm.apply = app_apply;
    sm.snapshot_capture = two_step ? app_capture : nullptr;
    sm.snapshot_write = app_write;
    sm.snapshot_release = two_step ? app_release : nullptr;
    sm.restore = app_restore;
    return sm;
}

keel_options options_for(const std::string& data_dir) {
    keel_options o;
    keel_options_init(&o);
    o.id = 1;
    o.data_dir = data_dir.c_str();
    o.wal_segment_bytes = kSegmentBytes;
    return o;
}

keel_node* open_node(const keel_options& o, const keel_state_machine& sm) {
    keel_node* node = nullptr;
    keel_error err;
    const keel_code code = keel_node_open(&o, &sm, &node, &err);
    INFO(err.message);
    REQUIRE(code == KEEL_OK);
    REQUIRE(node != nullptr);
    return node;
}

// What a completion delivered, and how many times.
struct Proposed {
    std::atomic<int> calls{0};
    std::promise<void> done;
    keel_code code = KEEL_OK;
    std::string message;
    std::uint64_t index = 0;
    std::string result;
    keel_node_id leader_hint = 0;
};

void on_proposed(void* ctx, const keel_propose_result* r) {
    Proposed* p = static_cast<Proposed*>(ctx);
    p->code = r->status.code;
    p->message = r->status.message;
    p->index = r->index;
    p->result.assign(static_cast<const char*>(r->result), r->result_len);
    p->leader_hint = r->leader_hint;
    if (p->calls++ == 0) p->done.set_value();
}

Proposed& propose(keel_node* node, const std::string& data, Proposed& p) {
    keel_error err;
    REQUIRE(keel_node_propose(node, data.data(), data.size(), on_proposed, &p, &err) == KEEL_OK);
    p.done.get_future().wait();
    return p;
}

struct Done {
    std::promise<keel_error> status;
};

void on_done(void* ctx, const keel_error* status) {
    static_cast<Done*>(ctx)->status.set_value(*status);
}

keel_error wait_done(keel_code started, Done& d) {
    REQUIRE(started == KEEL_OK);
    return d.status.get_future().get();
}

void close_node(keel_node* node) {
    keel_error err;
    REQUIRE(keel_node_close(node, 0, &err) == KEEL_OK);
}

}  // namespace

TEST_CASE("C API: bad arguments are refused with a code and a message") {
    TempDir dir;
    App app;
    keel_state_machine sm = callbacks(app);
    keel_options o = options_for(dir.path());
    keel_node* node = reinterpret_cast<keel_node*>(&app);  // overwritten with NULL on failure
    keel_error err;

    CHECK(keel_node_open(nullptr, &sm, &node, &err) == KEEL_INVALID_ARGUMENT);
    CHECK(node == nullptr);
    CHECK(err.code == KEEL_INVALID_ARGUMENT);
    CHECK_THAT(err.message, Catch::Contains("NULL"));

    keel_state_machine no_apply = sm;
    no_apply.apply = nullptr;
    CHECK(keel_node_open(&o, &no_apply, &node, &err) == KEEL_INVALID_ARGUMENT);
    CHECK_THAT(err.message, Catch::Contains("apply, snapshot_write and restore are required"));

    keel_options no_dir = o;
    no_dir.data_dir = nullptr;
    CHECK(keel_node_open(&no_dir, &sm, &node, nullptr) == KEEL_INVALID_ARGUMENT);  // err optional

    // An error from keel itself: bootstrap members that leave this node out.
    keel_member other{2, "127.0.0.1:7002", nullptr, 0, 1};
    keel_options not_member = o;
    not_member.initial_members = &other;
    not_member.initial_member_count = 1;
    CHECK(keel_node_open(&not_member, &sm, &node, &err) == KEEL_INVALID_ARGUMENT);
    CHECK_THAT(err.message, Catch::Contains("initial_members must include this node"));
    CHECK(node == nullptr);

    CHECK(keel_node_propose(nullptr, "x", 1, on_proposed, nullptr, &err) == KEEL_INVALID_ARGUMENT);
    CHECK(keel_node_close(nullptr, 0, &err) == KEEL_OK);

    CHECK(std::string(keel_code_name(KEEL_NOT_LEADER)) == "not_leader");
    CHECK(std::string(keel_code_name(KEEL_NO_SPACE)) == "no_space");
    CHECK(std::string(keel_code_name(KEEL_INTERNAL)) == "internal");
    CHECK(std::string(keel_code_name(static_cast<keel_code>(99))) == "unknown");

    const std::string long_message(1000, 'm');
    keel_error_set(&err, KEEL_BUSY, long_message.c_str());
    CHECK(err.code == KEEL_BUSY);
    CHECK(std::strlen(err.message) == KEEL_MESSAGE_BYTES - 1);
    keel_error_set(&err, KEEL_OK, nullptr);
    CHECK(err.message[0] == '\0');
}

TEST_CASE("C API: propose applies through the callbacks and returns the result") {
    TempDir dir;
    App app;
    keel_state_machine sm = callbacks(app);
    keel_options o = options_for(dir.path());
    std::vector<std::string> lines;
    std::mutex lines_mu;
    o.logger = [](void* ctx, keel_log_level, const char* line) {
        auto* l = static_cast<std::pair<std::mutex*, std::vector<std::string>*>*>(ctx);
        std::lock_guard lock(*l->first);
        l->second->push_back(line);
    };
    std::pair<std::mutex*, std::vector<std::string>*> log_ctx{&lines_mu, &lines};
    o.logger_ctx = &log_ctx;
    keel_node* node = open_node(o, sm);

    Proposed p;
    propose(node, std::string("a\0b", 3), p);
    CHECK(p.calls == 1);
    CHECK(p.code == KEEL_OK);
    CHECK(p.message.empty());
    CHECK(p.index == 3);  // after the bootstrap configuration and the noop
    CHECK(p.result == std::string("ok:a\0b", 6));
    CHECK(app.results_out_of_range_refused);

    Proposed empty;
    propose(node, "", empty);
    CHECK(empty.code == KEEL_OK);
    CHECK(empty.result == "ok:");

    Done read;
    keel_error err;
    keel_error status = wait_done(
        keel_node_read_index(
            node, 1, [](void* ctx, const keel_read_result* r) { on_done(ctx, &r->status); }, &read,
            &err),
        read);
    CHECK(status.code == KEEL_OK);

    keel_status st;
    REQUIRE(keel_node_status(node, &st, &err) == KEEL_OK);
    CHECK(st.id == 1);
    CHECK(st.role == KEEL_ROLE_LEADER);
    CHECK(st.mode == KEEL_MODE_SINGLE);
    CHECK(st.leader_id == 1);
    CHECK(st.commit_index == 4);
    CHECK(st.member_count == 1);
    CHECK(st.voter_count == 1);
    CHECK(std::strlen(st.cluster_id) == 32);
    CHECK(st.failed == 0);
    close_node(node);
    {
        std::lock_guard lock(lines_mu);
        CHECK_FALSE(lines.empty());  // role changes are logged at info
    }
    CHECK(app.applied == std::vector<std::string>{std::string("a\0b", 3), ""});
}

TEST_CASE("C API: two-step snapshots release every image; reopen restores through restore") {
    TempDir dir;
    {
        App app;
        keel_state_machine sm = callbacks(app);
        keel_node* node = open_node(options_for(dir.path()), sm);
        for (int i = 0; i < 5; ++i) {
            Proposed p;
            propose(node, "entry" + std::to_string(i), p);
        }
        Done snap;
        keel_error status = wait_done(keel_node_snapshot(node, on_done, &snap, nullptr), snap);
        CHECK(status.code == KEEL_OK);
        close_node(node);
        CHECK(app.captures >= 1);
        CHECK(app.writes == app.captures);
        CHECK(app.releases == app.captures);  // every image, by close at the latest
    }
    App reopened;
    keel_state_machine sm = callbacks(reopened);
    keel_node* node = open_node(options_for(dir.path()), sm);
    CHECK(reopened.restores == 1);
    CHECK(reopened.restored == "entry0\nentry1\nentry2\nentry3\nentry4\n");
    CHECK(reopened.applied.empty());  // everything was in the snapshot
    close_node(node);
}

TEST_CASE("C API: a one-step snapshot is written between applies") {
    TempDir dir;
    App app;
    keel_state_machine sm = callbacks(app, /*two_step=*/false);
    keel_node* node = open_node(options_for(dir.path()), sm);
    Proposed p;
    propose(node, "only", p);
    Done snap;
    CHECK(wait_done(keel_node_snapshot(node, on_done, &snap, nullptr), snap).code == KEEL_OK);
    CHECK(app.writes == 1);
    close_node(node);

    App reopened;
    keel_state_machine again = callbacks(reopened, false);
    node = open_node(options_for(dir.path()), again);
    CHECK(reopened.restored == "only\n");
    close_node(node);
}

TEST_CASE("C API: callback errors reach the caller with their code and message") {
    TempDir dir;
    {
        App app;
        app.write_fails_with = KEEL_IO_ERROR;
        keel_state_machine sm = callbacks(app);
        keel_node* node = open_node(options_for(dir.path()), sm);
        Proposed p;
        propose(node, "x", p);
        Done snap;
        keel_error status = wait_done(keel_node_snapshot(node, on_done, &snap, nullptr), snap);
        CHECK(status.code != KEEL_OK);
        CHECK_THAT(status.message, Catch::Contains("the application's disk is on fire"));
        // The failed snapshot is dropped; a new request, with nothing applied
        // since, takes a good one (the reopen below restores it).
        app.write_fails_with = KEEL_OK;
        Done good;
        CHECK(wait_done(keel_node_snapshot(node, on_done, &good, nullptr), good).code == KEEL_OK);
        close_node(node);
        CHECK(app.releases == app.captures);
    }
    App refusing;
    refusing.restore_fails_with = KEEL_CORRUPTION;
    keel_state_machine sm = callbacks(refusing);
    keel_options o = options_for(dir.path());
    keel_node* node = nullptr;
    keel_error err;
    CHECK(keel_node_open(&o, &sm, &node, &err) != KEEL_OK);
    CHECK(node == nullptr);
    CHECK_THAT(err.message, Catch::Contains("restore refused by the application"));
}

TEST_CASE("C API: close completes every pending call once, and is refused from a callback") {
    TempDir dir;
    App app;
    keel_state_machine sm = callbacks(app);
    keel_node* node = open_node(options_for(dir.path()), sm);

    // close from inside a completion: refused, and the node goes on.
    struct Inside {
        keel_node* node = nullptr;
        keel_code close_code = KEEL_OK;
        std::promise<void> done;
    } inside;
    inside.node = node;
    keel_error err;
    REQUIRE(keel_node_propose(
                node, "x", 1,
                [](void* ctx, const keel_propose_result*) {
                    auto* in = static_cast<Inside*>(ctx);
                    in->close_code = keel_node_close(in->node, 0, nullptr);
                    in->done.set_value();
                },
                &inside, &err) == KEEL_OK);
    inside.done.get_future().wait();
    CHECK(inside.close_code == KEEL_INVALID_ARGUMENT);
    Proposed after;
    CHECK(propose(node, "still open", after).code == KEEL_OK);

    // Many proposals in flight, then close: each completion runs exactly once.
    constexpr int kInFlight = 500;
    std::vector<Proposed> pending(kInFlight);
    for (Proposed& p : pending)
        REQUIRE(keel_node_propose(node, "p", 1, on_proposed, &p, nullptr) == KEEL_OK);
    close_node(node);
    int ok = 0;
    for (Proposed& p : pending) {
        REQUIRE(p.calls == 1);
        CHECK((p.code == KEEL_OK || p.code == KEEL_ABORTED));
        ok += p.code == KEEL_OK ? 1 : 0;
    }
    INFO("applied before close: " << ok);
}

TEST_CASE("C API: membership changes and a follower's not_leader") {
    TempDir dir;
    App app;
    keel_state_machine sm = callbacks(app);
    keel_options o = options_for(dir.path());
    o.listen_address = "127.0.0.1:0";
    keel_node* node = open_node(o, sm);

    const char meta[] = "http://127.0.0.1:8002";
    keel_member learner{2, "127.0.0.1:1", meta, sizeof meta - 1, 0};
    Done added;
    keel_error err;
    CHECK(wait_done(keel_node_add_member(node, &learner, on_done, &added, &err), added).code ==
          KEEL_OK);
    keel_status st;
    REQUIRE(keel_node_status(node, &st, &err) == KEEL_OK);
    CHECK(st.member_count == 2);
    CHECK(st.voter_count == 1);

    Done unknown;
    keel_error refused =
        wait_done(keel_node_promote_member(node, 9, on_done, &unknown, &err), unknown);
    CHECK(refused.code != KEEL_OK);
    CHECK(refused.message[0] != '\0');

    Done removed;
    CHECK(wait_done(keel_node_remove_member(node, 2, on_done, &removed, &err), removed).code ==
          KEEL_OK);
    REQUIRE(keel_node_status(node, &st, &err) == KEEL_OK);
    CHECK(st.member_count == 1);
    close_node(node);

    // A joiner that no leader has added: a follower, refusing at once.
    TempDir joiner_dir;
    App joiner_app;
    keel_state_machine joiner_sm = callbacks(joiner_app);
    keel_options j = options_for(joiner_dir.path());
    j.id = 5;
    j.listen_address = "127.0.0.1:0";
    j.join = 1;
    keel_node* joiner = open_node(j, joiner_sm);
    Proposed p;
    propose(joiner, "x", p);
    CHECK(p.calls == 1);
    CHECK(p.code == KEEL_NOT_LEADER);
    CHECK(p.leader_hint == 0);
    REQUIRE(keel_node_status(joiner, &st, &err) == KEEL_OK);
    CHECK(st.role == KEEL_ROLE_FOLLOWER);
    CHECK(st.cluster_id[0] == '\0');
    close_node(joiner);
}
