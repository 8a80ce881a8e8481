#!/usr/bin/env bash
# Runs every evaluation of docs/EVALUATION.md on the shared data sets and the
# peer libraries on the same splits. On demand only (minutes, not CI).
#   bench/eval.sh [BUILD_DIR] [OUT_DIR]
# Data: ${ADVREC_DATA:-/work/shared/data} (read in place, never copied).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/eval-out}
data=${ADVREC_DATA:-/work/shared/data}
ev=$build/advrec-eval
export OPENBLAS_NUM_THREADS=1
# The leave-one-out configuration (docs/EVALUATION.md, "Configuration").
loo=(--epochs 60 --bpr-epochs 30 --lr 0.2 --reg 0.001)
mkdir -p "$out"

for set in movielens:movielens-100k/u.data beauty:amazon-beauty/Beauty.txt; do
  name=${set%%:*}; file=$data/${set#*:}
  "$ev" --loo --full --fgsm "${loo[@]}" --name "$name" \
    --write-split "$out/$name/split" --out "$out/$name/loo" "$file"
  "$root/bench/peers/venv.sh" "$root/bench/peers/peers.py" "$out/$name/split" \
    --json "$out/$name/peers.json"
done
# Shilling: fewer passes and two targets keep it to minutes.
"$ev" --shill --epochs 30 --bpr-epochs 15 --lr 0.2 --reg 0.001 --targets 2 \
  --name movielens --out "$out/movielens/shill" "$data/movielens-100k/u.data"
# Prequential: the daemon's engine with its shipped defaults.
"$ev" --preq --name movielens --out "$out/movielens/preq" \
  "$data/movielens-100k/u.data"
"$ev" --preq --name taobao --out "$out/taobao/preq" \
  "$data/taobao-userbehavior/UserBehavior_timesorted_head.csv"
