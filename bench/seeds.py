#!/usr/bin/env python3
"""Summarises the seed repeats of bench/eval.sh for one data set: our BPR
and APR (DIR/seed<S>/results.json, advrec-eval --loo --seed S --split-seed
42) and the peers (DIR/peers.json, peers.py --seeds), all trained with the
tuned settings on the same split and measured on the same test users and
negatives. Prints HR@10 and NDCG@10 as mean, sample standard deviation and
range over the seeds, plus the seed-42 figures of the main run; for our
models also the relative HR@10 drop under FGSM with eps 0.5 (runs made
with --fgsm) and APR's drop over BPR's (the issue's target: at most 0.5),
per seed and of the means, with a 90 % bootstrap interval of that ratio
over the seeds. Writes DIR/seeds.json. Standard library only.

    seeds.py DIR S1 S2 ...
"""
import json
import os
import random
import statistics as st
import sys


def summary(runs):
    out = {"runs": runs}
    for m in ("hr", "ndcg"):
        xs = [r[m] for r in runs]
        out[m + "_mean"] = st.mean(xs)
        out[m + "_sd"] = st.stdev(xs) if len(xs) > 1 else 0.0
        out[m + "_min"], out[m + "_max"] = min(xs), max(xs)
    return out


def bootstrap_ratio(db, da, n=10000):
    """The 5th and 95th percentiles of the ratio of mean drops (APR's over
    BPR's) over the seeds resampled with replacement, BPR's and APR's runs
    of one seed kept together; None with fewer than 3 seeds. The seeds'
    own noise: on ~1,000 test users one seed's drop moves by points, so a
    ratio of five seeds' means near 0.5 does not say on which side it is.
    Deterministic (a fixed generator seed)."""
    if len(db) < 3:
        return None
    rng = random.Random(1)
    k = len(db)
    out = []
    for _ in range(n):
        idx = [rng.randrange(k) for _ in range(k)]
        b = sum(db[i] for i in idx)
        if b > 0:
            out.append(sum(da[i] for i in idx) / b)
    if not out:  # BPR lost nothing on any resample: no ratio
        return None
    out.sort()
    return [out[int(0.05 * (len(out) - 1))], out[int(0.95 * (len(out) - 1))]]


def main():
    d, seeds = sys.argv[1], [int(x) for x in sys.argv[2:]]
    rows = {}
    for model in ("bpr", "apr"):
        runs = []
        for s in seeds:
            r = json.load(open(os.path.join(d, f"seed{s}", "results.json")))
            m = r["loo"][model + "_sampled"]
            run = {"seed": s, "hr": m["hr"], "ndcg": m["ndcg"]}
            for f in r.get("fgsm", []):
                if abs(f["eps"] - 0.5) < 1e-6 and model + "_hr_drop" in f:
                    run["fgsm05_drop"] = f[model + "_hr_drop"]
            runs.append(run)
        rows["our " + model.upper()] = summary(runs)
    main42 = {}
    p = os.path.join(d, "loo", "results.json")
    if os.path.exists(p):
        r = json.load(open(p))["loo"]
        for model in ("bpr", "apr"):
            main42["our " + model.upper()] = r[model + "_sampled"]
    p = os.path.join(d, "peers.json")
    if os.path.exists(p):
        peers = json.load(open(p))["peers"]
        for lib, v in peers.items():
            main42[lib + " BPR"] = v
            if "seeds" in v:
                rows[lib + " BPR"] = summary(v["seeds"]["runs"])
    print(f"{os.path.basename(os.path.normpath(d))}: test split, "
          f"training seeds {' '.join(map(str, seeds))}")
    print(f"{'model':14} {'HR@10 mean (sd) [min, max]':36} "
          f"{'NDCG@10 mean (sd) [min, max]':36} seed 42 HR / NDCG")
    for name, v in rows.items():
        m42 = main42.get(name)
        tail = f"{m42['hr']:.4f} / {m42['ndcg']:.4f}" if m42 else "-"
        print(f"{name:14} "
              f"{v['hr_mean']:.4f} ({v['hr_sd']:.4f}) "
              f"[{v['hr_min']:.4f}, {v['hr_max']:.4f}]      "
              f"{v['ndcg_mean']:.4f} ({v['ndcg_sd']:.4f}) "
              f"[{v['ndcg_min']:.4f}, {v['ndcg_max']:.4f}]      {tail}")
    fgsm = None
    b, a = rows["our BPR"]["runs"], rows["our APR"]["runs"]
    if all("fgsm05_drop" in r for r in b + a):
        db = [r["fgsm05_drop"] for r in b]
        da = [r["fgsm05_drop"] for r in a]
        fgsm = {"bpr_drop": db, "apr_drop": da,
                "bpr_drop_mean": st.mean(db), "apr_drop_mean": st.mean(da),
                "ratio_of_means": (st.mean(da) / st.mean(db)
                                   if st.mean(db) > 0 else None),
                "ratio_per_seed": [x / y if y > 0 else None
                                   for x, y in zip(da, db)]}
        print("FGSM eps 0.5, relative HR@10 drop per seed: BPR "
              + " ".join(f"{x:.1%}" for x in db) + "; APR "
              + " ".join(f"{x:.1%}" for x in da))
        ratio = fgsm["ratio_of_means"]
        print(f"  means: BPR {fgsm['bpr_drop_mean']:.2%}, APR "
              f"{fgsm['apr_drop_mean']:.2%}, APR/BPR "
              + (f"{ratio:.2f}" if ratio is not None else "-"))
        ci = bootstrap_ratio(db, da)
        if ci:
            fgsm["ratio_interval90"] = ci
            print(f"  APR/BPR, 90 % bootstrap interval over the seeds: "
                  f"[{ci[0]:.2f}, {ci[1]:.2f}]")
    with open(os.path.join(d, "seeds.json"), "w") as f:
        json.dump({"seeds": seeds, "models": rows, "fgsm_eps05": fgsm}, f,
                  indent=1)


if __name__ == "__main__":
    main()
