// sim/trace.hpp — the readable record of a simulation run.
//
// Every event the simulator carries out is rendered as one line.  The last
// kTraceLinesMax lines are kept (printed when a checker fails); every line
// also feeds a running hash, so two runs of one seed can be compared for
// determinism without storing the whole trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace keel::sim {

class Trace {
public:
    static constexpr std::size_t kTraceLinesMax = 200;

    // Prints every line to stderr as it is added (KEEL_SIM_VERBOSE).
    void set_echo(bool echo) { echo_ = echo; }

    void add(std::uint64_t time_us, const std::string& line);

    std::uint64_t hash() const { return hash_; }
    std::uint64_t lines_total() const { return lines_total_; }
    // The kept lines, oldest first.
    std::vector<std::string> last_lines() const;
    void print(std::FILE* out) const;

private:
    std::vector<std::string> ring_;  // at most kTraceLinesMax
    std::size_t next_ = 0;           // where the next line goes once the ring is full
    std::uint64_t hash_ = 0;
    std::uint64_t lines_total_ = 0;
    bool echo_ = false;
};

// "12.345678s": simulated time for humans.
std::string format_time(std::uint64_t time_us);

}  // namespace keel::sim
