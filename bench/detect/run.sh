#!/usr/bin/env bash
# The anomaly detectors' figures (docs/ANOMALY.md, issue 15): advrec-eval
# --detect on the FilmTrust average-attack set and on attacks injected into
# MovieLens-100k and the Taobao sample, the prediction shift with the
# defence off and on, and river's HalfSpaceTrees on the same per-user
# features. Lines ending in "precision P recall R f1 F fpr X" go to stdout,
# each followed by "NAME: cost per event (fastest of 1): detector D ns
# (wall, in the judge), model training T ns (CPU), rest of the replay R ns"
# (one round each; --cost-runs N for the fastest of N).
#   bench/detect/run.sh [BUILD_DIR [DATA_DIR]]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
data=${2:-$here/../../../shared/data}
eval=$build/advrec-eval
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ft=$data/shilling-filmtrust/averageattack
ml=$data/movielens-100k/u.data
tb=$data/taobao-userbehavior/UserBehavior_timesorted_head.csv

echo "# the generator (tools/lib/synth, seed 7: 10k users, 5k items, 300k events): bots and 3 groups, bots only, groups only"
"$eval" --detect --synth --seed 7 --name generator-bots-and-groups 2>/dev/null
"$eval" --detect --synth --seed 7 --shill-groups 0 --name generator-click-bots 2>/dev/null
"$eval" --detect --synth --seed 7 --bots 0 --name generator-shill-groups 2>/dev/null

echo "# FilmTrust average attack (150 of 1658 users labelled 1), attackers' sessions within a window at 80 % of 30 days"
for w in 3600 86400 0; do
  "$eval" --detect --labels "$ft/labels.txt" --attack-window $w \
    --name filmtrust-window$w --features "$out/ft$w.txt" "$ft/ratings.txt" 2>/dev/null
done
"$eval" --detect --labels "$ft/labels.txt" --attack-window 3600 --group-min 5 \
  --name filmtrust-window3600-groupmin5 "$ft/ratings.txt" 2>/dev/null

echo "# MovieLens-100k, injected random-filler attacks (target below median popularity), shift defence off/on"
for a in 1 3 5; do
  for f in 1 3 5; do
    "$eval" --detect --shift --attack $a --filler $f --name ml100k-attack$a-filler$f \
      --features "$out/ml$a$f.txt" "$ml" 2>/dev/null
  done
done

echo "# Taobao sample (2 hours), injected attacks, filler 1 % (754 items per account)"
for a in 1 3 5; do
  "$eval" --detect --attack $a --filler 1 --name taobao-attack$a-filler1 "$tb" 2>/dev/null
done
echo "# ... with anomaly.young.s and anomaly.item.window.s 300 s (the sample is 2 h) and sessions starting within 10 min"
for a in 1 3 5; do
  "$eval" --detect --attack $a --filler 1 --young-s 300 --item-window-s 300 --attack-len 600 \
    --name taobao-attack$a-filler1-young300 --features "$out/tb$a.txt" "$tb" 2>/dev/null
done

echo "# peer: river HalfSpaceTrees on the same per-user features"
"$here/venv.sh" "$here/detect_peer.py" \
  filmtrust-window3600 "$out/ft3600.txt" filmtrust-window86400 "$out/ft86400.txt" \
  ml100k-attack3-filler3 "$out/ml33.txt" ml100k-attack5-filler3 "$out/ml53.txt" \
  taobao-attack3-filler1-young300 "$out/tb3.txt"
