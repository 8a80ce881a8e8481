#!/usr/bin/env bash
# Training speed, ours against the peers (issue 10, "Model step"): updates per
# CPU-second of our BPR and APR steps, implicit's BPR and cornac's BPR, one
# thread each, k = 64, on the same training pairs in the same run.
#
#   bench/step_bench.sh BUILD_DIR [DATA]
#
# BUILD_DIR: a build with -DADVREC_BENCH=ON (bench/advrec-step-bench).
# DATA: an event file advrec-eval reads (default: Amazon Beauty under
# ${ADVREC_DATA:-/work/shared/data}, read in place, as bench/eval.sh). Its
# leave-one-out training part (split seed 42, = advrec-eval --write-split's
# train.tsv) is written to a temp dir; advrec-step-bench trains on it in C,
# bench/peers/peers.py --speed (the pinned venv, bench/peers/venv.sh) reads
# the same pairs from train.tsv. Rounds alternate ours and theirs, so load
# from other jobs falls on everyone alike.
#
# Environment: PASSES (ours, 20), ITERS (peers' iterations, 20), ROUNDS (3),
# BASELINE (another build dir with bench/advrec-step-bench, e.g. of an older
# commit: measured in the same rounds, its lines called base-bpr, base-apr).
# Output: one line per model with the median rate over the rounds, every
# round's rate, and the ratio to implicit's median.
set -euo pipefail
build=${1:?usage: step_bench.sh BUILD_DIR [DATA]}
data=${2:-${ADVREC_DATA:-/work/shared/data}/amazon-beauty/Beauty.txt}
here=$(cd "$(dirname "$0")" && pwd)
bench=$build/bench/advrec-step-bench
[ -x "$bench" ] || { echo "step_bench.sh: no $bench (configure with -DADVREC_BENCH=ON)" >&2; exit 66; }
passes=${PASSES:-20} iters=${ITERS:-20} rounds=${ROUNDS:-3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=$("$here/peers/venv.sh")

# The split first (and a warm-up pass of ours, not counted).
"$bench" --passes 1 --models bpr --write-split "$tmp" "$data" >/dev/null 2>&1
base=${BASELINE:+$BASELINE/bench/advrec-step-bench}
[ -z "$base" ] || [ -x "$base" ] || { echo "step_bench.sh: no $base" >&2; exit 66; }
for r in $(seq "$rounds"); do
  [ -z "$base" ] || "$base" --passes "$passes" "$data" 2>/dev/null | sed 's/^ours-/base-/' >>"$tmp/lines"
  "$bench" --passes "$passes" "$data" 2>/dev/null >>"$tmp/lines"
  "$py" "$here/peers/peers.py" "$tmp" --speed --iters "$iters" --threads 1 >>"$tmp/lines"
done
echo "$(basename "$data"): $(wc -l <"$tmp/train.tsv") training pairs, k 64, one thread;" \
  "ours $passes passes, peers $iters iterations, $rounds rounds; $(uname -m), $(getconf _NPROCESSORS_ONLN) cores, load $(cut -d' ' -f1 /proc/loadavg)"
awk '
  { rate = $2 / $3 / 1e6; n[$1]++; r[$1, n[$1]] = rate; if (!($1 in seen)) { seen[$1] = 1; order[++m] = $1 } }
  function median(name,   k, a, t, i, j) {
    k = n[name]
    for (i = 1; i <= k; i++) a[i] = r[name, i]
    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    ref = ("implicit-bpr" in seen) ? median("implicit-bpr") : 0
    for (x = 1; x <= m; x++) {
      name = order[x]; med = median(name); runs = ""
      for (i = 1; i <= n[name]; i++) runs = runs sprintf("%s%.2f", i > 1 ? " " : "", r[name, i])
      printf "%-13s %5.2f M updates/CPU-s  (rounds: %s)  %s\n", name, med, runs,
             (ref > 0 ? sprintf("%.2fx implicit", med / ref) : "")
    }
  }' "$tmp/lines"
