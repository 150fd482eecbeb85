// raft-bench --mode groups: three keel::Host in one process (like cluster3's
// three nodes), each serving the same N groups, joined by an in-process
// transport (bench_network.hpp, which says why these rows keep it) or, with
// --transport tcp, by keel's own TCP transport on loopback as cluster3's
// nodes are (one connection per pair of Hosts whatever N; the row's
// buffers_per_op and delivery_wakeups_per_op are the in-process network's
// and are left out).  Every group has the three processes as members and
// quiescence on (NodeOptions::quiesce), as a process serving many groups
// would run them.
//
//   busy row   K proposals outstanding in all, spread round-robin over the
//              groups, each sent to its group's leader (wherever the
//              elections put it): {"bench":"raft","mode":"groups",...} with
//              cluster3's fields, records per fsync per Host and the groups
//              each Host leads.
//   idle row   once every group has written and gone quiescent (bounded
//              wait), 5 s of nothing: the whole process's CPU time, the
//              Hosts' timer wakeups (HostStatus::timer_wakeups) and the
//              groups' own ticks, resident memory (whole process, and per
//              replica over the Hosts' footprint before any group), threads.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "bench_network.hpp"
#include "keel/host.hpp"
#include "raft_bench.hpp"

namespace raft_bench {
namespace {

constexpr keel::NodeId kProcesses[] = {1, 2, 3};

// The process's resident set, bytes (/proc/self/statm).
std::uint64_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Context switches of the whole process so far, voluntary or not.
std::uint64_t context_switches() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<std::uint64_t>(u.ru_nvcsw) + static_cast<std::uint64_t>(u.ru_nivcsw);
}

// Threads of this process (/proc/self/status).
std::uint64_t thread_count() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoull(line.substr(8));
    return 0;
}

class Groups {
public:
    Groups(const Options& o, const std::string& base) : o_(o), n_(o.groups), leaders_(o.groups) {
        for (keel::NodeId id : kProcesses)
            members_.push_back(
                {id, tcp() ? fmt::format("127.0.0.1:{}", free_port()) : fmt::format("bench:{}", id),
                 "", true});
        std::random_device random;
        while (cluster_prefix_.size() < 24) cluster_prefix_ += "0123456789abcdef"[random() % 16];
        for (std::size_t h = 0; h < std::size(kProcesses); ++h) {
            keel::HostOptions ho;
            ho.data_dir = fmt::format("{}/host-{}", base, kProcesses[h]);
            ho.wal_direct_io = o_.write_path == "automatic";
            if (tcp()) {
                // One cluster id for the Hosts (every group's), plain TCP on
                // loopback; each Host dials the other two.
                ho.id = kProcesses[h];
                ho.listen_address = members_[h].raft_address;
                for (const keel::MemberSpec& m : members_)
                    if (m.id != ho.id) ho.peers[m.id] = m.raft_address;
                ho.cluster_id = cluster_prefix_ + "00000000";
            } else {
                ho.transport = network_.endpoint(kProcesses[h]);
            }
            auto host = keel::Host::open(ho);
            if (!host.ok()) die("host open: " + host.status().to_string());
            hosts_.push_back(std::move(host.value()));
        }
        rss_without_groups_ = rss_bytes();
        // Nothing is delivered until every replica is open (a group not open
        // yet would refuse the bytes for it).  Over TCP there is no holding
        // back: such bytes are counted and dropped, and Raft resends.
        network_.hold(true);
        // Each Host opens its groups in one batch (Host::open_groups: they
        // open concurrently inside keel, their first writes sharing the
        // WAL's fsyncs), the three Hosts at once.
        replicas_.resize(hosts_.size());
        on_each_host([this](std::size_t h) {
            std::vector<keel::GroupToOpen> batch;
            batch.reserve(n_);
            for (std::uint64_t g = 0; g < n_; ++g)
                batch.push_back(
                    keel::GroupToOpen{g, group_options(h, g),
                                      std::make_shared<CountingStateMachine>(o_.snapshot_bytes)});
            auto opened = hosts_[h]->open_groups(std::move(batch));
            for (std::uint64_t g = 0; g < n_; ++g) {
                if (!opened[g].ok())
                    die(fmt::format("open group {}: {}", g, opened[g].status().to_string()));
                replicas_[h].push_back(std::move(opened[g].value()));
            }
        });
        network_.hold(false);
    }

    ~Groups() {
        stop_groups();
        replicas_.clear();
        hosts_.clear();
    }

