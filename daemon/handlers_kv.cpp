// The KV API: PUT/GET/DELETE /v1/kv/{key} (GET /v1/kv, the list: handlers_list.cpp).
#include <algorithm>
#include <charconv>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "errors.hpp"
#include "handlers.hpp"

namespace keel::daemon {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF): keys are
// echoed back in JSON, which must be valid UTF-8.
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else
            return false;
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

// nullopt when the key is acceptable, else the 400 to answer.
std::optional<HttpResponse> check_key(const HandlerContext& context, const std::string& key) {
    if (key.empty()) return error_response(400, "invalid_key", "the key is empty");
    if (key.size() > context.limits.max_key_bytes) {
        return error_response(
            400, "invalid_key",
            fmt::format("the key is longer than {} bytes", context.limits.max_key_bytes));
    }
    if (!valid_utf8(key)) return error_response(400, "invalid_key", "the key is not valid UTF-8");
    return std::nullopt;
}

json value_json(const std::string& key, const KvValue& value) {
    return {{"key", key}, {"value", value.value}, {"revision", value.revision}};
}

// Proposes `command` and answers from its apply result.  The completion runs
// on keel's apply thread: the success path only formats and responds; paths
// that need the Node again are deferred to an HTTP thread.
void propose_and_respond(HandlerContext& context, const RouteRequest& request,
                         const std::string& encoded, std::string key, Respond respond) {
    auto target = std::make_shared<RouteRequest>();
    target->http.target = request.http.target;
    const KvGroup group = context.group_of(key);
    auto done = [&context, group, target, key = std::move(key), respond](ProposeResult result) {
        if (result.status.code() == ErrorCode::not_leader) {
            NodeId hint = result.leader_hint;
            context.defer([&context, group, target, hint, respond] {
                respond(not_leader_response(context, group, hint, *target));
            });
            return;
        }
        if (!result.status.ok()) {
            respond(error_from_status(result.status));
            return;
        }
        Result<KvResult> decoded = decode_result(result.result);
        if (!decoded.ok()) {
            respond(error_response(500, "internal", decoded.status().to_string()));
            return;
        }
        switch (decoded->outcome) {
            case KvOutcome::ok:
                respond(json_response(200, dump({{"key", key}, {"revision", decoded->revision}})));
                return;
            case KvOutcome::not_found:
                respond(error_response(404, "not_found", "no such key"));
                return;
            case KvOutcome::compare_failed: {
                json body = {{"error", "compare_failed"},
                             {"message", "the compare condition does not hold"},
                             {"current", nullptr}};
                if (decoded->current) body["current"] = value_json(key, *decoded->current);
                respond(json_response(409, dump(body)));
                return;
            }
            case KvOutcome::invalid:
                respond(error_response(500, "internal", "the state machine rejected the command"));
                return;
        }
        KEEL_UNREACHABLE("every KvOutcome is handled");
    };
    if (context.proposals)
        return context.proposals->propose(group.index(), encoded, std::move(done));
    group.node->propose_async(encoded, std::move(done));
}

void handle_put(HandlerContext& context, RouteRequest& request, Respond respond) {
    const std::string& key = request.params.at("key");
    if (auto bad = check_key(context, key)) return respond(std::move(*bad));
    json body = json::parse(request.http.body, nullptr, false);
    if (body.is_discarded())
        return respond(error_response(400, "bad_json", "the body is not valid JSON"));
    if (!body.is_object())
        return respond(error_response(400, "bad_request", "the body must be a JSON object"));
    auto value = body.find("value");
    if (value == body.end())
        return respond(error_response(400, "missing_field", "\"value\" is required"));
    if (!value->is_string())
        return respond(error_response(400, "wrong_type", "\"value\" must be a string"));
    KvCommand command;
    command.op = KvOp::put;
    command.key = key;
    command.value = value->get<std::string>();
    if (command.value.size() > context.limits.max_value_bytes) {
        return respond(error_response(
            413, "value_too_large",
            fmt::format("the value is longer than {} bytes", context.limits.max_value_bytes)));
    }
    if (auto prev = body.find("prev_value"); prev != body.end()) {
        if (!prev->is_string())
            return respond(error_response(400, "wrong_type", "\"prev_value\" must be a string"));
        command.prev_value = prev->get<std::string>();
    }
    if (auto prev = body.find("prev_revision"); prev != body.end()) {
        if (!prev->is_number_unsigned()) {
            return respond(
                error_response(400, "wrong_type", "\"prev_revision\" must be an integer >= 0"));
        }
        command.prev_revision = prev->get<std::uint64_t>();
    }
    const std::string encoded = encode_command(command);
    if (context.quota) {
        // What the write may add: its WAL record and the map's new entry.
        const std::uint64_t adds =
            encoded.size() + KvStateMachine::entry_bytes(command.key, command.value);
        if (!context.quota->admit(storage_usage_bytes(context, false), adds)) {
            return respond(error_response(
                507, "no_space",
                fmt::format("storage is over --quota-bytes ({}): writes are refused until deletes "
                            "and compaction bring it under {} bytes",
                            context.quota->quota_bytes(), context.quota->clear_at_bytes())));
        }
    }
    propose_and_respond(context, request, encoded, std::move(command.key), std::move(respond));
}

