#!/usr/bin/env bash
# Tunes our BPR or APR on the validation split (advrec-eval --validate: each
# user's last training interaction held out, 99 negatives; the test items are
# never looked at) with the same 12-point budget the peers get in
# bench/peers/peers.py: learning rate x regularisation x passes; APR also
# over its adversarial weight lambda (TUNE_LAMBDAS, default "0.25 0.5 1"),
# the hyperparameter BPR does not have.
#
# Every point also measures the relative HR@10 drop under FGSM with eps 0.5
# on the validation split (advrec-eval --fgsm): bench/choose_apr.py chooses
# APR's lambda from these points under the robustness constraint.
# Prints the best point's options (by validation NDCG@10) on stdout, one
# line; OUT/grid.tsv lists every point (NDCG@10, HR@10, drop at eps 0.5,
# seconds, options) and OUT/best.tsv the best row. Points already in OUT
# (their results.json) are reused: remove OUT to re-run them (e.g. after
# changing the fixed options, which the directory names do not show).
#   [TUNE_LAMBDAS="..."] bench/tune.sh EVAL_BIN MODEL(bpr|apr) DATA_FILE OUT [fixed options...]
set -euo pipefail
ev=$1 model=$2 file=$3 out=$4
shift 4
lambdas=${TUNE_LAMBDAS:-0.25 0.5 1}
[ "$model" = apr ] || lambdas=0
mkdir -p "$out"
: >"$out/grid.tsv"
n=0 total=$((12 * $(wc -w <<<"$lambdas")))
for lam in $lambdas; do
  for lr in 0.05 0.1 0.2; do
    for reg in 0.001 0.01; do
      for ep in 50 100; do
        # APR: the first half of the passes is BPR pre-training.
        opts=(--lr "$lr" --reg "$reg" --epochs "$ep" --bpr-epochs $((ep / 2)))
        [ "$model" = apr ] && opts+=(--lambda "$lam")
        d=$out/lr$lr-reg$reg-ep$ep
        [ "$model" = apr ] && d=$out/l$lam-lr$lr-reg$reg-ep$ep
        # A point already measured (results.json written last, by a run
        # with the same options: the directory names them) is reused, so
        # an interrupted grid resumes and a re-selection costs nothing.
        if ! [ -s "$d/results.json" ]; then
          rm -rf "$d"
          "$ev" -q --loo --validate --fgsm --models "$model" "$@" \
            "${opts[@]}" --out "$d.tmp" "$file" >/dev/null 2>"$d.log" || {
            cat "$d.log" >&2
            exit 1
          }
          mv "$d.tmp" "$d"
        fi
        python3 - "$d/results.json" "$model" "${opts[*]}" >>"$out/grid.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["validation"][sys.argv[2] + "_sampled"]
drop = next(f[sys.argv[2] + "_hr_drop"] for f in r["fgsm"]
            if abs(f["eps"] - 0.5) < 1e-6)
print(f"{m['ndcg']:.6f}\t{m['hr']:.6f}\t{drop:.6f}\t{m['train_s']:.1f}\t"
      f"{sys.argv[3]}")
PY
        n=$((n + 1))
        printf '[%d/%d] %s\n' "$n" "$total" "$(tail -n1 "$out/grid.tsv")" >&2
      done
    done
  done
done
best=$(sort -t$'\t' -k1,1gr "$out/grid.tsv" | head -n1)
printf '%s\n' "$best" >"$out/best.tsv"
cut -f5 <<<"$best"
