// wal-bench: the physical floors (pwrite + fdatasync; a 4 KiB
// O_DIRECT|O_DSYNC write) and the WAL's group commit under a closed loop of
// K outstanding appends, on each write path asked for.  Prints one JSON
// object per line; each WAL row names its write path.
//
//   wal-bench --dir D --seconds S --record-bytes B --outstanding 1,16,256
//             [--write-path buffered,direct] [--recovery]
//
// The WALs it writes are left in D/wal-<path> (inspect them with waldump);
// the raw files and the --recovery log are removed.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "keel/wal/wal.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using keel::Status;
using keel::wal::Record;
using keel::wal::Wal;

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void print(const nlohmann::json& j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
}

void die(const std::string& what) {
    std::fprintf(stderr, "wal-bench: %s\n", what.c_str());
    std::exit(1);
}

// pwrite of `bytes` + fdatasync in a loop.  overwrite: into a zero-filled,
// synced file (wrapping around inside it); otherwise appending to a new file.
void raw_bench(const std::string& dir, double seconds, std::size_t bytes, bool overwrite) {
    const std::string path = dir + (overwrite ? "/raw-overwrite.tmp" : "/raw-append.tmp");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot create " + path);
    const std::size_t file_bytes = 64u << 20;
    std::vector<char> buf(std::max<std::size_t>(bytes, 1u << 20), 0);
    if (overwrite) {
        for (std::size_t at = 0; at < file_bytes; at += buf.size())
            if (::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(at)) < 0) die("pwrite");
        if (::fsync(fd) != 0) die("fsync");
    }
    std::fill(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(bytes), 'x');
    std::vector<double> lat;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    std::size_t offset = 0;
    while (Clock::now() < end) {
        const auto t0 = Clock::now();
        if (::pwrite(fd, buf.data(), bytes, static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(bytes))
            die("pwrite");
        if (::fdatasync(fd) != 0) die("fdatasync");
        lat.push_back(micros(Clock::now() - t0));
        offset += bytes;
        if (overwrite && offset + bytes > file_bytes) offset = 0;
    }
    ::close(fd);
    std::filesystem::remove(path);
    const double n = static_cast<double>(lat.size());
    print({{"bench", overwrite ? "raw_fdatasync" : "raw_append_fdatasync"},
           {"record_bytes", bytes},
           {"ops", lat.size()},
           {"ops_per_s", n / seconds},
           {"p50_us", percentile(lat, 0.50)},
           {"p99_us", percentile(lat, 0.99)}});
}

// 4 KiB O_DIRECT|O_DSYNC writes in a loop, overwriting a zero-filled,
// synced file (wrapping around inside it): the floor of the WAL's direct
// path at K=1, whose batch is one such write.  False where the file system
// refuses O_DIRECT.
bool raw_direct_bench(const std::string& dir, double seconds) {
    constexpr std::size_t kBlock = 4096;
    const std::string path = dir + "/raw-direct.tmp";
    const std::size_t file_bytes = 64u << 20;
    {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die("cannot create " + path);
        std::vector<char> zeros(1u << 20, 0);
        for (std::size_t at = 0; at < file_bytes; at += zeros.size())
            if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(at)) < 0) die("pwrite");
        if (::fsync(fd) != 0) die("fsync");
        ::close(fd);
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_DSYNC | O_CLOEXEC);
    if (fd < 0) {
        std::filesystem::remove(path);
        if (errno == EINVAL) return false;
        die("cannot open " + path + " with O_DIRECT");
    }
    void* raw = std::aligned_alloc(kBlock, kBlock);
    if (raw == nullptr) die("aligned_alloc");
    std::memset(raw, 'x', kBlock);
    std::vector<double> lat;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    std::size_t offset = 0;
    while (Clock::now() < end) {
        const auto t0 = Clock::now();
        if (::pwrite(fd, raw, kBlock, static_cast<off_t>(offset)) != static_cast<ssize_t>(kBlock))
            die("pwrite (O_DIRECT|O_DSYNC)");
        lat.push_back(micros(Clock::now() - t0));
        offset += kBlock;
        if (offset + kBlock > file_bytes) offset = 0;
    }
    std::free(raw);
    ::close(fd);
    std::filesystem::remove(path);
    const double n = static_cast<double>(lat.size());
    print({{"bench", "raw_direct_dsync"},
           {"write_bytes", kBlock},
           {"ops", lat.size()},
           {"ops_per_s", n / seconds},
           {"p50_us", percentile(lat, 0.50)},
           {"p99_us", percentile(lat, 0.99)}});
    return true;
}