    // Stops every group, each Host's on a thread of its own (destroying a
    // handle stops its group); the Hosts close in the destructor.
    void stop_groups() {
        on_each_host([this](std::size_t h) { replicas_[h].clear(); });
        for (auto& leader : leaders_) leader.store(nullptr, std::memory_order_relaxed);
    }

    std::uint64_t size() const { return n_; }
    std::uint64_t replicas() const { return n_ * hosts_.size(); }
    std::uint64_t rss_without_groups() const { return rss_without_groups_; }
    const BenchNetwork& network() const { return network_; }
    // --transport tcp: keel's TCP transport, not network().
    bool tcp() const { return o_.transport == "tcp"; }

    // Group g's leader as last seen (null: none known); refreshed from the
    // replicas' status when unknown.
    keel::Node* leader(std::uint64_t g) {
        if (keel::Node* n = leaders_[g].load(std::memory_order_relaxed)) return n;
        for (auto& host : replicas_) {
            if (host[g]->status().role == keel::Role::leader) {
                leaders_[g].store(host[g].get(), std::memory_order_relaxed);
                return host[g].get();
            }
        }
        return nullptr;
    }
    void forget_leader(std::uint64_t g) { leaders_[g].store(nullptr, std::memory_order_relaxed); }

    // Until every group has committed one proposal through its leader
    // (elected, and its first entries written everywhere), or the deadline.
    void warm_up(Clock::time_point deadline) {
        std::vector<std::uint64_t> todo(n_);
        for (std::uint64_t g = 0; g < n_; ++g) todo[g] = g;
        const auto payload = std::make_shared<const std::string>(o_.record_bytes, 'w');
        while (!todo.empty()) {
            if (Clock::now() > deadline)
                die(fmt::format("groups: {} of {} groups wrote nothing before the deadline",
                                todo.size(), n_));
            std::mutex mu;
            std::condition_variable cv;
            std::size_t pending = 0;
            std::vector<std::uint64_t> failed;
            for (std::uint64_t g : todo) {
                keel::Node* n = leader(g);
                if (n == nullptr) {
                    failed.push_back(g);
                    continue;
                }
                {
                    std::lock_guard lock(mu);
                    ++pending;
                }
                n->propose_async(*payload, [&, g](keel::ProposeResult r) {
                    std::lock_guard lock(mu);
                    if (!r.status.ok()) {
                        forget_leader(g);
                        failed.push_back(g);
                    }
                    if (--pending == 0) cv.notify_all();
                });
            }
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return pending == 0; });
            todo.swap(failed);
            if (!todo.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    // Replicas that report themselves quiescent now.
    std::uint64_t quiescent() const {
        std::uint64_t q = 0;
        for (const auto& host : replicas_)
            for (const auto& r : host)
                if (r->status().quiescent) ++q;
        return q;
    }
    // Ticks the groups' cores were given, summed over every replica.
    std::uint64_t group_ticks() const {
        std::uint64_t t = 0;
        for (const auto& host : replicas_)
            for (const auto& r : host) t += r->status().timer_wakeups;
        return t;
    }
    std::vector<keel::HostStatus> host_status() const {
        std::vector<keel::HostStatus> out;
        for (const auto& h : hosts_) out.push_back(h->status());
        return out;
    }
    // Messages stepped into the replicas' cores, by kind, summed over every
    // replica (NodeStatus::messages_received).
    keel::MessageCounts messages_received() const {
        keel::MessageCounts sum;
        for (const auto& host : replicas_)
            for (const auto& r : host) sum += r->status().messages_received;
        return sum;
    }
    // Campaigns started, summed over every replica (NodeStatus::elections).
    std::uint64_t elections() const {
        std::uint64_t e = 0;
        for (const auto& host : replicas_)
            for (const auto& r : host) e += r->status().elections;
        return e;
    }
    // Each group's highest term over its replicas.
    std::vector<std::uint64_t> terms() const {
        std::vector<std::uint64_t> out(n_, 0);
        for (const auto& host : replicas_)
            for (std::uint64_t g = 0; g < n_; ++g)
                out[g] = std::max(out[g], host[g]->status().term);
        return out;
    }
    // Groups led by each Host.
    std::vector<std::uint64_t> led() const {
        std::vector<std::uint64_t> out;
        for (const auto& host : replicas_) {
            std::uint64_t l = 0;
            for (const auto& r : host)
                if (r->status().role == keel::Role::leader) ++l;
            out.push_back(l);
        }
        return out;
    }

private:
    // f(h) for every Host at once, one thread each (the Hosts are
    // independent: opening and stopping thousands of groups goes 3x faster).
    template <typename F>
    void on_each_host(F&& f) {
        std::vector<std::thread> threads;
        for (std::size_t h = 0; h < hosts_.size(); ++h) threads.emplace_back([&f, h] { f(h); });
        for (std::thread& t : threads) t.join();
    }

    keel::NodeOptions group_options(std::size_t h, std::uint64_t g) {
        keel::NodeOptions n = node_options(o_, "");  // the Host's data_dir/groups/<g>
        // Thousands of groups say the same thing (an inline apply that went
        // over budget, ...): the first few warnings, and every error.
        n.logger = [this](keel::LogLevel l, const std::string& m) {
            if (l == keel::LogLevel::error ||
                (l == keel::LogLevel::warn && warnings_.fetch_add(1) < kWarningsShown))
                std::fprintf(stderr, "keel: %s\n", m.c_str());
        };
        n.id = kProcesses[h];
        n.initial_members = members_;
        // Over TCP every group belongs to the Hosts' cluster (HostOptions::
        // cluster_id); in process each has its own.
        if (!tcp()) n.cluster_id = fmt::format("{}{:08x}", cluster_prefix_, g);
        n.quiesce = true;
        // As cluster3: a stall on a loaded machine must not start elections.
        n.election_timeout_min_ms = 1000;
        n.election_timeout_max_ms = 2000;
        return n;
    }

    const Options& o_;
    const std::uint64_t n_;
    BenchNetwork network_;  // outlives the Hosts
    std::vector<keel::MemberSpec> members_;
    std::string cluster_prefix_;
    std::vector<std::unique_ptr<keel::Host>> hosts_;
    std::vector<std::vector<std::unique_ptr<keel::Node>>> replicas_;  // [host][group]
    std::vector<std::atomic<keel::Node*>> leaders_;
    std::uint64_t rss_without_groups_ = 0;
    static constexpr std::uint64_t kWarningsShown = 5;
    std::atomic<std::uint64_t> warnings_{0};
};

// Liveness over a run, from the Hosts' status before and after: peers
// declared down, and how late rounds and pings came (the largest gap seen
// in the run's histograms, as the upper bound of its bucket; and gaps over
// one second, half the time after which a peer is declared down).
void add_liveness(nlohmann::json& row, const std::vector<keel::HostStatus>& before,
                  const std::vector<keel::HostStatus>& after) {
    std::uint64_t verdicts = 0;
    auto worst = [&](auto field, std::uint64_t& over_1s) {
        double max_bound_us = 0;
        for (std::size_t h = 0; h < after.size(); ++h) {
            const keel::LatencyHistogram& a = after[h].*field;
            const keel::LatencyHistogram& b = before[h].*field;
            for (std::size_t i = 0; i < a.counts.size(); ++i) {
                const std::uint64_t n = a.counts[i] - (i < b.counts.size() ? b.counts[i] : 0);
                if (n == 0) continue;
                max_bound_us = std::max(max_bound_us, a.upper_bounds_us[i]);
                if (a.upper_bounds_us[i] > 1e6) over_1s += n;
            }
        }
        return max_bound_us;
    };
    for (std::size_t h = 0; h < after.size(); ++h)
        verdicts += after[h].peer_down_verdicts - before[h].peer_down_verdicts;
    std::uint64_t rounds_over_1s = 0, pings_over_1s = 0;
    const double round_gap = worst(&keel::HostStatus::liveness_round_gap, rounds_over_1s);
    const double ping_gap = worst(&keel::HostStatus::liveness_ping_gap, pings_over_1s);
    row["peer_down"] = verdicts;
    // Bucket bounds; "inf" means over one second.
    row["liveness_round_gap_us_bucket_max"] = std::isinf(round_gap) ? -1.0 : round_gap;
    row["liveness_ping_gap_us_bucket_max"] = std::isinf(ping_gap) ? -1.0 : ping_gap;
    row["liveness_round_gaps_over_1s"] = rounds_over_1s;
    row["liveness_ping_gaps_over_1s"] = pings_over_1s;
    std::uint64_t round_max = 0, ping_max = 0;
    for (const keel::HostStatus& s : after) {
        round_max = std::max(round_max, s.liveness_round_gap_us_max);
        ping_max = std::max(ping_max, s.liveness_ping_gap_us_max);
    }
    // Since the Hosts started (opening the groups included).
    row["liveness_round_gap_us_max_since_start"] = round_max;
    row["liveness_ping_gap_us_max_since_start"] = ping_max;
}

void run_busy(Groups& groups, const Options& o, int k) {
    const auto payload = std::make_shared<const std::string>(o.record_bytes, 'p');
    std::atomic<std::uint64_t> next{0};
    ClosedLoop loop([&](std::function<void(bool)> done) {
        const std::uint64_t g = next.fetch_add(1, std::memory_order_relaxed) % groups.size();
        keel::Node* n = groups.leader(g);
        if (n == nullptr) return done(false);
        n->propose_async(*payload, [&groups, g, done](keel::ProposeResult r) {
            if (!r.status.ok()) groups.forget_leader(g);
            done(r.status.ok());
        });
    });
    const std::vector<keel::HostStatus> before = groups.host_status();
    const std::uint64_t buffers_before = groups.network().buffers();
    const std::uint64_t wakeups_before = groups.network().wakeups();
    const std::uint64_t switches_before = context_switches();
    const std::uint64_t elections_before = groups.elections();
    const std::uint64_t ticks_before = groups.group_ticks();
    const std::vector<std::uint64_t> terms_before = groups.terms();
    const keel::MessageCounts messages_before = groups.messages_received();
    LoopResult r = loop.run(k, o.seconds);
    const keel::MessageCounts messages = groups.messages_received();
    const std::uint64_t elections = groups.elections() - elections_before;
    const std::uint64_t ticks = groups.group_ticks() - ticks_before;
    const std::vector<std::uint64_t> terms_after = groups.terms();
    std::uint64_t term_changes = 0, groups_churned = 0;
    for (std::uint64_t g = 0; g < groups.size(); ++g) {
        term_changes += terms_after[g] - terms_before[g];
        if (terms_after[g] != terms_before[g]) ++groups_churned;
    }
    const std::uint64_t switches = context_switches() - switches_before;
    const std::uint64_t wakeups = groups.network().wakeups() - wakeups_before;
    const std::uint64_t buffers = groups.network().buffers() - buffers_before;
    const std::vector<keel::HostStatus> after = groups.host_status();
    nlohmann::json per_host = nlohmann::json::array();
    for (std::size_t h = 0; h < after.size(); ++h) {
        const std::uint64_t records = after[h].wal_records - before[h].wal_records;
        const std::uint64_t fsyncs = after[h].wal_fsyncs - before[h].wal_fsyncs;
        r.records += records;
        r.fsyncs += fsyncs;
        per_host.push_back(fsyncs != 0 ? static_cast<double>(records) / fsyncs : 0.0);
    }
    const double ops = static_cast<double>(std::max<std::size_t>(r.ops_all, 1));
    nlohmann::json row = report_row("groups", k, o, std::move(r));
    // Over the run (as records per fsync), per completed operation: the
    // transport's buffers, its delivery threads' wakeups, and the whole
    // process's context switches.
    row["transport"] = o.transport;
    if (!groups.tcp()) {
        row["buffers_per_op"] = static_cast<double>(buffers) / ops;
        row["delivery_wakeups_per_op"] = static_cast<double>(wakeups) / ops;
    }
    row["context_switches_per_op"] = static_cast<double>(switches) / ops;
    // The messages every replica stepped in, by kind (MessageCounts).
    auto per_op = [ops](std::uint64_t after, std::uint64_t before) {
        return static_cast<double>(after - before) / ops;
    };
    const keel::MessageCounts& m0 = messages_before;
    row["messages_per_op"] = {
        {"all", per_op(messages.total(), m0.total())},
        {"appends", per_op(messages.appends, m0.appends)},
        {"append_answers", per_op(messages.append_answers, m0.append_answers)},
        {"heartbeats", per_op(messages.heartbeats, m0.heartbeats)},
        {"heartbeat_answers", per_op(messages.heartbeat_answers, m0.heartbeat_answers)},
        {"notices", per_op(messages.notices, m0.notices)},
        {"votes", per_op(messages.votes, m0.votes)},
        {"vote_answers", per_op(messages.vote_answers, m0.vote_answers)},
        {"other", per_op(messages.other, m0.other)}};
    // The times the Hosts' clocks stepped a group's core, summed over every
    // replica, per second of the run (NodeStatus::timer_wakeups).
    row["group_ticks_per_s"] = static_cast<double>(ticks) / o.seconds;
    row["groups"] = groups.size();
    row["records_per_fsync_by_host"] = per_host;
    row["led_by_host"] = groups.led();
    // Leadership churn over the run: campaigns started by any replica
    // (pre-votes included), terms gained summed over the groups, and the
    // groups whose term moved at all.
    row["elections"] = elections;
    row["term_changes"] = term_changes;
    row["groups_with_term_change"] = groups_churned;
    add_liveness(row, before, after);
    print(row);
}

void run_idle(Groups& groups) {
    // Quiescent: a leader waits quiesce_after_ticks idle heartbeat intervals.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::uint64_t quiet = groups.quiescent();
    while (quiet < groups.replicas() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        quiet = groups.quiescent();
    }
    // Start-up work that is not idling (the WAL preparing its next segment
    // in the background) settles first.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto wakeups = [&] {
        std::uint64_t w = 0;
        for (const keel::HostStatus& s : groups.host_status()) w += s.timer_wakeups;
        return w;
    };
    auto wal = [&](std::uint64_t keel::HostStatus::*field) {
        std::uint64_t n = 0;
        for (const keel::HostStatus& s : groups.host_status()) n += s.*field;
        return n;
    };
    const std::uint64_t records_before = wal(&keel::HostStatus::wal_records);
    const std::uint64_t fsyncs_before = wal(&keel::HostStatus::wal_fsyncs);
    const std::uint64_t wakeups_before = wakeups();
    const std::uint64_t ticks_before = groups.group_ticks();
    // For a profiler attached to exactly the window (perf record -p <pid>).
    std::fprintf(stderr, "# groups: idle window starts (pid %d, 5 s)\n",
                 static_cast<int>(::getpid()));
    const double cpu_before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    const double cpu = cpu_seconds() - cpu_before;
    std::fprintf(stderr, "# groups: idle window ends\n");
    const std::uint64_t timer_wakeups = wakeups() - wakeups_before;
    const std::uint64_t wal_records = wal(&keel::HostStatus::wal_records) - records_before;
    const std::uint64_t wal_fsyncs = wal(&keel::HostStatus::wal_fsyncs) - fsyncs_before;
    const std::uint64_t ticks = groups.group_ticks() - ticks_before;
    const std::uint64_t rss = rss_bytes();
    const std::uint64_t grown =
        rss > groups.rss_without_groups() ? rss - groups.rss_without_groups() : 0;
    print({{"bench", "idle_groups"},
           {"groups", groups.size()},
           {"replicas", groups.replicas()},
           {"seconds", 5},
           {"timer_wakeups", timer_wakeups},
           {"group_ticks", ticks},
           {"wal_records", wal_records},
           {"wal_fsyncs", wal_fsyncs},
           {"cpu_s", cpu},
           {"rss_bytes", rss},
           {"rss_bytes_per_replica", grown / groups.replicas()},
           {"threads", thread_count()},
           {"quiescent_replicas", quiet}});
}

}  // namespace

