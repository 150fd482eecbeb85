// Helpers shared by the WAL tests: temp directories, record builders and a
// fault-injecting FileSystem that can fail fdatasync and snapshot the
// directory before every mutating operation (a simulated crash there).
#pragma once

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include "../common/temp_dir.hpp"
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "keel/wal/file_system.hpp"
#include "keel/wal/record.hpp"
#include "keel/wal/wal.hpp"

namespace keel::wal::test {

using keel::test::TempDir;

inline Record make_record(std::uint64_t index, std::uint64_t term = 1, std::size_t bytes = 40) {
    Record r;
    r.index = index;
    r.term = term;
    r.type = static_cast<std::uint16_t>(index % 3);
    std::string payload(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i)
        payload[i] = static_cast<char>('a' + (index * 7 + i) % 26);
    r.payload = std::move(payload);
    return r;
}

inline std::vector<Record> make_records(std::uint64_t first, std::uint64_t count,
                                        std::uint64_t term = 1, std::size_t bytes = 40) {
    std::vector<Record> out;
    for (std::uint64_t i = 0; i < count; ++i) out.push_back(make_record(first + i, term, bytes));
    return out;
}

// Small segments so tests roll often and stay fast.
inline Options small_options(FileSystem* fs = nullptr) {
    Options o;
    o.segment_bytes = 16 * 1024;
    o.max_record_bytes = 64 * 1024;
    o.fs = fs;
    return o;
}

// REQUIREs that `wal` holds exactly make_record(first .. last).  For a
// test file that includes Catch before this header.
#ifdef REQUIRE
inline void require_log_is(Wal& wal, std::uint64_t first, std::uint64_t last) {
    REQUIRE(wal.first_index() == first);
    REQUIRE(wal.last_index() == last);
    auto got = wal.read(first, last + 1);
    REQUIRE(got.ok());
    REQUIRE(got->size() == last + 1 - first);
    for (std::uint64_t i = first; i <= last; ++i) REQUIRE((*got)[i - first] == make_record(i));
}
#endif

inline void copy_dir(const std::string& from, const std::string& to) {
    std::filesystem::create_directories(to);
    for (const auto& e : std::filesystem::directory_iterator(from))
        std::filesystem::copy_file(e.path(), to + "/" + e.path().filename().string(),
                                   std::filesystem::copy_options::overwrite_existing);
}

// Every file in dir, name -> bytes (to prove "nothing was modified").
inline std::vector<std::pair<std::string, std::string>> dir_contents(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::FILE* f = std::fopen(e.path().c_str(), "rb");
        std::string bytes;
        char buf[65536];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
        std::fclose(f);
        out.emplace_back(e.path().filename().string(), std::move(bytes));
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Wraps the POSIX file system.  A before_mutation hook runs before every
// write, sync, rename, remove and create (with a short description); tests
// use it to copy the directory, i.e. to take the state a crash at that
// instant would leave.  Each mutating operation runs together with its hook
// under one mutex, so a copy never sees another thread's operation half done.
class FaultFs final : public FileSystem {
public:
    std::atomic<int> datasyncs_until_failure{-1};  // -1: never fail
    std::atomic<bool> refuse_write_back{false};    // as a file system without sync_file_range

    // Installs (or with nullptr removes) the hook; safe while a Wal runs.
    void set_before_mutation(std::function<void(const std::string&)> hook) {
        std::lock_guard lock(mu_);
        before_mutation_ = std::move(hook);
    }

    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
        std::lock_guard lock(mu_);
        if (mode == OpenMode::create_new) hook("create " + path);
        auto f = base_->open(path, mode);
        if (!f.ok()) return f.status();
        std::lock_guard track(track_mu_);
        const int id = next_id_++;
        paths_[id] = path;
        return std::unique_ptr<File>(new FaultFile(this, std::move(*f), id));
    }
    Status rename(const std::string& from, const std::string& to) override {
        std::lock_guard lock(mu_);
        hook("rename " + from);
        Status s = base_->rename(from, to);
        if (s.ok()) {
            std::lock_guard track(track_mu_);
            for (auto& [id, path] : paths_) {
                if (path == to)
                    path.clear();  // replaced
                else if (path == from)
                    path = to;
            }
        }
        return s;
    }
    Status remove(const std::string& path) override {
        std::lock_guard lock(mu_);
        hook("remove " + path);
        Status s = base_->remove(path);
        if (s.ok()) {
            std::lock_guard track(track_mu_);
            for (auto& [id, p] : paths_)
                if (p == path) p.clear();
        }
        return s;
    }
    Status sync_dir(const std::string& dir) override {
        std::lock_guard lock(mu_);
        hook("sync_dir");
        return base_->sync_dir(dir);
    }
    Result<std::vector<std::string>> list(const std::string& dir) override {
        return base_->list(dir);
    }
    Result<bool> exists(const std::string& path) override { return base_->exists(path); }
    Status create_dir(const std::string& dir) override { return base_->create_dir(dir); }

    // Copies `dir` to `to` as a power failure now would leave it if the disk
    // kept only what was fdatasynced: every write since a file's last
    // fdatasync is undone in the copy (old bytes restored, growth cut off).
    // Directory operations are taken as durable (the WAL fsyncs the
    // directory right after each).  Call it from the hook.
    void copy_dropping_unsynced(const std::string& dir, const std::string& to) {
        copy_dir(dir, to);
        std::lock_guard track(track_mu_);
        for (const auto& [id, writes] : unsynced_) {
            const std::string& path = paths_[id];
            if (path.empty() || writes.empty()) continue;
            const std::filesystem::path p(path);
            if (p.parent_path() != std::filesystem::path(dir)) continue;
            const std::string target = to + "/" + p.filename().string();
            if (!std::filesystem::exists(target)) continue;
            std::fstream f(target, std::ios::in | std::ios::out | std::ios::binary);
            for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
                f.seekp(static_cast<std::streamoff>(it->offset));
                f.write(it->old_bytes.data(), static_cast<std::streamsize>(it->old_bytes.size()));
            }
            f.close();
            std::filesystem::resize_file(target, writes.front().old_size);
        }
    }

private:
    struct UnsyncedWrite {
        std::uint64_t offset;
        std::string old_bytes;  // what was there (the part inside the old file)
        std::uint64_t old_size;
    };

