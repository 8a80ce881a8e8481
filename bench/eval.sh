#!/usr/bin/env bash
# Runs every evaluation of docs/EVALUATION.md on the shared data sets and the
# peer libraries on the same splits. On demand only (tens of minutes, not CI).
#   bench/eval.sh [BUILD_DIR] [OUT_DIR]
# Data: ${ADVREC_DATA:-/work/shared/data} (read in place, never copied).
# Tuning results are cached in OUT/<set>/tune-{bpr,apr}/best: remove them
# (or OUT) to tune again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/eval-out}
data=${ADVREC_DATA:-/work/shared/data}
ev=$build/advrec-eval
export OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { printf '== %s: %s\n' "$(date +%T)" "$*" >&2; }

# Our models are tuned like the peers: a 12-point grid (bench/tune.sh),
# chosen on the validation split only; then measured once on the test split.
tuned() { # MODEL FILE DIR -> the best options
  local best=$3/tune-$1/best
  if ! [ -s "$best" ]; then
    log "tuning $1 on the validation split of $2"
    mkdir -p "$3/tune-$1"
    "$root/bench/tune.sh" "$ev" "$1" "$2" "$3/tune-$1" >"$best.tmp"
    mv "$best.tmp" "$best"
  fi
  cat "$best"
}

for set in movielens:movielens-100k/u.data beauty:amazon-beauty/Beauty.txt; do
  name=${set%%:*}; file=$data/${set#*:}
  mkdir -p "$out/$name"
  # (Plain assignments, so set -e stops on a failed tuning.)
  best_apr=$(tuned apr "$file" "$out/$name")
  best_bpr=$(tuned bpr "$file" "$out/$name")
  read -r -a apr <<<"$best_apr"
  read -r -a bpr <<<"$best_bpr"
  # BPR's tuned values as --bpr-* (bpr = --lr X --reg X --epochs N ...).
  bopts=(--bpr-lr "${bpr[1]}" --bpr-reg "${bpr[3]}" --bpr-passes "${bpr[5]}")
  log "$name: test split, APR ${apr[*]}, BPR ${bopts[*]}"
  "$ev" -q --loo --full --fgsm "${apr[@]}" "${bopts[@]}" --name "$name" \
    --write-split "$out/$name/split" --out "$out/$name/loo" "$file" \
    | tee "$out/$name/loo.txt"
  log "$name: peers"
  "$root/bench/peers/venv.sh" "$root/bench/peers/peers.py" "$out/$name/split" \
    --json "$out/$name/peers.json" | tee "$out/$name/peers.txt"
done
# Shilling: fewer passes and two targets keep it to minutes.
log "shilling"
"$ev" -q --shill --epochs 30 --bpr-epochs 15 --lr 0.2 --reg 0.001 --targets 2 \
  --name movielens --out "$out/movielens/shill" "$data/movielens-100k/u.data" \
  | tee "$out/movielens/shill.txt"
# Prequential: the daemon's engine with its shipped defaults.
log "prequential"
mkdir -p "$out/taobao"
"$ev" -q --preq --name movielens --out "$out/movielens/preq" \
  "$data/movielens-100k/u.data" | tee "$out/movielens/preq.txt"
"$ev" -q --preq --name taobao --out "$out/taobao/preq" \
  "$data/taobao-userbehavior/UserBehavior_timesorted_head.csv" \
  | tee "$out/taobao/preq.txt"
log "done: $out"
