#!/usr/bin/env bash
# Does APR's robustness carry over to data it was not tuned on (issue 16,
# point 4)? Each data set's chosen offline settings (docs/EVALUATION.md,
# "Commands": bench/eval.sh's choice on that data set's validation split)
# trained on the OTHER data set's leave-one-out split, with training seeds
# 1-5, and FGSM at eps 0.5 after each (advrec-eval --loo --fgsm); then
# bench/seeds.py's summary: HR@10 and the APR/BPR ratio of the relative
# HR@10 drops, per seed and of the means (the target: at most 0.5).
#
#   bench/cross.sh BUILD_DIR OUT_DIR
#
# Environment: D (data, default /work/shared/data), SEEDS ("1 2 3 4 5"),
# JOBS (1: runs at a time, one thread each), SETTINGS_FROM ("movielens
# beauty": whose settings are carried over). Runs are cached in OUT_DIR:
# an interrupted run resumes. About 2-3 min per run on the shared 2-core
# machine; not part of CI.
set -euo pipefail
build=${1:?usage: cross.sh BUILD_DIR OUT_DIR}
out=${2:?usage: cross.sh BUILD_DIR OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
ev=$build/advrec-eval
[ -x "$ev" ] || { echo "cross.sh: no $ev" >&2; exit 66; }
data=${D:-/work/shared/data}
read -r -a seeds <<<"${SEEDS:-1 2 3 4 5}"
export OPENBLAS_NUM_THREADS=1

# The chosen settings (APR's and BPR's), as bench/eval.sh found them.
declare -A settings file
settings[movielens]="--adagrad-init 0.1 --lr 0.1 --reg 0.001 --epochs 300 \
--bpr-epochs 50 --lambda 0.25 --bpr-lr 0.2 --bpr-reg 0.01 --bpr-passes 100"
settings[beauty]="--adagrad-init 0.1 --lr 0.2 --reg 0.01 --epochs 300 \
--bpr-epochs 50 --lambda 0.35 --bpr-lr 0.2 --bpr-reg 0.01 --bpr-passes 300"
file[movielens]=$data/movielens-100k/u.data
file[beauty]=$data/amazon-beauty/Beauty.txt

run() { # DIR ARGS...: one cached advrec-eval run
  local dir=$1
  shift
  [ -s "$dir/results.json" ] && return 0
  rm -rf "$dir.tmp"
  "$ev" "$@" --out "$dir.tmp" >"$dir.txt"
  mv "$dir.tmp" "$dir"
}

for from in ${SETTINGS_FROM:-movielens beauty}; do
  for on in movielens beauty; do
    [ "$on" = "$from" ] && continue
    dir=$out/$on-with-$from-settings
    mkdir -p "$dir"
    echo "cross.sh: $from's settings on $on, seeds ${seeds[*]}" >&2
    pids=()
    for s in "${seeds[@]}"; do
      # shellcheck disable=SC2086 # settings are words on purpose
      run "$dir/seed$s" -q --loo --fgsm ${settings[$from]} --seed "$s" \
        --split-seed 42 --name "$on" "${file[$on]}" &
      pids+=($!)
      if [ "${#pids[@]}" -ge "${JOBS:-1}" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
      fi
    done
    for p in "${pids[@]}"; do wait "$p"; done
    echo "== $from's settings on $on" | tee "$dir/seeds.txt"
    python3 "$here/seeds.py" "$dir" "${seeds[@]}" | tee -a "$dir/seeds.txt"
  done
done
