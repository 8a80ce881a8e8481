#!/usr/bin/env python3
"""Second stage of tuning APR (bench/eval.sh): its lambda, chosen on
accuracy and robustness together, each measured with several training seeds.

bench/tune.sh picks, on the validation split and with one training seed,
the best checkpoint (learning rate, reg, passes) by NDCG@10. The issue also
asks APR to lose at most half of BPR's relative HR@10 drop under FGSM at
eps 0.5; on ~1,000 validation users one seed's drop moves by a couple of
points, as much as that margin, so the choice is made here on means:

  1. candidates: for each lambda in APR's grid, its best checkpoint by
     validation NDCG@10 (tune-apr/grid.tsv);
  2. the candidates and BPR's tuned point (tune-bpr/best.tsv) are trained
     again on the validation split with each of --seeds (advrec-eval
     --loo --validate --fgsm --seed S; the split stays --split-seed 42);
  3. chosen: the candidate with the best mean validation NDCG@10 among
     those whose mean drop is at most half of BPR's mean drop; if none
     qualifies, the best mean NDCG@10 overall, with a warning.
  4. with --reg-rows X1,X2,...: the chosen candidate's --reg is replaced
     by each --reg-rows X (advrec-eval: reg = X * (users + items) /
     training interactions, so a choice carries to a data set of another
     density; docs/EVALUATION.md, "Robustness across data sets"), each
     trained with the seeds, and chosen again by step 3's rule;
  5. with --tie se (step 4 only): among the points of step 4 that meet
     the constraint and whose mean NDCG@10 is within one standard error
     of the best one's (the standard error of that point's seed mean:
     the one-standard-error rule), the least regularised: the smallest
     reg-rows, whose rows are largest against FGSM's fixed eps. Accuracy
     that differs by less than the seeds' noise does not decide, and the
     FGSM drop grows with the reg (docs/EVALUATION.md, "Robustness across
     data sets").

  6. with --lr-lambda LRS/LAMBDAS (after step 4, e.g. "0.1,0.2/0.25,
     0.35,0.5", tune.sh's grids): the learning rate and lambda chosen
     again at the reg-rows of steps 4-5, every pair trained with the
     seeds and chosen by step 3's rule. Step 1 chose them with one seed
     and, for a choice made before 2026-12-04, at the model defaults of
     its day (1 negative per positive where there are now 24: a step per
     negative, so 24 times the steps per pass under the same Adagrad
     learning rate); the reg of step 4 was chosen again at today's, these
     were not. With --tie se, among the qualifying pairs within one
     standard error of the best one's mean NDCG@10, the one with the
     smallest mean drop over the whole FGSM curve (eps 0.1-1.0, less
     noisy than eps 0.5 alone): accuracy within the seeds' noise buys
     robustness to spare (docs/EVALUATION.md, "Robustness across data
     sets").
  7. with --lr-carry TOL (step 6 only): the learning rate that carries
     to other data. Of the learning rates whose qualifying points come
     within TOL (relative, e.g. 0.005) of the best qualifying mean
     NDCG@10, the smallest; at that rate, step 6's choice again (step 3's
     rule, then --tie se). A learning rate is the one setting whose
     effect the validation split cannot judge for another data set: under
     Adagrad a row moves about lr * sqrt(its steps), and a row's steps per
     pass are the data's (a MovieLens row takes seven times a Beauty
     row's). Chosen on a sparse data set, the larger of two rates that do
     as well there moves a dense data set's rows much further, and its
     robustness did not carry (docs/EVALUATION.md, "A learning rate that
     carries"); accuracy within TOL does not buy that risk.

The test split is never looked at. Runs are cached in DIR/select/. Prints
the chosen options on stdout (one line) and writes DIR/select/select.json.

    choose_apr.py EVAL_BIN DATA_FILE DIR --seeds 1,2,3,4,5 [--fixed "opts"]
              [--jobs N (default: the CPU count)] [--reg-rows X1,X2,...]
              [--apr "opts" --bpr "opts"] [--tie se]
              [--lr-lambda LR1,LR2,.../L1,L2,... [--lr-carry TOL]]

--apr and --bpr (with --reg-rows) skip steps 1-3: the given options are
APR's choice and BPR's tuned point, and step 4 re-chooses that choice's
reg (e.g. a choice bench/eval.sh made before --reg-rows existed).
"""
import argparse
import json
import os
import shlex
import shutil
import statistics as st
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def grid(path):
    rows = []
    with open(path) as f:
        for line in f:
            f = line.rstrip("\n").split("\t")
            rows.append(dict(ndcg=float(f[0]), hr=float(f[1]), opts=f[-1]))
    return rows


