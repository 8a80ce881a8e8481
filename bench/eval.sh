#!/usr/bin/env bash
# Runs every evaluation of docs/EVALUATION.md on the shared data sets and the
# peer libraries on the same splits. On demand only (tens of minutes, not CI).
#   bench/eval.sh [BUILD_DIR] [OUT_DIR]
# Data: ${ADVREC_DATA:-/work/shared/data} (read in place, never copied).
# Tuning results are cached in OUT/<set>/tune-{bpr,apr-l0.25}/best and the peers'
# in OUT/<set>/peers.json (the split depends on the seed only): remove them
# (or OUT) to run them again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/eval-out}
data=${ADVREC_DATA:-/work/shared/data}
ev=$build/advrec-eval
export OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Fixed for our models, not tuned: Adagrad's accumulator starts at 0.1 as in
# the APR paper's code (TensorFlow's default); see docs/MODEL.md.
fixed=(--adagrad-init 0.1)
# APR only: the adversarial weight, chosen on the validation splits of both
# data sets (docs/EVALUATION.md, "What was tried"); the daemon keeps 1.
# BPR ignores it (its lambda is always 0). Shilling keeps lambda 1.
apr_fixed=(--lambda 0.25)
log() { printf '== %s: %s\n' "$(date +%T)" "$*" >&2; }

# Our models are tuned like the peers: a 12-point grid (bench/tune.sh),
# chosen on the validation split only; then measured once on the test split.
tuned() { # MODEL FILE DIR -> the best options
  # The cache directory names APR's fixed lambda: a grid tuned with another
  # lambda is not reused.
  local tag=$1 more=()
  [ "$1" = apr ] && tag=apr-l0.25 more=("${apr_fixed[@]}")
  local best=$3/tune-$tag/best
  if ! [ -s "$best" ]; then
    log "tuning $1 on the validation split of $2"
    mkdir -p "$3/tune-$tag"
    "$root/bench/tune.sh" "$ev" "$1" "$2" "$3/tune-$tag" "${fixed[@]}" \
      "${more[@]}" >"$best.tmp"
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
  "$ev" -q --loo --full --fgsm "${fixed[@]}" "${apr_fixed[@]}" "${apr[@]}" \
    "${bopts[@]}" \
    --name "$name" \
    --write-split "$out/$name/split" --out "$out/$name/loo" "$file" \
    | tee "$out/$name/loo.txt"
  if ! [ -s "$out/$name/peers.json" ]; then
    log "$name: peers"
    "$root/bench/peers/venv.sh" "$root/bench/peers/peers.py" \
      "$out/$name/split" --json "$out/$name/peers.json.tmp" \
      | tee "$out/$name/peers.txt"
    mv "$out/$name/peers.json.tmp" "$out/$name/peers.json"
  fi
done
# Shilling: fewer passes and two targets keep it to minutes.
log "shilling"
"$ev" -q --shill "${fixed[@]}" --epochs 30 --bpr-epochs 15 --lr 0.2 --reg 0.001 \
  --targets 2 \
  --name movielens --out "$out/movielens/shill" "$data/movielens-100k/u.data" \
  | tee "$out/movielens/shill.txt"
# Prequential: the daemon's engine with its shipped defaults, and with the
# model options docs/EVALUATION.md recommends for the daemon (chosen on the
# MovieLens stream; Taobao is the check on a stream they were not chosen on).
# Adagrad's initial accumulator stays 0 online: 0.1 costs APR there.
rec=(--lr 0.2 --reg 0.001)
mkdir -p "$out/taobao"
for set in movielens:movielens-100k/u.data \
  taobao:taobao-userbehavior/UserBehavior_timesorted_head.csv; do
  name=${set%%:*}; file=$data/${set#*:}
  log "$name: prequential, shipped defaults"
  "$ev" -q --preq --name "$name" --out "$out/$name/preq" "$file" \
    | tee "$out/$name/preq.txt"
  log "$name: prequential, ${rec[*]}"
  "$ev" -q --preq "${rec[@]}" --name "$name (recommended)" \
    --out "$out/$name/preq-rec" "$file" | tee "$out/$name/preq-rec.txt"
done
log "done: $out"
