#include "trace.hpp"

#include "rng.hpp"

namespace keel::sim {

std::string format_time(std::uint64_t time_us) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llu.%06llus",
                  static_cast<unsigned long long>(time_us / 1000000),
                  static_cast<unsigned long long>(time_us % 1000000));
    return buf;
}

void Trace::add(std::uint64_t time_us, const std::string& line) {
    std::string full = format_time(time_us) + " " + line;
    hash_ = hash_bytes(hash_ == 0 ? kHashSeed : hash_, full.data(), full.size());
    ++lines_total_;
    if (echo_) std::fprintf(stderr, "%s\n", full.c_str());
    if (ring_.size() < kTraceLinesMax) {
        ring_.push_back(std::move(full));
    } else {
        ring_[next_] = std::move(full);
        next_ = (next_ + 1) % kTraceLinesMax;
    }
}

std::vector<std::string> Trace::last_lines() const {
    std::vector<std::string> out;
    out.reserve(ring_.size());
    for (std::size_t i = 0; i < ring_.size(); ++i) out.push_back(ring_[(next_ + i) % ring_.size()]);
    return out;
}

void Trace::print(std::FILE* out) const {
    std::fprintf(out, "--- last %zu of %llu trace lines ---\n", ring_.size(),
                 static_cast<unsigned long long>(lines_total_));
    for (const auto& line : last_lines()) std::fprintf(out, "%s\n", line.c_str());
    std::fprintf(out, "--- end of trace ---\n");
}

}  // namespace keel::sim
