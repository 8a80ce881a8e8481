#!/usr/bin/env bash
# latency.sh - time from an event produced to the list it caused read back
# from the recommendations topic, on a real Apache Kafka broker (started
# here), with recs.debounce.ms=0. Issue 10, point 6. Not part of CI.
#
#   bench/latency.sh [BUILD_DIR]          (default: build)
#   RATE (10000) events/s for SECONDS (30); WARMUP (5) s of events whose
#   lists are left out; USERS (10000), ITEMS (5000) of the generated
#   stream (advrec-gen's defaults); PARTITIONS (4 per topic); DAEMON_ARGS="-X k=v ..." more advrecd
#   settings (after -X recs.debounce.ms=0; otherwise the shipped defaults,
#   state in RocksDB in a temp dir). KAFKA_DIR: a broker already started by
#   tests/kafka/kafka.sh start DIR, used (new topics) and left running;
#   default: a fresh one in a temp dir, stopped at the end. ADVRECD_LOG:
#   where to keep advrecd's log (info level; of the last run).
#   READER=kafka-python (default) | kcat: the client that reads the lists
#   back. kcat (a bare librdkafka consumer, Debian's) costs the machine
#   far less CPU per list than kafka-python; its output goes through a pipe
#   to latency.py stamp, which stamps each chunk on arrival.
#
# A/B in one session (the machine is shared: compare ratios, not figures
# of different sessions): ADVRECD_B=PATH another advrecd binary (e.g. a
# build of an earlier commit) and/or DAEMON_ARGS_B="-X k=v ..." the B runs'
# settings instead of DAEMON_ARGS. RUNS (1) rounds of A then B (every
# second round B then A, so neither always runs on the warmer broker),
# each run on topics, a group and a state of its own, the same stream and
# broker; each run's lines are marked [A] or [B], and the end prints the
# median p50 and p99 of each and of the same-round ratios B/A.
#
# advrec-gen writes the stream; bench/latency.py paces it at RATE and stamps
# each event with the wall-clock ms it is written; advrec-produce reads that
# from stdin and produces it at once (its record timestamp is the event's
# ts, so each input record carries the time it was produced). advrecd reads
# it from the broker; kafka-python (the tests' pinned venv) reads the
# recommendations topic meanwhile, stamping each record on arrival. After
# the run every list is paired with the input record it names (topic,
# partition, offset of the user's last event: schemas/recommendation.avsc),
# whose timestamp kafka-python reads from the input topics; latency =
# arrival of the list - timestamp of that event. The first WARMUP seconds
# of events are skipped (group join, first fetches, page cache, JIT of the
# broker). The breakdown lines split it at the list's generated_at
# (advrecd's wall clock when it computed the list: before it, consume,
# apply, refresh) and at the list's record timestamp (the topic has
# message.timestamp.type=LogAppendTime: when the broker appended it; before
# it advrecd's producer, after it the fetch by kafka-python).
# SECONDS from the environment is bash's own counter's start value: read
# it before anything takes time (0 when unset).
secs=$SECONDS
[ "$secs" -gt 0 ] || secs=30
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd) || exit 1
rate=${RATE:-10000}
reader=${READER:-kafka-python}
case $reader in
  kafka-python) ;;
  kcat) command -v kcat >/dev/null || { echo "latency.sh: READER=kcat but no kcat (tools/install-deps.sh)" >&2; exit 1; } ;;
  *) echo "latency.sh: READER must be kafka-python or kcat" >&2; exit 1 ;;
esac
warmup=${WARMUP:-5}
users=${USERS:-10000}
items=${ITEMS:-5000}
# One BLAS thread, as the shipped unit (systemd/advrecd.service.in) runs it:
# OpenBLAS's threads spin in sched_yield on a busy 2-core machine.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
parts=${PARTITIONS:-4}
for t in advrecd advrec-produce advrec-gen; do
  [ -x "$build/$t" ] || { echo "latency.sh: no $t in $build" >&2; exit 1; }
done
py=$("$here/tests/py/venv.sh") || { echo "latency.sh: no venv (tests/py/venv.sh)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-latency.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${ADVRECD_LOG:-}" ] && cp "$tmp/advrecd.log" "$ADVRECD_LOG"
  [ -n "${KAFKA_DIR:-}" ] || "$here/tests/kafka/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '%s\n' "$*" >&2; }
