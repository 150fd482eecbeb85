// The per-process services.  See services.hpp.
#include "runtime/services.hpp"

#include <pthread.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <future>

#include "keel/assert.hpp"

namespace keel::runtime {

struct Services::WorkGuard {
    explicit WorkGuard(boost::asio::io_context& io) : guard(io.get_executor()) {}
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
};

Services::Services()
    : io_(std::make_unique<boost::asio::io_context>(1)), work_(std::make_unique<WorkGuard>(*io_)) {}

Services::~Services() {
    KEEL_ASSERT(!io_thread_.joinable(), "the I/O thread is stopped before its services go");
}

void Services::start_io() {
    KEEL_ASSERT(!io_thread_.joinable(), "the I/O thread is started once");
    std::promise<void> running;
    io_thread_ = std::thread([this, &running] {
        io_thread_id_ = std::this_thread::get_id();
        pthread_setname_np(pthread_self(), "keel-io");
        running.set_value();
        io_->run();
    });
    running.get_future().wait();
}

void Services::post(std::function<void()> f) {
    boost::asio::post(*io_, std::move(f));
}

void Services::stop_io() {
    KEEL_ASSERT(!on_io_thread(), "the I/O thread cannot stop itself");
    work_.reset();
    io_->stop();
    if (io_thread_.joinable()) io_thread_.join();
}

void Services::to_io(std::function<void()> work) {
    MutexLock lock(mu_);
    outbox_.push_back(std::move(work));
}

void Services::flush_outbox() {
    if (on_io_thread()) return run_outbox();
    {
        MutexLock lock(mu_);
        if (outbox_.empty() || outbox_posted_) return;
        outbox_posted_ = true;
    }
    post([this] { run_outbox(); });
}

void Services::run_outbox() {
    std::vector<std::function<void()>> work;
    {
        MutexLock lock(mu_);
        if (outbox_.empty()) return;
        work.swap(outbox_);
        outbox_posted_ = false;
        outbox_running_ = true;
    }
    for (auto& w : work)
        if (!outbox_closed_) w();
    MutexLock lock(mu_);
    outbox_running_ = false;
}

}  // namespace keel::runtime
