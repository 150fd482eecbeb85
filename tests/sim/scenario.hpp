// sim/scenario.hpp — scripted runs: a fixed sequence of steps instead of the
// swarm's random faults.
//
// Some interleavings matter too much to wait for the swarm to stumble on
// them: Figure 8 of the Raft paper needs four elections, three crashes and
// messages lost at exactly the wrong moments, which independent random
// faults almost never line up (docs/simulator.md).  A script waits, after
// every event, for a condition on the cluster (who leads in which term, what
// is durable where, what a leader knows of a follower) and then acts: crash,
// restart, cut links.  The checkers judge every event exactly as in a swarm
// run — the script arranges the schedule, it never decides whether Raft was
// safe.  When the script is done, the run goes on to the usual liveness phase.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "raft/core.hpp"
#include "sim_disk.hpp"
#include "swarm.hpp"

namespace keel::sim {

const char* scenario_name(Scenario scenario);
bool parse_scenario(const std::string& name, Scenario* out);

// What a script may look at and do (implemented by Cluster).
class ScriptHost {
public:
    virtual ~ScriptHost() = default;
    virtual std::uint64_t now_us() const = 0;
    virtual void trace(const std::string& line) = 0;
    // A live node's core; nullptr while the node is down.
    virtual const raft::Core* core(raft::NodeId id) const = 0;
    // What survives a crash of the node (REQUIRES: the node exists).
    virtual DurableState durable(raft::NodeId id) const = 0;
    // The checkers' reference log of committed entries.
    virtual raft::Index commit_known() const = 0;
    virtual raft::Term committed_term(raft::Index index) const = 0;  // REQUIRES: <= commit_known()
    // A client write on node `id`; false (and traced) if the node refuses it.
    virtual bool propose(raft::NodeId id) = 0;
    virtual void crash(raft::NodeId id) = 0;
    virtual void restart(raft::NodeId id) = 0;
    // Blocks both directions between a and b, including messages already in
    // flight (the network checks links when a message arrives).
    virtual void cut(raft::NodeId a, raft::NodeId b) = 0;
    virtual void reconnect() = 0;  // lifts every cut
    // Stalls the node's WAL: nothing queued on it completes until released;
    // then each queued write completes in turn, one event each.
    virtual void hold_disk(raft::NodeId id) = 0;
    virtual void release_disk(raft::NodeId id) = 0;
};

struct ScriptStep {
    std::string what;                              // traced when it runs; named if it never does
    std::function<bool(const ScriptHost&)> ready;  // the step waits until this holds
    // Optional, once ready: empty, or why the run is not the one scripted
    // (a wrong term, say) — which would make whatever follows meaningless.
    std::function<std::string(const ScriptHost&)> check;
    std::function<void(ScriptHost&)> act;  // optional
};

class Script {
public:
    // A step not ready this long (simulated) after the previous one ran means
    // the run went off script.
    static constexpr std::uint64_t kStepWaitUsMax = 5'000'000;

    explicit Script(std::vector<ScriptStep> steps) : steps_(std::move(steps)) {}

    // Called after every event: runs, in order, every step whose condition
    // holds now.  Returns "Scenario: ..." if the run went off script.
    std::optional<std::string> poll(ScriptHost& host);
    bool done() const { return next_ == steps_.size(); }

private:
    std::vector<ScriptStep> steps_;
    std::size_t next_ = 0;
    std::uint64_t since_us_ = 0;  // when the previous step ran
};

// A scenario's fixed parameters: no random faults, no clients or operators.
// REQUIRES: scenario != Scenario::none (likewise below).
SwarmParams scenario_params(Scenario scenario);
// Per-node core options the script relies on (who may time out first).
void scenario_options(Scenario scenario, raft::Options* options);
// The number of founding voters the script is written for.
int scenario_nodes(Scenario scenario);
Script make_script(Scenario scenario);

}  // namespace keel::sim
