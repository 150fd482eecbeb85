// keel::wal::Wal: the public operations (validation, queueing, reads,
// compaction, metadata).  The flusher is in flusher.cpp, recovery in
// recovery.cpp, segment files in segment_files.cpp.
#include "keel/wal/wal.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <future>

#include <fmt/format.h>

#include "keel/assert.hpp"
#include "keel/crc32c.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

using detail::kMaxIndex;  // the scanner's sanity bound

Wal::Impl::Impl(std::string dir, Options options)
    : dir_(std::move(dir)),
      options_(options),
      fs_(options.fs != nullptr ? options.fs : default_file_system()) {
    queue_.idle_spin_us.store(options.idle_spin_us);
}

Wal::Impl::~Impl() {
    {
        // A writer waiting for disk space gives up (its operations complete
        // with aborted).
        std::lock_guard lock(bg_.mu);
        bg_.closing.store(true);
    }
    bg_.cv.notify_all();
    {
        std::lock_guard lock(queue_.mu);
        queue_.stopping = true;
        queue_.ready.store(true);
    }
    queue_.cv.notify_all();
    if (flusher_.joinable()) flusher_.join();
    {
        std::lock_guard lock(bg_.mu);
        bg_.stop = true;
    }
    bg_.cv.notify_all();
    if (background_.joinable()) background_.join();
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

void Wal::Impl::start() {
    started_ = true;
    background_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "keel-wal-prep");
        background_main();
    });
    flusher_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "keel-wal-flush");
        if (options_.flusher_sched_batch) {
            sched_param normal{};  // SCHED_BATCH takes priority 0
            (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
        }
        flusher_main();
    });
}

Status Wal::Impl::append(std::vector<Record> records, Callback done, Wal::Writer writer) {
    if (records.empty()) return Status(ErrorCode::invalid_argument, "append of no records");
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
        const Record& r = records[i];
        if (r.payload.size() > options_.max_record_bytes)
            return Status(ErrorCode::too_large,
                          fmt::format("record at index {} has a {}-byte payload, over the limit "
                                      "of {} bytes (Options::max_record_bytes)",
                                      r.index, r.payload.size(), options_.max_record_bytes));
        if (r.group > kMaxGroup)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("record at index {} has group {}, over the limit of 2^62",
                                      r.index, r.group));
        if (r.index != records[0].index + i)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("append batch is not contiguous: index {} follows {}",
                                      r.index, records[i - 1].index));
        bytes += r.payload.size();
    }
    if (records.back().index > kMaxIndex)
        return Status(ErrorCode::invalid_argument, "index over 2^62");
    {
        std::lock_guard lock(queue_.mu);
        if (failed()) return health_.failure();
        if (queue_.stopping) return Status(ErrorCode::aborted, "the WAL is closing");
        if (records[0].index != queue_.submit_next)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("append at index {}, but the next index is {}",
                                      records[0].index, queue_.submit_next));
        if (queue_.queued_bytes > 0 && queue_.queued_bytes + bytes > options_.max_queue_bytes)
            return Status(ErrorCode::busy,
                          fmt::format("{} bytes already queued (Options::max_queue_bytes {})",
                                      queue_.queued_bytes, options_.max_queue_bytes));
        queue_.submit_next = records.back().index + 1;
        queue_.queued_bytes += bytes;
        queue_.push_locked(
            detail::Op{detail::Op::Kind::append, std::move(records), 0, bytes, std::move(done)});
    }
    if (writer == Wal::Writer::flusher) queue_.cv.notify_one();
    return Status();
}

Status Wal::Impl::enqueue_truncate(std::uint64_t index, Callback done) {
    {
        std::lock_guard lock(queue_.mu);
        if (failed()) return health_.failure();
        if (queue_.stopping) return Status(ErrorCode::aborted, "the WAL is closing");
        std::uint64_t first;
        {
            std::lock_guard state(state_mu_);
            first = log_.first_index();
        }
        if (index + 1 < first)
            return Status(
                ErrorCode::invalid_argument,
                fmt::format("truncate_after({}) is below the first index {}", index, first));
        queue_.submit_next = std::min(queue_.submit_next, index + 1);
        queue_.push_locked(detail::Op{detail::Op::Kind::truncate, {}, index, 0, std::move(done)});
    }
    queue_.cv.notify_one();
    return Status();
}

Status Wal::Impl::enqueue_reset(std::uint64_t next_index, Callback done) {
    if (next_index == 0 || next_index > kMaxIndex)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("reset({}): the index must be in [1, 2^62]", next_index));
    {
        std::lock_guard lock(queue_.mu);
        if (failed()) return health_.failure();
        if (queue_.stopping) return Status(ErrorCode::aborted, "the WAL is closing");
        queue_.submit_next = next_index;
        queue_.push_locked(detail::Op{detail::Op::Kind::reset, {}, next_index, 0, std::move(done)});
    }
    queue_.cv.notify_one();
    return Status();
}

