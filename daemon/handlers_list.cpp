// GET /v1/kv?prefix=&limit=[&consistency=][&groups=]: the first `limit` keys
// with `prefix`, in byte order (docs/api.md, "List").
//
// With --groups the keys are in many groups.  A stale list reads every
// group's map here.  A linearizable one needs a ReadIndex barrier of every
// group, which only the group's leader can give: this member takes the
// barriers of the groups it leads (all at once), and asks each other member
// that leads some, once, for those groups' part (`groups=`: a part served
// only by the groups' leader, never forwarded again, so a list never goes
// round the members); then every part is merged in byte order.
// "Linearizable" for such a list: each group's part is linearizable at a
// point after the request arrived (every write acknowledged before the
// request is in it), but the parts are not one snapshot across groups: a
// write acknowledged while the list runs may be in one group's part and a
// later one in another group's not, or the other way round.
//
// Bounds: each part holds at most `limit` keys, and at most 2 * limit keys
// are merged at a time; the other members' answers are validated (they come
// from outside the process).
#include <algorithm>
#include <iterator>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "errors.hpp"
#include "handlers.hpp"

namespace keel::daemon {
namespace {

using nlohmann::json;

// Keys with their revision, in byte order, and whether more matched.
struct Listing {
    std::vector<std::pair<std::string, std::uint64_t>> items;
    bool truncated = false;
};

// `part` merged into `into`, keeping the first `limit`.
void merge_into(Listing& into, Listing part, std::size_t limit) {
    std::vector<std::pair<std::string, std::uint64_t>> both;
    both.reserve(into.items.size() + part.items.size());
    std::merge(
        std::make_move_iterator(into.items.begin()), std::make_move_iterator(into.items.end()),
        std::make_move_iterator(part.items.begin()), std::make_move_iterator(part.items.end()),
        std::back_inserter(both), [](const auto& a, const auto& b) { return a.first < b.first; });
    into.truncated = into.truncated || part.truncated || both.size() > limit;
    if (both.size() > limit) both.resize(limit);
    into.items = std::move(both);
}

// The first `limit` keys with `prefix` of `groups`' maps, read now.
Listing list_maps(const std::vector<KvGroup>& groups, const std::string& prefix,
                  std::size_t limit) {
    Listing merged;
    for (const KvGroup& group : groups) {
        KvListing listing = group.kv->list(prefix, limit);
        Listing part;
        part.truncated = listing.truncated;
        part.items.reserve(listing.items.size());
        for (auto& [key, value] : listing.items) part.items.emplace_back(key, value.revision);
        merge_into(merged, std::move(part), limit);
    }
    return merged;
}

HttpResponse listing_response(const Listing& listing) {
    json keys = json::array();
    for (const auto& [key, revision] : listing.items)
        keys.push_back({{"key", key}, {"revision", revision}});
    return json_response(200, json{{"keys", std::move(keys)},
                                   {"count", listing.items.size()},
                                   {"truncated", listing.truncated}}
                                  .dump(-1, ' ', false, json::error_handler_t::replace));
}

// `groups=G1,G2,...`: strictly increasing ids in 1..N.  nullopt after
// answering 400.
std::optional<std::vector<KvGroup>> groups_query(const HandlerContext& context,
                                                 const std::string& text, Respond& respond) {
    std::vector<KvGroup> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        const std::size_t comma = std::min(text.find(',', at), text.size());
        std::optional<std::uint64_t> id = parse_u64(std::string_view(text).substr(at, comma - at));
        if (!id || *id == 0 || *id > context.groups.size() ||
            (!out.empty() && *id <= out.back().id)) {
            respond(error_response(
                400, "bad_request",
                fmt::format("groups must be increasing group ids in 1..{}, comma-separated",
                            context.groups.size())));
            return std::nullopt;
        }
        out.push_back(context.groups[*id - 1]);
        at = comma + 1;
    }
    return out;
}

// ReadIndex barriers of `groups` at once (each waits until this member
// applied its read index); `done` once all answered, with the first
// refusal and its group, on the keel thread of the last answer.
void barriers(const std::vector<KvGroup>& groups,
              std::function<void(std::optional<ReadResult>, KvGroup)> done) {
    if (groups.empty()) return done(std::nullopt, KvGroup{});
    struct State {
        std::mutex mu;
        std::size_t waiting = 0;            // GUARDED_BY(mu)
        std::optional<ReadResult> refusal;  // GUARDED_BY(mu): the first one
        KvGroup refused_group;              // GUARDED_BY(mu)
    };
    auto state = std::make_shared<State>();
    state->waiting = groups.size();
    for (const KvGroup& group : groups) {
        group.node->read_index_async(true, [group, state, done](ReadResult result) {
            {
                std::lock_guard lock(state->mu);
                if (!result.status.ok() && !state->refusal) {
                    state->refusal = result;
                    state->refused_group = group;
                }
                if (--state->waiting != 0) return;
            }
            done(state->refusal, state->refused_group);
        });
    }
}

// The answer to a refused barrier of a part this member serves.
HttpResponse refusal_response(const ReadResult& refusal, const KvGroup& group) {
    if (refusal.status.code() == ErrorCode::not_leader)
        return error_response(503, "not_leader",
                              fmt::format("group {} is not led by this member", group.id));
    return error_from_status(refusal.status);
}

struct ListQuery {
    std::string prefix;
    std::size_t limit = 0;
};

// Another member's part (`groups`), validated: a 200 whose keys are in
// order, at most `limit`, with the prefix and in the groups asked; an error
// answer (passed on when it is a retryable 429 or 503, else 502).
Result<Listing> parse_part(const Result<HttpAnswer>& answer, const ListQuery& query,
                           const std::set<GroupId>& asked, std::size_t group_count) {
    if (!answer.ok()) return answer.status();
    if (answer->status != 200)
        return Status(answer->status == 429 ? ErrorCode::busy : ErrorCode::aborted,
                      fmt::format("answered {}: {}", answer->status, answer->body.substr(0, 200)));
    json body = json::parse(answer->body, nullptr, false);
    auto bad = [](const char* what) {
        return Status(ErrorCode::corruption, fmt::format("its part is not a listing: {}", what));
    };
    if (!body.is_object()) return bad("not a JSON object");
    auto keys = body.find("keys");
    auto truncated = body.find("truncated");
    if (keys == body.end() || !keys->is_array()) return bad("no \"keys\" array");
    if (truncated == body.end() || !truncated->is_boolean()) return bad("no \"truncated\"");
    if (keys->size() > query.limit) return bad("more keys than the limit");
    Listing part;
    part.truncated = truncated->get<bool>();
    for (const json& item : *keys) {
        auto key = item.find("key");
        auto revision = item.find("revision");
        if (!item.is_object() || key == item.end() || !key->is_string() || revision == item.end() ||
            !revision->is_number_unsigned())
            return bad("a key without \"key\" and \"revision\"");
        std::string k = key->get<std::string>();
        if (k.compare(0, query.prefix.size(), query.prefix) != 0)
            return bad("a key off the prefix");
        if (asked.count(group_of_key(k, group_count)) == 0) return bad("a key of another group");
        if (!part.items.empty() && k <= part.items.back().first) return bad("keys out of order");
        part.items.emplace_back(std::move(k), revision->get<std::uint64_t>());
    }
    return part;
}

std::string percent_encoded(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out += fmt::format("%{:02X}", c);
        }
    }
    return out;
}

