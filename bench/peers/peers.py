#!/usr/bin/env python3
"""Peer BPR libraries (implicit, cornac) on the leave-one-out split that
advrec-eval wrote (--write-split DIR): DIR/train.tsv "user item ts_ms" and
DIR/test.tsv "user test_item neg1 ... negN".

Same split, same negatives, same metrics (HR@10, NDCG@10; ties count against
the test item, as in tools/lib/eval.c). Each library is tuned honestly: a small grid
on the validation split advrec-eval wrote (DIR/val.tsv "user val_item neg1
... negN": each user's last training interaction, 99 negatives from the items
the user never touched; the training part is train.tsv minus those users'
interactions with their validation item), exactly the split advrec-eval
--validate tunes our own models on. Best validation NDCG@10 wins, then the
library is retrained on all of train.tsv with that setting and measured once
on test.tsv. Without val.tsv (an old split directory) a validation split is
carved out of train.tsv here (numpy stream, seed fixed).

With --seeds S1,S2,... the tuned setting is also retrained with each of
those seeds on the same split and measured on test.tsv (mean and sample
standard deviation reported): one seed's figure on ~1,000 test users moves
by about a percent, more than some of the differences being compared.

    venv.sh peers.py DIR [--json OUT] [--k 64] [--threads 1] [--seed 42]
                     [--seeds 1,2,3,4,5] [--libs implicit,cornac]
                     [--lr L,.. --reg R,.. --iters N,.. --validation-only]

With --speed, nothing is tuned or measured for quality: each library is
trained on all of DIR/train.tsv (--iters N, default 20; lr 0.05, reg 0.01)
--repeat R times, and one line per library and run goes to stdout,
"implicit-bpr <updates> <cpu_s>": updates = iterations x the sampled
triples per iteration (implicit: the binarised matrix's non-zeros; cornac:
its training triples), cpu_s = process CPU time of fit() only (the data set
and matrix are built before the clock starts). bench/step_bench.sh puts
these next to ours.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp


def read_split(d):
    train, users, items = [], {}, {}

    def uid(x):
        return users.setdefault(x, len(users))

    def iid(x):
        return items.setdefault(x, len(items))

    with open(os.path.join(d, "train.tsv")) as f:
        for line in f:
            u, i, ts = line.rstrip("\n").split("\t")
            train.append((uid(u), iid(i), int(ts)))
    test = []
    with open(os.path.join(d, "test.tsv")) as f:
        for line in f:
            u, t, negs = line.rstrip("\n").split("\t")
            test.append((uid(u), iid(t), [iid(x) for x in negs.split(" ")]))
    # val.tsv as written by advrec-eval: the held-out items and negatives
    # our own tuning (advrec-eval --validate) uses.
    val = None
    if os.path.exists(os.path.join(d, "val.tsv")):
        val = []
        with open(os.path.join(d, "val.tsv")) as f:
            for line in f:
                u, t, negs = line.rstrip("\n").split("\t")
                val.append((uid(u), iid(t), [iid(x) for x in negs.split(" ")]))
    return train, test, val, len(users), len(items)


def validation(train, n_items, n_neg, seed):
    """Each user's last training interaction (in file = time order) and all
    repeats of that item leave the training part; 99 negatives per user."""
    last = {}
    for e, (u, i, _) in enumerate(train):
        last[u] = e
    count = {}
    for u, _, _ in train:
        count[u] = count.get(u, 0) + 1
    held = {u: train[e][1] for u, e in last.items() if count[u] >= 2}
    fit = [(u, i) for u, i, _ in train if held.get(u) != i]
    seen = {}
    for u, i, _ in train:
        seen.setdefault(u, set()).add(i)
    rng = np.random.default_rng(seed)
    val = []
    for u, t in held.items():
        if n_items - len(seen[u]) < n_neg:
            continue
        negs = set()
        while len(negs) < n_neg:
            j = int(rng.integers(n_items))
            if j not in seen[u]:
                negs.add(j)
        val.append((u, t, sorted(negs)))
    return fit, val


def held_out(train, val):
    """Training pairs without each validation user's held-out item."""
    held = {u: t for u, t, _ in val}
    return [(u, i) for u, i, _ in train if held.get(u) != i]


def matrix(pairs, n_users, n_items):
    rows = np.fromiter((u for u, _ in pairs), dtype=np.int32, count=len(pairs))
    cols = np.fromiter((i for _, i in pairs), dtype=np.int32, count=len(pairs))
    m = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                      shape=(n_users, n_items))
    m.data[:] = 1.0  # duplicates summed: binarise
    return m