lpy() { PYTHONPATH="$here/tests/py" "$py" "$here/bench/latency.py" "$@"; }

kdir=${KAFKA_DIR:-$tmp/kafka}
if [ -n "${KAFKA_DIR:-}" ]; then
  bs=$("$here/tests/kafka/kafka.sh" bootstrap "$kdir") || exit 1
else
  say "latency: starting Apache Kafka (tests/kafka/kafka.sh) in $kdir"
  bs=$("$here/tests/kafka/kafka.sh" start --fresh "$kdir") || { say "broker did not start"; exit 1; }
fi
n=$(awk -v r="$rate" -v s="$secs" 'BEGIN { printf "%d", r * s }')
say "latency: generating $n events ($users users, $items items)"
"$build/advrec-gen" --seed 7 --events "$n" --users "$users" --items "$items" \
  -o "$tmp/stream.csv" 2>/dev/null || exit 1

# CPU seconds (user + system) of a process so far.
cpu() { awk '{ printf "%.1f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null; }

# run LABEL ADVRECD ARGS: one measured run; prints its report, marked
# LABEL when not empty, and appends "LABEL p50 p99" to $tmp/results.
run() {
  local label=$1 advrecd=$2 args=$3 mark="" tp dpid rpid kpid kcpu0 kcpu="" dcpu out
  [ -n "$label" ] && mark="[$label] "
  tp=lat$$.$((++nrun)) # topics of this run
  "$here/tests/kafka/kafka.sh" topics "$kdir" "$tp.clicks:$parts" "$tp.purchases:$parts" \
    "$tp.recs:$parts:compact:message.timestamp.type=LogAppendTime" "$tp.anomalies:$parts" "$tp.dlq:$parts" >/dev/null ||
    { say "cannot create topics"; return 1; }
  rm -rf "$tmp/state" "$tmp/reader.ready" "$tmp/produced" "$tmp/lists.pickle" "$tmp/kcat.pid" "$tmp/kcat.log"
  # shellcheck disable=SC2086 # args is a list of words
  "$advrecd" -c "$here/conf/advrecd.conf" -X broker.embedded=false -X http.listen= \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks="$tp.clicks" -X topic.purchases="$tp.purchases" \
    -X topic.recommendations="$tp.recs" -X topic.anomalies="$tp.anomalies" -X topic.dlq="$tp.dlq" \
    -X group.id="latency.$tp" -X state.dir="$tmp/state" -X log.level=info \
    -X recs.debounce.ms=0 $args 2>"$tmp/advrecd.log" >/dev/null &
  dpid=$!
  pids+=("$dpid")
  if [ "$reader" = kcat ]; then
    # Ready once kcat reached the (empty) end of every partition.
    { kcat -C -u -b "$bs" -t "$tp.recs" -o beginning -f '%p %o %T %S\n%s\n' \
      2>"$tmp/kcat.log" & echo $! >"$tmp/kcat.pid"; } |
      lpy stamp "$tmp/lists.pickle" "$tmp/produced" 2>"$tmp/reader.log" &
    rpid=$!
    until [ -s "$tmp/kcat.pid" ]; do sleep 0.05; done # written by the pipe's first part
    pids+=("$rpid" "$(cat "$tmp/kcat.pid")")
  else
    lpy read "$bs" "$tp.recs" "$tmp/lists.pickle" "$tmp/reader.ready" "$tmp/produced" \
      2>"$tmp/reader.log" &
    rpid=$!
    pids+=("$rpid")
  fi

  # Ready: advrecd assigned its partitions, kafka-python positioned.
  local deadline=$((SECONDS + 90))
  until grep -q "rebalance: assigned" "$tmp/advrecd.log" && reader_ready; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$dpid" 2>/dev/null; then
      say "latency: advrecd or the reader not ready; advrecd's log:"; tail -20 "$tmp/advrecd.log" >&2
      cat "$tmp/reader.log" >&2; return 1
    fi
    sleep 0.1 # polling interval of a bounded wait
  done

  kpid=$(cat "$kdir/pid" 2>/dev/null)
  kcpu0=$(cpu "$kpid")
  say "latency: ${mark}producing $rate events/s for $secs s to $bs ($parts partitions per topic)"
  lpy pace "$rate" "$secs" "$tmp/stream.csv" 2>"$tmp/pace.log" |
    "$build/advrec-produce" -q -b "$bs" -f csv --click-topic "$tp.clicks" \
      --purchase-topic "$tp.purchases" - >"$tmp/produce.out" 2>&1 ||
    { say "advrec-produce failed:"; cat "$tmp/pace.log" "$tmp/produce.out" >&2; return 1; }
  touch "$tmp/produced"
  cat "$tmp/pace.log" >&2
  wait "$rpid" || { say "reader failed:"; cat "$tmp/reader.log" >&2; return 1; }
  cat "$tmp/reader.log" >&2
  local rcpu
  rcpu=$(sed -n 's/.*, \([0-9.]*\) CPU-s/\1/p' "$tmp/reader.log")
  if [ "$reader" = kcat ]; then
    rcpu="$rcpu + kcat $(cpu "$(cat "$tmp/kcat.pid")")"
    kill -TERM "$(cat "$tmp/kcat.pid")" 2>/dev/null
  fi
  dcpu=$(cpu "$dpid")
  [ -n "$kpid" ] && kcpu=$(awk -v a="$(cpu "$kpid")" -v b="$kcpu0" 'BEGIN { printf "%.1f", a - b }')
  kill -TERM "$dpid"
  wait "$dpid"
  pids=()
  grep -E "final:" "$tmp/advrecd.log" | tail -1 >&2

  echo "${mark}advrecd -X recs.debounce.ms=0 $args; $rate events/s for $secs s," \
    "$parts partitions, $users users, $items items; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
  echo "${mark}CPU seconds: advrecd $dcpu (until the stop), broker ${kcpu:-?} (during the run)," \
    "$reader reader $rcpu"
  out=$(lpy report "$bs" "$tmp/lists.pickle" "$here/schemas/recommendation.avsc" "$warmup" "$rate") ||
    { echo "$out"; return 1; }
  echo "$out" | sed "s/^/$mark/"
  echo "$out" | sed -n "s/^latency p50 \([0-9]*\) ms p99 \([0-9]*\) ms.*/${label:--} \1 \2/p" >>"$tmp/results"
}

# The reader is positioned at the start of every partition of the lists.
reader_ready() {
  if [ "$reader" = kcat ]; then
    [ "$(grep -c "Reached end of topic" "$tmp/kcat.log" 2>/dev/null)" -ge "$parts" ]
  else
    [ -e "$tmp/reader.ready" ]
  fi
}

nrun=0
a_args=${DAEMON_ARGS:-}
if [ -z "${ADVRECD_B:-}" ] && [ -z "${DAEMON_ARGS_B+x}" ]; then
  run "" "$build/advrecd" "$a_args" || exit 1
  exit 0
fi
b_bin=${ADVRECD_B:-$build/advrecd}
b_args=${DAEMON_ARGS_B-$a_args}
[ -x "$b_bin" ] || { say "latency: ADVRECD_B=$b_bin is not executable"; exit 1; }
say "latency: A = $build/advrecd $a_args; B = $b_bin $b_args; ${RUNS:-1} round(s)"
for r in $(seq 1 "${RUNS:-1}"); do
  if [ $((r % 2)) -eq 1 ]; then
    run A "$build/advrecd" "$a_args" || exit 1
    run B "$b_bin" "$b_args" || exit 1
  else
    run B "$b_bin" "$b_args" || exit 1
    run A "$build/advrecd" "$a_args" || exit 1
  fi
done
python3 - "$tmp/results" <<'PY'
import statistics, sys
runs = {"A": [], "B": []}
for l in open(sys.argv[1]):
    label, p50, p99 = l.split()
    runs[label].append((float(p50), float(p99)))
a, b = runs["A"], runs["B"]
m = lambda xs: statistics.median(xs)
print("A: %d run(s), median p50 %.0f ms, p99 %.0f ms" % (len(a), m([x[0] for x in a]), m([x[1] for x in a])))
print("B: %d run(s), median p50 %.0f ms, p99 %.0f ms" % (len(b), m([x[0] for x in b]), m([x[1] for x in b])))
n = min(len(a), len(b))
print("B/A, median of the same-round ratios: p50 %.2f, p99 %.2f"
      % (m([b[i][0] / a[i][0] for i in range(n)]), m([b[i][1] / a[i][1] for i in range(n)])))
PY
