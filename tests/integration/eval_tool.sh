#!/usr/bin/env bash
# advrec-eval's command line on a small generated MovieLens-format file:
# FGSM for one model alone (what bench/tune.sh runs per grid point), and
# --split-seed keeping the split and its negatives fixed while --seed
# retrains (what bench/eval.sh's seed repeats rely on).
#   eval_tool.sh ADVREC_EVAL
set -uo pipefail
ev=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-evaltool.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# 80 users x 25 interactions over 300 items, each user drawn around a
# "taste" so the model has something to learn; time strictly increasing.
awk 'BEGIN { srand(3); t = 881250949;
  for (u = 1; u <= 80; u++) for (e = 0; e < 25; e++) {
    i = (u * 7 + int(rand() * 40)) % 300 + 1;
    printf "%d\t%d\t4\t%d\n", u, i, t++ } }' >"$tmp/u.data"

run() { # NAME CMD...: bounded to 60 s
  local name=$1
  shift
  if timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "ok   $name"
  else
    fail "$name: exit $?: $(head -c 400 "$tmp/err")"
    return 1
  fi
}
base=(-q --loo --validate --fgsm --format movielens --epochs 4 --bpr-epochs 2
  --k 8)

run apr-alone "$ev" "${base[@]}" --models apr --out "$tmp/a" \
  --write-split "$tmp/sa" "$tmp/u.data"
python3 - "$tmp/a/results.json" <<'PY' || fail "apr-alone: results.json"
import json, sys
r = json.load(open(sys.argv[1]))
v = r["validation"]
assert v["split_seed"] == 42, v["split_seed"]
assert "apr_sampled" in v and "bpr_sampled" in v
f = r["fgsm"]
assert [round(x["eps"], 1) for x in f] == [round(0.1 * e, 1) for e in range(1, 11)]
for x in f:
    assert "apr_hr_drop" in x and "apr_ndcg" in x, x
    assert "bpr_hr" not in x, "BPR was not trained, so no BPR figures"
    assert 0.0 <= x["apr_hr"] <= 1.0
print("ok   apr-alone: fgsm has APR only, split_seed 42")
PY
[ -s "$tmp/a/fgsm-hr.svg" ] || fail "apr-alone: no fgsm-hr.svg"
grep -q ">APR<" "$tmp/a/fgsm-hr.svg" || fail "apr-alone: plot lacks APR"
grep -q ">BPR<" "$tmp/a/fgsm-hr.svg" && fail "apr-alone: plot has BPR"

run retrain "$ev" "${base[@]}" --models apr --seed 7 --split-seed 42 \
  --out "$tmp/b" --write-split "$tmp/sb" "$tmp/u.data"
for f in train.tsv test.tsv val.tsv; do
  cmp -s "$tmp/sa/$f" "$tmp/sb/$f" || fail "retrain: $f differs with --split-seed 42"
done
python3 - "$tmp/a/results.json" "$tmp/b/results.json" <<'PY' || fail "retrain: seeds"
import json, sys
a, b = (json.load(open(p))["validation"] for p in sys.argv[1:])
assert b["apr_params"]["seed"] == 7 and b["split_seed"] == 42
print("ok   retrain: same split, training seed 7")
PY

run new-split "$ev" "${base[@]}" --models apr --seed 7 --out "$tmp/c" \
  --write-split "$tmp/sc" "$tmp/u.data"
cmp -s "$tmp/sa/test.tsv" "$tmp/sc/test.tsv" &&
  fail "new-split: --seed 7 alone should draw other negatives"

# Early stopping: the curve's point after 2 of 4 passes is the model of a
# 2-pass run (BPR, and APR with its 1 pre-training pass), to the digit.
run curve "$ev" "${base[@]}" --bpr-epochs 1 --eval-every 2 --out "$tmp/e4" "$tmp/u.data"
run two-passes "$ev" "${base[@]}" --epochs 2 --bpr-epochs 1 --out "$tmp/e2" \
  "$tmp/u.data"
python3 - "$tmp/e4/results.json" "$tmp/e2/results.json" <<'PY' || fail "curve: prefix"
import json, sys
c, r = (json.load(open(p))["validation"] for p in sys.argv[1:])
for m in ("bpr", "apr"):
    pts = c[m + "_curve"]
    assert [p["passes"] for p in pts] == [2, 4], pts
    assert pts[0]["ndcg"] == r[m + "_sampled"]["ndcg"], (m, pts[0], r[m + "_sampled"])
    assert pts[0]["hr"] == r[m + "_sampled"]["hr"]
    assert pts[1]["ndcg"] == c[m + "_sampled"]["ndcg"]
print("ok   curve: the 2-pass point equals a 2-pass run, the last the final model")
PY
if timeout 60 "$ev" -q --loo --eval-every 2 "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "eval-every without --validate: exit 0"
else
  grep -qF "needs --validate" "$tmp/err" || fail "eval-every: $(cat "$tmp/err")"
  echo "ok   eval-every needs --validate"
fi

