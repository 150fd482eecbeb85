// raft/message_format.cpp — one-line renderings of messages, entries and
// configurations for traces, logs and the scenario tests.  The format is
// stable: scenario files in tests/raft/testdata compare against it.
#include <string>

#include "raft/actions.hpp"
#include "raft/str_cat.hpp"
#include "raft/types.hpp"

namespace keel::raft {

namespace {

const char* entry_type_name(EntryType type) {
    switch (type) {
        case EntryType::normal:
            return "normal";
        case EntryType::noop:
            return "noop";
        case EntryType::config:
            return "config";
    }
    return "unknown";
}

void append_field(std::string& out, const char* name, std::uint64_t value) {
    out += str_cat(' ', name, '=', value);
}

}  // namespace

const char* message_type_name(MessageType type) {
    switch (type) {
        case MessageType::append:
            return "append";
        case MessageType::append_response:
            return "append_response";
        case MessageType::vote:
            return "vote";
        case MessageType::vote_response:
            return "vote_response";
        case MessageType::pre_vote:
            return "pre_vote";
        case MessageType::pre_vote_response:
            return "pre_vote_response";
        case MessageType::heartbeat:
            return "heartbeat";
        case MessageType::heartbeat_response:
            return "heartbeat_response";
        case MessageType::snapshot:
            return "snapshot";
        case MessageType::timeout_now:
            return "timeout_now";
    }
    return "unknown";
}

const char* role_name(Role role) {
    switch (role) {
        case Role::follower:
            return "follower";
        case Role::pre_candidate:
            return "pre_candidate";
        case Role::candidate:
            return "candidate";
        case Role::leader:
            return "leader";
    }
    return "unknown";
}

std::string to_string(const Entry& e) {
    std::string out = str_cat(e.term, '/', e.index, ' ', entry_type_name(e.type));
    if (e.type == EntryType::config) {
        auto config = decode_configuration(e.data);
        out += ' ';
        out += config ? to_string(*config) : std::string("<undecodable>");
    } else if (!e.data.empty()) {
        // Data is opaque bytes; show it when printable, else its size.
        // (Appending piecewise: GCC 12 gives a false -Wrestrict on "x" + string.)
        bool printable = e.data.size() <= 64;
        for (char c : e.data) printable = printable && c >= 0x20 && c < 0x7f;
        if (printable) {
            out += " \"";
            out += e.data;
            out += '"';
        } else {
            out += str_cat(" <", e.data.size(), " bytes>");
        }
    }
    return out;
}

std::string to_string(const Configuration& c) {
    std::string out = "{";
    bool first = true;
    for (const auto& [id, info] : c.members) {
        if (!first) out += ' ';
        first = false;
        out += str_cat(id);
        if (!info.voter) out += "(learner)";
    }
    return out + "}";
}

std::string to_string(const Message& m) {
    std::string out = str_cat(m.from, "->", m.to, ' ', message_type_name(m.type));
    append_field(out, "term", m.term);
    switch (m.type) {
        case MessageType::append:
            append_field(out, "log_term", m.log_term);
            append_field(out, "log_index", m.log_index);
            append_field(out, "commit", m.commit);
            // Message::index on appends and heartbeats: what every member
            // stored (forgetting.hpp); 0 when the leader does not send it.
            if (m.index != 0) append_field(out, "stored_everywhere", m.index);
            if (!m.entries.empty()) {
                out += " entries=[";
                for (std::size_t i = 0; i < m.entries.size(); ++i) {
                    if (i != 0) out += ", ";
                    out += to_string(m.entries[i]);
                }
                out += "]";
            }
            break;
        case MessageType::append_response:
            append_field(out, "index", m.index);
            if (m.reject) {
                out += " reject";
                append_field(out, "hint_term", m.hint_term);
                append_field(out, "hint_index", m.hint_index);
            }
            break;
        case MessageType::vote:
        case MessageType::pre_vote:
            append_field(out, "log_term", m.log_term);
            append_field(out, "log_index", m.log_index);
            if (m.transfer) out += " transfer";
            break;
        case MessageType::vote_response:
        case MessageType::pre_vote_response:
            if (m.reject) out += " reject";
            break;
        case MessageType::heartbeat:
            append_field(out, "commit", m.commit);
            if (m.index != 0) append_field(out, "stored_everywhere", m.index);
            if (m.context != 0) append_field(out, "context", m.context);
            if (m.quiesce) {
                append_field(out, "log_term", m.log_term);
                append_field(out, "log_index", m.log_index);
                out += " quiesce";
            }
            break;
        case MessageType::heartbeat_response:
            if (m.context != 0) append_field(out, "context", m.context);
            break;
        case MessageType::snapshot:
            if (m.snapshot) {
                append_field(out, "snapshot_index", m.snapshot->index);
                append_field(out, "snapshot_term", m.snapshot->term);
                out += " config=";
                out += to_string(m.snapshot->config);
            }
            break;
        case MessageType::timeout_now:
            break;
    }
    return out;
}

}  // namespace keel::raft
