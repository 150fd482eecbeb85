// tests/raft/scenario_test.cpp — data-driven scenarios, in the manner of
// etcd's raft testdata: each file in testdata/ is a list of blocks
//
//   # comments and blank lines (kept as they are)
//   command arg...
//   ----
//   the expected output, one line per message sent or state change
//   <blank line>
//
// Run with KEEL_REWRITE=1 to rewrite the expected outputs after a deliberate
// change (then read the diff: it is the review).
//
// Commands (node ids are numbers):
//   cluster voters=1,2,3 [learners=4] [pre_vote=false] [check_quorum=false] [trailing=N]
//   add-node <id>                    a node with empty state (joins later)
//   campaign <id>                    tick <id> until it leaves follower
//   tick <id> [n] | tick-all [n]     tick-all also delivers until quiet
//   stabilize                        deliver messages until the network is quiet
//   propose <id> <data>
//   conf-change <id> add_voter|add_learner|promote|remove <node>
//   read-index <id> <request id>
//   transfer <id> <target>
//   snapshot <id>                    the state machine snapshots at its applied index
//   isolate <id> | cut <a> <b> | heal
//   hold <id> | release <id>         hold / release acknowledgements of appends
//   status                           role, term, leader, commit, last index, config
//   log <id>                         the node's in-memory log
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

struct Block {
    std::vector<std::string> preamble;  // comments and blank lines before the command
    std::string command;
    std::vector<std::string> expected;
    int line = 0;
};

std::vector<Block> parse(std::istream& in) {
    std::vector<Block> blocks;
    Block current;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty() || line[0] == '#') {
            current.preamble.push_back(line);
            continue;
        }
        current.command = line;
        current.line = number;
        if (!std::getline(in, line) || line != "----") {
            throw std::runtime_error(str_cat("line ", number + 1, ": expected ----"));
        }
        ++number;
        while (std::getline(in, line) && !line.empty()) {
            ++number;
            current.expected.push_back(line);
        }
        ++number;
        blocks.push_back(std::move(current));
        current = Block{};
    }
    return blocks;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, sep)) {
        if (!part.empty()) out.push_back(part);
    }
    return out;
}

std::vector<NodeId> ids(const std::string& list) {
    std::vector<NodeId> out;
    for (const std::string& p : split(list, ',')) out.push_back(std::stoull(p));
    return out;
}

class Interpreter {
public:
    std::vector<std::string> run(const std::string& command) {
        std::vector<std::string> out;
        std::vector<std::string> args = split(command, ' ');
        const std::string& cmd = args.at(0);
        auto id = [&](std::size_t i) -> NodeId { return std::stoull(args.at(i)); };
        if (cmd == "cluster") {
            start(args, out);
            return out;
        }
        Cluster& c = *cluster_;
        c.trace = &out;
        if (cmd == "add-node") {
            c.add(id(1), test_options(id(1)), RestoredState{});
        } else if (cmd == "campaign") {
            for (int i = 0; i < 100 && c.core(id(1)).role() == Role::follower; ++i) c.tick(id(1));
        } else if (cmd == "tick") {
            c.tick(id(1), args.size() > 2 ? std::stoi(args[2]) : 1);
        } else if (cmd == "tick-all") {
            c.tick_all(args.size() > 1 ? std::stoi(args[1]) : 1);
        } else if (cmd == "stabilize") {
            c.deliver_all();
        } else if (cmd == "propose") {
            auto r = c.core(id(1)).propose(args.at(2));
            out.push_back(r.ok() ? str_cat("proposed ", r->term, '/', r->index)
                                 : r.status().to_string());
            c.process(id(1));
        } else if (cmd == "conf-change") {
            conf_change(c, id(1), args.at(2), id(3), out);
        } else if (cmd == "read-index") {
            keel::Status st = c.core(id(1)).read_index(std::stoull(args.at(2)));
            if (!st.ok()) out.push_back(st.to_string());
            c.process(id(1));
        } else if (cmd == "transfer") {
            keel::Status st = c.core(id(1)).transfer_leadership(id(2));
            if (!st.ok()) out.push_back(st.to_string());
            c.process(id(1));
        } else if (cmd == "snapshot") {
            auto meta = c.core(id(1)).on_snapshot_taken(c.core(id(1)).applied_index());
            out.push_back(meta.ok() ? str_cat("snapshot ", meta->index, '/', meta->term, ' ',
                                              to_string(meta->config))
                                    : meta.status().to_string());
        } else if (cmd == "isolate") {
            c.isolate(id(1));
        } else if (cmd == "cut") {
            c.cut(id(1), id(2));
        } else if (cmd == "heal") {
            c.heal();
        } else if (cmd == "hold") {
            c.node(id(1)).hold_persist = true;
        } else if (cmd == "release") {
            c.release(id(1));
        } else if (cmd == "status") {
            status(c, out);
        } else if (cmd == "log") {
            Core& core = c.core(id(1));
            for (const Entry& e : core.entries(core.first_index(), core.last_index() + 1)) {
                out.push_back(to_string(e));
            }
        } else {
            throw std::runtime_error("unknown command: " + cmd);
        }
        c.trace = nullptr;
        return out;
    }

private:
    void start(const std::vector<std::string>& args, std::vector<std::string>& out) {
        std::vector<NodeId> voters;
        std::vector<NodeId> learners;
        bool pre_vote = true;
        bool check_quorum = true;
        std::size_t trailing = Options{}.snapshot_trailing_entries;
        for (std::size_t i = 1; i < args.size(); ++i) {
            auto kv = split(args[i], '=');
            if (kv.at(0) == "voters") voters = ids(kv.at(1));
            if (kv.at(0) == "learners") learners = ids(kv.at(1));
            if (kv.at(0) == "pre_vote") pre_vote = kv.at(1) == "true";
            if (kv.at(0) == "check_quorum") check_quorum = kv.at(1) == "true";
            if (kv.at(0) == "trailing") trailing = std::stoull(kv.at(1));
        }
        cluster_ = std::make_unique<Cluster>(
            voters, learners,
            [=](Options& o) {
                o.pre_vote = pre_vote;
                o.check_quorum = check_quorum;
                o.snapshot_trailing_entries = trailing;
            },
            &out);
        cluster_->trace = nullptr;
    }

