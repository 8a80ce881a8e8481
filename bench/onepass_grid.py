#!/usr/bin/env python3
"""The engine's settings for one pass (issue 16), searched on the validation
split: a random sample of a grid of the daemon's model settings, each run
through `advrec-eval --onepass --validate` (the training split without each
user's last training item, once, in time order, through the daemon's
engine; HR@10 against 99 sampled negatives on the held-out item). The test
split is never looked at.

    onepass_grid.py ADVREC_EVAL DATA_DIR OUT.tsv [--samples N] [--seed S]
                    [--second-above X]

DATA_DIR holds amazon-beauty/Beauty.txt and movielens-100k/u.data. Every
sampled point is run on Beauty (the harder data set); MovieLens runs too
when Beauty's HR@10 exceeds --second-above (0.45), so the search spends its
time where the target is. One tab-separated line per point is appended to
OUT.tsv (points already there are skipped, so an interrupted run resumes):

    negatives lr reg init_std replay_steps k beauty_hr10 movielens_hr10 cost

movielens_hr10 is -1 when not run; cost is the training steps per event
relative to the shipped 4 negatives at k 64: (negatives + replay) * k / 256.
Progress goes to stderr. Standard library only.
"""
import argparse
import itertools
import os
import random
import re
import subprocess
import sys
import tempfile

SPACE = (
    ("model.negatives", (4, 8, 12, 16)),
    ("model.lr", (0.05, 0.1, 0.15, 0.2)),
    ("model.reg", (0.001, 0.003, 0.01, 0.02)),
    ("model.init.std", (0.01, 0.05, 0.1, 0.2)),
    ("model.replay.steps", (0, 2, 4)),
    ("model.k", (64, 128)),
)


def onepass_hr(tool, data, point, out):
    cmd = [tool, "-q", "--onepass", "--validate", "--models", "apr",
           "--epochs", "2", "--bpr-epochs", "1", "--out", out]
    for (key, _), v in zip(SPACE, point):
        cmd += ["-X", f"{key}={v}"]
    cmd.append(data)
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    m = re.search(r"onepass-hr@10 ([0-9.]+)", r.stdout)
    if not m:
        sys.exit(f"onepass_grid: no onepass-hr@10 from {' '.join(cmd)}:\n"
                 f"{r.stderr}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--second-above", type=float, default=0.45)
    a = ap.parse_args()
    beauty = os.path.join(a.data_dir, "amazon-beauty", "Beauty.txt")
    movielens = os.path.join(a.data_dir, "movielens-100k", "u.data")
    points = list(itertools.product(*(v for _, v in SPACE)))
    random.Random(a.seed).shuffle(points)
    points = points[:a.samples]
    done = set()
    if os.path.exists(a.out):
        with open(a.out) as f:
            done = {tuple(line.split("\t")[:len(SPACE)]) for line in f}
    with tempfile.TemporaryDirectory() as tmp, open(a.out, "a") as out:
        for n, point in enumerate(points, 1):
            if tuple(str(v) for v in point) in done:
                continue
            b = onepass_hr(a.tool, beauty, point, tmp)
            m = (onepass_hr(a.tool, movielens, point, tmp)
                 if b > a.second_above else -1)
            cost = (point[0] + point[4]) * point[5] / 256
            out.write("\t".join(map(str, point)) + f"\t{b}\t{m}\t{cost:g}\n")
            out.flush()
            print(f"onepass_grid: {n}/{len(points)} {point}: beauty {b:.4f}"
                  f" movielens {m:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
