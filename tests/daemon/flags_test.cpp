#include <catch2/catch.hpp>

#include "flags.hpp"

using namespace keel::daemon;

namespace {

std::variant<DaemonConfig, FlagsExit> parse(std::vector<const char*> args) {
    args.insert(args.begin(), "raftd");
    return parse_flags(static_cast<int>(args.size()), args.data(), "9.9.9");
}

}  // namespace

TEST_CASE("no flags: a single node on the default addresses", "[daemon][flags]") {
    auto parsed = parse({});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    auto& c = std::get<DaemonConfig>(parsed);
    CHECK_FALSE(c.id);
    CHECK(c.data_dir == "./raftd-data");
    CHECK(c.http.to_string() == "127.0.0.1:8080");
    CHECK(c.raft.to_string() == "127.0.0.1:7080");
    CHECK(c.members.empty());
    CHECK(c.heartbeat_ms == 50);
    CHECK(c.election_min_ms == 150);
    CHECK(c.election_max_ms == 300);
}

TEST_CASE("--member bootstraps and sets this node's addresses", "[daemon][flags]") {
    auto parsed = parse({"--id", "2", "--member", "1,127.0.0.1:7081,127.0.0.1:8081", "--member",
                         "2,127.0.0.1:7082,127.0.0.1:8082"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    auto& c = std::get<DaemonConfig>(parsed);
    CHECK(c.id == 2u);
    CHECK(c.members.size() == 2);
    CHECK(c.raft.to_string() == "127.0.0.1:7082");
    CHECK(c.http.to_string() == "127.0.0.1:8082");
}

TEST_CASE("--wal-segment-bytes sets the WAL's segment size", "[daemon][flags]") {
    auto parsed = parse({"--wal-segment-bytes", "4194304"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    CHECK(std::get<DaemonConfig>(parsed).wal_segment_bytes == 4194304u);
    auto defaults = parse({});
    REQUIRE(std::holds_alternative<DaemonConfig>(defaults));
    CHECK(std::get<DaemonConfig>(defaults).wal_segment_bytes == 64u << 20);
}

TEST_CASE("--restore goes with --groups: the archive of a raftd with groups", "[daemon][flags]") {
    auto parsed = parse({"--groups", "4", "--restore", "/dev/null"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    CHECK(std::get<DaemonConfig>(parsed).groups == 4u);
    CHECK(std::get<DaemonConfig>(parsed).restore_file == "/dev/null");
}

TEST_CASE("--cluster-id and the peer TLS flags reach the config", "[daemon][flags]") {
    auto parsed = parse({"--cluster-id", "0123456789ABCDEF0123456789abcdef", "--peer-cert", "m.crt",
                         "--peer-key", "m.key", "--peer-ca", "ca.crt"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    auto& c = std::get<DaemonConfig>(parsed);
    CHECK(c.cluster_id == "0123456789ABCDEF0123456789abcdef");
    CHECK(c.peer_tls.cert_file == "m.crt");
    CHECK(c.peer_tls.key_file == "m.key");
    CHECK(c.peer_tls.ca_file == "ca.crt");
    CHECK_FALSE(c.peer_insecure);
    auto insecure = parse({"--peer-insecure"});
    REQUIRE(std::holds_alternative<DaemonConfig>(insecure));
    CHECK(std::get<DaemonConfig>(insecure).peer_insecure);
}

TEST_CASE("--help and --version exit 0; bad flags exit non-zero with a reason", "[daemon][flags]") {
    auto help = parse({"--help"});
    REQUIRE(std::holds_alternative<FlagsExit>(help));
    CHECK(std::get<FlagsExit>(help).code == 0);
    CHECK(std::get<FlagsExit>(help).text.find("--member") != std::string::npos);
    auto version = parse({"--version"});
    REQUIRE(std::holds_alternative<FlagsExit>(version));
    CHECK(std::get<FlagsExit>(version).text.find("9.9.9") != std::string::npos);
    for (auto args : std::vector<std::vector<const char*>>{
             {"--id", "0"},
             {"--id", "x"},
             {"--http", "nope"},
             {"--raft", "h:70000"},
             {"--member", "1,a:1,b:2"},  // no --id
             {"--id", "3", "--member", "1,a:1,b:2"},
             {"--id", "1", "--member", "1,a:1,b:2", "--member", "1,a:3,b:4"},
             {"--id", "1", "--member", "1,a:1"},
             {"--join", "--id", "1", "--member", "1,a:1,b:2"},  // itself listed
             {"--join", "--member", "1,a:1,b:2"},               // no --id
             {"--join"},
             // --groups: a joiner names the cluster's id and members.
             {"--join", "--id", "2", "--groups", "4", "--member", "1,a:1,b:2"},
             {"--join", "--id", "2", "--groups", "4", "--cluster-id",
              "0123456789abcdef0123456789abcdef"},
             {"--groups", "4", "--restore", "/dev/null", "--join", "--id", "2"},
             {"--cluster-id", "abc"},
             {"--cluster-id", "0123456789abcdef0123456789abcdeg"},
             {"--peer-cert", "a.crt"},
             {"--peer-cert", "a.crt", "--peer-key", "a.key"},
             {"--peer-cert", "a", "--peer-key", "b", "--peer-ca", "c", "--peer-insecure"},
             {"--heartbeat-ms", "200"},
             {"--election-min-ms", "400"},
             {"--max-value-bytes", "0"},
             {"--log-level", "loud"},
             {"--http-cert", "c.pem"},  // no key
             {"--http-key", "k.pem"},
             {"--http-client-ca", "ca.pem"},  // no cert
             // Asking other members over HTTPS: only when serving it; cert and key both.
             {"--http-ca", "ca.pem"},
             {"--http-client-cert", "c.pem", "--http-client-key", "k.pem"},
             {"--http-cert", "c.pem", "--http-key", "k.pem", "--http-client-cert", "c.pem"},
             {"--http-cert", "c.pem", "--http-key", "k.pem", "--http-client-key", "k.pem"},
             {"--http", "0.0.0.0:8080"},  // not loopback, no tokens
             {"--http", "10.1.2.3:8080"},
             {"--http", "raftd.example:8080"},
             {"--http-allowed-origin", "evil.example"},
             {"--http-allowed-origin", "https://a.example/path"},
             {"--http-header-timeout-ms", "0"},
             {"--http-max-conns", "10", "--http-max-conns-per-client", "11"},
             {"--http-max-conns-per-client", "0"},
             {"--quota-bytes", "0"},
             {"--quota-bytes", "9GiB"},  // past what a snapshot restore takes
             {"--wal-segment-bytes", "4096"},
             {"--bogus"}}) {
        auto parsed = parse(args);
        INFO(args[0]);
        REQUIRE(std::holds_alternative<FlagsExit>(parsed));
        CHECK(std::get<FlagsExit>(parsed).code != 0);
    }
}

TEST_CASE("client security flags and their defaults", "[daemon][flags]") {
    auto defaults = std::get<DaemonConfig>(parse({}));
    CHECK(defaults.header_timeout_ms == 10000);
    CHECK(defaults.max_conns_per_client == 256);
    CHECK(defaults.quota_bytes == 8ull << 30);
    CHECK(defaults.auth_tokens.empty());
    CHECK(defaults.allowed_origins.empty());

    auto parsed = parse({"--http",
                         "0.0.0.0:8443",
                         "--http-cert",
                         "c.pem",
                         "--http-key",
                         "k.pem",
                         "--http-client-ca",
                         "ca.pem",
                         "--auth-tokens",
                         "tokens",
                         "--http-allowed-origin",
                         "https://a.example",
                         "--http-allowed-origin",
                         "http://localhost:3000",
                         "--http-allowed-host",
                         "raftd.internal",
                         "--http-header-timeout-ms",
                         "500",
                         "--http-max-conns-per-client",
                         "4",
                         "--quota-bytes",
                         "64MiB"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    auto& c = std::get<DaemonConfig>(parsed);
    CHECK(c.http_cert == "c.pem");
    CHECK(c.http_client_ca == "ca.pem");
    CHECK(c.auth_tokens == "tokens");
    CHECK(c.allowed_origins ==
          std::vector<std::string>{"https://a.example", "http://localhost:3000"});
    CHECK(c.allowed_hosts == std::vector<std::string>{"raftd.internal"});
    CHECK(c.header_timeout_ms == 500);
    CHECK(c.max_conns_per_client == 4);
    CHECK(c.quota_bytes == 64ull << 20);
    CHECK(std::get<DaemonConfig>(parse({"--quota-bytes", "8GiB"})).quota_bytes == 8ull << 30);
    CHECK(std::get<DaemonConfig>(parse({"--quota-bytes", "1000"})).quota_bytes == 1000);
}

TEST_CASE("the flags for asking other members over HTTPS reach the config", "[daemon][flags]") {
    auto parsed = parse({"--http-cert", "c.pem", "--http-key", "k.pem", "--http-ca", "members.pem",
                         "--http-client-cert", "me.pem", "--http-client-key", "me-key.pem"});
    REQUIRE(std::holds_alternative<DaemonConfig>(parsed));
    auto& c = std::get<DaemonConfig>(parsed);
    CHECK(c.http_ca == "members.pem");
    CHECK(c.http_client_cert == "me.pem");
    CHECK(c.http_client_key == "me-key.pem");
    auto defaults = std::get<DaemonConfig>(parse({"--http-cert", "c.pem", "--http-key", "k.pem"}));
    CHECK(defaults.http_ca.empty());  // the system's CA store
    CHECK(defaults.http_client_cert.empty());
}

TEST_CASE("a non-loopback HTTP address needs --auth-tokens or an explicit --http-insecure",
          "[daemon][flags]") {
    auto refused = parse({"--http", "0.0.0.0:8080"});
    REQUIRE(std::holds_alternative<FlagsExit>(refused));
    CHECK(std::get<FlagsExit>(refused).text.find("--http-insecure") != std::string::npos);
    CHECK(
        std::holds_alternative<DaemonConfig>(parse({"--http", "0.0.0.0:8080", "--http-insecure"})));
    CHECK(std::holds_alternative<DaemonConfig>(
        parse({"--http", "0.0.0.0:8080", "--auth-tokens", "t"})));
    for (const char* loopback : {"127.0.0.1:1", "127.1.2.3:1", "localhost:1", "[::1]:1"}) {
        INFO(loopback);
        CHECK(std::holds_alternative<DaemonConfig>(parse({"--http", loopback})));
    }
    // The address a --member gives this node counts too.
    auto member = parse({"--id", "1", "--member", "1,127.0.0.1:7081,10.0.0.1:8081"});
    CHECK(std::holds_alternative<FlagsExit>(member));
}
