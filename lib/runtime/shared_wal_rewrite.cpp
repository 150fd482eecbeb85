// The shared WAL's rewrite pass (shared_wal.hpp, "Rewriting forward";
// docs/decisions/0024): groups that pin the oldest segment restate their
// live logs at the head, then release what lies before, so that the log's
// size follows its busy groups' snapshots, not its idle groups' age.
#include <utility>

#include "runtime/shared_wal.hpp"

namespace keel::runtime {

namespace {

// The images of one step, as they complete on the WAL's writing thread.
struct ImageWait {
    Mutex mu;
    CondVar cv;
    std::size_t left GUARDED_BY(mu) = 0;
    Status error GUARDED_BY(mu);
    std::vector<wal::Release> releases GUARDED_BY(mu);
};

}  // namespace

void SharedWal::maybe_rewrite() {
    if (!policy_.run_in_background || policy_.above_segments == 0) return;
    const std::uint64_t segments = wal_->stats().segments;
    // Not before the log has doubled since the last pass that freed
    // something: the groups' live records left after it are rewritten at
    // most once per as many segments of new writes (decision 0024).
    if (segments <= std::max(policy_.above_segments, 2 * pass_left_segments_.load())) return;
    // Nothing moved since the last pass (a group it could not rewrite
    // still pins the oldest segment): wait for the next segment or release.
    if (segments == pass_seen_segments_.load() && wal_->first_index() == pass_seen_first_.load())
        return;
    if (pass_due_.exchange(true)) return;
    if (!policy_.run_in_background([this] {
            (void)rewrite_pass();  // a failed WAL reports itself to every group
            pass_due_.store(false);
        }))
        pass_due_.store(false);
}

Status SharedWal::rewrite_pass() {
    Status s;
    // Each step frees the oldest segment or ends the pass; it never
    // rewrites what this pass wrote (records from `head` on).
    const std::uint64_t head = wal_->next_index();
    const std::uint64_t steps = wal_->stats().segments;
    bool freed = false;
    for (std::uint64_t step = 0; step < steps && policy_.above_segments != 0; ++step) {
        if (wal_->stats().segments <= policy_.above_segments) break;
        bool progress = false;
        s = rewrite_oldest(head, &progress);
        if (!s.ok() || !progress) break;
        freed = true;
    }
    if (freed) pass_left_segments_.store(wal_->stats().segments);
    pass_seen_segments_.store(wal_->stats().segments);
    pass_seen_first_.store(wal_->first_index());
    return s;
}

Status SharedWal::rewrite_oldest(std::uint64_t head, bool* progress) {
    *progress = false;
    const std::vector<wal::SegmentPin> pins = wal_->oldest_segment_pins();
    if (!pins.empty() && pins.front().segment_first_index >= head) return Status::ok_status();
    if (pins.empty()) {
        // Every group released its records there (a release while it was
        // the active segment cannot move the floor past it), or only the
        // active segment is left.  Moving the floor to the second segment
        // releases nothing any group still needs.
        const std::uint64_t reclaimable = wal_->reclaimable_from();
        if (reclaimable == 0) return Status::ok_status();
        if (Status s = wal_->compact_before(reclaimable); !s.ok()) return s;
        *progress = true;
        return Status::ok_status();
    }
    auto wait = std::make_shared<ImageWait>();
    bool all = true;
    {
        MutexLock lock(stores_mu_);
        // Rewriting some of the groups that pin the segment frees nothing:
        // every one must be open here and free to go now.
        for (const wal::SegmentPin& pin : pins) {
            auto it = stores_.find(pin.group);
            if (it == stores_.end() || !it->second->may_rewrite()) return Status::ok_status();
        }
        for (const wal::SegmentPin& pin : pins) {
            {
                MutexLock w(wait->mu);
                ++wait->left;
            }
            const GroupId group = pin.group;
            auto queued = stores_.at(group)->rewrite_forward(
                policy_.max_image_bytes, [wait, group](Status st, std::uint64_t position) {
                    MutexLock w(wait->mu);
                    if (st.ok()) {
                        wait->releases.push_back(wal::Release{group, position});
                    } else if (wait->error.ok()) {
                        wait->error = std::move(st);
                    }
                    if (--wait->left == 0) wait->cv.notify_all();
                });
            if (!queued.ok() || !queued.value()) {
                MutexLock w(wait->mu);
                --wait->left;
                if (!queued.ok() && wait->error.ok()) wait->error = queued.status();
                all = false;
                break;
            }
        }
    }
    std::vector<wal::Release> releases;
    {
        MutexLock w(wait->mu);
        while (wait->left != 0) wait->cv.wait(w);
        if (!wait->error.ok()) return wait->error;
        releases = std::move(wait->releases);
    }
    rewritten_groups_.fetch_add(releases.size());
    // Crash window: the images are durable before their groups' older
    // records are released, so a restart finds the image, the old records,
    // or both (the image, later in the log, wins).  The release carries
    // the groups' hard states into their rows (release(), "Hard state").
    if (Status s = release(releases); !s.ok()) return s;
    *progress = all;
    return Status::ok_status();
}

}  // namespace keel::runtime