    static void conf_change(Cluster& c, NodeId leader, const std::string& kind, NodeId node,
                            std::vector<std::string>& out) {
        ConfigChange ch{ConfigChange::Kind::add_learner, node, ""};
        if (kind == "add_voter") ch.kind = ConfigChange::Kind::add_voter;
        if (kind == "promote") ch.kind = ConfigChange::Kind::promote;
        if (kind == "remove") ch.kind = ConfigChange::Kind::remove;
        auto r = c.core(leader).propose_config_change(ch);
        out.push_back(r.ok() ? str_cat("proposed ", r->term, '/', r->index)
                             : r.status().to_string());
        c.process(leader);
    }

    static void status(Cluster& c, std::vector<std::string>& out) {
        for (NodeId n : c.ids()) {
            Core& core = c.core(n);
            out.push_back(str_cat(n, ": ", role_name(core.role()), " term=", core.term(),
                                  " leader=", core.leader(), " commit=", core.commit_index(),
                                  " last=", core.last_index(),
                                  " config=", to_string(core.configuration())));
        }
    }

    std::unique_ptr<Cluster> cluster_;
};

std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
}

void run_file(const std::filesystem::path& path, bool rewrite) {
    std::ifstream in(path);
    REQUIRE(in);
    std::vector<Block> blocks = parse(in);
    Interpreter interp;
    std::string rewritten;
    for (Block& b : blocks) {
        std::vector<std::string> actual = interp.run(b.command);
        for (const std::string& p : b.preamble) rewritten += p + "\n";
        rewritten += b.command + "\n----\n" + join(actual) + "\n";
        if (!rewrite) {
            INFO(path.filename().string() << ":" << b.line << ": " << b.command);
            CHECK(join(actual) == join(b.expected));
        }
    }
    if (rewrite) {
        while (rewritten.size() >= 2 && rewritten.substr(rewritten.size() - 2) == "\n\n") {
            rewritten.pop_back();
        }
        std::ofstream(path) << rewritten;
    }
}

}  // namespace

TEST_CASE("scenario files in tests/raft/testdata") {
    bool rewrite = std::getenv("KEEL_REWRITE") != nullptr;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(KEEL_RAFT_TESTDATA)) {
        if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    REQUIRE_FALSE(files.empty());
    for (const auto& f : files) {
        INFO("scenario " << f.filename().string());
        run_file(f, rewrite);
    }
}
