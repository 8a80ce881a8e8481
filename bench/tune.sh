#!/usr/bin/env bash
# Tunes our BPR or APR on the validation split (advrec-eval --validate: each
# user's last training interaction held out, 99 negatives; the test items are
# never looked at), with early stopping: each grid point is one run of
# TUNE_MAX_PASSES passes measured on validation every TUNE_EVERY passes
# (advrec-eval --eval-every), and every checkpoint is a candidate (the model
# after P passes is exactly the model of a P-pass run).
#
# Grid: learning rate (TUNE_LRS) x regularisation (TUNE_REGS); APR also x
# its adversarial weight lambda (TUNE_LAMBDAS), the hyperparameter BPR does
# not have, with TUNE_BPR_PASSES of BPR pre-training before the adversarial
# passes (APR's checkpoints count only after the pre-training).
#
# Prints the best checkpoint's options (by validation NDCG@10) on stdout, one
# line ("--lr X --reg Y --epochs P --bpr-epochs B [--lambda L]");
# OUT/grid.tsv lists every checkpoint (NDCG@10, HR@10, seconds of the run,
# options) and OUT/best.tsv the best row; bench/choose_apr.py picks APR's
# lambda from grid.tsv. Runs already in OUT (their results.json) are reused:
# remove OUT to re-run them (e.g. after changing the fixed options, which the
# directory names do not show).
#   [TUNE_LRS="0.1 0.2"] [TUNE_REGS="0.001 0.01"] [TUNE_LAMBDAS="0.25 0.35 0.5"] \
#   [TUNE_MAX_PASSES=300] [TUNE_EVERY=50] [TUNE_BPR_PASSES=50] \
#     bench/tune.sh EVAL_BIN MODEL(bpr|apr) DATA_FILE OUT [fixed options...]
set -euo pipefail
ev=$1 model=$2 file=$3 out=$4
shift 4
lrs=${TUNE_LRS:-0.1 0.2}
regs=${TUNE_REGS:-0.001 0.01}
lambdas=${TUNE_LAMBDAS:-0.25 0.35 0.5}
max=${TUNE_MAX_PASSES:-300} every=${TUNE_EVERY:-50} pre=${TUNE_BPR_PASSES:-50}
[ "$model" = apr ] || { lambdas=0 pre=$max; }
mkdir -p "$out"
: >"$out/grid.tsv"
n=0 total=$(($(wc -w <<<"$lrs") * $(wc -w <<<"$regs") * $(wc -w <<<"$lambdas")))
for lam in $lambdas; do
  for lr in $lrs; do
    for reg in $regs; do
      opts=(--lr "$lr" --reg "$reg")
      d=$out/lr$lr-reg$reg-max$max
      if [ "$model" = apr ]; then
        opts+=(--lambda "$lam")
        d=$out/l$lam-lr$lr-reg$reg-pre$pre-max$max
      fi
      if ! [ -s "$d/results.json" ]; then
        rm -rf "$d" "$d.tmp"
        "$ev" -q --loo --validate --models "$model" "$@" "${opts[@]}" \
          --epochs "$max" --bpr-epochs "$pre" --eval-every "$every" \
          --out "$d.tmp" "$file" >/dev/null 2>"$d.log" || {
          cat "$d.log" >&2
          exit 1
        }
        mv "$d.tmp" "$d"
      fi
      python3 - "$d/results.json" "$model" "$lr" "$reg" "$lam" "$pre" \
        >>"$out/grid.tsv" <<'PY'
import json, sys
path, model, lr, reg, lam, pre = sys.argv[1:]
v = json.load(open(path))["validation"]
secs = v[model + "_sampled"]["train_s"]
for p in v[model + "_curve"]:
    if model == "apr" and p["passes"] <= int(pre):
        continue  # still BPR pre-training
    o = f"--lr {lr} --reg {reg} --epochs {p['passes']} --bpr-epochs {pre}"
    if model == "apr":
        o += f" --lambda {lam}"
    print(f"{p['ndcg']:.6f}\t{p['hr']:.6f}\t{secs:.1f}\t{o}")
PY
      n=$((n + 1))
      best=$(sort -t$'\t' -k1,1gr "$out/grid.tsv" | sed -n 1p)
      printf '[%d/%d] %s; best so far: %s\n' "$n" "$total" "$d" "$best" >&2
    done
  done
done
best=$(sort -t$'\t' -k1,1gr "$out/grid.tsv" | sed -n 1p)
printf '%s\n' "$best" >"$out/best.tsv"
cut -f4 <<<"$best"
