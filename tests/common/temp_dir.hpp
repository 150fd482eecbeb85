// tests/common/temp_dir.hpp — a fresh temporary directory per test scope,
// removed (with everything in it) when the scope ends.  Shared by the WAL,
// transport and runtime tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "keel/assert.hpp"

namespace keel::test {

class TempDir {
public:
    explicit TempDir(const std::string& prefix = "keel-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        char* made = ::mkdtemp(tmpl.data());
        KEEL_ASSERT(made != nullptr, "mkdtemp failed");
        path_ = made;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string sub(const std::string& name) const { return path_ + "/" + name; }
    // Paths of the files directly inside whose extension is `ext` (".snap").
    std::vector<std::string> files_with_extension(const std::string& ext) const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path_))
            if (e.path().extension() == ext) out.push_back(e.path().string());
        return out;
    }

private:
    std::string path_;
};

}  // namespace keel::test
