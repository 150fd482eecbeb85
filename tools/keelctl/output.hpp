// tools/keelctl/output.hpp — how keelctl prints: aligned tables for people,
// JSON for programs, and the exit codes every command shares.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace keel::keelctl {

enum class Format { table, json };

// Exit codes (docs/keelctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // raftd answered with an error (400, 404, 409, ...)
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no endpoint answered (connect, TLS, timeout)
inline constexpr int kExitAuth = 4;         // 401 or 403: a missing, unknown or too weak token
inline constexpr int kExitUnavailable = 5;  // no leader after retries, 503, 507 or another 5xx

// The exit code for an HTTP answer's status.
int exit_code_for_status(int http_status);

struct Table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
};

// Columns padded to their widest cell, two spaces apart, header first.
void print_table(std::ostream& out, const Table& table);

// 1536 -> "1.5 KiB"; 0 -> "0 B".
std::string human_bytes(std::uint64_t bytes);

// Percent-encodes a key for a URL path: everything but unreserved
// characters and '/' (raftd keys may contain '/').
std::string encode_path(const std::string& key);
// Percent-encodes a query parameter value.
std::string encode_query(const std::string& value);

}  // namespace keel::keelctl
