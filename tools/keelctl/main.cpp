// keelctl — the command line for raftd clusters (docs/keelctl.md): status,
// membership, keys, leadership and snapshots over raftd's HTTP API.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "commands.hpp"

#ifndef KEELCTL_VERSION
#define KEELCTL_VERSION "dev"
#endif

namespace keel::keelctl {
namespace {

struct Globals {
    std::vector<std::string> endpoints{"http://127.0.0.1:8080"};
    std::string output;  // "", "table" or "json"
    ClientOptions client;
    double timeout_s = 5;
};

// The work a subcommand does once the command line is parsed.
using Action = std::function<int(const Session&)>;

void add_kv_commands(CLI::App& app, Action& action) {
    auto* put = app.add_subcommand("put", "Write a value (compare-and-set with --prev-*)");
    auto args = std::make_shared<PutArgs>();
    auto prev_revision = std::make_shared<std::uint64_t>(0);
    put->add_option("key", args->key, "Key")->required();
    put->add_option("value", args->value, "Value")->required();
    auto* pv = put->add_option("--prev-value", args->prev_value,
                               "Write only if the current value is this");
    auto* pr = put->add_option("--prev-revision", *prev_revision,
                               "Write only if the key's revision is this (0: only if absent)");
    put->callback([&action, args, prev_revision, pr] {
        if (pr->count() > 0) args->prev_revision = *prev_revision;
        action = [args](const Session& s) { return cmd_put(s, *args); };
    });
    (void)pv;

    auto* get = app.add_subcommand("get", "Read a key (linearizable unless --stale)");
    auto key = std::make_shared<std::string>();
    auto stale = std::make_shared<bool>(false);
    get->add_option("key", *key, "Key")->required();
    get->add_flag("--stale", *stale, "Read the node's state at once, possibly behind");
    get->callback([&action, key, stale] {
        action = [key, stale](const Session& s) { return cmd_get(s, *key, *stale); };
    });

    auto* del = app.add_subcommand("del", "Delete a key (compare-and-delete with --prev-*)");
    auto del_key = std::make_shared<std::string>();
    auto del_value = std::make_shared<std::optional<std::string>>();
    auto del_revision = std::make_shared<std::uint64_t>(0);
    del->add_option("key", *del_key, "Key")->required();
    del->add_option("--prev-value", *del_value, "Delete only if the current value is this");
    auto* dr = del->add_option("--prev-revision", *del_revision,
                               "Delete only if the key's revision is this");
    del->callback([&action, del_key, del_value, del_revision, dr] {
        std::optional<std::uint64_t> revision;
        if (dr->count() > 0) revision = *del_revision;
        action = [=](const Session& s) { return cmd_del(s, *del_key, *del_value, revision); };
    });

    auto* ls = app.add_subcommand("ls", "List keys in byte order");
    auto prefix = std::make_shared<std::string>();
    auto limit = std::make_shared<std::uint64_t>(100);
    auto ls_stale = std::make_shared<bool>(false);
    ls->add_option("prefix", *prefix, "Only keys starting with this");
    ls->add_option("--limit", *limit, "At most this many keys (1-10000)")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000));
    ls->add_flag("--stale", *ls_stale, "List the node's state at once, possibly behind");
    ls->callback([&action, prefix, limit, ls_stale] {
        action = [=](const Session& s) { return cmd_ls(s, *prefix, *limit, *ls_stale); };
    });
}