# A file with nothing usable: a clear error naming the first bad line.
printf '1\t2\t3\t4\nnot a line\n' >"$tmp/bad.data"
if timeout 60 "$ev" -q --format movielens "$tmp/bad.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "bad-file: exit 0"
else
  grep -qF "$tmp/bad.data:1: timestamp 4 s is not between" "$tmp/err" ||
    fail "bad-file: first malformed line not named: $(cat "$tmp/err")"
  grep -qF "nothing to evaluate" "$tmp/err" ||
    fail "bad-file: no clear error: $(cat "$tmp/err")"
  echo "ok   bad-file"
fi

# Papercuts (issue 16). APR always keeps an adversarial pass: an explicit
# --bpr-epochs that leaves none is refused before anything is made...
if timeout 60 "$ev" -q --format movielens --epochs 2 --bpr-epochs 2 \
  --out "$tmp/never" "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "bpr-epochs>=epochs: exit 0"
else
  grep -qF "leaves APR no adversarial pass" "$tmp/err" ||
    fail "bpr-epochs>=epochs: no clear error: $(cat "$tmp/err")"
  [ -e "$tmp/never" ] && fail "bpr-epochs>=epochs: --out made before refusing"
  echo "ok   bpr-epochs>=epochs refused"
fi
# ...and a short --epochs halves the default pre-training, saying so; --out
# makes its missing parents.
run short-epochs "$ev" -q --loo --format movielens --epochs 2 --k 8 \
  --out "$tmp/deep/er/out" "$tmp/u.data" &&
  { grep -qF "APR pre-trains with BPR for 1 of them" "$tmp/err" ||
      fail "short-epochs: no note: $(cat "$tmp/err")"
    [ -s "$tmp/deep/er/out/results.json" ] || fail "short-epochs: no results.json"; }
# --out that cannot be made fails before the input is read.
: >"$tmp/a-file"
if timeout 60 "$ev" -q --out "$tmp/a-file/out" "$tmp/no-such-input" >"$tmp/out" 2>"$tmp/err"; then
  fail "bad-out: exit 0"
else
  grep -qF "mkdir $tmp/a-file/out" "$tmp/err" ||
    fail "bad-out: not the --out error first: $(cat "$tmp/err")"
  echo "ok   bad-out fails before reading"
fi
# --reg-rows: the L2 weight per step is X * (users + items) / the training
# interactions of the split trained on (validation here); BPR shares it
# unless --bpr-reg gives its own. It sets the offline models only.
run reg-rows "$ev" "${base[@]}" --reg-rows 0.5 --out "$tmp/rr" "$tmp/u.data"
run reg-rows-bpr "$ev" "${base[@]}" --reg-rows 0.5 --bpr-reg 0.02 \
  --out "$tmp/rb" "$tmp/u.data"
python3 - "$tmp/rr/results.json" "$tmp/rb/results.json" <<'PY' || fail "reg-rows"
import json, sys
r, b = (json.load(open(p)) for p in sys.argv[1:])
v = r["validation"]
want = 0.5 * (r["data"]["users"] + r["data"]["items"]) / v["train"]
assert abs(v["apr_params"]["reg"] - want) < 1e-5 * want, (v["apr_params"], want)
assert abs(v["bpr_params"]["reg"] - want) < 1e-5 * want, v["bpr_params"]
vb = b["validation"]
assert abs(vb["apr_params"]["reg"] - want) < 1e-5 * want, vb["apr_params"]
assert abs(vb["bpr_params"]["reg"] - 0.02) < 1e-9, vb["bpr_params"]
print("ok   reg-rows: reg %.6g = 0.5 x rows / training interactions" % want)
PY
if timeout 60 "$ev" -q --preq --reg-rows 0.5 --format movielens \
  "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "reg-rows with --preq alone: exit 0"
else
  grep -qF "the engine of --preq takes -X model.reg" "$tmp/err" ||
    fail "reg-rows --preq: no clear error: $(cat "$tmp/err")"
  echo "ok   reg-rows refused for --preq alone"
fi
# Session clicks (the RecSys Challenge 2015 layout, header and fractional
# seconds) are read, detected by their 3 tab-separated fields.
awk 'BEGIN { print "SessionId\tItemId\tTime" }
  { printf "s%s\t%s\t%d.%03d\n", $1, $2, $4, NR % 1000 }' "$tmp/u.data" >"$tmp/sessions.txt"
run session "$ev" -q --loo --epochs 2 --bpr-epochs 1 --k 8 --out "$tmp/s" \
  "$tmp/sessions.txt" &&
  { grep -qF "sessions.txt: 2000 events, 80 users" "$tmp/err" ||
      fail "session: not every click read: $(head -c 400 "$tmp/err")"; }

# --onepass (issue 16): one line ending in the one-pass and offline HR and
# their ratio, the same figures in results.json.
run onepass "$ev" -q --onepass --format movielens --epochs 4 --bpr-epochs 2 \
  --k 8 --out "$tmp/op" "$tmp/u.data" &&
  python3 - "$tmp/out" "$tmp/op/results.json" <<'PY' || fail "onepass: output"