void run_groups(const Options& o) {
    const std::string base = fresh_dir(o, "groups");
    Clock::time_point stop_start;
    double groups_stop_s = 0;
    {
        auto t0 = Clock::now();
        auto since = [&t0] {
            const double s = std::chrono::duration<double>(Clock::now() - t0).count();
            t0 = Clock::now();
            return s;
        };
        Groups groups(o, base);
        std::fprintf(stderr, "# groups: %llu groups open on 3 Hosts in %.1f s\n",
                     static_cast<unsigned long long>(o.groups), since());
        // Elections take an election timeout (1-2 s), then the first writes.
        groups.warm_up(Clock::now() + std::chrono::seconds(60) +
                       std::chrono::milliseconds(10 * o.groups));
        std::fprintf(stderr, "# groups: every group elected and wrote in %.1f s\n", since());
        if (!o.idle_only)
            for (int k : o.outstanding) run_busy(groups, o, k);
        run_idle(groups);
        stop_start = Clock::now();
        groups.stop_groups();
        groups_stop_s = std::chrono::duration<double>(Clock::now() - stop_start).count();
    }
    const double stop_s = std::chrono::duration<double>(Clock::now() - stop_start).count();
    std::fprintf(stderr, "# groups: stopped in %.2f s (the groups %.2f s, then the Hosts %.2f s)\n",
                 stop_s, groups_stop_s, stop_s - groups_stop_s);
    std::filesystem::remove_all(base);
}

}  // namespace raft_bench