def same_params(res, model, args):
    """Whether the run in res was made with the options in args."""
    want = {}
    for i, a in enumerate(args[:-1]):
        if a.startswith("--"):
            want[a[2:]] = args[i + 1]
    try:
        v = json.load(open(res))["validation"]
        got = v[model + "_params"]
    except (OSError, ValueError, KeyError):
        return False
    if "reg-rows" in want:
        # The run's reg is what --reg-rows made of its split.
        try:
            r = json.load(open(res))
            rows = r["data"]["users"] + r["data"]["items"]
            reg = float(want.pop("reg-rows")) * rows / v["train"]
        except (OSError, ValueError, KeyError, ZeroDivisionError):
            return False
        if abs(float(got.get("reg", -1)) - reg) > 1e-5 * reg:
            return False
    keys = {"lr": "lr", "reg": "reg", "epochs": "epochs", "seed": "seed",
            "adagrad-init": "adagrad_init", "split-seed": None}
    if model == "apr":
        keys.update({"bpr-epochs": "bpr_epochs", "lambda": "lambda"})
    for opt, field in keys.items():
        if opt not in want:
            continue
        have = v.get("split_seed") if field is None else got.get(field)
        if have is None or abs(float(have) - float(want[opt])) > 1e-9:
            return False
    return True