    class FaultFile final : public File {
    public:
        FaultFile(FaultFs* fs, std::unique_ptr<File> base, int id)
            : fs_(fs), base_(std::move(base)), id_(id) {}
        Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) override {
            return base_->pread(buf, size, offset);
        }
        Status pwritev(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
            std::lock_guard lock(fs_->mu_);
            fs_->hook("write " + fs_->path_of(id_));
            std::uint64_t len = 0;
            for (int i = 0; i < iovcnt; ++i) len += iov[i].iov_len;
            fs_->note_write(id_, *base_, offset, len);
            return base_->pwritev(iov, iovcnt, offset);
        }
        Status datasync() override {
            std::lock_guard lock(fs_->mu_);
            fs_->hook("datasync " + fs_->path_of(id_));
            int left = fs_->datasyncs_until_failure.load();
            if (left == 0) return Status(ErrorCode::io_error, "injected fdatasync failure");
            if (left > 0) fs_->datasyncs_until_failure.store(left - 1);
            Status s = base_->datasync();
            if (s.ok()) fs_->note_sync(id_);
            return s;
        }
        Status write_back(std::uint64_t offset, std::uint64_t size, bool wait) override {
            std::lock_guard lock(fs_->mu_);
            fs_->hook((wait ? "write_back_wait " : "write_back ") + fs_->path_of(id_) + " " +
                      std::to_string(offset) + " " + std::to_string(size));
            if (fs_->refuse_write_back.load())
                return Status(ErrorCode::unsupported, "injected: no sync_file_range");
            return base_->write_back(offset, size, wait);
        }
        Result<std::uint64_t> size() override { return base_->size(); }
        Status truncate(std::uint64_t size) override {
            std::lock_guard lock(fs_->mu_);
            fs_->hook("truncate " + fs_->path_of(id_));
            return base_->truncate(size);
        }

    private:
        FaultFs* fs_;
        std::unique_ptr<File> base_;
        int id_;
    };

    // REQUIRES: mu_ held.
    void hook(const std::string& what) {
        if (before_mutation_) before_mutation_(what);
    }
    std::string path_of(int id) {
        std::lock_guard track(track_mu_);
        return paths_[id];
    }
    void note_write(int id, File& file, std::uint64_t offset, std::uint64_t len) {
        auto size = file.size();
        std::string old(len, '\0');
        auto got = file.pread(old.data(), len, offset);
        old.resize(got.ok() ? *got : 0);
        std::lock_guard track(track_mu_);
        unsynced_[id].push_back({offset, std::move(old), size.ok() ? *size : 0});
    }
    // fdatasync on any descriptor of a file makes all its writes durable.
    void note_sync(int id) {
        std::lock_guard track(track_mu_);
        const std::string path = paths_[id];
        for (auto it = unsynced_.begin(); it != unsynced_.end();) {
            if (it->first == id || (!path.empty() && paths_[it->first] == path)) {
                it = unsynced_.erase(it);
            } else {
                ++it;
            }
        }
    }

    FileSystem* base_ = default_file_system();
    std::mutex mu_;  // one mutating operation (and its hook) at a time
    std::function<void(const std::string&)> before_mutation_;
    std::mutex track_mu_;  // paths_, unsynced_, next_id_
    int next_id_ = 0;
    std::map<int, std::string> paths_;  // current name of each open file ("" = gone)
    std::map<int, std::vector<UnsyncedWrite>> unsynced_;
};

}  // namespace keel::wal::test
