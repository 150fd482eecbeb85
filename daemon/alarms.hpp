// daemon/alarms.hpp — the alarms raftd shows (/v1/status "alarms", /metrics
// keel_alarm): those keel raises itself (NodeStatus::alarms, e.g. a full
// disk) and those raftd raises (e.g. its storage quota), as one list.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "keel/status_report.hpp"

namespace keel::daemon {

// The alarms every /metrics scrape lists, at 0 or 1, so that a dashboard
// sees the series before the first time one is raised.
inline const std::vector<std::string>& known_alarms() {
    static const std::vector<std::string> names{kAlarmNoSpace};
    return names;
}

// Alarms raised by raftd itself.  Thread-safe.
class DaemonAlarms {
public:
    void set(const std::string& name, bool raised) {
        std::lock_guard lock(mu_);
        if (raised) {
            raised_.insert(name);
        } else {
            raised_.erase(name);
        }
    }
    bool raised(const std::string& name) const {
        std::lock_guard lock(mu_);
        return raised_.count(name) != 0;
    }
    std::vector<std::string> raised() const {
        std::lock_guard lock(mu_);
        return {raised_.begin(), raised_.end()};
    }

private:
    mutable std::mutex mu_;
    std::set<std::string> raised_;  // GUARDED_BY(mu_)
};

// keel's alarms and raftd's, sorted, each once.
inline std::vector<std::string> active_alarms(const NodeStatus& status, const DaemonAlarms& own) {
    std::set<std::string> all(status.alarms.begin(), status.alarms.end());
    for (std::string& name : own.raised()) all.insert(std::move(name));
    return {all.begin(), all.end()};
}

}  // namespace keel::daemon
