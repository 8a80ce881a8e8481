#!/usr/bin/env python3
"""Prints the markdown tables of docs/EVALUATION.md ("Measured") from the
files bench/eval.sh wrote to OUT, so the figures in the docs are copied by
a program, not by hand. Standard library only.

    report.py OUT [--sets movielens,beauty]
"""
import argparse
import json
import os


def load(*parts):
    p = os.path.join(*parts)
    return json.load(open(p)) if os.path.exists(p) else None


def f4(x):
    return "-" if x is None else f"{x:.4f}"


def pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"


def opts_short(o):
    w = o.split()
    d = {w[i].lstrip("-"): w[i + 1] for i in range(0, len(w) - 1, 2)}
    s = f"lr {d.get('lr')}, reg {d.get('reg')}, {d.get('epochs')} passes"
    if "lambda" in d:
        s += f" ({d.get('bpr-epochs')} BPR), λ {d['lambda']}"
    return s


def choice(out, sets):
    print("### APR's choice on validation (bench/choose_apr.py, training "
          "seeds 1-5): mean NDCG@10, mean relative HR@10 drop at FGSM ε 0.5\n")
    print("| data | model | options | NDCG@10 | drop | drop / BPR's | chosen |")
    print("|---|---|---|---|---|---|---|")
    for s in sets:
        j = load(out, s, "select", "select.json")
        if not j:
            continue
        b = j["bpr"]
        print(f"| {s} | BPR | {opts_short(b['opts'])} | {f4(b['ndcg_mean'])} "
              f"| {pct(b['drop_mean'])} | 1 | |")
        for lam, c in j["candidates"].items():
            mark = "**yes**" if c["opts"] == j["chosen"] else ""
            ok = "≤ 0.5" if c["ratio"] is not None and c["ratio"] <= 0.5 \
                else "> 0.5"
            print(f"| {s} | APR λ {lam} | {opts_short(c['opts'])} | "
                  f"{f4(c['ndcg_mean'])} | {pct(c['drop_mean'])} | "
                  f"{c['ratio']:.2f} ({ok}) | {mark} |")
    print()


def loo(out, sets):
    print("### Leave-one-out test, 99 sampled negatives: mean (sd) over "
          "training seeds 1-5, and the seed-42 run\n")
    print("| data | model | HR@10 | NDCG@10 | seed 42 HR@10 / NDCG@10 | "
          "training s (seed 42) |")
    print("|---|---|---|---|---|---|")
    for s in sets:
        sd = load(out, s, "seeds.json")
        main = load(out, s, "loo", "results.json")
        peers = load(out, s, "peers.json")
        if not sd or not main:
            continue
        for name, v in sd["models"].items():
            if name.startswith("our "):
                m = main["loo"][name[4:].lower() + "_sampled"]
                m42, secs = (m["hr"], m["ndcg"]), m["train_s"]
            else:
                p = peers["peers"][name.split()[0]]
                m42, secs = (p["hr"], p["ndcg"]), p["train_s"]
            print(f"| {s} | {name} | {v['hr_mean']:.4f} ({v['hr_sd']:.4f}) | "
                  f"{v['ndcg_mean']:.4f} ({v['ndcg_sd']:.4f}) | "
                  f"{m42[0]:.4f} / {m42[1]:.4f} | {secs:.1f} |")
    print()
    print("Full ranking (all items minus the user's training items), "
          "seed 42, HR@10 / NDCG@10:")
    for s in sets:
        main = load(out, s, "loo", "results.json")
        if main and "bpr_full" in main["loo"]:
            b, a = main["loo"]["bpr_full"], main["loo"]["apr_full"]
            print(f"{s} BPR {b['hr']:.4f} / {b['ndcg']:.4f}, APR "
                  f"{a['hr']:.4f} / {a['ndcg']:.4f};")
    print()
    print("| data | BPR rows: users / items / mean \\|item bias\\| | APR rows |")
    print("|---|---|---|")
    for s in sets:
        main = load(out, s, "loo", "results.json")
        if main:
            n = [main["loo"][m + "_norms"] for m in ("bpr", "apr")]
            print(f"| {s} | " + " | ".join(
                f"{x['user']:.2f} / {x['item']:.2f} / {x['item_bias_abs']:.2f}"
                for x in n) + " |")
    print()