import json, re, sys
line = [l for l in open(sys.argv[1]) if l.startswith("onepass ")]
assert len(line) == 1, line
m = re.search(r"popularity-hr@10 ([0-9.]+) .* onepass-hr@10 ([0-9.]+) "
              r"offline-hr@10 ([0-9.]+) ratio ([0-9.]+)$", line[0].strip())
assert m, line[0]
pop, one, off, ratio = map(float, m.groups())
r = json.load(open(sys.argv[2]))["onepass"]
assert abs(r["onepass"]["hr"] - one) < 1e-4 and abs(r["offline_apr"]["hr"] - off) < 1e-4
assert abs(ratio - one / off) < 2e-3, (ratio, one, off)
assert r["onepass"]["n"] == r["offline_apr"]["n"] == 80, r
print("ok   onepass: %s" % line[0].strip())
PY
# --onepass --fgsm: the one-pass model's robustness against its BPR, one
# line whose ratio is the ratio of the two relative drops it prints, the
# same in results.json.
run onepass-fgsm "$ev" -q --onepass --fgsm --format movielens --epochs 2 \
  --bpr-epochs 1 --k 8 --out "$tmp/opf" "$tmp/u.data" &&
  python3 - "$tmp/out" "$tmp/opf/results.json" <<'PY' || fail "onepass --fgsm: output"
import json, re, sys
line = [l for l in open(sys.argv[1]) if l.startswith("onepass-fgsm ")]
assert len(line) == 1, line
m = re.search(r"eps 0\.5: bpr-hr@10 ([0-9.]+) -> ([0-9.]+) \(-[0-9.]+%\) "
              r"apr-hr@10 ([0-9.]+) -> ([0-9.]+) \(-[0-9.]+%\) "
              r"onepass-fgsm-ratio ([0-9.]+)$", line[0].strip())
assert m, line[0]
b0, b1, a0, a1, ratio = map(float, m.groups())
assert b0 > 0 and a0 > 0 and b1 < b0, (b0, b1)
want = ((a0 - a1) / a0) / ((b0 - b1) / b0)
assert abs(ratio - want) < 0.05, (ratio, want)
f = json.load(open(sys.argv[2]))["onepass"]["fgsm"]
assert abs(f["ratio"] - ratio) < 1e-3 and abs(f["bpr_hr"] - b0) < 1e-4, f
print("ok   onepass --fgsm: %s" % line[0].strip())
PY
if timeout 60 "$ev" -q --onepass --models bpr "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "onepass without apr: exit 0"
else
  grep -qF -- "--onepass compares with the offline APR" "$tmp/err" ||
    fail "onepass without apr: $(cat "$tmp/err")"
fi

# --instances (issue 12): three engines exchanging item deltas print their
# exchanges and write them to results.json; --models apr leaves BPR out;
# one instance is the plain replay to the digit; too few partitions and
# --instances without --preq are refused.
run preq-one "$ev" -q --preq --models apr --format movielens --k 8 \
  --out "$tmp/p1" "$tmp/u.data"
run preq-three "$ev" -q --preq --models apr --format movielens --k 8 \
  --instances 3 --partitions 6 --sync-every 50 --out "$tmp/p3" "$tmp/u.data" &&
  { grep -qE "^prequential apr +40 exchanges, [0-9]+ item records" "$tmp/out" ||
      fail "preq-three: no exchange line: $(cat "$tmp/out")"; }
run preq-inst1 "$ev" -q --preq --models apr --format movielens --k 8 \
  --instances 1 --out "$tmp/p1b" "$tmp/u.data"
python3 - "$tmp/p1/results.json" "$tmp/p3/results.json" "$tmp/p1b/results.json" <<'PY' || fail "preq-three: results.json"
import json, sys
one, three, one_b = (json.load(open(p))["prequential"] for p in sys.argv[1:])
assert "bpr" not in one and "apr" in one and "popularity" in one, one.keys()
assert three["instances"] == 3 and three["partitions"] == 6, three
assert three["sync_every"] == 50 and three["exchanges"] == 40, three
assert three["records"] > 0 and three["share_acc"] == 1, three
assert three["apr"]["n"] == one["apr"]["n"], (three["apr"], one["apr"])
assert (one_b["apr"]["hr"], one_b["apr"]["ndcg"]) == (one["apr"]["hr"], one["apr"]["ndcg"])
print("ok   preq-three: %d exchanges, %d records, HR@10 %.4f vs %.4f" %
      (three["exchanges"], three["records"], three["apr"]["hr"], one["apr"]["hr"]))
PY
if timeout 60 "$ev" -q --preq --instances 3 --partitions 2 "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "instances>partitions: exit 0"
else
  grep -qF "at least one partition each" "$tmp/err" ||
    fail "instances>partitions: $(cat "$tmp/err")"
  echo "ok   instances>partitions refused"
fi
if timeout 60 "$ev" -q --loo --instances 3 "$tmp/u.data" >"$tmp/out" 2>"$tmp/err"; then
  fail "instances without --preq: exit 0"
else
  grep -qF -- "--instances is a --preq replay" "$tmp/err" ||
    fail "instances without --preq: $(cat "$tmp/err")"
  echo "ok   instances needs --preq"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
