// raft/str_cat.hpp — builds a message string from pieces by appending: the
// Raft core's way to format a message.  Everywhere else keel uses
// fmt::format; the core takes nothing but the standard library
// (docs/style.md), and GCC 12 has no std::format.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace keel::raft {

namespace detail {
inline void str_append(std::string& out, std::string_view piece) {
    out.append(piece);
}
inline void str_append(std::string& out, const char* piece) {
    out.append(piece);
}
inline void str_append(std::string& out, const std::string& piece) {
    out.append(piece);
}
inline void str_append(std::string& out, char piece) {
    out.push_back(piece);
}
template <typename T>
requires std::is_integral_v<T>
inline void str_append(std::string& out, T piece) {
    out.append(std::to_string(piece));
}
}  // namespace detail

template <typename... Pieces>
std::string str_cat(const Pieces&... pieces) {
    std::string out;
    (detail::str_append(out, pieces), ...);
    return out;
}

}  // namespace keel::raft