def metrics(score_fn, cases, k=10):
    hr = nd = 0.0
    for u, t, negs in cases:
        s = score_fn(u, [t] + list(negs))
        rank = int(np.sum(s[1:] >= s[0])) if np.isfinite(s[0]) else len(negs)
        if rank < k:
            hr += 1
            nd += 1.0 / math.log2(rank + 2)
    n = max(len(cases), 1)
    return hr / n, nd / n


# ---- implicit ----

def implicit_fit(pairs, n_users, n_items, p, dim, threads, seed):
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    m = BayesianPersonalizedRanking(factors=dim, learning_rate=p["lr"],
                                    regularization=p["reg"],
                                    iterations=p["iters"], num_threads=threads,
                                    random_state=seed)
    m.fit(matrix(pairs, n_users, n_items), show_progress=False)
    uf, itf = np.asarray(m.user_factors), np.asarray(m.item_factors)
    return lambda u, its: itf[its] @ uf[u]


# ---- cornac ----

def cornac_fit(pairs, n_users, n_items, p, dim, threads, seed):
    import cornac
    ds = cornac.data.Dataset.build([(str(u), str(i), 1.0) for u, i in pairs],
                                   seed=seed)
    m = cornac.models.BPR(k=dim, max_iter=p["iters"], learning_rate=p["lr"],
                          lambda_reg=p["reg"], seed=seed, verbose=False)
    m.fit(ds)
    uidx = np.full(n_users, -1, dtype=np.int64)
    iidx = np.full(n_items, -1, dtype=np.int64)
    for k_, v in ds.uid_map.items():
        uidx[int(k_)] = v
    for k_, v in ds.iid_map.items():
        iidx[int(k_)] = v
    uf, itf, ib = m.u_factors, m.i_factors, m.i_biases

    def score(u, its):
        its = np.asarray(its)
        out = np.full(len(its), -np.inf)
        if uidx[u] < 0:
            return out
        ok = iidx[its] >= 0
        ii = iidx[its][ok]
        out[ok] = itf[ii] @ uf[uidx[u]] + ib[ii]
        return out
    return score


# The iterations axis reaches 1000: the earlier grids stopped at 200, where
# every library's best point sat (docs/EVALUATION.md, "passes probe").
GRIDS = {
    "implicit": [dict(lr=lr, reg=reg, iters=it)
                 for lr in (0.01, 0.05, 0.1) for reg in (0.001, 0.01)
                 for it in (50, 200, 500, 1000)],
    "cornac": [dict(lr=lr, reg=reg, iters=it)
               for lr in (0.01, 0.05, 0.2) for reg in (0.001, 0.01)
               for it in (50, 200, 500, 1000)],
}
FITS = {"implicit": implicit_fit, "cornac": cornac_fit}


