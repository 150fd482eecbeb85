#include "capi/c_state_machine.hpp"

#include <memory>
#include <string>
#include <string_view>

#include "capi/c_support.hpp"

// The opaque handles of keel_c.h: each wraps what the C++ API hands out,
// for the duration of one callback.
struct keel_results {
    std::vector<std::string>& results;
};
struct keel_snapshot_writer {
    keel::SnapshotWriter& writer;
};
struct keel_snapshot_reader {
    keel::SnapshotReader& reader;
};

namespace keel::capi {

namespace {

// The image a snapshot_capture returned, released exactly once: when the
// last copy of the snapshot function holding it is destroyed.
class Image {
public:
    Image(const keel_state_machine& c, void* image) : c_(c), image_(image) {}
    ~Image() {
        if (c_.snapshot_release == nullptr) return;
        CallbackScope scope;
        c_.snapshot_release(c_.ctx, image_);
    }
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;

    void* get() const { return image_; }

private:
    const keel_state_machine c_;
    void* const image_;
};

// A SnapshotWriter into memory, for snapshot_write without a capture step.
class BufferWriter final : public SnapshotWriter {
public:
    Status write(std::string_view bytes) override {
        bytes_.append(bytes);
        return Status::ok_status();
    }
    std::string take() { return std::move(bytes_); }

private:
    std::string bytes_;
};

Status call_snapshot_write(const keel_state_machine& c, void* image, SnapshotWriter& writer) {
    keel_snapshot_writer handle{writer};
    keel_error err{};
    keel_code code;
    {
        CallbackScope scope;
        code = c.snapshot_write(c.ctx, image, &handle, &err);
    }
    return from_callback(code, err, "snapshot_write");
}

}  // namespace

void CStateMachine::apply(const std::vector<CommittedEntry>& entries,
                          std::vector<std::string>& results) {
    entries_.clear();
    for (const CommittedEntry& e : entries)
        entries_.push_back(keel_entry{e.index, e.term, e.data.data(), e.data.size()});
    keel_results handle{results};
    CallbackScope scope;
    c_.apply(c_.ctx, entries_.data(), entries_.size(), &handle);
}

SnapshotFunction CStateMachine::snapshot() {
    if (c_.snapshot_capture == nullptr) return snapshot_buffered();
    void* captured;
    {
        CallbackScope scope;
        captured = c_.snapshot_capture(c_.ctx);
    }
    auto image = std::make_shared<const Image>(c_, captured);
    return [c = c_, image](SnapshotWriter& writer) {
        return call_snapshot_write(c, image->get(), writer);
    };
}

SnapshotFunction CStateMachine::snapshot_buffered() {
    BufferWriter buffer;
    Status written = call_snapshot_write(c_, nullptr, buffer);
    if (!written.ok()) {
        return [written](SnapshotWriter&) { return written; };
    }
    auto bytes = std::make_shared<const std::string>(buffer.take());
    return [bytes](SnapshotWriter& writer) { return writer.write(*bytes); };
}

Status CStateMachine::restore(SnapshotReader& reader) {
    keel_snapshot_reader handle{reader};
    keel_error err{};
    keel_code code;
    {
        CallbackScope scope;
        code = c_.restore(c_.ctx, &handle, &err);
    }
    return from_callback(code, err, "restore");
}

}  // namespace keel::capi

extern "C" {

keel_code keel_results_set(keel_results* results, size_t i, const void* bytes, size_t len) {
    if (results == nullptr || i >= results->results.size() || (bytes == nullptr && len > 0))
        return KEEL_INVALID_ARGUMENT;
    return keel::capi::guarded(nullptr, [&] {
        results->results[i].assign(static_cast<const char*>(bytes), len);
        return KEEL_OK;
    });
}

keel_code keel_snapshot_write(keel_snapshot_writer* writer, const void* bytes, size_t len,
                              keel_error* err) {
    if (writer == nullptr || (bytes == nullptr && len > 0)) {
        keel::capi::set_error(err, KEEL_INVALID_ARGUMENT, "keel_snapshot_write: null argument");
        return KEEL_INVALID_ARGUMENT;
    }
    return keel::capi::guarded(err, [&] {
        keel::Status s =
            writer->writer.write(std::string_view(static_cast<const char*>(bytes), len));
        keel::capi::set_error(err, s);
        return keel::capi::to_code(s.code());
    });
}

keel_code keel_snapshot_read(keel_snapshot_reader* reader, void* buffer, size_t capacity,
                             size_t* read_bytes, keel_error* err) {
    if (read_bytes != nullptr) *read_bytes = 0;
    if (reader == nullptr || read_bytes == nullptr || (buffer == nullptr && capacity > 0)) {
        keel::capi::set_error(err, KEEL_INVALID_ARGUMENT, "keel_snapshot_read: null argument");
        return KEEL_INVALID_ARGUMENT;
    }
    return keel::capi::guarded(err, [&] {
        keel::Result<std::size_t> n = reader->reader.read(static_cast<char*>(buffer), capacity);
        keel::capi::set_error(err, n.status());
        if (!n.ok()) return keel::capi::to_code(n.status().code());
        *read_bytes = n.value();
        return KEEL_OK;
    });
}

uint64_t keel_snapshot_size(const keel_snapshot_reader* reader) {
    return reader == nullptr ? 0 : reader->reader.size_bytes();
}

}  // extern "C"