Status Wal::Impl::save_metadata(const Metadata& metadata) {
    if (metadata.opaque.size() > kMaxMetadataOpaqueBytes)
        return Status(ErrorCode::too_large,
                      fmt::format("metadata opaque blob of {} bytes is over the {}-byte limit",
                                  metadata.opaque.size(), kMaxMetadataOpaqueBytes));
    if (failed()) return health_.failure();
    std::lock_guard lock(meta_mu_);
    detail::MetadataFile m = meta_;
    m.metadata = metadata;
    if (Status s = write_meta_locked(m); !s.ok()) {
        if (s.code() != ErrorCode::no_space) enter_failed(s);
        return s;
    }
    return Status();
}

Status Wal::Impl::write_meta_retrying(const std::function<void(detail::MetadataFile&)>& change) {
    for (;;) {
        Status s;
        {
            std::lock_guard lock(meta_mu_);
            detail::MetadataFile m = meta_;
            change(m);
            s = write_meta_locked(m);
        }
        if (s.code() != ErrorCode::no_space || !started_) {
            if (s.ok()) set_no_space(NoSpaceSource::flusher, false);
            return s;
        }
        set_no_space(NoSpaceSource::flusher, true);
        if (!wait_for_space_retry()) return closing_while_waiting();
    }
}

void Wal::Impl::set_no_space(NoSpaceSource source, bool no_space) {
    if (health_.set_no_space(source, no_space)) notify_health();
}

void Wal::Impl::notify_health() const {
    if (options_.on_health_change) options_.on_health_change();
}

Metadata Wal::Impl::metadata() const {
    std::lock_guard lock(meta_mu_);
    return meta_.metadata;
}

Result<std::vector<Record>> Wal::Impl::read(std::uint64_t from, std::uint64_t to,
                                            std::uint64_t max_bytes) const {
    struct Location {
        std::uint64_t index;
        std::uint64_t term;
        std::uint64_t offset;
        std::uint32_t payload_bytes;
        std::uint32_t crc;
        std::shared_ptr<File> file;
        std::uint64_t header_bytes;  // of the segment's layout version
    };
    std::vector<Record> out;
    std::vector<Location> disk;
    {
        std::lock_guard lock(state_mu_);
        const std::uint64_t first = log_.first_index();
        if (from < first || to > log_.last + 1 || from > to)
            return Status(
                ErrorCode::not_found,
                fmt::format("read [{}, {}) outside the log [{}, {}]", from, to, first, log_.last));
        const std::uint64_t cache_first = log_.cache_first();
        std::uint64_t bytes = 0;
        for (std::uint64_t i = from; i < to; ++i) {
            const detail::Entry& e = log_.entries[i - log_.phys_first];
            if (i > from && bytes + e.payload_bytes > max_bytes) break;
            bytes += e.payload_bytes;
            if (i >= cache_first) {
                out.push_back(log_.cache[i - cache_first]);
            } else {
                const SegmentPtr& seg = log_.segment_for(i);
                disk.push_back(Location{i, e.term, e.offset, e.payload_bytes, e.crc, seg->file,
                                        seg->record_header_bytes});
                out.emplace_back();
            }
        }
    }
    // Records not in the cache are read without the lock; each is verified.
    std::vector<char> buf;
    std::size_t slot = 0;
    for (const Location& loc : disk) {
        while (out[slot].index != 0) ++slot;
        const std::uint64_t n = detail::record_bytes(loc.payload_bytes, loc.header_bytes);
        buf.resize(n);
        auto got = loc.file->pread(buf.data(), n, loc.offset);
        if (!got.ok()) return got.status();
        const detail::RecordHeader h = detail::decode_record_header(buf.data(), loc.header_bytes);
        if (*got != n || h.index != loc.index || h.crc != loc.crc ||
            detail::record_crc(buf.data(), n, h.prev_crc) != h.crc) {
            std::lock_guard lock(state_mu_);
            if (loc.index > log_.last || loc.index < log_.first_index())
                return Status(ErrorCode::not_found,
                              fmt::format("record {} was truncated or compacted while being read",
                                          loc.index));
            return Status(
                ErrorCode::corruption,
                fmt::format("record {} at offset {} fails its CRC on read", loc.index, loc.offset));
        }
        out[slot] =
            Record{h.index, h.term, h.type,
                   SharedBytes(std::string_view(buf.data() + loc.header_bytes, h.length)), h.group};
    }
    return out;
}

std::uint64_t Wal::Impl::reclaimable_from() const {
    std::lock_guard lock(state_mu_);
    return log_.segments.size() > 1 ? log_.segments[1]->first_index : 0;
}

std::uint64_t Wal::Impl::first_index() const {
    std::lock_guard lock(state_mu_);
    return log_.first_index();
}

std::uint64_t Wal::Impl::last_index() const {
    std::lock_guard lock(state_mu_);
    return log_.last;
}

std::uint64_t Wal::Impl::next_index() const {
    std::lock_guard lock(queue_.mu);
    return queue_.submit_next;
}

Result<std::uint64_t> Wal::Impl::term_at(std::uint64_t index) const {
    std::lock_guard lock(state_mu_);
    if (index < log_.first_index() || index > log_.last)
        return Status(ErrorCode::not_found, fmt::format("no record {} in the log", index));
    return log_.entries[index - log_.phys_first].term;
}

