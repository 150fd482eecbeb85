#!/usr/bin/env python3
"""Reads the JSON rows of scripts/libraft-compare.sh on stdin and echoes them;
then prints, per row kind, the median over the rounds of ops_per_s, p50_us and
p99_us, and per K the ratios keel single / libraft single of those medians
(ops_ratio > 1: keel faster; p50_ratio < 1: keel's latency lower), and the
median of the per-round ratios."""
import argparse
import json
import statistics
import sys


def key(row):
    if row.get("bench") == "raft":
        return ("keel_" + row["mode"], row.get("outstanding"))
    if row.get("bench") == "libraft":
        return ("libraft_" + row["mode"], row.get("outstanding"))
    if row.get("bench") == "wal":
        return ("wal_" + row.get("write_path", ""), row.get("outstanding"))
    return (row.get("bench"), row.get("outstanding"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args()
    groups = {}
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        print(line, flush=True)
        row = json.loads(line)
        if "bench" not in row:
            continue
        groups.setdefault(key(row), []).append(row)
    medians = {}
    for (name, k), rows in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        m = {f: statistics.median(r[f] for r in rows) for f in ("ops_per_s", "p50_us", "p99_us")
             if all(f in r for r in rows)}
        medians[(name, k)] = m
        out = {"median_of": name, "rounds": len(rows)}
        if k is not None:
            out["outstanding"] = k
        out.update({f: round(v, 1) for f, v in m.items()})
        print(json.dumps(out))
    for (name, k), m in sorted(medians.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if name != "keel_single" or ("libraft_single", k) not in medians:
            continue
        lib = medians[("libraft_single", k)]
        out = {"compare": "keel_single/libraft_single", "outstanding": k, "rounds": args.rounds}
        # The ratio of the medians, and the median of each round's own ratio
        # (keel and libraft ran back to back in a round: the fairer one when
        # the disk's speed drifts between rounds).
        keel_rows, lib_rows = groups[(name, k)], groups[("libraft_single", k)]
        for f in ("ops_per_s", "p50_us", "p99_us"):
            short = f.replace("_per_s", "").replace("_us", "")
            if lib.get(f):
                out[f"{short}_ratio"] = round(m[f] / lib[f], 3)
            per_round = [a[f] / b[f] for a, b in zip(keel_rows, lib_rows) if b.get(f)]
            if per_round:
                out[f"{short}_ratio_median_of_rounds"] = round(statistics.median(per_round), 3)
                out[f"{short}_ratio_rounds"] = [round(x, 3) for x in per_round]
        print(json.dumps(out))


if __name__ == "__main__":
    main()
