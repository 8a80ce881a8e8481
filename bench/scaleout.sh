#!/usr/bin/env bash
# Issue 12, point 5: prequential HR@10 of one instance against three
# instances sharing item factors (advrec-eval --preq --instances 3, item
# deltas through lib/itemsync), on MovieLens-100k and the Taobao sample,
# with training seeds 42 1 2 3 4; then, at seed 42, the exchange interval
# (never, every event (MovieLens), 100, 1,000, 10,000 events) and the
# accumulators kept local.
# On demand only (about 15 minutes on the shared 2-core machine).
#   bench/scaleout.sh [BUILD_DIR] [OUT_DIR]
# Data: ${ADVREC_DATA:-/work/shared/data} (read in place, never copied).
# Each run is cached as OUT/<set>/<name>/results.json; SETS="movielens"
# (or "taobao") limits it to one data set, SEEDS="42 1" the seeds.
# The summary (bench/scaleout.py) goes to stdout and OUT/summary.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/scaleout-out}
data=${ADVREC_DATA:-/work/shared/data}
ev=$build/advrec-eval
export OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
out=$(cd "$out" && pwd)
read -r -a seeds <<<"${SEEDS:-42 1 2 3 4}"
read -r -a sets <<<"${SETS:-movielens taobao}"
log() { printf '== %s: %s\n' "$(date +%T)" "$*" >&2; }

# once SET NAME ARGS...: one prequential APR run, unless cached.
once() {
  local set=$1 name=$2 file
  shift 2
  case $set in
  movielens) file=$data/movielens-100k/u.data ;;
  taobao) file=$data/taobao-userbehavior/UserBehavior_timesorted_head.csv ;;
  esac
  [ -s "$out/$set/$name/results.json" ] && return 0
  log "$set $name: advrec-eval -q --preq --models apr $*"
  "$ev" -q --preq --models apr --name "$set" "$@" --out "$out/$set/$name.tmp" \
    "$file" >"$out/$set/$name.txt"
  rm -rf "$out/$set/$name"
  mv "$out/$set/$name.tmp" "$out/$set/$name"
}

for set in "${sets[@]}"; do
  mkdir -p "$out/$set"
  for s in "${seeds[@]}"; do
    once "$set" "one-s$s" --seed "$s" --instances 1
    once "$set" "three-s$s" --seed "$s" --instances 3 --partitions 12 \
      --sync-every 1000
  done
  for every in 0 100 10000; do
    once "$set" "three-every$every-s42" --seed 42 --instances 3 \
      --partitions 12 --sync-every "$every"
  done
  # Every event: no staleness at all, what is left is what stays local
  # (popularity, negatives); a scan of the item table per event, so
  # MovieLens only (Taobao's 75,000 items would take hours).
  [ "$set" = movielens ] &&
    once "$set" "three-every1-s42" --seed 42 --instances 3 --partitions 12 \
      --sync-every 1
  once "$set" "three-localacc-s42" --seed 42 --instances 3 --partitions 12 \
    --sync-every 1000 --share-acc 0
done
python3 "$root/bench/scaleout.py" "$out" | tee "$out/summary.md"
