#include <sys/stat.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "../common/temp_dir.hpp"
#include "auth_tokens.hpp"

using namespace keel::daemon;

namespace {

const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kWrite = "write-token-0123456789abcdef";
const std::string kRead = "read-token-0123456789abcdef";

std::string token_number(std::size_t i) {
    std::string token = "token-";
    token += std::to_string(i);
    token.resize(kMinTokenBytes + 8, 'x');
    return token;
}

}  // namespace

TEST_CASE("a tokens file maps each token to its role; comments and blank lines are skipped",
          "[daemon][auth]") {
    auto set = TokenSet::parse("# raftd tokens\n\nadmin " + kAdmin + "  # the operator\n" +
                               "write\t" + kWrite + "\r\n   read   " + kRead);
    REQUIRE(set.ok());
    CHECK(set->size() == 3);
    CHECK(set->role_of(kAdmin) == Access::admin);
    CHECK(set->role_of(kWrite) == Access::write);
    CHECK(set->role_of(kRead) == Access::read);
    CHECK_FALSE(set->role_of("admin"));
    CHECK_FALSE(set->role_of(""));
    CHECK_FALSE(set->role_of(kAdmin + "x"));
    CHECK_FALSE(set->role_of(kAdmin.substr(1)));
}

TEST_CASE("a bad tokens file is refused with the line number, never the token", "[daemon][auth]") {
    const std::string secret = "s3cr3t-0123456789abcdef";
    for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
             {"root " + secret, "line 1: the role"},
             {"read", "line 1: expected"},
             {"# c\nread " + secret + " extra", "line 2: expected"},
             {"read short", "line 1: a token has"},
             {"read " + secret + "\nwrite " + secret, "line 2: the same token"},
             {"read " + secret + "\"", "line 1: a token holds only"},
             {"read " + secret.substr(0, 8) + "\xc3\xa9" + secret, "line 1: a token holds only"},
             {"read " + std::string(kMaxTokenBytes + 1, 'a'), "line 1: a token has"},
             {"# nothing\n\n", "no tokens"},
         }) {
        INFO(why);
        auto set = TokenSet::parse(text);
        REQUIRE_FALSE(set.ok());
        CHECK(set.status().message().find(why) != std::string::npos);
        CHECK(set.status().message().find(secret) == std::string::npos);
        CHECK(set.status().message().find("s3cr3t") == std::string::npos);
    }
}

TEST_CASE("tokens at their limits: count, length and file size", "[daemon][auth]") {
    std::string text;
    for (std::size_t i = 0; i < kMaxTokens; ++i) text += "read " + token_number(i) + "\n";
    auto full = TokenSet::parse(text);
    REQUIRE(full.ok());
    CHECK(full->size() == kMaxTokens);
    CHECK(full->role_of(token_number(kMaxTokens - 1)) == Access::read);
    auto over = TokenSet::parse(text + "read " + token_number(kMaxTokens) + "\n");
    REQUIRE_FALSE(over.ok());
    CHECK(over.status().message().find("more than") != std::string::npos);

    CHECK(TokenSet::parse("admin " + std::string(kMinTokenBytes, 'a')).ok());
    CHECK_FALSE(TokenSet::parse("admin " + std::string(kMinTokenBytes - 1, 'a')).ok());
    CHECK(TokenSet::parse("admin " + std::string(kMaxTokenBytes, 'a')).ok());

    std::string padded = "admin " + kAdmin + "\n";
    padded.resize(kMaxTokenFileBytes, '#');
    CHECK(TokenSet::parse(padded).ok());
    padded.push_back('#');
    CHECK_FALSE(TokenSet::parse(padded).ok());
}

TEST_CASE("load_token_file reads the file and warns when others may read it", "[daemon][auth]") {
    keel::test::TempDir dir("raftd-tokens");
    const std::string path = dir.sub("tokens");
    std::ofstream(path) << "admin " << kAdmin << "\n";
    ::chmod(path.c_str(), 0644);
    auto loose = load_token_file(path);
    REQUIRE(loose.ok());
    CHECK(loose->tokens.role_of(kAdmin) == Access::admin);
    REQUIRE(loose->warnings.size() == 1);
    CHECK(loose->warnings[0].find("chmod 600") != std::string::npos);
    ::chmod(path.c_str(), 0600);
    auto tight = load_token_file(path);
    REQUIRE(tight.ok());
    CHECK(tight->warnings.empty());
    auto missing = load_token_file(dir.sub("nope"));
    CHECK_FALSE(missing.ok());
}

TEST_CASE("a TokenStore hands out the set in force; replace swaps it whole", "[daemon][auth]") {
    TokenStore store(*TokenSet::parse("read " + kRead));
    auto before = store.current();
    store.replace(*TokenSet::parse("admin " + kAdmin));
    CHECK(before->role_of(kRead) == Access::read);  // a reader keeps its set
    CHECK_FALSE(store.current()->role_of(kRead));
    CHECK(store.current()->role_of(kAdmin) == Access::admin);
}
