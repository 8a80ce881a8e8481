#!/usr/bin/env bash
# ingest.sh - how much of what the transport delivers advrecd applies: one
# generated stream, produced once to a real Apache Kafka broker (started
# here), read by a bare librdkafka consumer (kcat) and by advrecd in several
# configurations, one after the other, in one run. Not part of CI.
#
#   bench/ingest.sh [BUILD_DIR]          (default: build)
#   EVENTS (500000), USERS (100000), ITEMS (50000), PARTITIONS (4 per topic),
#   RUNS (1) runs of every reader (with more, medians at the end), MODES (default: all, in this order):
#     memory   state in memory (state.dir=''), lists deferred to the stop
#     durable  RocksDB state with the shipped state settings, lists deferred
#     commit   RocksDB, state.sync=commit, a commit every round (the
#              behaviour before commit.interval.ms), lists deferred
#     defaults the shipped configuration (lists refreshed as they fall due)
#   RATE=N rewrites the stream's event times so that it runs at N events
#     per second of event time (all partitions together; the generator's
#     own stream runs at about 45/s): what model.negatives.budget reads.
#   DAEMON_ARGS="-X k=v ..." more advrecd settings for every mode.
#   ADVRECD_B=PATH another advrecd binary (e.g. a build of an earlier
#     commit) run through the same modes after BUILD_DIR's in every run,
#     its lines marked [B]: an A/B comparison in one run.
#   DAEMON_ARGS_B="-X k=v ..." the B runs' settings instead of DAEMON_ARGS
#     (with or without ADVRECD_B): settings compared in one run.
#
# Every reader starts in a fresh consumer group at the beginning of the
# topics. Time is from the first event the reader delivered to the moment it
# had all of them: for kcat, the arrival of its output lines (one per
# message, read in 64 KiB chunks and stamped); for advrecd, its stats lines
# (stats.interval.ms=20, stamped on arrival: up to two intervals too long,
# so its rates are lower bounds). Start-up and group join are outside the
# time for both. advrecd is stopped with SIGTERM after each run (lists still
# owed are refreshed then; not timed). Each line ends in
# "of bare consumer: R", R = events/s over kcat's events/s of the same run;
# the `durable` line adds "of memory: R".
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
events=${EVENTS:-500000}
users=${USERS:-100000}
items=${ITEMS:-50000}
parts=${PARTITIONS:-4}
runs=${RUNS:-1}
modes=${MODES:-memory durable commit defaults}
advrecd=$build/advrecd
for t in advrecd advrec-produce advrec-gen; do
  [ -x "$build/$t" ] || { echo "ingest.sh: no $t in $build" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "ingest.sh: kcat missing (tools/install-deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "ingest.sh: python3 missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-ingest.XXXXXX")
dpid=
tag=bench$$
cleanup() {
  pkill -KILL -f "group.id=$tag\." 2>/dev/null
  pkill -KILL -f "kcat -q -b .* -G $tag\." 2>/dev/null
  wait 2>/dev/null
  "$here/tests/kafka/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

say "ingest: starting Apache Kafka (tests/kafka/kafka.sh) in $tmp/kafka"
bs=$("$here/tests/kafka/kafka.sh" start --fresh "$tmp/kafka") || { say "broker did not start"; exit 1; }
"$here/tests/kafka/kafka.sh" topics "$tmp/kafka" "bench.clicks:$parts" "bench.purchases:$parts" \
  "bench.recs:$parts:compact" "bench.anomalies:$parts" "bench.dlq:$parts" >/dev/null ||
  { say "cannot create topics"; exit 1; }

say "ingest: generating $events events ($users users, $items items)"
"$build/advrec-gen" -q --seed 7 --events "$events" --users "$users" --items "$items" -o "$tmp/stream.csv" ||
  exit 1
if [ -n "${RATE:-}" ]; then
  say "ingest: event times rewritten to $RATE events/s"
  awk -F, -v OFS=, -v rate="$RATE" 'NR == 1 { print; next }
    { if (t0 == "") t0 = $4; $4 = sprintf("%.0f", t0 + int((NR - 2) * 1000 / rate)); print }' \
    "$tmp/stream.csv" >"$tmp/stream.rated" && mv "$tmp/stream.rated" "$tmp/stream.csv" || exit 1
fi
say "ingest: producing them to $bs ($parts partitions per topic)"
"$build/advrec-produce" -q -b "$bs" -f csv --click-topic bench.clicks --purchase-topic bench.purchases \
  "$tmp/stream.csv" >"$tmp/produce.out" 2>&1 || { cat "$tmp/produce.out" >&2; exit 1; }
n=$(($(wc -l <"$tmp/stream.csv") - 1)) # less the header line
[ "$n" -gt 0 ] || { say "empty stream"; exit 1; }

# count_lines N: reads stdin until N lines arrived; prints "seconds" from the
# first chunk to the chunk holding line N.
count_lines() {
  python3 -c '
import os, sys, time
n = int(sys.argv[1]); got = 0; t0 = None
while got < n:
    b = os.read(0, 1 << 16)
    if not b:
        break
    if t0 is None:
        t0 = time.monotonic()
    got += b.count(b"\n")
t1 = time.monotonic()
if got < n:
    print("short %d" % got); sys.exit(1)
print("%.3f" % (t1 - t0))' "$1"
}

# rate LOG N: from advrecd's stamped stats lines, "seconds" from the last
# line with nothing applied to the first counting all N.
rate() {
  awk -v n="$2" '
    /(stats|final): / && match($0, /total [0-9]+ clicks, [0-9]+ purchases/) {
      split(substr($0, RSTART, RLENGTH), f, " "); got = f[2] + f[4]
      if (got == 0) t0 = $1
      else if (got >= n && !t1) t1 = $1
    }
    END { if (!t0 || !t1) { print "none"; exit 1 }
          printf "%.3f\n", t1 - t0 }' "$1"
}

stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

bare_eps=
line() { # NAME SECONDS [EXTRA]
  local eps
  eps=$(awk -v n="$n" -v s="$2" 'BEGIN { printf "%.0f", n / s }')
  [ -z "$bare_eps" ] && bare_eps=$eps
  printf '%-56s %7d events in %6.3f s, %7d events/s%s, of bare consumer: %.3f\n' \
    "$1" "$n" "$2" "$eps" "${3:-}" "$(awk -v a="$eps" -v b="$bare_eps" 'BEGIN { print a / b }')"
  printf '%s\t%s\t%s\t%s\n' "$1" "$eps" "$bare_eps" "${mem_eps:-}" >>"$tmp/results"
  last_eps=$eps
}

bare() {
  local s kpid
  rm -f "$tmp/kcat.fifo"; mkfifo "$tmp/kcat.fifo"
  # -e: exit at the end of every partition (its output is block-buffered
  # until then; count_lines stamps the chunks, so the last lands at exit).
  kcat -q -e -b "$bs" -G "$tag.kcat.$1" -X auto.offset.reset=earliest -f '%o\n' \
    bench.clicks bench.purchases >"$tmp/kcat.fifo" 2>"$tmp/kcat.err" &
  kpid=$!
  s=$(timeout 120 bash -c "$(declare -f count_lines); count_lines $n" <"$tmp/kcat.fifo")
  kill "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null
  case $s in short*|"") say "kcat: ${s:-timeout}"; cat "$tmp/kcat.err" >&2; return 1 ;; esac
  line "kcat (bare librdkafka consumer)" "$s"
}

daemon() { # MODE RUN
  local mode=$1 log="$tmp/$1.$2.log" s extra=() deferred=(-X recs.debounce.ms=3600000 -X recs.max.staleness.ms=3600000)
  rm -rf "$tmp/state"
  case $mode in
    memory) extra=(-X state.dir= "${deferred[@]}") ;;
    durable) extra=(-X state.dir="$tmp/state" "${deferred[@]}") ;;
    commit) extra=(-X state.dir="$tmp/state" -X state.sync=commit "${deferred[@]}")
      # a commit every round, whatever the shipped interval
      "$advrecd" --dump-config=conf 2>/dev/null | grep -q '^# *state.commit.interval.ms' &&
        extra+=(-X state.commit.interval.ms=0) ;;
    defaults) extra=(-X state.dir="$tmp/state") ;;
    *) say "unknown mode $mode"; return 1 ;;
  esac
  # shellcheck disable=SC2086 # DAEMON_ARGS is a list of words
  "$advrecd" -c "$here/conf/advrecd.conf" -X broker.embedded=false -X http.listen= \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks=bench.clicks -X topic.purchases=bench.purchases \
    -X topic.recommendations=bench.recs -X topic.anomalies=bench.anomalies -X topic.dlq=bench.dlq \
    -X group.id="$tag.$mode.$2" -X stats.interval.ms=20 -X log.level=info \
    "${extra[@]}" $dargs 2>&1 >/dev/null | stamp >"$log" &
  local deadline=$((SECONDS + 600))
  until s=$(rate "$log" "$n" 2>/dev/null); do
    if [ "$SECONDS" -ge "$deadline" ] || ! pgrep -f "group.id=$tag.$mode.$2" >/dev/null; then
      say "advrecd ($mode): did not apply $n events; its log:"; tail -20 "$log" >&2
      pkill -KILL -f "group.id=$tag.$mode.$2"; wait; return 1
    fi
    sleep 0.2 # polling interval of a bounded wait
  done
  local rss
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$(pgrep -f "group.id=$tag.$mode.$2" | head -1)/status" 2>/dev/null)
  pkill -TERM -f "group.id=$tag.$mode.$2"
  wait
  local extra_txt=", peak RSS $((${rss:-0} / 1024)) MiB"
  case $mode in
    memory) mem_eps=; line "advrecd$label, state in memory, lists deferred" "$s" "$extra_txt"; mem_eps=$last_eps ;;
    durable) line "advrecd$label, RocksDB (shipped settings), lists deferred" "$s" \
      "$extra_txt, of memory: $(awk -v a="$(awk -v n="$n" -v s="$s" 'BEGIN { print n / s }')" -v b="${mem_eps:-0}" \
        'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')" ;;
    commit) line "advrecd$label, RocksDB, commit every round, lists deferred" "$s" "$extra_txt" ;;
    defaults) line "advrecd$label, shipped defaults" "$s" "$extra_txt" ;;
  esac
}

