#!/usr/bin/env python3
"""Summarises bench/scaleout.sh: per data set, APR's prequential HR@10
(NDCG@10) with one instance and with three (item deltas every 1,000
events), per training seed, their means and the relative difference of
the means (the issue's target: within 5 %), then the seed-42 runs of the
other exchange intervals and of the accumulators kept local. Standard
library only.

    scaleout.py OUT
"""
import json
import os
import statistics as st
import sys


def load(path):
    try:
        with open(os.path.join(path, "results.json")) as f:
            return json.load(f)["prequential"]
    except OSError:
        return None


def main(out):
    for s in sorted(os.listdir(out)):
        d = os.path.join(out, s)
        if not os.path.isdir(d):
            continue
        runs = {n: load(os.path.join(d, n)) for n in os.listdir(d)
                if os.path.isdir(os.path.join(d, n)) and not n.endswith(".tmp")}
        seeds = sorted({n.split("-s")[-1] for n in runs if n.startswith("one-s")},
                       key=int)
        print(f"### {s}\n")
        print("| seed | 1 instance HR@10 (NDCG) | 3 instances HR@10 (NDCG) | relative |")
        print("|---|---|---|---|")
        one, three = [], []
        for sd in seeds:
            a, b = runs.get(f"one-s{sd}"), runs.get(f"three-s{sd}")
            if not a or not b:
                continue
            one.append(a["apr"]["hr"])
            three.append(b["apr"]["hr"])
            print(f"| {sd} | {a['apr']['hr']:.4f} ({a['apr']['ndcg']:.4f}) | "
                  f"{b['apr']['hr']:.4f} ({b['apr']['ndcg']:.4f}) | "
                  f"{100 * (b['apr']['hr'] / a['apr']['hr'] - 1):+.1f} % |")
        if one:
            m1, m3 = st.mean(one), st.mean(three)
            sd1 = st.stdev(one) if len(one) > 1 else 0
            sd3 = st.stdev(three) if len(three) > 1 else 0
            print(f"| mean (sd) | {m1:.4f} ({sd1:.4f}) | {m3:.4f} ({sd3:.4f}) | "
                  f"**{100 * (m3 / m1 - 1):+.1f} %** |")
        base = runs.get("one-s42")
        print("\n| seed 42, 3 instances | HR@10 (NDCG) | relative to 1 | exchanges | records |")
        print("|---|---|---|---|---|")
        for name, what in [("three-every0-s42", "never exchanged"),
                           ("three-every1-s42", "every event"),
                           ("three-every100-s42", "every 100 events"),
                           ("three-s42", "every 1,000 events"),
                           ("three-every10000-s42", "every 10,000 events"),
                           ("three-localacc-s42",
                            "every 1,000, accumulators local")]:
            r = runs.get(name)
            if not r or not base:
                continue
            print(f"| {what} | {r['apr']['hr']:.4f} ({r['apr']['ndcg']:.4f}) | "
                  f"{100 * (r['apr']['hr'] / base['apr']['hr'] - 1):+.1f} % | "
                  f"{r['exchanges']} | {r['records']} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