void handle_delete(HandlerContext& context, RouteRequest& request, Respond respond) {
    const std::string& key = request.params.at("key");
    if (auto bad = check_key(context, key)) return respond(std::move(*bad));
    KvCommand command;
    command.op = KvOp::del;
    command.key = key;
    if (auto prev = request.query.find("prev_value"); prev != request.query.end()) {
        command.prev_value = prev->second;
    }
    if (auto prev = request.query.find("prev_revision"); prev != request.query.end()) {
        auto revision = parse_u64(prev->second);
        if (!revision)
            return respond(
                error_response(400, "wrong_type", "prev_revision must be an integer >= 0"));
        command.prev_revision = *revision;
    }
    // Never held back by the quota: deleting is how usage comes down.
    const std::string encoded = encode_command(command);
    propose_and_respond(context, request, encoded, std::move(command.key), std::move(respond));
}

// Linearizable reads wait for a ReadIndex barrier of `group` (and for this
// node to apply up to it), then read the local map; stale reads read it at
// once.
void read_then(HandlerContext& context, const KvGroup& group, const RouteRequest& request,
               Respond respond, std::function<HttpResponse()> read) {
    std::optional<bool> stale = stale_read(request, respond);
    if (!stale) return;
    if (*stale) return respond(read());
    auto target = std::make_shared<RouteRequest>();
    target->http.target = request.http.target;
    group.node->read_index_async(true, [&context, group, target, respond,
                                        read = std::move(read)](ReadResult result) {
        context.defer([&context, group, target, respond, read, result] {
            if (result.status.code() == ErrorCode::not_leader) {
                return respond(not_leader_response(context, group, result.leader_hint, *target));
            }
            if (!result.status.ok()) return respond(error_from_status(result.status));
            respond(read());
        });
    });
}

void handle_get(HandlerContext& context, RouteRequest& request, Respond respond) {
    std::string key = request.params.at("key");
    if (auto bad = check_key(context, key)) return respond(std::move(*bad));
    const KvGroup group = context.group_of(key);
    read_then(context, group, request, std::move(respond), [group, key]() -> HttpResponse {
        std::optional<KvValue> value = group.kv->get(key);
        if (!value) return error_response(404, "not_found", "no such key");
        return json_response(200, dump(value_json(key, *value)));
    });
}

}  // namespace

void add_kv_routes(Router& router, HandlerContext& context) {
    HandlerContext* c = &context;
    router.add("PUT", "/v1/kv/{key*}", Access::write,
               [c](RouteRequest& r, Respond done) { handle_put(*c, r, std::move(done)); });
    router.add("GET", "/v1/kv/{key*}", Access::read,
               [c](RouteRequest& r, Respond done) { handle_get(*c, r, std::move(done)); });
    router.add("DELETE", "/v1/kv/{key*}", Access::write,
               [c](RouteRequest& r, Respond done) { handle_delete(*c, r, std::move(done)); });
    router.add("GET", "/v1/kv", Access::read,
               [c](RouteRequest& r, Respond done) { handle_list(*c, r, std::move(done)); });
}

}  // namespace keel::daemon