// Closed loop: K appends in flight; each completion submits the next one,
// either from the completion callback itself (on the WAL's flusher thread:
// no thread hop) or, with from_thread, from a separate submitter thread
// woken by the callback (what a runtime posting to its own thread pays).
class ClosedLoop {
public:
    ClosedLoop(Wal& wal, std::size_t bytes, bool from_thread)
        : wal_(wal), payload_(bytes, 'r'), from_thread_(from_thread) {}

    void run(int outstanding, double seconds) {
        const auto before = wal_.stats();
        latencies_.clear();
        latencies_.reserve(1u << 20);
        stop_ = false;
        owed_ = 0;
        std::thread submitter;
        if (from_thread_) submitter = std::thread([this] { submitter_main(); });
        const auto t0 = Clock::now();
        for (int i = 0; i < outstanding; ++i) submit();
        {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return failed_; });
            stop_ = true;
            cv_.notify_all();
            cv_.wait(lock, [&] { return in_flight_ == 0; });
        }
        if (submitter.joinable()) submitter.join();
        const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
        if (failed_) die("append failed: " + error_);
        const auto after = wal_.stats();
        const double records = static_cast<double>(after.records_written - before.records_written);
        const double fsyncs = static_cast<double>(after.fsyncs - before.fsyncs);
        print({{"bench", "wal"},
               {"write_path", keel::wal::write_path_name(wal_.write_path())},
               {"outstanding", outstanding},
               {"submit_from", from_thread_ ? "thread" : "callback"},
               {"record_bytes", payload_.size()},
               {"ops", latencies_.size()},
               {"ops_per_s", static_cast<double>(latencies_.size()) / elapsed},
               {"p50_us", percentile(latencies_, 0.50)},
               {"p99_us", percentile(latencies_, 0.99)},
               {"fsyncs_per_s", fsyncs / elapsed},
               {"records_per_fsync", fsyncs > 0 ? records / fsyncs : 0.0}});
    }

private:
    void submit() {
        std::lock_guard lock(mu_);  // index assignment and submission stay in order
        if (stop_ || failed_) return;
        Record r{wal_.next_index(), 1, 1, payload_};
        const auto start = Clock::now();
        Status s = wal_.append(std::move(r), [this, start](Status st) { done(st, start); });
        if (!s.ok()) {
            failed_ = true;
            error_ = s.to_string();
            cv_.notify_all();
            return;
        }
        ++in_flight_;
    }

    void done(const Status& s, Clock::time_point start) {  // on the flusher thread
        const double us = micros(Clock::now() - start);
        {
            std::lock_guard lock(mu_);
            --in_flight_;
            if (!s.ok()) {
                failed_ = true;
                error_ = s.to_string();
            } else {
                latencies_.push_back(us);
            }
            if (stop_ || failed_) {
                cv_.notify_all();
                return;
            }
            if (from_thread_) {
                ++owed_;
                cv_.notify_all();
                return;
            }
        }
        submit();
    }

    void submitter_main() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return owed_ > 0 || stop_ || failed_; });
            if (stop_ || failed_) return;
            int n = owed_;
            owed_ = 0;
            lock.unlock();
            while (n-- > 0) submit();
            lock.lock();
        }
    }

    Wal& wal_;
    std::string payload_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool from_thread_;
    int in_flight_ = 0;
    int owed_ = 0;  // completions whose replacement the submitter thread still owes
    bool stop_ = false;
    bool failed_ = false;
    std::string error_;
    std::vector<double> latencies_;
};

