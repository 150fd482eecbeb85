// keelctl put, get, del, ls.
#include <ostream>

#include <fmt/format.h>

#include "commands.hpp"

namespace keel::keelctl {
namespace {

std::string revision_of(const json& body) {
    auto it = body.find("revision");
    return it != body.end() && it->is_number_unsigned() ? std::to_string(it->get<std::uint64_t>())
                                                        : "-";
}

std::string conditions(const std::optional<std::string>& prev_value,
                       const std::optional<std::uint64_t>& prev_revision) {
    std::string query;
    if (prev_value) query += "prev_value=" + encode_query(*prev_value);
    if (prev_revision) {
        if (!query.empty()) query += "&";
        query += fmt::format("prev_revision={}", *prev_revision);
    }
    return query;
}

}  // namespace

int cmd_put(const Session& session, const PutArgs& args) {
    json body = {{"value", args.value}};
    if (args.prev_value) body["prev_value"] = *args.prev_value;
    if (args.prev_revision) body["prev_revision"] = *args.prev_revision;
    return session.finish(session.call_any("PUT", "/v1/kv/" + encode_path(args.key), body.dump()),
                          [&](const json& answer) {
                              session.out() << "OK (revision " << revision_of(answer) << ")\n";
                          });
}

int cmd_get(const Session& session, const std::string& key, bool stale) {
    const std::string target = "/v1/kv/" + encode_path(key) + (stale ? "?consistency=stale" : "");
    return session.finish(session.call_any("GET", target), [&](const json& answer) {
        print_table(session.out(), {{"KEY", "VALUE", "REVISION"},
                                    {{answer.value("key", key),
                                      answer.value("value", std::string()), revision_of(answer)}}});
    });
}

int cmd_del(const Session& session, const std::string& key,
            const std::optional<std::string>& prev_value,
            const std::optional<std::uint64_t>& prev_revision) {
    const std::string query = conditions(prev_value, prev_revision);
    const std::string target = "/v1/kv/" + encode_path(key) + (query.empty() ? "" : "?" + query);
    return session.finish(session.call_any("DELETE", target), [&](const json& answer) {
        session.out() << "OK (revision " << revision_of(answer) << ")\n";
    });
}

int cmd_ls(const Session& session, const std::string& prefix, std::uint64_t limit, bool stale) {
    std::string target = fmt::format("/v1/kv?prefix={}&limit={}", encode_query(prefix), limit);
    if (stale) target += "&consistency=stale";
    return session.finish(session.call_any("GET", target), [&](const json& answer) {
        Table table{{"KEY", "REVISION"}, {}};
        for (const json& k : answer.value("keys", json::array()))
            table.rows.push_back({k.value("key", std::string()), revision_of(k)});
        print_table(session.out(), table);
        if (answer.value("truncated", false))
            session.err() << "(more keys match; raise --limit to see them)\n";
    });
}

}  // namespace keel::keelctl