// A linearizable list across groups: the parts of the groups led here and
// of each other leader's groups, merged once all have answered.
void list_everywhere(HandlerContext& context, const RouteRequest& request, const ListQuery& query,
                     Respond respond) {
    std::vector<KvGroup> here;
    std::map<std::string, std::vector<KvGroup>> elsewhere;  // by the leader's HTTP address
    for (const KvGroup& group : context.groups) {
        const NodeStatus status = group.node->status();
        if (status.role == Role::leader) {
            here.push_back(group);
            continue;
        }
        std::string address;
        if (status.leader_id != 0)
            if (Result<MemberSpec> spec = group.node->member(status.leader_id); spec.ok())
                address = spec->metadata;
        if (address.empty()) {
            HttpResponse answer = error_response(
                503, "no_leader",
                fmt::format("group {} has no known leader; retry shortly", group.id));
            answer.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
            return respond(std::move(answer));
        }
        elsewhere[address].push_back(group);
    }
    if (!elsewhere.empty() && !context.forward_get)
        return respond(error_response(
            503, "not_leader",
            fmt::format("group {} is led by another member, and this raftd does not ask other "
                        "members: list with ?consistency=stale, or on a member that leads every "
                        "group",
                        elsewhere.begin()->second.front().id)));

    struct State {
        std::mutex mu;
        std::size_t waiting = 0;             // GUARDED_BY(mu)
        Listing merged;                      // GUARDED_BY(mu)
        std::optional<HttpResponse> failed;  // GUARDED_BY(mu): the first failure
    };
    auto state = std::make_shared<State>();
    state->waiting = elsewhere.size() + 1;
    // Called once per part, from any thread; the last one answers (on an
    // HTTP thread).
    auto finish = [&context, state, query, respond](std::optional<Listing> part,
                                                    std::optional<HttpResponse> failure) {
        {
            std::lock_guard lock(state->mu);
            if (failure && !state->failed) state->failed = std::move(failure);
            if (part && !state->failed) merge_into(state->merged, std::move(*part), query.limit);
            if (--state->waiting != 0) return;
        }
        // The last part: nothing else touches `state` any more.
        context.defer([state, respond] {
            respond(state->failed ? std::move(*state->failed) : listing_response(state->merged));
        });
    };

    barriers(here,
             [&context, here, query, finish](std::optional<ReadResult> refusal, KvGroup group) {
                 if (refusal) return finish(std::nullopt, refusal_response(*refusal, group));
                 // After the barriers: read the maps on an HTTP thread, not keel's.
                 context.defer([here, query, finish] {
                     finish(list_maps(here, query.prefix, query.limit), std::nullopt);
                 });
             });
    for (auto& [address, groups] : elsewhere) {
        std::set<GroupId> asked;
        std::string ids;
        for (const KvGroup& g : groups) {
            asked.insert(g.id);
            ids += (ids.empty() ? "" : ",") + std::to_string(g.id);
        }
        std::string target = fmt::format("/v1/kv?prefix={}&limit={}&groups={}",
                                         percent_encoded(query.prefix), query.limit, ids);
        const std::size_t group_count = context.groups.size();
        auto on_answer = [finish, query, asked, group_count, address](Result<HttpAnswer> answer) {
            Result<Listing> part = parse_part(answer, query, asked, group_count);
            if (part.ok()) return finish(std::move(part.value()), std::nullopt);
            const int code = part.status().code() == ErrorCode::busy         ? 429
                             : part.status().code() == ErrorCode::corruption ? 502
                                                                             : 503;
            HttpResponse failure =
                error_response(code,
                               code == 502   ? "bad_gateway"
                               : code == 429 ? "busy"
                                             : "unavailable",
                               fmt::format("the part of the list led by the member at {}: {}",
                                           address, part.status().message()));
            if (code != 502) failure.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
            finish(std::nullopt, std::move(failure));
        };
        if (!context.forward_get(address, std::move(target), request.http.forwarded_credentials,
                                 on_answer))
            finish(std::nullopt, error_response(429, "busy", "too many lists in flight; retry"));
    }
}

