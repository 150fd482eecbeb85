#include <cstdlib>
#include <filesystem>

#include "test_state_machine.hpp"

namespace keel::test {

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "keel-rt-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    KEEL_ASSERT(p != nullptr, "mkdtemp");
    path_ = p;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace keel::test
