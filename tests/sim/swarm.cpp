#include "swarm.hpp"

#include <algorithm>
#include <cstdio>

#include "rng.hpp"

namespace keel::sim {

const char* bug_name(Bug bug) {
    switch (bug) {
        case Bug::none:
            return "none";
        case Bug::lying_disk:
            return "lying_disk";
        case Bug::vote_granter:
            return "vote_granter";
        case Bug::commit_forger:
            return "commit_forger";
        case Bug::skip_apply:
            return "skip_apply";
        case Bug::ack_forger:
            return "ack_forger";
        case Bug::commit_older_term:
            return "commit_older_term";
        case Bug::ack_eater:
            return "ack_eater";
        case Bug::stale_durability_report:
            return "stale_durability_report";
        case Bug::group_commit_early_ack:
            return "group_commit_early_ack";
        case Bug::verdict_to_one_group:
            return "verdict_to_one_group";
        case Bug::ping_per_group:
            return "ping_per_group";
        case Bug::joiner_bootstraps_alone:
            return "joiner_bootstraps_alone";
        case Bug::forget_unstored:
            return "forget_unstored";
    }
    return "?";
}

bool parse_bug(const std::string& name, Bug* out) {
    for (Bug b :
         {Bug::none, Bug::lying_disk, Bug::vote_granter, Bug::commit_forger, Bug::skip_apply,
          Bug::ack_forger, Bug::commit_older_term, Bug::ack_eater, Bug::stale_durability_report,
          Bug::group_commit_early_ack, Bug::verdict_to_one_group, Bug::ping_per_group,
          Bug::joiner_bootstraps_alone, Bug::forget_unstored}) {
        if (name == bug_name(b)) {
            *out = b;
            return true;
        }
    }
    return false;
}

namespace {

// One of `choices`, uniformly.
template <typename T, std::size_t N>
T one_of(Rng& rng, const T (&choices)[N]) {
    return choices[rng.pick(N)];
}

}  // namespace

SwarmParams draw_swarm(std::uint64_t seed, const RunConfig& config) {
    Rng rng = Rng(seed).split(0x5357'4152'4dull);  // "SWARM"
    SwarmParams p;

    p.voters_min = config.nodes;
    p.voters_max = config.nodes;
    if (config.membership) {
        p.voters_min = 1;
        p.voters_max = static_cast<int>(rng.range(std::max(config.nodes, 3), 5));
    }

    // About one seed in six is calm: no network or crash faults at all.
    const bool calm = rng.chance(1.0 / 6);

    p.delay_min_us = one_of(rng, {100ull, 500ull, 1'000ull});
    p.delay_max_us = p.delay_min_us + one_of(rng, {0ull, 2'000ull, 10'000ull, 50'000ull});
    p.fifo_links = rng.chance(0.8);
    if (!calm) {
        p.drop_p = one_of(rng, {0.0, 0.0, 0.01, 0.05, 0.2});
        p.dup_p = one_of(rng, {0.0, 0.0, 0.01, 0.1});
        p.reorder_p = one_of(rng, {0.0, 0.01, 0.1});
        p.reorder_extra_max_us = one_of(rng, {10'000ull, 100'000ull, 500'000ull});
        p.partitions_per_s = one_of(rng, {0.0, 0.0, 0.2, 1.0});
        p.asymmetric_partitions = rng.chance(0.5);
        p.partition_us_max = one_of(rng, {200'000ull, 1'000'000ull, 3'000'000ull});
        p.report_unreachable = rng.chance(0.5);
        p.crashes_per_s = one_of(rng, {0.0, 0.0, 0.2, 1.0, 3.0});
        p.down_us_max = one_of(rng, {50'000ull, 500'000ull, 2'000'000ull});
        p.crashed_max = static_cast<int>(rng.range(1, static_cast<std::uint64_t>(p.voters_max)));
    }

    p.fsync_min_us = one_of(rng, {10ull, 100ull, 1'000ull});
    p.fsync_max_us = p.fsync_min_us + one_of(rng, {0ull, 1'000ull, 10'000ull, 30'000ull});

    p.tick_us = one_of(rng, {5'000ull, 10'000ull, 20'000ull});
    p.skew = one_of(rng, {0.0, 0.01, 0.05});

    p.proposals_per_s = one_of(rng, {5.0, 20.0, 100.0});
    p.reads_per_s = one_of(rng, {0.0, 5.0, 20.0});
    p.to_leader_p = one_of(rng, {0.5, 0.9});
    p.config_changes_per_s = config.membership ? one_of(rng, {0.5, 2.0, 5.0}) : 0.0;
    p.transfers_per_s = one_of(rng, {0.0, 0.0, 0.2, 1.0});
    p.snapshots_per_s = one_of(rng, {0.0, 0.5, 3.0});
    p.proposal_bytes_max = one_of(rng, {8ull, 64ull, 2'000ull});

    p.election_ticks_min = static_cast<int>(one_of(rng, {10ull, 15ull}));
    p.election_ticks_max = p.election_ticks_min + static_cast<int>(one_of(rng, {5ull, 10ull}));
    p.heartbeat_ticks = static_cast<int>(one_of(rng, {1ull, 2ull, 3ull}));
    p.pre_vote = rng.chance(0.75);
    p.check_quorum = rng.chance(0.75);
    p.max_inflight_messages = one_of(rng, {1ull, 4ull, 256ull});
    p.max_message_bytes = one_of(rng, {1ull, 1'000ull, 1ull << 20});
    p.snapshot_trailing_entries = one_of(rng, {0ull, 5ull, 1024ull});

    p.fault_phase_us = one_of(rng, {3'000'000ull, 6'000'000ull, 10'000'000ull});
    // Drawn last so that adding it left every other parameter of a seed as it was.
    p.lease_reads = rng.chance(0.3) && p.check_quorum && config.lease_reads;
    // The runtime's files (sim_disk.hpp), drawn after everything else for
    // the same reason.
    p.commit_save_p = one_of(rng, {0.0, 0.0, 0.1, 1.0});
    p.torn_write_p = one_of(rng, {0.0, 0.5, 1.0});
    p.crash_in_write_p = calm ? 0.0 : one_of(rng, {0.0, 0.3, 0.7});
    p.disk_stalls_per_s = calm ? 0.0 : one_of(rng, {0.0, 0.0, 0.3, 1.0});
    p.disk_stall_us_max = one_of(rng, {100'000ull, 500'000ull, 2'000'000ull});
    return p;
}

std::string SwarmParams::describe() const {
    char buf[1536];
    std::snprintf(
        buf, sizeof buf,
        "voters %d..%d; net %s delay %llu..%lluus drop %.2f dup %.2f reorder %.2f(+%lluus) "
        "partitions %.1f/s%s up to %lluus unreachable %d; fsync %llu..%lluus commit-saves %.1f "
        "torn %.1f stalls %.1f/s up to %lluus; crashes %.1f/s (in a write %.1f) "
        "down<=%lluus max %d; tick %lluus skew %.2f; proposals %.0f/s reads %.0f/s to-leader "
        "%.1f config %.1f/s transfers %.1f/s snapshots %.1f/s bytes<=%llu; election %d..%d "
        "heartbeat %d pre_vote %d check_quorum %d lease_reads %d inflight %llu msg_bytes %llu "
        "trailing %llu; "
        "faults for %lluus",
        voters_min, voters_max, fifo_links ? "fifo" : "unordered", (unsigned long long)delay_min_us,
        (unsigned long long)delay_max_us, drop_p, dup_p, reorder_p,
        (unsigned long long)reorder_extra_max_us, partitions_per_s,
        asymmetric_partitions ? " (asymmetric)" : "", (unsigned long long)partition_us_max,
        report_unreachable ? 1 : 0, (unsigned long long)fsync_min_us,
        (unsigned long long)fsync_max_us, commit_save_p, torn_write_p, disk_stalls_per_s,
        (unsigned long long)disk_stall_us_max, crashes_per_s, crash_in_write_p,
        (unsigned long long)down_us_max, crashed_max, (unsigned long long)tick_us, skew,
        proposals_per_s, reads_per_s, to_leader_p, config_changes_per_s, transfers_per_s,
        snapshots_per_s, (unsigned long long)proposal_bytes_max, election_ticks_min,
        election_ticks_max, heartbeat_ticks, pre_vote ? 1 : 0, check_quorum ? 1 : 0,
        lease_reads ? 1 : 0, (unsigned long long)max_inflight_messages,
        (unsigned long long)max_message_bytes, (unsigned long long)snapshot_trailing_entries,
        (unsigned long long)fault_phase_us);
    return buf;
}

}  // namespace keel::sim
