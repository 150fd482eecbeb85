#!/usr/bin/env python3
"""Does the disk stall when several durable writes are in flight at once?

N threads each overwrite 4 KiB blocks of their own zero-filled file with
O_DIRECT|O_DSYNC writes, one at a time, for S seconds: what N WALs on one
disk do (raft-bench --mode cluster3 and --mode groups run three members'
WALs on the same disk).  Prints one JSON row per writer count:

    {"bench":"disk_stalls","writers":3,"writes_per_s":...,"p50_us":...,
     "p99_us":...,"max_us":...,"slow_writes":...,"stalls":...,
     "stalled_share":...,"stall_ends_on_grid":...}

slow_writes are writes slower than --slow-ms; consecutive slow writes (less
than 20 ms apart) make one stall, which ends at its first slow completion.
stalled_share is the share of the run in which no writer finished a write
for longer than --slow-ms.  stall_ends_on_grid is the share of stalls whose end lies within 5 ms of one
common phase of a 100 ms grid: near 1 when something outside the guest
releases stalled writes on a 100 ms clock (decision 0051); about 0.1 for
many stalls at random moments (higher by chance when there are few).

    scripts/disk-stalls.py --dir D [--writers 1,2,3] [--seconds 3] [--slow-ms 3]
"""
import argparse
import errno
import json
import mmap
import os
import statistics
import sys
import tempfile
import threading
import time

BLOCK = 4096
FILE_BYTES = 16 << 20
GRID_MS = 100
NEAR_MS = 5
STALL_GAP_S = 0.020


def zero_filled(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        zeros = b"\0" * (1 << 20)
        for at in range(0, FILE_BYTES, len(zeros)):
            os.pwrite(fd, zeros, at)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_loop(path, until, out):
    """Overwrites path's blocks in turn until `until`; appends (end, seconds) to out."""
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
    block = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    block.write(b"x" * BLOCK)
    offset = 0
    try:
        while True:
            start = time.monotonic()
            if start >= until:
                return
            os.pwritev(fd, [block], offset)
            end = time.monotonic()
            out.append((end, end - start))
            offset = (offset + BLOCK) % FILE_BYTES
    finally:
        os.close(fd)


def stall_ends(writes, slow_s):
    ends, last_slow = [], None
    for end, took in writes:
        if took <= slow_s:
            continue
        if last_slow is None or end - last_slow > STALL_GAP_S:
            ends.append(end)
        last_slow = end
    return ends


def share_on_grid(ends):
    """The largest share of `ends` within NEAR_MS of one phase of the grid."""
    if not ends:
        return 0.0
    phases = [(e * 1000.0) % GRID_MS for e in ends]

    def near(a, b):
        d = abs(a - b) % GRID_MS
        return min(d, GRID_MS - d) <= NEAR_MS

    return max(sum(near(p, q) for q in phases) for p in phases) / len(phases)


def measure(directory, writers, seconds, slow_s):
    paths = [os.path.join(directory, f"stall-{i}.tmp") for i in range(writers)]
    for p in paths:
        zero_filled(p)
    results = [[] for _ in paths]
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=write_loop, args=(p, until, r))
               for p, r in zip(paths, results)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in paths:
        os.unlink(p)
    writes = sorted(w for r in results for w in r)
    took = sorted(t for _, t in writes)
    ends = stall_ends(writes, slow_s)
    n = len(took)
    # Time in which no writer finished a write for longer than slow_s.
    quiet = sum(b - a for (a, _), (b, _) in zip(writes, writes[1:]) if b - a > slow_s)
    return {"bench": "disk_stalls", "writers": writers, "seconds": seconds,
            "writes_per_s": n / seconds,
            "p50_us": statistics.median(took) * 1e6,
            "p99_us": took[min(n - 1, int(n * 0.99))] * 1e6,
            "max_us": took[-1] * 1e6,
            "slow_us": slow_s * 1e6,
            "slow_writes": sum(1 for t in took if t > slow_s),
            "stalls": len(ends),
            "stalled_share": quiet / seconds,
            "stall_ends_on_grid": share_on_grid(ends)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=".", help="a directory on the disk to probe")
    ap.add_argument("--writers", default="1,2,3", help="writer counts, in turn")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--slow-ms", type=float, default=3.0)
    args = ap.parse_args()
    counts = [int(x) for x in args.writers.split(",")]
    if not counts or min(counts) < 1 or max(counts) > 64 or args.seconds <= 0:
        sys.exit("disk-stalls: writers must be 1-64 and seconds > 0")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="disk-stalls.") as d:
        for writers in counts:
            try:
                row = measure(d, writers, args.seconds, args.slow_ms / 1000.0)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    sys.exit(f"disk-stalls: {e}")
                # As wal-bench's raw_direct_dsync: where O_DIRECT is refused
                # (open's EINVAL), the WAL writes buffered; nothing to measure.
                print(f"disk-stalls: {args.dir} refuses O_DIRECT: nothing measured",
                      file=sys.stderr)
                return
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
