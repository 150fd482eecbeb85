#include "output.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace keel::keelctl {

int exit_code_for_status(int http_status) {
    if (http_status >= 200 && http_status < 300) return kExitOk;
    if (http_status == 401 || http_status == 403) return kExitAuth;
    if (http_status >= 500) return kExitUnavailable;
    return kExitRefused;
}

void print_table(std::ostream& out, const Table& table) {
    std::vector<std::size_t> widths(table.header.size(), 0);
    auto widen = [&widths](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    };
    widen(table.header);
    for (const auto& row : table.rows) widen(row);
    auto line = [&](const std::vector<std::string>& row) {
        std::string text;
        for (std::size_t i = 0; i < widths.size(); ++i) {
            const std::string& cell = i < row.size() ? row[i] : std::string();
            text += cell;
            if (i + 1 < widths.size()) text += std::string(widths[i] - cell.size() + 2, ' ');
        }
        while (!text.empty() && text.back() == ' ') text.pop_back();
        out << text << '\n';
    };
    line(table.header);
    for (const auto& row : table.rows) line(row);
}

std::string human_bytes(std::uint64_t bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(units)) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    if (unit == 0) {
        std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    } else {
        std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    }
    return text;
}

namespace {

std::string percent_encode(const std::string& text, bool keep_slash) {
    static const char* const hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~' || (keep_slash && c == '/');
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace

std::string encode_path(const std::string& key) {
    return percent_encode(key, true);
}

std::string encode_query(const std::string& value) {
    return percent_encode(value, false);
}

}  // namespace keel::keelctl
