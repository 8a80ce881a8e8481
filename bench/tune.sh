#!/usr/bin/env bash
# Tunes our BPR or APR on the validation split (advrec-eval --validate: each
# user's last training interaction held out, 99 negatives; the test items are
# never looked at) with the same 12-point budget the peers get in
# bench/peers/peers.py: learning rate x regularisation x passes. Prints the
# best point's options (by validation NDCG@10) on stdout, one line;
# OUT/grid.tsv lists every point.
#   bench/tune.sh EVAL_BIN MODEL(bpr|apr) DATA_FILE OUT [fixed options...]
set -euo pipefail
ev=$1 model=$2 file=$3 out=$4
shift 4
mkdir -p "$out"
: >"$out/grid.tsv"
for lr in 0.05 0.1 0.2; do
  for reg in 0.001 0.01; do
    for ep in 50 100; do
      # APR: the first half of the passes is BPR pre-training.
      opts=(--lr "$lr" --reg "$reg" --epochs "$ep" --bpr-epochs $((ep / 2)))
      d=$out/lr$lr-reg$reg-ep$ep
      "$ev" -q --loo --validate --models "$model" "${opts[@]}" "$@" \
        --out "$d" "$file" >/dev/null 2>"$d.log" || { cat "$d.log" >&2; exit 1; }
      python3 - "$d/results.json" "$model" "${opts[*]}" >>"$out/grid.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["validation"]
m = r[sys.argv[2] + "_sampled"]
print(f"{m['ndcg']:.6f}\t{m['hr']:.6f}\t{m['train_s']:.1f}\t{sys.argv[3]}")
PY
      tail -n1 "$out/grid.tsv" >&2
    done
  done
done
sort -t$'\t' -k1,1gr "$out/grid.tsv" | head -n1 | cut -f4
