// Helpers shared by the WAL tests: temp directories, record builders and a
// fault-injecting FileSystem that can fail fdatasync and snapshot the
// directory before every mutating operation (a simulated crash there).
#pragma once

#include <stdlib.h>

#include <atomic>
#include <filesystem>
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

class TempDir {
public:
    TempDir() {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "keel-wal-test-XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        if (p == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = p;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

inline Record make_record(std::uint64_t index, std::uint64_t term = 1, std::size_t bytes = 40) {
    Record r;
    r.index = index;
    r.term = term;
    r.type = static_cast<std::uint16_t>(index % 3);
    r.payload.resize(bytes);
    for (std::size_t i = 0; i < bytes; ++i)
        r.payload[i] = static_cast<char>('a' + (index * 7 + i) % 26);
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

// Wraps the POSIX file system.  A before_mutation hook runs before every write,
// sync, rename, remove and create (with a short description); tests use it
// to copy the directory, i.e. to take the state a crash at that instant
// would leave (every earlier write reached the disk).
class FaultFs final : public FileSystem {
public:
    std::atomic<int> datasyncs_until_failure{-1};  // -1: never fail

    // Installs (or with nullptr removes) the hook; safe while a Wal runs.
    void set_before_mutation(std::function<void(const std::string&)> hook) {
        std::lock_guard lock(mu_);
        before_mutation_ = std::move(hook);
    }

    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
        if (mode == OpenMode::create_new) hook("create " + path);
        auto f = base_->open(path, mode);
        if (!f.ok()) return f.status();
        return std::unique_ptr<File>(new FaultFile(this, std::move(*f), path));
    }
    Status rename(const std::string& from, const std::string& to) override {
        hook("rename " + from);
        return base_->rename(from, to);
    }
    Status remove(const std::string& path) override {
        hook("remove " + path);
        return base_->remove(path);
    }
    Status sync_dir(const std::string& dir) override {
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
    // directory right after each).  Safe to call from before_mutation.
    void copy_dropping_unsynced(const std::string& dir, const std::string& to) {
        copy_dir(dir, to);
        std::lock_guard lock(unsynced_mu_);
        for (const auto& [path, writes] : unsynced_) {
            const std::filesystem::path p(path);
            if (p.parent_path() != std::filesystem::path(dir)) continue;
            const std::string target = to + "/" + p.filename().string();
            if (!std::filesystem::exists(target) || writes.empty()) continue;
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
    void note_write(const std::string& path, File& file, std::uint64_t offset, std::uint64_t len) {
        auto size = file.size();
        std::string old(len, '\0');
        auto got = file.pread(old.data(), len, offset);
        old.resize(got.ok() ? *got : 0);
        std::lock_guard lock(unsynced_mu_);
        unsynced_[path].push_back({offset, std::move(old), size.ok() ? *size : 0});
    }
    void note_sync(const std::string& path) {
        std::lock_guard lock(unsynced_mu_);
        unsynced_.erase(path);
    }

    class FaultFile final : public File {
    public:
        FaultFile(FaultFs* fs, std::unique_ptr<File> base, std::string path)
            : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}
        Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) override {
            return base_->pread(buf, size, offset);
        }
        Status pwritev(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
            fs_->hook("write " + path_);
            std::uint64_t len = 0;
            for (int i = 0; i < iovcnt; ++i) len += iov[i].iov_len;
            fs_->note_write(path_, *base_, offset, len);
            return base_->pwritev(iov, iovcnt, offset);
        }
        Status datasync() override {
            fs_->hook("datasync " + path_);
            int left = fs_->datasyncs_until_failure.load();
            if (left == 0) return Status(ErrorCode::io_error, "injected fdatasync failure");
            if (left > 0) fs_->datasyncs_until_failure.store(left - 1);
            Status s = base_->datasync();
            if (s.ok()) fs_->note_sync(path_);
            return s;
        }
        Result<std::uint64_t> size() override { return base_->size(); }
        Status truncate(std::uint64_t size) override {
            fs_->hook("truncate " + path_);
            return base_->truncate(size);
        }

    private:
        FaultFs* fs_;
        std::unique_ptr<File> base_;
        std::string path_;
    };

    void hook(const std::string& what) {
        std::lock_guard lock(mu_);
        if (before_mutation_) before_mutation_(what);
    }

    FileSystem* base_ = default_file_system();
    std::mutex mu_;
    std::function<void(const std::string&)> before_mutation_;
    std::mutex unsynced_mu_;
    std::map<std::string, std::vector<UnsyncedWrite>> unsynced_;
};

}  // namespace keel::wal::test
