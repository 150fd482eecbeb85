// tests/common/fault_fs.hpp — a fault-injecting keel::wal::FileSystem for the
// WAL and runtime tests.  It wraps the POSIX file system and can
//  - run a hook before every mutating operation (tests copy the directory
//    there: the state a crash at that instant would leave);
//  - copy a directory as a power loss would leave it, dropping every write
//    not yet fdatasynced and every directory it created whose parent was
//    not fsynced since (copy_dropping_unsynced);
//  - fail any operation on chosen paths (inject), fail fdatasync after a
//    count, pretend to fdatasync (as a process killed before its syncs),
//    or behave as a full disk (writes past a file's end and preallocation
//    fail with ENOSPC, writes into already allocated bytes succeed).
#pragma once

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "keel/wal/file_system.hpp"

namespace keel::test {

// Copies `from` (recursively) to `to`.
inline void copy_dir(const std::string& from, const std::string& to) {
    std::filesystem::create_directories(to);
    std::filesystem::copy(from, to,
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
}

// Every regular file under dir (recursively), relative name -> bytes (to
// prove "nothing was modified").
inline std::vector<std::pair<std::string, std::string>> dir_contents(const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        std::ifstream f(e.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        out.emplace_back(std::filesystem::relative(e.path(), dir).string(), std::move(bytes));
    }
    std::sort(out.begin(), out.end());
    return out;
}

class FaultFs final : public wal::FileSystem {
public:
    // Fails an operation when it returns an error.  `op` is one of create,
    // open, open_direct (OpenMode::write_direct and fill_direct), pread, write, allocate, datasync,
    // truncate, rename, remove, sync_dir, list, mkdir; `path` the file (the source of a rename).
    // Called under the file system's mutex for everything but pread, list and open (any thread:
    // make it thread-safe).
    using Inject = std::function<Status(const std::string& op, const std::string& path)>;

    std::atomic<int> datasyncs_until_failure{-1};  // -1: never fail
    std::atomic<bool> refuse_write_back{false};    // as a file system without sync_file_range
    // fdatasync returns ok but makes nothing durable (the writes stay
    // "unsynced" for copy_dropping_unsynced): a process killed before it
    // could sync leaves exactly that in the page cache.
    std::atomic<bool> lie_about_datasync{false};
    // A full disk: ENOSPC for a write that extends a file and for
    // allocate(); writes inside a file's current size still succeed.
    std::atomic<bool> full{false};

    // Installs (or with nullptr removes) the hook; safe while a Wal runs.
    void set_before_mutation(std::function<void(const std::string&)> hook) {
        std::lock_guard lock(mu_);
        before_mutation_ = std::move(hook);
    }
    void set_inject(Inject inject) {
        std::lock_guard lock(inject_mu_);
        inject_ = std::move(inject);
    }
    // Reads at offset 0 of files whose path contains `part` come back with
    // their first byte flipped (a file damaged on the way, e.g. a snapshot
    // in transfer).  Empty: none.
    void set_corrupt_reads(std::string part) {
        std::lock_guard lock(inject_mu_);
        corrupt_reads_ = std::move(part);
    }

    Result<std::unique_ptr<wal::File>> open(const std::string& path, wal::OpenMode mode) override {
        if (Status s = injected("open", path); !s.ok()) return s;
        const bool direct =
            mode == wal::OpenMode::write_direct || mode == wal::OpenMode::fill_direct;
        // "open_direct": inject ErrorCode::unsupported there to play a file
        // system that refuses O_DIRECT.
        if (direct) {
            if (Status s = injected("open_direct", path); !s.ok()) return s;
        }
        std::lock_guard lock(mu_);
        if (mode == wal::OpenMode::create_new) {
            hook("create " + path);
            if (Status s = injected("create", path); !s.ok()) return s;
        }
        auto f = base_->open(path, mode);
        if (!f.ok()) return f.status();
        // A direct file cannot be read with unaligned buffers: reads (and the
        // bookkeeping of unsynced writes) go through a buffered descriptor.
        std::unique_ptr<wal::File> reader;
        if (direct) {
            auto r = base_->open(path, wal::OpenMode::read_only);
            if (!r.ok()) return r.status();
            reader = std::move(*r);
        }
        std::lock_guard track(track_mu_);
        const int id = next_id_++;
        paths_[id] = path;
        return std::unique_ptr<wal::File>(
            new FaultFile(this, std::move(*f), std::move(reader), id));
    }
    Status rename(const std::string& from, const std::string& to) override {
        std::lock_guard lock(mu_);
        hook("rename " + from);
        if (Status s = injected("rename", from); !s.ok()) return s;
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
        if (Status s = injected("remove", path); !s.ok()) return s;
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
        hook("sync_dir " + dir);
        if (Status s = injected("sync_dir", dir); !s.ok()) return s;
        Status s = base_->sync_dir(dir);
        if (s.ok()) {
            std::lock_guard track(track_mu_);
            for (auto it = unsynced_dirs_.begin(); it != unsynced_dirs_.end();) {
                if (parent_of(*it) == dir)
                    it = unsynced_dirs_.erase(it);
                else
                    ++it;
            }
        }
        return s;
    }
    Result<std::vector<std::string>> list(const std::string& dir) override {
        if (Status s = injected("list", dir); !s.ok()) return s;
        return base_->list(dir);
    }
    Result<bool> exists(const std::string& path) override { return base_->exists(path); }
    Status create_dir(const std::string& dir) override {
        std::lock_guard lock(mu_);
        hook("mkdir " + dir);
        if (Status s = injected("mkdir", dir); !s.ok()) return s;
        auto existed = base_->exists(dir);
        if (!existed.ok()) return existed.status();
        Status s = base_->create_dir(dir);
        if (s.ok() && !*existed) {
            std::lock_guard track(track_mu_);
            unsynced_dirs_.push_back(dir);
        }
        return s;
    }
    Result<std::uint64_t> available_bytes(const std::string& path) override {
        if (full.load()) return std::uint64_t{0};
        return base_->available_bytes(path);
    }

    // Copies `dir` (recursively) to `to` as a power failure now would leave
    // it if the disk kept only what was fdatasynced: every write since a
    // file's last fdatasync is undone in the copy (old bytes restored,
    // growth cut off), and a directory made by create_dir whose parent was
    // not fsynced since is missing with everything in it.  Other directory
    // operations are taken as durable (keel fsyncs the directory right
    // after each).  Call it from the hook, or while nothing writes.
    void copy_dropping_unsynced(const std::string& dir, const std::string& to) {
        copy_dir(dir, to);
        std::lock_guard track(track_mu_);
        const std::filesystem::path root(dir);
        for (const std::string& made : unsynced_dirs_) {
            const std::filesystem::path rel = std::filesystem::path(made).lexically_relative(root);
            if (rel.empty() || *rel.begin() == ".." || rel == ".") continue;
            std::error_code ignored;
            std::filesystem::remove_all(std::filesystem::path(to) / rel, ignored);
        }
        for (const auto& [id, writes] : unsynced_) {
            const std::string& path = paths_[id];
            if (path.empty() || writes.empty()) continue;
            const std::filesystem::path rel = std::filesystem::path(path).lexically_relative(root);
            if (rel.empty() || *rel.begin() == "..") continue;
            const std::filesystem::path target = std::filesystem::path(to) / rel;
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

    class FaultFile final : public wal::File {
    public:
        // reader: a buffered descriptor of a direct file (null otherwise).
        FaultFile(FaultFs* fs, std::unique_ptr<wal::File> base, std::unique_ptr<wal::File> reader,
                  int id)
            : fs_(fs), base_(std::move(base)), reader_(std::move(reader)), id_(id) {}
        Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) override {
            const std::string path = fs_->path_of(id_);
            if (Status s = fs_->injected("pread", path); !s.ok()) return s;
            auto got = readable().pread(buf, size, offset);
            if (got.ok() && *got > 0 && offset == 0 && fs_->corrupts(path))
                static_cast<char*>(buf)[0] ^= 0x01;
            return got;
        }
        Status pwritev(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
            std::lock_guard lock(fs_->mu_);
            const std::string path = fs_->path_of(id_);
            fs_->hook("write " + path);
            if (Status s = fs_->injected("write", path); !s.ok()) return s;
            std::uint64_t len = 0;
            for (int i = 0; i < iovcnt; ++i) len += iov[i].iov_len;
            if (fs_->full.load()) {
                auto size = base_->size();
                if (!size.ok()) return size.status();
                if (offset + len > *size)
                    return Status(ErrorCode::no_space,
                                  "injected: pwritev " + path + ": No space left on device");
            }
            fs_->note_write(id_, readable(), offset, len);
            return base_->pwritev(iov, iovcnt, offset);
        }
        // A direct file's write is durable when it returns (O_DSYNC): one
        // mutation ("write"), and the durability step datasync() plays
        // elsewhere: datasyncs_until_failure and lie_about_datasync act on it.
        Status write_durable(const struct iovec* iov, int iovcnt, std::uint64_t offset) override {
            if (reader_ == nullptr) return File::write_durable(iov, iovcnt, offset);
            std::lock_guard lock(fs_->mu_);
            const std::string path = fs_->path_of(id_);
            fs_->hook("write " + path);
            if (Status s = fs_->injected("write", path); !s.ok()) return s;
            std::uint64_t len = 0;
            for (int i = 0; i < iovcnt; ++i) len += iov[i].iov_len;
            if (fs_->full.load()) {
                auto size = base_->size();
                if (!size.ok()) return size.status();
                if (offset + len > *size)
                    return Status(ErrorCode::no_space,
                                  "injected: pwritev " + path + ": No space left on device");
            }
            if (Status s = fs_->injected("datasync", path); !s.ok()) return s;
            const int left = fs_->datasyncs_until_failure.load();
            if (left > 0) fs_->datasyncs_until_failure.store(left - 1);
            if (left == 0 || fs_->lie_about_datasync.load())
                fs_->note_write(id_, readable(), offset, len);
            Status s = base_->pwritev(iov, iovcnt, offset);
            if (left == 0)
                return Status(ErrorCode::io_error,
                              "injected fdatasync failure (of an O_DSYNC write)");
            return s;
        }
        Status allocate(std::uint64_t offset, std::uint64_t size) override {
            std::lock_guard lock(fs_->mu_);
            const std::string path = fs_->path_of(id_);
            if (Status s = fs_->injected("allocate", path); !s.ok()) return s;
            if (fs_->full.load())
                return Status(ErrorCode::no_space,
                              "injected: fallocate " + path + ": No space left on device");
            return base_->allocate(offset, size);
        }
        Status datasync() override {
            std::lock_guard lock(fs_->mu_);
            const std::string path = fs_->path_of(id_);
            fs_->hook("datasync " + path);
            if (Status s = fs_->injected("datasync", path); !s.ok()) return s;
            int left = fs_->datasyncs_until_failure.load();
            if (left == 0) return Status(ErrorCode::io_error, "injected fdatasync failure");
            if (left > 0) fs_->datasyncs_until_failure.store(left - 1);
            if (fs_->lie_about_datasync.load()) return Status();
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
            const std::string path = fs_->path_of(id_);
            fs_->hook("truncate " + path);
            if (Status s = fs_->injected("truncate", path); !s.ok()) return s;
            return base_->truncate(size);
        }

    private:
        wal::File& readable() { return reader_ != nullptr ? *reader_ : *base_; }

        FaultFs* fs_;
        std::unique_ptr<wal::File> base_;
        std::unique_ptr<wal::File> reader_;
        int id_;
    };

    // REQUIRES: mu_ held.
    void hook(const std::string& what) {
        if (before_mutation_) before_mutation_(what);
    }
    Status injected(const std::string& op, const std::string& path) {
        Inject inject;
        {
            std::lock_guard lock(inject_mu_);
            inject = inject_;
        }
        return inject ? inject(op, path) : Status();
    }
    bool corrupts(const std::string& path) {
        std::lock_guard lock(inject_mu_);
        return !corrupt_reads_.empty() && path.find(corrupt_reads_) != std::string::npos;
    }
    static std::string parent_of(const std::string& path) {
        const std::size_t slash = path.rfind('/');
        if (slash == std::string::npos) return ".";
        return slash == 0 ? "/" : path.substr(0, slash);
    }
    std::string path_of(int id) {
        std::lock_guard track(track_mu_);
        return paths_[id];
    }
    void note_write(int id, wal::File& file, std::uint64_t offset, std::uint64_t len) {
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

    wal::FileSystem* base_ = wal::default_file_system();
    std::mutex mu_;  // one mutating operation (and its hook) at a time
    std::function<void(const std::string&)> before_mutation_;
    std::mutex inject_mu_;
    Inject inject_;              // GUARDED_BY(inject_mu_)
    std::string corrupt_reads_;  // GUARDED_BY(inject_mu_)
    std::mutex track_mu_;        // paths_, unsynced_, unsynced_dirs_, next_id_
    int next_id_ = 0;
    std::map<int, std::string> paths_;  // current name of each open file ("" = gone)
    std::map<int, std::vector<UnsyncedWrite>> unsynced_;
    // Directories create_dir made whose parent has not been fsynced since.
    std::vector<std::string> unsynced_dirs_;
};

// An injection that fails `op` with `code` on every path containing `part`.
inline FaultFs::Inject fail_on(std::string op, std::string part, ErrorCode code,
                               std::string why = "injected") {
    return [op = std::move(op), part = std::move(part), code, why = std::move(why)](
               const std::string& o, const std::string& path) {
        if (o == op && path.find(part) != std::string::npos)
            return Status(code, why + ": " + o + " " + path);
        return Status();
    };
}

}  // namespace keel::test