def run(ev, data, out, model, opts, seed, fixed):
    """One validation run, cached in out: a run whose recorded parameters
    (results.json) differ from these is redone. Returns (NDCG@10, HR@10
    drop at eps 0.5, mean HR@10 drop over the whole FGSM curve)."""
    res = os.path.join(out, "results.json")
    args = (["-q", "--loo", "--validate", "--fgsm", "--models", model]
            + fixed + shlex.split(opts)
            + ["--seed", str(seed), "--split-seed", "42"])
    if not (os.path.exists(res) and same_params(res, model, args)):
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out + ".tmp", ignore_errors=True)
        with open(out + ".log", "w") as log:
            subprocess.run([ev] + args + ["--out", out + ".tmp", data],
                           check=True, stdout=subprocess.DEVNULL, stderr=log)
        os.replace(out + ".tmp", out)
    r = json.load(open(res))
    nd = r["validation"][model + "_sampled"]["ndcg"]
    drop = next(f[model + "_hr_drop"] for f in r["fgsm"]
                if abs(f["eps"] - 0.5) < 1e-6)
    curve = st.mean(f[model + "_hr_drop"] for f in r["fgsm"])
    return nd, drop, curve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ev")
    ap.add_argument("data")
    ap.add_argument("dir")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--fixed", default="")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reg-rows", default="")
    ap.add_argument("--apr", default="")
    ap.add_argument("--bpr", default="")
    ap.add_argument("--tie", choices=["none", "se"], default="none")
    ap.add_argument("--lr-lambda", default="")
    ap.add_argument("--lr-carry", type=float, default=None)
    a = ap.parse_args()
    if a.tie != "none" and not a.reg_rows:
        ap.error("--tie breaks ties in the reg-rows step: give --reg-rows")
    if a.lr_lambda and not a.reg_rows:
        ap.error("--lr-lambda chooses at step 4's reg-rows: give --reg-rows")
    if a.lr_lambda:
        try:
            lrs, lams = (v.split(",") for v in a.lr_lambda.split("/"))
            [float(v) for v in lrs + lams]
        except ValueError:
            ap.error(f"--lr-lambda {a.lr_lambda}: LR1,LR2,.../L1,L2,...")
    if a.lr_carry is not None and not (a.lr_lambda and 0 <= a.lr_carry < 1):
        ap.error("--lr-carry TOL (0 <= TOL < 1) goes with --lr-lambda")
    seeds = [int(x) for x in a.seeds.split(",")]
    fixed = shlex.split(a.fixed)
    sel = os.path.join(a.dir, "select")
    os.makedirs(sel, exist_ok=True)

    if a.apr or a.bpr:
        if not (a.apr and a.bpr and a.reg_rows):
            ap.error("--apr and --bpr go together, with --reg-rows")
        bpr = dict(opts=a.bpr)
        lam = shlex.split(a.apr)
        by_lambda = {lam[lam.index("--lambda") + 1]: dict(opts=a.apr)}
    else:
        apr = grid(os.path.join(a.dir, "tune-apr", "grid.tsv"))
        bpr = grid(os.path.join(a.dir, "tune-bpr", "best.tsv"))[0]
        by_lambda = {}
        for r in apr:
            lam = shlex.split(r["opts"])
            lam = lam[lam.index("--lambda") + 1]
            if lam not in by_lambda or r["ndcg"] > by_lambda[lam]["ndcg"]:
                by_lambda[lam] = r

    # Every (model, seed) run first, --jobs at a time (one thread each).
    # A choice given with --apr is not measured again: step 4 starts from it.
    todo = [("bpr", "bpr", bpr["opts"])] + [
        ("apr", f"apr-l{lam}", r["opts"])
        for lam, r in sorted(by_lambda.items(), key=lambda x: float(x[0]))
        if not a.apr]

    def one(job):
        model, tag, opts, s = job
        got = run(a.ev, a.data, os.path.join(sel, f"{tag}-seed{s}"),
                  model, opts, s, fixed)
        print(f"select {tag} seed {s}: NDCG@10 {got[0]:.4f}, FGSM 0.5 drop "
              f"{got[1]:.2%}", file=sys.stderr)
        return got

    jobs = [(m, t, o, s) for m, t, o in todo for s in seeds]
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        got = dict(zip(jobs, pool.map(one, jobs)))

    def measure(model, tag, opts):
        nds = [got[(model, tag, opts, s)][0] for s in seeds]
        drops = [got[(model, tag, opts, s)][1] for s in seeds]
        curve = [got[(model, tag, opts, s)][2] for s in seeds]
        return dict(opts=opts, ndcg=nds, drop=drops, ndcg_mean=st.mean(nds),
                    drop_mean=st.mean(drops), curve_mean=st.mean(curve))

    b = measure(*todo[0])
    cands = {t[1][len("apr-l"):]: measure(*t) for t in todo[1:]}
    if a.apr:
        best, met = dict(opts=a.apr), None
    else:
        best, met = choose(cands, b, "lambda")
    result = dict(seeds=seeds, bpr=b, candidates=cands, chosen=best["opts"],
                  constraint_met=met)
    if a.reg_rows:
        # Step 4: the chosen point's reg in rows units, on the grid.
        base = shlex.split(best["opts"])
        if "--reg" in base:
            i = base.index("--reg")
            del base[i:i + 2]
        todo = [("apr", f"apr-rr{x}", shlex.join(base + ["--reg-rows", x]))
                for x in a.reg_rows.split(",")]
        jobs = [(m, t, o, s) for m, t, o in todo for s in seeds]
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            got.update(zip(jobs, pool.map(one, jobs)))
        rr = {t[1][len("apr-rr"):]: measure(*t) for t in todo}
        best, met = choose(rr, b, "reg-rows")
        if a.tie == "se" and met:
            best = tie_se(rr, best, limit=b["drop_mean"] / 2)
        result.update(reg_rows=rr, chosen=best["opts"], constraint_met=met,
                      tie=a.tie)
    if a.lr_lambda:
        # Step 6: learning rate x lambda again, at that reg-rows.
        base = shlex.split(best["opts"])
        todo, ll = [], {}
        for lr in lrs:
            for lam in lams:
                o = shlex.join(with_opt(with_opt(base, "--lr", lr),
                                        "--lambda", lam))
                if o == best["opts"]:
                    ll[f"{lr}/{lam}"] = best  # measured in step 4
                else:
                    todo.append(("apr", f"apr-lr{lr}-l{lam}-"
                                 f"rr{opt(base, '--reg-rows')}", o))
        jobs = [(m, t, o, s) for m, t, o in todo for s in seeds]
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            got.update(zip(jobs, pool.map(one, jobs)))
        for t in todo:
            o = shlex.split(t[2])
            ll[f"{opt(o, '--lr')}/{opt(o, '--lambda')}"] = measure(*t)
        best, met = choose(ll, b, "lr/lambda")
        if a.lr_carry is not None and met:
            ll_at = lr_carry(ll, best, b["drop_mean"] / 2, a.lr_carry)
            best, met = choose(ll_at, b, "lr/lambda at the rate that carries")
        else:
            ll_at = ll
        if a.tie == "se" and met:
            best = tie_robust(ll_at, best, limit=b["drop_mean"] / 2)
        result.update(lr_lambda=ll, chosen=best["opts"], constraint_met=met,
                      lr_carry=a.lr_carry)
    with open(os.path.join(sel, "select.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(best["opts"])


def choose(cands, b, what):
    """The candidate with the best mean NDCG@10 among those losing at most
    half of BPR's mean drop (or the best overall, with a warning); and
    whether one qualified."""
    limit = b["drop_mean"] / 2
    for key, c in cands.items():
        c["ratio"] = c["drop_mean"] / b["drop_mean"] if b["drop_mean"] > 0 \
            else None
        print(f"{what} {key}: {c['opts']}: mean NDCG@10 {c['ndcg_mean']:.4f}, "
              f"mean drop {c['drop_mean']:.2%} (BPR {b['drop_mean']:.2%}, "
              f"ratio {c['ratio']:.2f})", file=sys.stderr)
    ok = [c for c in cands.values() if c["drop_mean"] <= limit]
    if ok:
        return max(ok, key=lambda c: c["ndcg_mean"]), True
    print(f"choose_apr.py: no candidate loses at most half of BPR's "
          f"{b['drop_mean']:.2%}; taking the best NDCG@10", file=sys.stderr)
    return max(cands.values(), key=lambda c: c["ndcg_mean"]), False


def opt(args, name):
    """The value of option name in the word list args."""
    return args[args.index(name) + 1]


def with_opt(args, name, value):
    """args with option name's value replaced by value."""
    i = args.index(name)
    return args[:i + 1] + [value] + args[i + 2:]


def within_se(cands, best, limit):
    """The candidates that meet the constraint (mean drop at most limit)
    and whose mean NDCG@10 is within one standard error of best's (the
    standard error of best's seed mean); and that error."""
    n = len(best["ndcg"])
    se = st.stdev(best["ndcg"]) / n ** 0.5 if n > 1 else 0.0
    return {k: c for k, c in cands.items()
            if c["drop_mean"] <= limit
            and c["ndcg_mean"] >= best["ndcg_mean"] - se}, se


def lr_carry(ll, best, limit, tol):
    """Step 7: the points of the smallest learning rate among those with a
    point that meets the constraint (mean drop at most limit) within tol
    (relative) of best's mean NDCG@10."""
    floor = best["ndcg_mean"] * (1 - tol)
    near = [k for k, c in ll.items()
            if c["drop_mean"] <= limit and c["ndcg_mean"] >= floor]
    lr = min(near, key=lambda k: float(k.split("/")[0])).split("/")[0]
    print(f"lr carry: within {tol:.1%} of {best['ndcg_mean']:.4f}: "
          f"lr/lambda {', '.join(sorted(near))}; taking lr {lr}",
          file=sys.stderr)
    return {k: c for k, c in ll.items() if k.split("/")[0] == lr}


def tie_robust(ll, best, limit):
    """Step 6's tie rule: among the qualifying points within one standard
    error of best's mean NDCG@10, the one with the smallest mean drop over
    the whole FGSM curve."""
    tied, se = within_se(ll, best, limit)
    k = min(tied, key=lambda k: tied[k]["curve_mean"])
    print(f"tie se: best mean NDCG@10 {best['ndcg_mean']:.4f}, standard "
          f"error {se:.4f}; within it: lr/lambda "
          + ", ".join(f"{x} (curve drop {tied[x]['curve_mean']:.2%})"
                      for x in sorted(tied))
          + f"; taking {k}", file=sys.stderr)
    return tied[k]


def tie_se(rr, best, limit):
    """Step 5: among the qualifying reg-rows points within one standard
    error of best's mean NDCG@10, the one with the smallest reg-rows."""
    tied, se = within_se(rr, best, limit)
    tied = {float(x): c for x, c in tied.items()}
    x = min(tied)
    print(f"tie se: best mean NDCG@10 {best['ndcg_mean']:.4f}, standard "
          f"error {se:.4f}; within it: reg-rows "
          f"{', '.join(f'{k:g}' for k in sorted(tied))}; taking {x:g}",
          file=sys.stderr)
    return tied[x]


if __name__ == "__main__":
    main()