// `groups=`: those groups' part, linearizable only on their leader (never
// forwarded again), or stale from this member's maps.
void list_part(HandlerContext& context, std::vector<KvGroup> groups, bool stale,
               const ListQuery& query, Respond respond) {
    if (stale) return respond(listing_response(list_maps(groups, query.prefix, query.limit)));
    barriers(groups,
             [&context, groups, query, respond](std::optional<ReadResult> refusal, KvGroup group) {
                 context.defer([groups, query, respond, refusal, group] {
                     if (refusal) return respond(refusal_response(*refusal, group));
                     respond(listing_response(list_maps(groups, query.prefix, query.limit)));
                 });
             });
}

}  // namespace

void handle_list(HandlerContext& context, RouteRequest& request, Respond respond) {
    ListQuery query;
    if (auto p = request.query.find("prefix"); p != request.query.end()) query.prefix = p->second;
    query.limit = context.limits.default_list_limit;
    if (auto l = request.query.find("limit"); l != request.query.end()) {
        auto parsed = parse_u64(l->second);
        if (!parsed || *parsed == 0 || *parsed > context.limits.max_list_limit) {
            return respond(error_response(
                400, "bad_request",
                fmt::format("limit must be an integer in 1..{}", context.limits.max_list_limit)));
        }
        query.limit = static_cast<std::size_t>(*parsed);
    }
    std::optional<bool> stale = stale_read(request, respond);
    if (!stale) return;
    auto only = request.query.find("groups");
    if (only != request.query.end() && !context.sharded())
        return respond(error_response(400, "bad_request", "groups= needs raftd --groups"));
    if (!context.sharded()) {
        const KvGroup node = context.group_of(query.prefix);
        auto read = [node, query] {
            return listing_response(list_maps({node}, query.prefix, query.limit));
        };
        if (*stale) return respond(read());
        auto target = std::make_shared<RouteRequest>();
        target->http.target = request.http.target;
        return node.node->read_index_async(true, [&context, node, target, respond,
                                                  read](ReadResult result) {
            context.defer([&context, node, target, respond, read, result] {
                if (result.status.code() == ErrorCode::not_leader)
                    return respond(not_leader_response(context, node, result.leader_hint, *target));
                if (!result.status.ok()) return respond(error_from_status(result.status));
                respond(read());
            });
        });
    }
    if (only != request.query.end()) {
        std::optional<std::vector<KvGroup>> groups = groups_query(context, only->second, respond);
        if (!groups) return;
        return list_part(context, std::move(*groups), *stale, query, std::move(respond));
    }
    if (*stale)
        return respond(listing_response(list_maps(context.groups, query.prefix, query.limit)));
    list_everywhere(context, request, query, std::move(respond));
}

}  // namespace keel::daemon
