// Host::open_groups (and open_group, a batch of one): the checks, the data
// dirs made durable once for the batch, the groups opened a few at a time
// on threads of the call, then the lone voters' elections waited for
// together.  See keel/host.hpp for the contract, docs/groups.md ("Opening
// many groups") for why each step is shaped so.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "runtime/bootstrap.hpp"
#include "runtime/host.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

namespace {

// How long open_groups waits for its lone voters' first elections in all
// (open_group waited this long for each).
constexpr std::chrono::seconds kLoneVotersWait{10};

// Runs f(i) for every i in [0, n), on up to `threads` threads at once (the
// calling thread alone when one is enough).
template <typename F>
void run_concurrently(std::size_t n, std::size_t threads, F&& f) {
    if (threads <= 1) {
        for (std::size_t i = 0; i < n; ++i) f(i);
        return;
    }
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t i = next++; i < n; i = next++) f(i);
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t t = 1; t < threads; ++t) {
        try {
            pool.emplace_back(work);
        } catch (const std::system_error&) {
            break;  // no thread to be had: the ones running (and this one) do it all
        }
    }
    work();
    for (std::thread& t : pool) t.join();
}

// Waits until every lone voter among `groups` can take proposals (its first
// entry of its new term durable: Replica::await_lone_voter), at most
// kLoneVotersWait in all.
void await_lone_voters(std::vector<std::unique_ptr<Replica>>& groups) {
    struct Waiting {
        std::mutex mu;
        std::condition_variable cv;
        std::size_t left = 0;
    };
    auto waiting = std::make_shared<Waiting>();
    std::vector<Replica*> lone;
    for (auto& g : groups)
        if (g && g->lone_voter()) lone.push_back(g.get());
    if (lone.empty()) return;
    waiting->left = lone.size();
    for (Replica* g : lone)
        g->read_index_async(false, [waiting](const ReadResult&) {
            std::lock_guard lock(waiting->mu);
            if (--waiting->left == 0) waiting->cv.notify_all();
        });
    std::unique_lock lock(waiting->mu);
    (void)waiting->cv.wait_for(lock, kLoneVotersWait, [&] { return waiting->left == 0; });
}

}  // namespace

Status HostImpl::admit(GroupToOpen& g) {
    NodeOptions& options = g.options;
    if (options.transport && options.transport != transport_)
        return Status(ErrorCode::invalid_argument,
                      "a group of a Host uses the Host's transport (NodeOptions::transport)");
    if (options.max_entry_bytes > options_.max_entry_bytes)
        return Status(ErrorCode::invalid_argument,
                      "NodeOptions::max_entry_bytes is larger than the Host's");
    {
        MutexLock lock(processes_mu_);
        if (processes_) {
            if (Status s = adopt_host_options(options, g.group, *processes_, cluster_id_); !s.ok())
                return s;
        }
    }
    if (options.data_dir.empty())
        options.data_dir = fmt::format("{}/groups/{}", options_.data_dir, g.group);
    options.transport = transport_;
    MutexLock lock(mu_);
    if (!open_.insert(g.group).second)
        return Status(ErrorCode::busy, fmt::format("group {} is open already", g.group));
    return Status::ok_status();
}

void HostImpl::make_data_dirs(const std::vector<GroupToOpen>& groups, std::vector<Status>& status) {
    // Each new directory's entry is in its parent: one fsync of each parent
    // makes every new directory of the batch durable.
    std::set<std::string> parents;
    std::vector<std::set<std::string>> needs(groups.size());
    for (std::size_t i = 0; i < groups.size(); ++i) {
        if (!status[i].ok()) continue;
        status[i] = create_directories(groups[i].options.data_dir, &needs[i]);
        parents.insert(needs[i].begin(), needs[i].end());
    }
    wal::FileSystem& fs = fs_ != nullptr ? *fs_ : *wal::default_file_system();
    // Deepest first: a new parent's own entry is synced after what it holds.
    for (auto it = parents.rbegin(); it != parents.rend(); ++it) {
        Status s = fs.sync_dir(*it);
        if (s.ok()) continue;
        for (std::size_t i = 0; i < groups.size(); ++i)
            if (status[i].ok() && needs[i].count(*it) != 0)
                status[i] =
                    Status(ErrorCode::io_error, fmt::format("group {}: fsync of directory {}: {}",
                                                            groups[i].group, *it, s.message()));
    }
}

std::vector<Result<std::unique_ptr<Node>>> HostImpl::open_groups(std::vector<GroupToOpen> groups) {
    const std::size_t n = groups.size();
    std::vector<Status> status(n);
    std::vector<bool> reserved(n, false);
    for (std::size_t i = 0; i < n; ++i) {
        status[i] = admit(groups[i]);
        reserved[i] = status[i].ok();
    }
    make_data_dirs(groups, status);

    std::vector<std::unique_ptr<Replica>> opened(n);
    const std::size_t to_open = static_cast<std::size_t>(
        std::count_if(status.begin(), status.end(), [](const Status& s) { return s.ok(); }));
    run_concurrently(n, std::min(kOpenGroupsConcurrencyMax, to_open), [&](std::size_t i) {
        if (!status[i].ok()) return;
        GroupToOpen& g = groups[i];
        auto replica = Replica::open_group(g.options, std::move(g.state_machine), *services_,
                                           g.group, fs_, /*wait_for_lone_voter=*/false);
        if (replica.ok())
            opened[i] = std::move(replica.value());
        else
            status[i] = replica.status();
    });
    await_lone_voters(opened);

    std::vector<Result<std::unique_ptr<Node>>> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (status[i].ok()) {
            out.emplace_back(handle(std::move(opened[i])));
            continue;
        }
        if (reserved[i]) closed(groups[i].group);
        out.emplace_back(std::move(status[i]));
    }
    return out;
}

}  // namespace keel::runtime