Stats Wal::Impl::stats() const {
    Stats s;
    {
        std::lock_guard lock(state_mu_);
        s.segments = log_.segments.size();
        for (const auto& seg : log_.segments) s.disk_bytes += seg->end_offset.load();
    }
    s.fsyncs = counters_.fsyncs.load();
    s.batches = counters_.batches.load();
    s.records_written = counters_.records_written.load();
    s.bytes_written = counters_.bytes_written.load();
    {
        std::lock_guard lock(bg_.mu);
        s.next_segment_ready = bg_.prepared != nullptr;
    }
    return s;
}

// ---- Wal: forwarding ----

Wal::Wal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Wal::~Wal() = default;

Result<std::unique_ptr<Wal>> Wal::open(const std::string& dir, Options options) {
    if (options.max_record_bytes > kFormatMaxPayloadBytes)
        return Status(ErrorCode::invalid_argument, "max_record_bytes over the format's limit");
    if (options.segment_bytes < 4096)
        return Status(ErrorCode::invalid_argument, "segment_bytes must be at least 4096");
    auto impl = std::make_unique<Impl>(dir, options);
    if (Status s = impl->recover(); !s.ok()) return s;
    impl->start();
    return std::unique_ptr<Wal>(new Wal(std::move(impl)));
}

Status Wal::append(std::vector<Record> records, Callback done, Writer writer) {
    return impl_->append(std::move(records), std::move(done), writer);
}
Status Wal::append(Record record, Callback done) {
    std::vector<Record> one;
    one.push_back(std::move(record));
    return impl_->append(std::move(one), std::move(done), Writer::flusher);
}
bool Wal::write_queued() {
    return impl_->write_queued();
}
std::vector<Record> Wal::record_buffer() {
    return impl_->record_buffer();
}
Status Wal::truncate_after(std::uint64_t index, Callback done) {
    return impl_->enqueue_truncate(index, std::move(done));
}
Status Wal::reset(std::uint64_t next_index, Callback done) {
    return impl_->enqueue_reset(next_index, std::move(done));
}
Status Wal::compact_before(std::uint64_t index) {
    return impl_->compact_before(index);
}
Status Wal::release(std::uint64_t group, std::uint64_t index) {
    const Release one{group, index};
    return impl_->release(std::span<const Release>(&one, 1), nullptr);
}
Status Wal::release(std::span<const Release> releases) {
    return impl_->release(releases, nullptr);
}
Status Wal::release(std::span<const Release> releases, const Metadata& metadata) {
    return impl_->release(releases, &metadata);
}
std::vector<SegmentPin> Wal::oldest_segment_pins() const {
    return impl_->oldest_segment_pins();
}
Status Wal::save_metadata(const Metadata& metadata) {
    return impl_->save_metadata(metadata);
}
Metadata Wal::metadata() const {
    return impl_->metadata();
}
Result<std::vector<Record>> Wal::read(std::uint64_t from, std::uint64_t to_exclusive,
                                      std::uint64_t max_bytes) const {
    return impl_->read(from, to_exclusive, max_bytes);
}
std::uint64_t Wal::reclaimable_from() const {
    return impl_->reclaimable_from();
}
std::uint64_t Wal::first_index() const {
    return impl_->first_index();
}
std::uint64_t Wal::last_index() const {
    return impl_->last_index();
}
std::uint64_t Wal::next_index() const {
    return impl_->next_index();
}
Result<std::uint64_t> Wal::term_at(std::uint64_t index) const {
    return impl_->term_at(index);
}
void Wal::set_idle_spin_us(std::uint32_t us) {
    impl_->set_idle_spin_us(us);
}
bool Wal::failed() const {
    return impl_->failed();
}
Status Wal::failure() const {
    return impl_->failure();
}
bool Wal::no_space() const {
    return impl_->no_space();
}
bool Wal::has_queued() const {
    return impl_->has_queued();
}
Stats Wal::stats() const {
    return impl_->stats();
}
WritePath Wal::write_path() const {
    return impl_->write_path();
}
const OpenReport& Wal::open_report() const {
    return impl_->report_;
}
const std::string& Wal::dir() const {
    return impl_->dir_;
}

// ---- blocking helpers ----

namespace {
template <typename Submit>
Status wait_for(Submit submit) {
    std::promise<Status> promise;
    auto future = promise.get_future();
    Status s = submit([&promise](Status st) { promise.set_value(std::move(st)); });
    if (!s.ok()) return s;
    return future.get();
}
}  // namespace

Status append_sync(Wal& wal, std::vector<Record> records) {
    return wait_for(
        [&](Wal::Callback cb) { return wal.append(std::move(records), std::move(cb)); });
}
Status truncate_after_sync(Wal& wal, std::uint64_t index) {
    return wait_for([&](Wal::Callback cb) { return wal.truncate_after(index, std::move(cb)); });
}
Status reset_sync(Wal& wal, std::uint64_t next_index) {
    return wait_for([&](Wal::Callback cb) { return wal.reset(next_index, std::move(cb)); });
}

}  // namespace keel::wal
