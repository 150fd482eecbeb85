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

Two more probes, each one writer beside something else the WAL does:

    --fill-chunks 1048576,65536: beside a filler that writes zeros with
    O_DIRECT (no O_DSYNC) in chunks of that many bytes into a fallocated
    64 MiB file, as the WAL prepares its next segment; 0 is the writer alone.
    {"bench":"disk_stalls_fill","fill_chunk_bytes":...,"writer_p50_us":...,
     "writer_p99_us":...,"fill_mb_per_s":...}

    --delete-steps 0,1048576: while a written and synced --delete-mib file is
    deleted: unlinked at once (0), or shortened that many bytes at a time,
    each step fdatasynced, then unlinked, as the WAL deletes a compacted
    segment; then the directory is fsynced.
    {"bench":"disk_stalls_delete","step_bytes":...,"delete_ms":...,
     "writer_max_us":...,"writer_over_1ms_ms":...}

    scripts/disk-stalls.py --dir D [--writers 1,2,3|none] [--seconds 3] [--slow-ms 3]
                           [--fill-chunks LIST] [--delete-steps LIST] [--delete-mib 64]
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
FILL_FILE_BYTES = 64 << 20
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


def write_loop(path, until, out, stopped=lambda: False):
    """Overwrites path's blocks in turn until `until` (a time.monotonic()) or
    stopped(); appends (end, seconds) of each write to out."""
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
    block = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    block.write(b"x" * BLOCK)
    offset = 0
    try:
        while True:
            start = time.monotonic()
            if start >= until or stopped():
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


def fill_probe(directory, chunk, seconds):
    """One writer beside a filler of `chunk`-byte O_DIRECT writes (0: alone)."""
    writer_path = os.path.join(directory, "writer.tmp")
    fill_path = os.path.join(directory, "fill.tmp")
    zero_filled(writer_path)
    writes, filled = [], [0]
    until = time.monotonic() + seconds

    def fill():
        fd = os.open(fill_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        zeros = mmap.mmap(-1, chunk)
        at = FILL_FILE_BYTES  # start with a fresh file
        try:
            while time.monotonic() < until:
                if at + chunk > FILL_FILE_BYTES:  # a fresh segment's worth of unwritten extents
                    os.ftruncate(fd, 0)
                    os.posix_fallocate(fd, 0, FILL_FILE_BYTES)
                    at = 0
                os.pwritev(fd, [zeros], at)
                at += chunk
                filled[0] += chunk
            os.fdatasync(fd)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=write_loop, args=(writer_path, until, writes))]
    if chunk > 0:
        threads.append(threading.Thread(target=fill))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in (writer_path, fill_path):
        if os.path.exists(p):
            os.unlink(p)
    took = sorted(t for _, t in writes)
    n = len(took)
    return {"bench": "disk_stalls_fill", "fill_chunk_bytes": chunk, "seconds": seconds,
            "writer_p50_us": statistics.median(took) * 1e6,
            "writer_p99_us": took[min(n - 1, int(n * 0.99))] * 1e6,
            "fill_mb_per_s": filled[0] / seconds / 1e6}


def delete_probe(directory, step, file_mib):
    """One writer while a file_mib file is deleted: at once (step 0) or in steps."""
    writer_path = os.path.join(directory, "writer.tmp")
    victim = os.path.join(directory, "victim.tmp")
    zero_filled(writer_path)
    fd = os.open(victim, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    ones = b"\1" * (1 << 20)
    for i in range(file_mib):
        os.pwrite(fd, ones, i << 20)
    os.fsync(fd)
    os.close(fd)
    dir_fd = os.open(directory, os.O_RDONLY)
    os.fsync(dir_fd)
    writes, stop = [], [False]
    thread = threading.Thread(target=write_loop,
                              args=(writer_path, float("inf"), writes, lambda: stop[0]))
    thread.start()
    time.sleep(0.3)  # the writer's pace before: what the deletion disturbs
    began = time.monotonic()
    if step > 0:
        fd = os.open(victim, os.O_RDWR)
        left = file_mib << 20
        while left > 0:
            left -= min(left, step)
            os.ftruncate(fd, left)
            os.fdatasync(fd)
        os.close(fd)
    os.unlink(victim)
    os.fsync(dir_fd)
    ended = time.monotonic()
    time.sleep(0.3)  # writes that were queued behind it
    stop[0] = True
    thread.join()
    os.close(dir_fd)
    os.unlink(writer_path)
    # Writes that overlapped the deletion (each is (end, seconds)).
    during = [took for end, took in writes if began <= end and end - took <= ended]
    return {"bench": "disk_stalls_delete", "step_bytes": step, "file_mib": file_mib,
            "delete_ms": (ended - began) * 1e3,
            "writer_max_us": max(during, default=0) * 1e6,
            "writer_over_1ms_ms": sum(t for t in during if t > 0.001) * 1e3}


def int_list(text):
    return [] if text in ("", "none") else [int(x) for x in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=".", help="a directory on the disk to probe")
    ap.add_argument("--writers", default="1,2,3", help="writer counts, in turn; none: skip")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--slow-ms", type=float, default=3.0)
    ap.add_argument("--fill-chunks", default="", help="filler chunk sizes in bytes, in turn")
    ap.add_argument("--delete-steps", default="", help="deletion steps in bytes (0: unlink)")
    ap.add_argument("--delete-mib", type=int, default=64)
    args = ap.parse_args()
    try:
        counts, chunks, steps = (int_list(args.writers), int_list(args.fill_chunks),
                                 int_list(args.delete_steps))
    except ValueError:
        sys.exit("disk-stalls: --writers, --fill-chunks and --delete-steps take lists of integers")
    if (any(not 1 <= c <= 64 for c in counts) or args.seconds <= 0 or
            any(c < 0 or c % BLOCK for c in chunks) or any(s < 0 for s in steps) or
            not 1 <= args.delete_mib <= 4096):
        sys.exit("disk-stalls: writers must be 1-64, seconds > 0, fill chunks multiples of "
                 "4096, steps >= 0, --delete-mib 1-4096")
    runs = ([lambda d, w=w: measure(d, w, args.seconds, args.slow_ms / 1000.0) for w in counts] +
            [lambda d, c=c: fill_probe(d, c, args.seconds) for c in chunks] +
            [lambda d, s=s: delete_probe(d, s, args.delete_mib) for s in steps])
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="disk-stalls.") as d:
        for run in runs:
            try:
                row = run(d)
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
