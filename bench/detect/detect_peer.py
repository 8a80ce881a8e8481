#!/usr/bin/env python3
"""The anomaly detectors' peer: river's HalfSpaceTrees on the same per-user
features advrec's detector keeps (advrec-eval --detect --features FILE).

Users are scored and then learned one at a time in the file's order (the
order they first appeared in the stream), features min-max scaled online,
as a streaming detector would see them. Labels are only used to score the
result. Prints, per data set, one line for advrec's own flags (the
`flagged` column), one for HalfSpaceTrees flagging as many users as advrec
did (same budget, no labels), and one for its best threshold (an oracle
upper bound: it looks at the labels). Each ends in
`precision P recall R f1 F fpr X`.

usage: detect_peer.py NAME FEATURES [NAME FEATURES ...]
"""
import sys

from river import anomaly, compose, preprocessing

FEATURES = ["events", "clicks", "purchases", "rate", "gap_logstd",
            "diversity", "age_s", "mean_logpop"]


def figures(flags, labels):
    tp = sum(1 for f, l in zip(flags, labels) if f and l)
    fp = sum(1 for f, l in zip(flags, labels) if f and not l)
    pos = sum(labels)
    neg = len(labels) - pos
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / pos if pos else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return f"precision {p:.3f} recall {r:.3f} f1 {f1:.3f} fpr {fp / neg if neg else 0:.4f}"


def run(name, path):
    rows = []
    with open(path) as fp:
        head = fp.readline().split()
        for line in fp:
            v = line.split()
            rows.append(dict(zip(head, v)))
    model = compose.Pipeline(
        preprocessing.MinMaxScaler(),
        anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=250, seed=1))
    scores, labels, ours = [], [], []
    for r in rows:
        x = {k: float(r[k]) for k in FEATURES}
        scores.append(model.score_one(x))
        model.learn_one(x)
        labels.append(r["label"] == "1")
        ours.append(r["flagged"] == "1")
    print(f"{name} advrec: {figures(ours, labels)}")
    budget = sum(ours)
    order = sorted(range(len(rows)), key=lambda i: -scores[i])
    top = set(order[:budget])
    print(f"{name} hst-same-budget ({budget} flags): "
          f"{figures([i in top for i in range(len(rows))], labels)}")
    best, best_f1 = None, -1.0
    for k in range(1, len(rows) + 1, max(1, len(rows) // 400)):
        top = set(order[:k])
        flags = [i in top for i in range(len(rows))]
        f = figures(flags, labels)
        f1 = float(f.split("f1 ")[1].split()[0])
        if f1 > best_f1:
            best, best_f1 = (k, f), f1
    print(f"{name} hst-best-threshold-oracle ({best[0]} flags): {best[1]}")


def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 64
    for i in range(1, len(argv), 2):
        run(argv[i], argv[i + 1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