def speed(a):
    """Updates per CPU-second of each library's BPR fit, one thread."""
    train, _, _, n_users, n_items = read_split(a.split)
    pairs = [(u, i) for u, i, _ in train]
    iters = int(a.iters) if a.iters else 20
    for _ in range(a.repeat):
        for lib in a.libs.split(","):
            if lib == "implicit":
                from implicit.cpu.bpr import BayesianPersonalizedRanking
                m = matrix(pairs, n_users, n_items)
                model = BayesianPersonalizedRanking(
                    factors=a.k, learning_rate=0.05, regularization=0.01,
                    iterations=iters, num_threads=a.threads,
                    random_state=a.seed)
                t0 = time.process_time()
                model.fit(m, show_progress=False)
                dt = time.process_time() - t0
                updates = m.nnz * iters
            elif lib == "cornac":
                import cornac
                ds = cornac.data.Dataset.build(
                    [(str(u), str(i), 1.0) for u, i in pairs], seed=a.seed)
                model = cornac.models.BPR(
                    k=a.k, max_iter=iters, learning_rate=0.05,
                    lambda_reg=0.01, num_threads=a.threads, seed=a.seed,
                    verbose=False)
                t0 = time.process_time()
                model.fit(ds)
                dt = time.process_time() - t0
                updates = len(ds.uir_tuple[0]) * iters
            else:
                sys.exit(f"peers.py: --speed knows implicit and cornac, "
                         f"not {lib}")
            print(f"{lib}-bpr {updates} {dt:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--json")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--libs", default="implicit,cornac")
    ap.add_argument("--lr", help="comma-separated learning rates: replaces "
                    "the grid's (with --reg and --iters, for probes)")
    ap.add_argument("--reg", help="comma-separated regularisations")
    ap.add_argument("--iters", help="comma-separated iteration counts")
    ap.add_argument("--validation-only", action="store_true",
                    help="measure the grid on validation only: no test")
    ap.add_argument("--seeds", default="",
                    help="comma-separated training seeds to repeat the "
                    "tuned setting with")
    ap.add_argument("--speed", action="store_true",
                    help="updates per CPU-second only (see above)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="--speed: runs per library")
    a = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
    if a.speed:
        speed(a)
        return
    train, test, val, n_users, n_items = read_split(a.split)
    if val is not None:
        fit_pairs, val_source = held_out(train, val), "val.tsv"
    else:
        fit_pairs, val = validation(train, n_items, len(test[0][2]), a.seed)
        val_source = "carved from train.tsv"
    print(f"validation: {len(val)} users ({val_source}), {len(fit_pairs)} "
          f"training pairs", file=sys.stderr)
    all_pairs = [(u, i) for u, i, _ in train]
    out = {"split": a.split, "users": n_users, "items": n_items,
           "train": len(train), "tested": len(test), "dim": a.k,
           "threads": a.threads, "validation_users": len(val),
           "validation_source": val_source, "peers": {}}
    for lib in a.libs.split(","):
        axes = {"lr": sorted({g["lr"] for g in GRIDS[lib]}),
                "reg": sorted({g["reg"] for g in GRIDS[lib]}),
                "iters": sorted({g["iters"] for g in GRIDS[lib]})}
        for ax, conv in (("lr", float), ("reg", float), ("iters", int)):
            if getattr(a, ax):
                axes[ax] = [conv(x) for x in getattr(a, ax).split(",")]
        points = [dict(lr=lr, reg=reg, iters=it) for lr in axes["lr"]
                  for reg in axes["reg"] for it in axes["iters"]]
        grid = []
        for p in points:
            t0 = time.time()
            score = FITS[lib](fit_pairs, n_users, n_items, p, a.k, a.threads,
                              a.seed)
            hr, nd = metrics(score, val)
            grid.append(dict(p, val_hr=hr, val_ndcg=nd,
                             train_s=time.time() - t0))
            print(f"{lib} val {p}: HR@10 {hr:.4f} NDCG@10 {nd:.4f}",
                  file=sys.stderr)
        if a.validation_only:
            out["peers"][lib] = dict(grid=grid)
            continue
        best = max(grid, key=lambda g: g["val_ndcg"])
        p = {x: best[x] for x in ("lr", "reg", "iters")}
        t0 = time.time()
        score = FITS[lib](all_pairs, n_users, n_items, p, a.k, a.threads,
                          a.seed)
        secs = time.time() - t0
        hr, nd = metrics(score, test)
        print(f"{lib} BPR k={a.k} best {p}: HR@10 {hr:.4f} NDCG@10 {nd:.4f} "
              f"train {secs:.1f}s")
        out["peers"][lib] = dict(best=p, hr=hr, ndcg=nd, train_s=secs,
                                 seed=a.seed, grid=grid)
        if a.seeds:
            reps = []
            for sd in (int(x) for x in a.seeds.split(",")):
                score = FITS[lib](all_pairs, n_users, n_items, p, a.k,
                                  a.threads, sd)
                rhr, rnd = metrics(score, test)
                reps.append(dict(seed=sd, hr=rhr, ndcg=rnd))
                print(f"{lib} seed {sd}: HR@10 {rhr:.4f} NDCG@10 {rnd:.4f}",
                      file=sys.stderr)
            hrs = np.array([r["hr"] for r in reps])
            nds = np.array([r["ndcg"] for r in reps])
            sd_hr = float(hrs.std(ddof=1)) if len(reps) > 1 else 0.0
            sd_nd = float(nds.std(ddof=1)) if len(reps) > 1 else 0.0
            out["peers"][lib]["seeds"] = dict(
                runs=reps, hr_mean=float(hrs.mean()), hr_sd=sd_hr,
                ndcg_mean=float(nds.mean()), ndcg_sd=sd_nd)
            print(f"{lib} BPR over seeds {a.seeds}: HR@10 {hrs.mean():.4f} "
                  f"(sd {sd_hr:.4f}) NDCG@10 {nds.mean():.4f} "
                  f"(sd {sd_nd:.4f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