void add_cluster_commands(CLI::App& app, Action& action) {
    auto* status = app.add_subcommand(
        "status", "One row per endpoint: id, role, term, leader, progress, mode, WAL, alarms");
    status->callback([&action] { action = cmd_status; });

    auto* member = app.add_subcommand("member", "List, add, promote and remove members");
    member->require_subcommand(1);
    member->add_subcommand("list", "List the members")->callback([&action] {
        action = cmd_member_list;
    });
    auto* add = member->add_subcommand("add", "Add a member (start it first with raftd --join)");
    auto args = std::make_shared<MemberAddArgs>();
    auto timeout_s = std::make_shared<std::uint64_t>(300);
    add->add_option("id", args->id, "The new member's id (> 0)")
        ->required()
        ->check(CLI::PositiveNumber);
    add->add_option("raft", args->raft, "Its Raft address HOST:PORT")->required();
    add->add_option("http", args->http, "Its HTTP address HOST:PORT")->required();
    add->add_flag("--learner", args->learner, "Add as a learner (not counted in the quorum)");
    add->add_flag("--catch-up", args->catch_up,
                  "Add as a learner, wait until it has caught up, then promote it");
    add->add_option("--catch-up-timeout", *timeout_s, "Seconds to wait for --catch-up")
        ->capture_default_str();
    add->callback([&action, args, timeout_s] {
        args->catch_up_timeout = std::chrono::seconds(*timeout_s);
        action = [args](const Session& s) { return cmd_member_add(s, *args); };
    });
    auto id = std::make_shared<std::uint64_t>(0);
    auto* promote = member->add_subcommand("promote", "Make a learner a voter");
    promote->add_option("id", *id, "Member id")->required()->check(CLI::PositiveNumber);
    promote->callback(
        [&action, id] { action = [id](const Session& s) { return cmd_member_promote(s, *id); }; });
    auto* remove = member->add_subcommand("remove", "Remove a member");
    remove->add_option("id", *id, "Member id")->required()->check(CLI::PositiveNumber);
    remove->callback(
        [&action, id] { action = [id](const Session& s) { return cmd_member_remove(s, *id); }; });

    auto* snapshot = app.add_subcommand("snapshot", "Backups");
    snapshot->require_subcommand(1);
    auto* save = snapshot->add_subcommand(
        "save",
        "Have a node take a snapshot and download it to FILE, checked (raftd --restore takes it)");
    auto file = std::make_shared<std::string>();
    auto latest = std::make_shared<bool>(false);
    save->add_option("file", *file, "Where to write it")->required();
    save->add_flag("--latest", *latest,
                   "Download the node's latest snapshot as it is, without taking one first");
    save->callback([&action, file, latest] {
        action = [file, latest](const Session& s) { return cmd_snapshot_save(s, *file, *latest); };
    });

    auto* leader = app.add_subcommand("leader", "Leadership");
    leader->require_subcommand(1);
    auto* transfer = leader->add_subcommand("transfer", "Hand leadership to another voter");
    transfer->add_option("id", *id, "The voter to lead")->required()->check(CLI::PositiveNumber);
    transfer->callback(
        [&action, id] { action = [id](const Session& s) { return cmd_leader_transfer(s, *id); }; });
}

}  // namespace

int run(int argc, char** argv) {
    CLI::App app{"keelctl: the command line for raftd, keel's replicated key-value store"};
    app.set_version_flag("--version", KEELCTL_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    Globals g;
    app.add_option("--endpoints", g.endpoints,
                   "raftd HTTP endpoints, comma-separated; requests that need the leader are "
                   "redirected to it")
        ->delimiter(',')
        ->envname("KEEL_ENDPOINTS")
        ->capture_default_str();
    app.add_option("--token", g.client.token, "Bearer token for raftd --auth-tokens")
        ->envname("KEEL_TOKEN");
    app.add_option("--cacert", g.client.cacert, "CA certificate (PEM) to verify https endpoints")
        ->check(CLI::ExistingFile);
    app.add_option("--cert", g.client.cert, "Client certificate (PEM) for --http-client-ca")
        ->check(CLI::ExistingFile);
    app.add_option("--key", g.client.key, "The client certificate's private key (PEM)")
        ->check(CLI::ExistingFile);
    app.add_option("-o,--output", g.output, "table or json (default: table on a terminal)")
        ->check(CLI::IsMember({"table", "json"}));
    app.add_option("--timeout", g.timeout_s, "Seconds to wait for each request")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    Action action;
    add_cluster_commands(app, action);
    add_kv_commands(app, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    std::vector<Url> endpoints;
    for (const std::string& text : g.endpoints) {
        Result<Url> url = parse_url(text);
        if (!url.ok()) {
            std::cerr << "keelctl: --endpoints " << url.status().message() << '\n';
            return kExitUsage;
        }
        endpoints.push_back(*url);
    }
    if (endpoints.empty()) {
        std::cerr << "keelctl: --endpoints is empty\n";
        return kExitUsage;
    }
    g.client.timeout = std::chrono::milliseconds(static_cast<long long>(g.timeout_s * 1000));
    const bool tty = isatty(STDOUT_FILENO) == 1;
    const Format format = g.output.empty()     ? (tty ? Format::table : Format::json)
                          : g.output == "json" ? Format::json
                                               : Format::table;
    Session session(HttpClient(g.client), std::move(endpoints), format, isatty(STDERR_FILENO) == 1,
                    std::cout, std::cerr);
    return action(session);
}

}  // namespace keel::keelctl

int main(int argc, char** argv) {
    return keel::keelctl::run(argc, argv);
}