say "ingest: $n events in the topics; readers: kcat $modes (RUNS=$runs)"
for r in $(seq 1 "$runs"); do
  bare_eps= mem_eps=
  bare "$r" || exit 1
  advrecd=$build/advrecd label= dargs=${DAEMON_ARGS:-}
  for m in $modes; do daemon "$m" "$r" || exit 1; done
  if [ -n "${ADVRECD_B:-}" ] || [ -n "${DAEMON_ARGS_B+x}" ]; then
    advrecd=${ADVRECD_B:-$build/advrecd} label=" [B]" mem_eps= dargs=${DAEMON_ARGS_B-${DAEMON_ARGS:-}}
    for m in $modes; do daemon "$m" "$r.b" || exit 1; done
  fi
done
# With several runs: per reader the median rate and the medians of its
# same-run ratios (the machine is shared: ratios hold, rates drift).
[ "$runs" -gt 1 ] && python3 - "$tmp/results" "$runs" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    name, eps, bare, mem = l.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(eps), float(bare), float(mem) if mem else None))
print("median of %s runs:" % sys.argv[2])
for name, rs in rows.items():
    eps = statistics.median(r[0] for r in rs)
    ob = statistics.median(r[0] / r[1] for r in rs)
    om = [r[0] / r[2] for r in rs if r[2] and "memory" not in name]
    mem = ", of memory: %.3f" % statistics.median(om) if om else ""
    print("%-56s %7d events/s%s, of bare consumer: %.3f" % (name, eps, mem, ob))
PY
