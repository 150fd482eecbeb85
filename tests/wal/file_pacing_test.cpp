// keel/wal/write_back_pacer.hpp and keel/wal/file_removal.hpp against a
// File that records what it is asked: the pieces a bulk write is written
// back in, and the steps a file is removed in.
#include <catch2/catch.hpp>

#include <sys/uio.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "keel/wal/file_removal.hpp"
#include "keel/wal/write_back_pacer.hpp"
#include "test_util.hpp"

using keel::ErrorCode;
using keel::Status;
using keel::wal::WriteBackPacer;

namespace {

// Records write_back calls as "start OFFSET SIZE" / "wait OFFSET SIZE";
// refuses them from the `refuse_from`th call on.
class RecordingFile final : public keel::wal::File {
public:
    std::vector<std::string> calls;
    std::size_t refuse_from = SIZE_MAX;

    keel::Result<std::size_t> pread(void*, std::size_t, std::uint64_t) override {
        return std::size_t{0};
    }
    Status pwritev(const struct iovec*, int, std::uint64_t) override { return Status(); }
    Status datasync() override { return Status(); }
    Status write_back(std::uint64_t offset, std::uint64_t size, bool wait) override {
        if (calls.size() >= refuse_from)
            return Status(ErrorCode::unsupported, "no sync_file_range here");
        calls.push_back((wait ? "wait " : "start ") + std::to_string(offset) + " " +
                        std::to_string(size));
        return Status();
    }
    keel::Result<std::uint64_t> size() override { return std::uint64_t{0}; }
    Status truncate(std::uint64_t) override { return Status(); }
};

}  // namespace

TEST_CASE("a paced write starts each chunk's write-back after waiting for the one before") {
    RecordingFile f;
    WriteBackPacer pacer(100, 1000);
    pacer.wrote(f, 1060);  // less than a chunk gathered: nothing yet
    CHECK(f.calls.empty());
    pacer.wrote(f, 1120);
    pacer.wrote(f, 1350);   // one write of several chunks: chunk by chunk
    pacer.finish(f, 1380);  // the short tail
    pacer.finish(f, 1380);  // nothing more to pace
    CHECK(f.calls == std::vector<std::string>{"start 1000 100", "start 1100 100", "wait 1000 100",
                                              "start 1200 100", "wait 1100 100", "start 1300 80",
                                              "wait 1200 100"});
}

TEST_CASE("a pacer stops pacing once the file refuses write-back") {
    RecordingFile f;
    f.refuse_from = 2;
    WriteBackPacer pacer(100);
    for (std::uint64_t end = 100; end <= 1000; end += 100) pacer.wrote(f, end);
    pacer.finish(f, 1050);
    CHECK(f.calls == std::vector<std::string>{"start 0 100", "start 100 100"});
}

TEST_CASE("remove_in_steps shortens a file a step at a time, each step synced, then removes it") {
    keel::test::TempDir dir;
    keel::test::FaultFs fs;
    const std::string path = dir.sub("big");
    {
        auto file = fs.open(path, keel::wal::OpenMode::create_new);
        REQUIRE(file.ok());
        std::string bytes(2500, 'x');
        struct iovec iov {
            bytes.data(), bytes.size()
        };
        REQUIRE((*file)->pwritev(&iov, 1, 0).ok());
    }
    std::vector<std::string> steps;
    fs.set_before_mutation([&](const std::string& what) {
        const std::string op = what.substr(0, what.find(' '));
        steps.push_back(op == "truncate" || op == "remove"
                            ? op + " " + std::to_string(std::filesystem::file_size(path))
                            : op);
    });
    REQUIRE(keel::wal::remove_in_steps(fs, path, 1000).ok());
    fs.set_before_mutation(nullptr);
    CHECK(steps == std::vector<std::string>{"truncate 2500", "datasync", "truncate 1500",
                                            "datasync", "truncate 500", "datasync", "remove 0"});
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(keel::wal::remove_in_steps(fs, path, 1000).code() == ErrorCode::not_found);
}