void recovery_bench(const std::string& dir, std::size_t bytes, std::uint64_t records) {
    const std::string path = dir + "/recovery-wal";
    std::filesystem::remove_all(path);
    {
        auto wal = Wal::open(path);
        if (!wal.ok()) die(wal.status().to_string());
        constexpr std::uint64_t kBatch = 4096;
        std::string payload(bytes, 'v');
        for (std::uint64_t i = 1; i <= records; i += kBatch) {
            std::vector<Record> batch;
            for (std::uint64_t j = i; j < std::min(i + kBatch, records + 1); ++j)
                batch.push_back(Record{j, 1, 1, payload});
            if (Status s = keel::wal::append_sync(**wal, std::move(batch)); !s.ok())
                die(s.to_string());
        }
    }
    const auto t0 = Clock::now();
    auto wal = Wal::open(path);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!wal.ok()) die(wal.status().to_string());
    if ((*wal)->last_index() != records) die("recovered the wrong number of records");
    print({{"bench", "recovery"},
           {"records", records},
           {"record_bytes", bytes},
           {"segments", (*wal)->stats().segments},
           {"open_ms", ms}});
    wal->reset();
    std::filesystem::remove_all(path);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"wal-bench: fdatasync floor and WAL group-commit throughput/latency (JSON lines)"};
    std::string dir;
    double seconds = 3;
    std::size_t record_bytes = 100;
    std::vector<int> outstanding{1, 16, 256};
    bool recovery = false;
    bool skip_raw = false;
    std::string submit_from = "callback";
    std::uint64_t recovery_records = 1000000;
    std::uint64_t segment_bytes = 64ull << 20;
    std::vector<std::string> write_paths{"buffered", "direct"};
    app.add_option("--dir", dir, "directory to write in (the WALs are left there)")->required();
    app.add_option("--seconds", seconds, "duration of each measurement");
    app.add_option("--record-bytes", record_bytes, "payload bytes per record");
    app.add_option("--outstanding", outstanding, "appends in flight, e.g. 1,16,256")
        ->delimiter(',');
    app.add_option("--segment-bytes", segment_bytes, "WAL segment size");
    app.add_flag("--skip-raw", skip_raw, "skip the raw floor measurements");
    app.add_option("--write-path", write_paths,
                   "the WAL's write paths to measure, in this order (Options::write_path)")
        ->delimiter(',')
        ->check(CLI::IsMember({"buffered", "direct", "auto"}));
    app.add_option("--submit-from", submit_from,
                   "who submits the next append: the completion callback (flusher thread) "
                   "or a separate thread")
        ->check(CLI::IsMember({"callback", "thread"}));
    app.add_flag("--recovery", recovery, "also time open() of a freshly built large WAL");
    app.add_option("--recovery-records", recovery_records, "records in the --recovery WAL");
    CLI11_PARSE(app, argc, argv);

    std::filesystem::create_directories(dir);
    if (!skip_raw) {
        raw_bench(dir, seconds, record_bytes, true);
        if (!raw_direct_bench(dir, seconds))
            std::fprintf(stderr, "wal-bench: %s refuses O_DIRECT: no raw_direct_dsync\n",
                         dir.c_str());
        raw_bench(dir, seconds, record_bytes, false);
    }
    for (const std::string& name : write_paths) {
        keel::wal::Options options;
        options.segment_bytes = segment_bytes;
        options.write_path = name == "direct" ? keel::wal::WritePath::direct
                             : name == "auto" ? keel::wal::WritePath::automatic
                                              : keel::wal::WritePath::buffered;
        auto wal = Wal::open(dir + "/wal-" + name, options);
        if (!wal.ok() && wal.status().code() == keel::ErrorCode::unsupported) {
            std::fprintf(stderr, "wal-bench: no %s WAL rows: %s\n", name.c_str(),
                         wal.status().to_string().c_str());
            continue;
        }
        if (!wal.ok()) die(wal.status().to_string());
        // No background zero-fill competes with the first fdatasyncs: the WAL
        // prepares the next segment only once the active one is half full.
        ClosedLoop loop(**wal, record_bytes, submit_from == "thread");
        for (int k : outstanding) {
            if (k < 1) die("--outstanding values must be >= 1");
            loop.run(k, seconds);
        }
    }
    if (recovery) recovery_bench(dir, record_bytes, recovery_records);
    return 0;
}
