// keelctl status, member ..., leader transfer.
#include <ostream>
#include <thread>

#include <fmt/format.h>

#include "commands.hpp"

namespace keel::keelctl {
namespace {

std::string text_of(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return "-";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::uint64_t u64_of(const json& j, const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string latency_p50(const json& status) {
    auto it = status.find("fsync_latency");
    if (it == status.end() || !it->is_object() || u64_of(*it, "count") == 0) return "-";
    auto p50 = it->find("p50_us");
    if (p50 == it->end() || !p50->is_number()) return "-";
    return fmt::format("{} us", static_cast<long long>(p50->get<double>() + 0.5));
}

std::string alarms_of(const json& status) {
    auto it = status.find("alarms");
    if (it == status.end() || !it->is_array() || it->empty()) return "-";
    std::string text;
    for (const json& alarm : *it) {
        if (!text.empty()) text += ",";
        text += alarm.is_string() ? alarm.get<std::string>() : alarm.dump();
    }
    return text;
}

std::vector<std::string> status_row(const std::string& endpoint, const json& s) {
    const std::uint64_t leader = u64_of(s, "leader_id");
    return {endpoint,
            text_of(s, "id"),
            text_of(s, "role"),
            text_of(s, "term"),
            leader == 0 ? "none" : std::to_string(leader),
            text_of(s, "commit_index"),
            text_of(s, "applied_index"),
            text_of(s, "mode"),
            s.contains("wal") ? human_bytes(u64_of(s["wal"], "bytes")) : "-",
            latency_p50(s),
            alarms_of(s)};
}

// The member's entry in a status or members answer, or null.
json find_member(const json& body, std::uint64_t id) {
    auto it = body.find("members");
    if (it == body.end() || !it->is_array()) return nullptr;
    for (const json& m : *it) {
        if (u64_of(m, "id") == id) return m;
    }
    return nullptr;
}

int member_change(const Session& session, std::string_view method, const std::string& target,
                  const std::string& body, const std::string& done) {
    return session.finish(session.call_any(method, target, body),
                          [&](const json&) { session.out() << done << '\n'; });
}

// Polls the leader until member `id` holds every entry up to `target`.
// Returns kExitOk once it does.
int wait_caught_up(const Session& session, const Url& leader, std::uint64_t id,
                   std::uint64_t target, std::chrono::seconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::uint64_t shown = ~0ull;
    for (;;) {
        Result<Response> answer = session.client().call(leader, "GET", "/v1/status");
        if (!answer.ok()) answer = session.call_any("GET", "/v1/status");
        if (answer.ok() && answer->status == 200) {
            const json status = parse_body(*answer);
            const json member = find_member(status, id);
            const std::uint64_t match = member.is_null() ? 0 : u64_of(member, "match_index");
            if (member.is_null())
                return session.fail(kExitRefused, fmt::format("node {} is no longer a member", id));
            if (session.tty() && match != shown) {
                const std::uint64_t percent =
                    target == 0 ? 100 : std::min<std::uint64_t>(100, match * 100 / target);
                session.err() << "\rcatching up: " << match << " / " << target << " (" << percent
                              << "%)   " << std::flush;
                shown = match;
            }
            if (match >= target) {
                if (session.tty()) session.err() << '\n';
                return kExitOk;
            }
        }
        if (std::chrono::steady_clock::now() >= until) {
            if (session.tty()) session.err() << '\n';
            return session.fail(
                kExitUnavailable,
                fmt::format(
                    "node {} has not caught up within {} s; it stays a learner (check that it "
                    "runs with --join and can reach the leader, then run: keelctl member "
                    "promote {})",
                    id, timeout.count(), id));
        }
        // Polling the leader's progress: the one wait of this command.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

}  // namespace

int cmd_status(const Session& session) {
    Table table{{"ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "MODE", "WAL",
                 "FSYNC P50", "ALARMS"},
                {}};
    json all = json::array();
    int code = kExitOk;
    for (const Url& endpoint : session.endpoints()) {
        const std::string name = endpoint.origin();
        Result<Response> answer = session.client().send(endpoint, "GET", "/v1/status");
        std::string problem;
        if (!answer.ok()) {
            problem = "unreachable: " + answer.status().message();
            code = std::max(code, kExitUnreachable);
        } else if (answer->status != 200) {
            const json body = parse_body(*answer);
            problem = fmt::format("HTTP {}{}", answer->status,
                                  body.is_object() ? " " + body.value("error", std::string()) : "");
            code = std::max(code, exit_code_for_status(answer->status));
        }
        if (!problem.empty()) {
            session.err() << "keelctl: " << name << ": " << problem << '\n';
            all.push_back({{"endpoint", name}, {"error", problem}});
            std::vector<std::string> row(table.header.size(), "");
            row[0] = name;
            row[1] = problem;
            table.rows.push_back(row);
            continue;
        }
        const json status = parse_body(*answer);
        all.push_back({{"endpoint", name}, {"status", status}});
        table.rows.push_back(status_row(name, status));
    }
    if (session.format() == Format::json) {
        session.out() << all.dump() << '\n';
    } else {
        print_table(session.out(), table);
    }
    return code;
}

int cmd_member_list(const Session& session) {
    return session.finish(session.call_any("GET", "/v1/members"), [&](const json& body) {
        const std::uint64_t leader = u64_of(body, "leader_id");
        Table table{{"ID", "ROLE", "RAFT", "HTTP", "LEADER", "MATCH"}, {}};
        for (const json& m : body.value("members", json::array())) {
            table.rows.push_back({text_of(m, "id"), text_of(m, "role"), text_of(m, "raft"),
                                  text_of(m, "http"), u64_of(m, "id") == leader ? "*" : "",
                                  text_of(m, "match_index")});
        }
        print_table(session.out(), table);
    });
}

int cmd_member_add(const Session& session, const MemberAddArgs& args) {
    const json request = {{"id", args.id},
                          {"raft", args.raft},
                          {"http", args.http},
                          {"role", args.learner || args.catch_up ? "learner" : "voter"}};
    Result<Response> added = session.call_any("POST", "/v1/members", request.dump());
    if (!args.catch_up || !added.ok() || added->status != 200) {
        return session.finish(added, [&](const json&) {
            session.out() << "added node " << args.id << " as a "
                          << (args.learner ? "learner" : "voter") << '\n';
        });
    }
    // The target: what the leader had committed once the learner was in.
    Result<Url> leader = parse_url(added->origin);
    if (!leader.ok()) return session.fail(kExitUnavailable, leader.status().message());
    Result<Response> status = session.client().call(*leader, "GET", "/v1/status");
    if (!status.ok() || status->status != 200) return session.finish(status, [](const json&) {});
    const std::uint64_t target = u64_of(parse_body(*status), "commit_index");
    if (session.format() == Format::table)
        session.out() << "added node " << args.id << " as a learner; waiting for it to catch up"
                      << '\n';
    if (int code = wait_caught_up(session, *leader, args.id, target, args.catch_up_timeout);
        code != kExitOk)
        return code;
    return member_change(session, "POST", fmt::format("/v1/members/{}/promote", args.id), "",
                         fmt::format("node {} caught up and is now a voter", args.id));
}

int cmd_member_promote(const Session& session, std::uint64_t id) {
    return member_change(session, "POST", fmt::format("/v1/members/{}/promote", id), "",
                         fmt::format("promoted node {} to voter", id));
}

int cmd_member_remove(const Session& session, std::uint64_t id) {
    return member_change(session, "DELETE", fmt::format("/v1/members/{}", id), "",
                         fmt::format("removed node {}", id));
}

int cmd_leader_transfer(const Session& session, std::uint64_t to) {
    Result<Response> answer =
        session.call_any("POST", "/v1/leader/transfer", json{{"to", to}}.dump());
    // Refused because `to` leads already (an election may have made it the
    // leader since the caller looked): what was asked for holds, so success.
    if (answer.ok() && answer->status == 400) {
        Result<Response> status = session.call_any("GET", "/v1/status");
        if (status.ok() && status->status == 200 &&
            u64_of(parse_body(*status), "leader_id") == to) {
            if (session.format() == Format::json)
                session.out() << json{{"transferred_to", to}, {"already_leader", true}}.dump()
                              << '\n';
            else
                session.out() << "node " << to << " is the leader already\n";
            return kExitOk;
        }
    }
    return session.finish(answer, [&](const json&) {
        session.out() << "leadership transferred to node " << to << '\n';
    });
}

}  // namespace keel::keelctl
