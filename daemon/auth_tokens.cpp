#include "auth_tokens.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fmt/format.h>

namespace keel::daemon {
namespace {

// RFC 6750's b64token alphabet (token68 without the trailing '='s rule).
bool token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

std::optional<Access> parse_role(std::string_view word) {
    if (word == "read") return Access::read;
    if (word == "write") return Access::write;
    if (word == "admin") return Access::admin;
    return std::nullopt;
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

Status bad_line(std::size_t number, const std::string& why) {
    return Status(ErrorCode::invalid_argument, fmt::format("line {}: {}", number, why));
}

}  // namespace

const char* access_name(Access access) {
    switch (access) {
        case Access::open:
            return "open";
        case Access::read:
            return "read";
        case Access::write:
            return "write";
        case Access::admin:
            return "admin";
    }
    return "?";
}

Result<TokenSet> TokenSet::parse(std::string_view text) {
    if (text.size() > kMaxTokenFileBytes) {
        return Status(ErrorCode::too_large,
                      fmt::format("larger than {} bytes", kMaxTokenFileBytes));
    }
    TokenSet set;
    std::set<Digest> seen;
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        // Tokens cannot hold '#', so a comment starts at the first one.
        if (std::size_t hash = line.find('#'); hash != std::string_view::npos) {
            line = line.substr(0, hash);
        }
        std::vector<std::string_view> words = fields(line);
        if (words.empty()) continue;
        if (words.size() != 2) return bad_line(number, "expected `ROLE TOKEN`");
        std::optional<Access> role = parse_role(words[0]);
        if (!role) return bad_line(number, "the role is read, write or admin");
        std::string_view token = words[1];
        if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
            return bad_line(number, fmt::format("a token has {} to {} characters", kMinTokenBytes,
                                                kMaxTokenBytes));
        }
        for (char c : token) {
            if (!token_char(c)) {
                return bad_line(number, "a token holds only A-Z a-z 0-9 - . _ ~ + / =");
            }
        }
        if (set.entries_.size() == kMaxTokens) {
            return bad_line(number, fmt::format("more than {} tokens", kMaxTokens));
        }
        Entry entry{{}, *role};
        unsigned int length = 0;
        if (EVP_Digest(token.data(), token.size(), entry.digest.data(), &length, EVP_sha256(),
                       nullptr) != 1 ||
            length != entry.digest.size()) {
            return Status(ErrorCode::failed, "SHA-256 is not available");
        }
        if (!seen.insert(entry.digest).second) {
            return bad_line(number, "the same token appears twice");
        }
        set.entries_.push_back(entry);
    }
    if (set.entries_.empty()) return Status(ErrorCode::invalid_argument, "no tokens");
    return set;
}

std::optional<Access> TokenSet::role_of(std::string_view token) const {
    Digest digest{};
    unsigned int length = 0;
    if (EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
        1) {
        return std::nullopt;
    }
    // Every entry is compared, whether or not one already matched: the time
    // depends on the number of tokens only.
    int found = 0;
    for (const Entry& entry : entries_) {
        const int equal =
            CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0 ? 1 : 0;
        found |= equal * static_cast<int>(entry.role);
    }
    if (found == 0) return std::nullopt;
    return static_cast<Access>(found);
}

Result<TokenFile> load_token_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status(ErrorCode::io_error, "cannot read " + path + ": " + std::strerror(errno));
    std::string text(kMaxTokenFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return Status(ErrorCode::io_error, "cannot read " + path);
    text.resize(static_cast<std::size_t>(in.gcount()));
    Result<TokenSet> tokens = TokenSet::parse(text);
    if (!tokens.ok()) {
        return Status(tokens.status().code(), path + ": " + tokens.status().message());
    }
    TokenFile file{std::move(tokens.value()), {}};
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        file.warnings.push_back(path + " may be read by other users: chmod 600 it");
    }
    return file;
}

}  // namespace keel::daemon
