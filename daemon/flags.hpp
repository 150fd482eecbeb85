// daemon/flags.hpp — raftd's command line (CLI11) and its validation.
//
//   raftd                                  single node: ./raftd-data, HTTP 127.0.0.1:8080,
//                                          Raft 127.0.0.1:7080
//   raftd --id 2 --member 1,... --member 2,... --member 3,...   bootstrap a cluster
//   raftd --id 4 --join --raft ... --http ... [--member 1,...]   wait to be added
//   raftd --data-dir DIR                   restart: id and membership come from DIR
//   raftd --groups 16                      keys sharded over 16 Raft groups (one process)
//   raftd --http 0.0.0.0:8443 --http-cert C --http-key K --auth-tokens T
//                                          HTTPS and bearer tokens (docs/operations.md)
//   ... --http-ca F [--http-client-cert F --http-client-key F]
//                                          check (and present to) the other members' HTTPS
//   ... --peer-cert F --peer-key F --peer-ca F   mutual TLS between members
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "keel/options.hpp"
#include "member_spec.hpp"

namespace keel::daemon {

struct DaemonConfig {
    std::optional<NodeId> id;  // nullopt: the id stored in data_dir, else 1
    std::string data_dir = "./raftd-data";
    HostPort http{"127.0.0.1", 8080};
    HostPort raft{"127.0.0.1", 7080};
    std::vector<MemberSpec> members;  // --member, in order; empty: single node
                                      // (with --join: the existing members, if known)
    bool join = false;
    // --restore FILE: build data_dir from this snapshot file and exit
    // (keel::restore_data_dir); "" to run as usual.
    std::string restore_file;
    // --force-new-cluster: this node becomes the only voter of its data
    // (NodeOptions::force_new_cluster).
    bool force_new_cluster = false;
    std::string cluster_id;  // --cluster-id: 32 hex digits, or "" (see NodeOptions::cluster_id)
    // --groups N: shard the keys over N Raft groups (kv_shards.hpp), fixed
    // when the data dir is created; 0: not given (a data dir made with
    // --groups keeps its count, one made without runs one node).
    std::size_t groups = 0;
    // --quiesce: idle groups stop ticking (NodeOptions::quiesce).
    bool quiesce = false;
    PeerTls peer_tls;  // --peer-cert, --peer-key, --peer-ca
    bool peer_insecure = false;
    std::uint32_t heartbeat_ms = 50;
    std::uint32_t election_min_ms = 150;
    std::uint32_t election_max_ms = 300;
    std::size_t max_body_bytes = (2 << 20) + (64 << 10);  // a 1 MiB value, JSON-escaped, fits
    std::size_t max_value_bytes = 1 << 20;
    std::uint64_t snapshot_every_entries = 10000;
    std::uint64_t wal_segment_bytes = 64ull << 20;  // NodeOptions::wal_segment_bytes
    unsigned http_threads = 2;       // one HTTP thread saturates before the WAL on 2 cores
    std::string log_level = "info";  // debug, info, warn, error

    // Client security (docs/operations.md, "Security").  TLS: cert and key
    // both or neither; client_ca needs them.
    std::string http_cert;
    std::string http_key;
    std::string http_client_ca;
    // Asking the other members' HTTPS (member_client.hpp): the CA of their
    // HTTP certificates ("": the system's store), and the certificate and
    // key presented to them (both or neither).  All need http_cert.
    std::string http_ca;
    std::string http_client_cert;
    std::string http_client_key;
    std::string auth_tokens;     // path of the tokens file; "": no tokens asked for
    bool http_insecure = false;  // serve a non-loopback address without tokens
    std::vector<std::string> allowed_origins;
    std::vector<std::string> allowed_hosts;

    // HTTP limits.
    std::uint32_t header_timeout_ms = 10000;
    std::uint32_t body_timeout_ms = 30000;
    std::uint32_t idle_timeout_ms = 60000;
    std::size_t max_conns = 4096;
    std::size_t max_conns_per_client = 256;

    // --quota-bytes: caps the state machine's size and the WAL's, each.  At most the
    // largest snapshot raftd can restore (kMaxSnapshotBytes).
    std::uint64_t quota_bytes = 8ull << 30;
};

// What the command line asks for: run with a config, or exit at once (after
// --help, --version or an error) with `code`, printing `text`.
struct FlagsExit {
    int code = 0;
    std::string text;
};

std::variant<DaemonConfig, FlagsExit> parse_flags(int argc, const char* const* argv,
                                                  std::string_view version);

}  // namespace keel::daemon