def fgsm(out, sets):
    print("### FGSM on the embeddings: relative HR@10 drop at ε 0.5\n")
    print("| data | BPR per seed 1-5 | APR per seed 1-5 | means BPR / APR | "
          "APR / BPR (means) | seed 42 BPR / APR (ratio) |")
    print("|---|---|---|---|---|---|")
    for s in sets:
        sd = load(out, s, "seeds.json")
        main = load(out, s, "loo", "results.json")
        if not sd or not sd.get("fgsm_eps05") or not main:
            continue
        f = sd["fgsm_eps05"]
        e = next(x for x in main["fgsm"] if abs(x["eps"] - 0.5) < 1e-6)
        print(f"| {s} | " + " ".join(f"{100 * x:.1f}" for x in f["bpr_drop"])
              + " | " + " ".join(f"{100 * x:.1f}" for x in f["apr_drop"])
              + f" | {pct(f['bpr_drop_mean'])} / {pct(f['apr_drop_mean'])} | "
              f"**{f['ratio_of_means']:.2f}** | {pct(e['bpr_hr_drop'])} / "
              f"{pct(e['apr_hr_drop'])} "
              f"({e['apr_hr_drop'] / e['bpr_hr_drop']:.2f}) |")
    print()
    print("The seed-42 curves, HR@10 (relative drop):\n")
    cols = [s for s in sets if load(out, s, "loo", "results.json")]
    print("| ε | " + " | ".join(f"{s} BPR | {s} APR" for s in cols) + " |")
    print("|---|" + "---|---|" * len(cols))
    mains = {s: load(out, s, "loo", "results.json") for s in cols}
    row = ["0"]
    for s in cols:
        row += [f"{mains[s]['loo']['bpr_sampled']['hr']:.4f}",
                f"{mains[s]['loo']['apr_sampled']['hr']:.4f}"]
    print("| " + " | ".join(row) + " |")
    for k in range(10):
        row = [f"{mains[cols[0]]['fgsm'][k]['eps']:.1f}"]
        for s in cols:
            x = mains[s]["fgsm"][k]
            row += [f"{x['bpr_hr']:.4f} ({pct(x['bpr_hr_drop'])})",
                    f"{x['apr_hr']:.4f} ({pct(x['apr_hr_drop'])})"]
        print("| " + " | ".join(row) + " |")
    print()


def preq(out):
    print("### Prequential, the daemon's shipped defaults: HR@10 / NDCG@10 "
          "over the events whose user already had a list\n")
    print("| data | events ranked | popularity | BPR | APR |")
    print("|---|---|---|---|---|")
    for s in ("movielens", "taobao"):
        j = load(out, s, "preq", "results.json")
        if not j:
            continue
        p = j["prequential"]
        print(f"| {s} | {p['apr']['n']:,} | " + " | ".join(
            f"{p[m]['hr']:.4f} / {p[m]['ndcg']:.4f}"
            for m in ("popularity", "bpr", "apr")) + " |")
    print()


def shill(out):
    j = load(out, "movielens", "shill", "results.json")
    if not j:
        return
    sh = j["shilling"]
    print(f"### Shilling (MovieLens; filler {sh['filler']}, {sh['targets']} "
          "targets)\n")
    print("| fake users | BPR: share with target in top-10 / mean score | APR |")
    print("|---|---|---|")
    for a in sh["attacks"]:
        print(f"| {100 * a['size']:.0f} % ({a['fake_users']}) | "
              f"{a['bpr_hit']:.4f} / {a['bpr_score']:.3f} | "
              f"{a['apr_hit']:.4f} / {a['apr_score']:.3f} |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sets", default="movielens,beauty")
    a = ap.parse_args()
    sets = a.sets.split(",")
    choice(a.out, sets)
    loo(a.out, sets)
    fgsm(a.out, sets)
    preq(a.out)
    shill(a.out)


if __name__ == "__main__":
    main()
