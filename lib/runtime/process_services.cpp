// The per-process services.  See process_services.hpp.
#include "runtime/process_services.hpp"

#include <pthread.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <future>

#include "keel/assert.hpp"
#include "transport/message_channel.hpp"

namespace keel::runtime {

struct ProcessServices::WorkGuard {
    explicit WorkGuard(boost::asio::io_context& io) : guard(io.get_executor()) {}
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
};

ProcessServices::ProcessServices()
    : io_(std::make_unique<boost::asio::io_context>(1)), work_(std::make_unique<WorkGuard>(*io_)) {
    router_.set_liveness(&liveness_);
    router_.set_io({[this] { return on_io_thread(); },
                    [this](std::function<void()> f) { post(std::move(f)); }});
}

ProcessServices::~ProcessServices() {
    stop();
}

void ProcessServices::start_io() {
    KEEL_ASSERT(!io_thread_.joinable() && !stopped_, "the I/O thread is started once");
    std::promise<void> running;
    io_thread_ = std::thread([this, &running] {
        io_thread_id_ = std::this_thread::get_id();
        pthread_setname_np(pthread_self(), "keel-io");
        running.set_value();
        io_->run();
    });
    running.get_future().wait();
}

void ProcessServices::post(std::function<void()> f) {
    // The applies a piece of I/O work hands over (a buffer of many groups'
    // messages commits many groups) go to the pool together (decision 0030).
    // Without pools (keel::Node) the work is posted as it is.
    StrandPool* pool = batched_pool_.load(std::memory_order_acquire);
    if (pool == nullptr) return boost::asio::post(*io_, std::move(f));
    boost::asio::post(*io_, [pool, f = std::move(f)] {
        StrandPool::Batch batch(pool);
        f();
    });
}

Status ProcessServices::start_transport(
    std::shared_ptr<Transport> transport, GroupRouter::RejectionHook on_rejected,
    std::optional<std::map<NodeId, std::string>> process_peers) {
    KEEL_ASSERT(!on_io_thread(), "the transport starts off the I/O thread");
    return router_.start(std::move(transport), std::move(on_rejected), std::move(process_peers));
}

void ProcessServices::stop() {
    KEEL_ASSERT(!on_io_thread(), "the I/O thread cannot stop itself");
    if (stopped_) return;
    stopped_ = true;
    // The transport's sockets belong to the I/O thread while it runs.
    if (io_thread_.joinable()) {
        std::promise<void> done;
        post([this, &done] {
            router_.stop();
            done.set_value();
        });
        done.get_future().wait();
    } else {
        router_.stop();
    }
    work_.reset();
    io_->stop();
    if (io_thread_.joinable()) io_thread_.join();
    background_.stop();
    if (apply_pool_) apply_pool_->stop();
    if (event_pool_) event_pool_->stop();
    wal_.reset();
}

void ProcessServices::start_pools(std::size_t apply_threads) {
    KEEL_ASSERT(!apply_pool_ && !stopped_, "the pools are started once");
    apply_pool_ = std::make_unique<StrandPool>(apply_threads, "keel-apply");
    batched_pool_.store(apply_pool_.get(), std::memory_order_release);
    if (wal_) wal_->batch_completions_on(apply_pool_.get());
    event_pool_ = std::make_unique<StrandPool>(1, "keel-events");
}

Status ProcessServices::open_wal(const std::string& dir, wal::Options options) {
    KEEL_ASSERT(!wal_, "the shared WAL is opened once");
    // Idle groups are rewritten forward off the WAL's writing thread.
    RewritePolicy policy;
    policy.run_in_background = [this](std::function<void()> pass) {
        return background_.submit(std::move(pass));
    };
    auto w = SharedWal::open(dir, std::move(options), std::move(policy));
    if (!w.ok()) return w.status();
    wal_ = std::move(w.value());
    return Status::ok_status();
}

void ProcessServices::to_io(const bool& closed, std::function<void()> work) {
    MutexLock lock(mu_);
    Work& w = outbox_.emplace_back();
    w.closed = &closed;
    w.run = std::move(work);
}

void ProcessServices::to_io_send(const bool& closed, transport::MessageChannel& channel,
                                 std::vector<raft::Message> messages) {
    MutexLock lock(mu_);
    Work& w = outbox_.emplace_back();
    w.closed = &closed;
    w.channel = &channel;
    w.messages = std::move(messages);
}

void ProcessServices::flush_outbox() {
    if (on_io_thread()) return run_outbox();
    {
        MutexLock lock(mu_);
        if (outbox_.empty() || outbox_posted_) return;
        outbox_posted_ = true;
    }
    post([this] { run_outbox(); });
}

void ProcessServices::run_outbox() {
    // A run from inside a running one (work that ends up here again) takes
    // its own vector; the outermost run reuses outbox_taken_.
    std::vector<Work> nested;
    std::vector<Work>* work = &outbox_taken_;
    bool was_running = false;
    {
        MutexLock lock(mu_);
        if (outbox_.empty()) return;
        was_running = outbox_running_;
        if (was_running) work = &nested;
        work->swap(outbox_);
        outbox_posted_ = false;
        outbox_running_ = true;
    }
    for (Work& w : *work) {
        if (*w.closed) continue;
        if (w.channel != nullptr) {
            w.channel->send(std::move(w.messages));
        } else {
            w.run();
        }
    }
    work->clear();
    // A burst (thousands of groups opening) may have grown it: not kept.
    if (work->capacity() > kOutboxCapacityKept) std::vector<Work>().swap(*work);
    MutexLock lock(mu_);
    outbox_running_ = was_running;
}

}  // namespace keel::runtime
