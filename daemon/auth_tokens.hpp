// daemon/auth_tokens.hpp — raftd's bearer tokens and the roles they grant
// (--auth-tokens FILE).  The file holds one `ROLE TOKEN` per line, `#` starts
// a comment:
//
//   # role   token (at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =)
//   admin    5f0c2c1e4d8a9b7e6f5a4c3b2a190817
//   read     0a1b2c3d4e5f60718293a4b5c6d7e8f9
//
// Roles nest: `read` (GET routes, /v1/status, /metrics) < `write` (also PUT
// and DELETE of keys) < `admin` (also members, leader transfer, snapshot).
// Only SHA-256 digests of the tokens are kept, and a presented token is
// compared with every one of them in constant time.  Tokens never appear in
// an error message or a log line: errors name the line number.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"

namespace keel::daemon {

// What a route needs.  `open` routes need no token at all.
enum class Access { open = 0, read = 1, write = 2, admin = 3 };

const char* access_name(Access access);

// Limits on the file: it comes from outside the process.
inline constexpr std::size_t kMaxTokenFileBytes = 256 << 10;
inline constexpr std::size_t kMaxTokens = 1024;
inline constexpr std::size_t kMinTokenBytes = 16;
inline constexpr std::size_t kMaxTokenBytes = 1024;

// An immutable set of tokens.  Thread-safe (const).
class TokenSet {
public:
    // Parses the file's text; an error names the line and never quotes a token.
    static Result<TokenSet> parse(std::string_view text);

    // The role `token` grants, or nullopt.  Takes the same time whichever
    // stored token (if any) matches: every digest is compared, fully.
    std::optional<Access> role_of(std::string_view token) const;
    std::size_t size() const { return entries_.size(); }

private:
    using Digest = std::array<unsigned char, 32>;
    struct Entry {
        Digest digest;
        Access role;
    };
    std::vector<Entry> entries_;
};

struct TokenFile {
    TokenSet tokens;
    // Things the operator should fix that do not stop raftd (e.g. a file
    // other users may read).
    std::vector<std::string> warnings;
};

// Reads and parses `path` (at most kMaxTokenFileBytes).
Result<TokenFile> load_token_file(const std::string& path);

// The tokens in force, replaced whole on SIGHUP.  Thread-safe.
class TokenStore {
public:
    explicit TokenStore(TokenSet initial)
        : current_(std::make_shared<const TokenSet>(std::move(initial))) {}

    std::shared_ptr<const TokenSet> current() const {
        std::lock_guard lock(mu_);
        return current_;
    }
    void replace(TokenSet tokens) {
        auto next = std::make_shared<const TokenSet>(std::move(tokens));
        std::lock_guard lock(mu_);
        current_ = std::move(next);
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<const TokenSet> current_;  // GUARDED_BY(mu_)
};

}  // namespace keel::daemon
