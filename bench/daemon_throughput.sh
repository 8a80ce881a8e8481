#!/usr/bin/env bash
# daemon_throughput.sh - how many events/s advrecd applies, replaying the
# Taobao sample, (a) on its own embedded broker and (b) on a real Apache Kafka
# broker (tests/kafka/kafka.sh start in a temp dir). Not part of CI.
#
#   bench/daemon_throughput.sh [BUILD_DIR [FILE]]
#       BUILD_DIR  default: build (needs advrecd and advrec-produce)
#       FILE       default: the shared Taobao sample (../shared/data/...)
#   RUNS=N (default 2) runs of each setup; PARTITIONS (default 16) per topic;
#   DAEMON_ARGS="-X k=v ..." more advrecd settings.
#
# Timing: advrecd logs a stats line every 20 ms (stats.interval.ms=20); each
# line is stamped on arrival ($EPOCHREALTIME). The time is from the last line
# with nothing applied yet to the first line counting every input event, so
# it includes up to two intervals too many (the figure is a lower bound on
# the rate). Default daemon configuration otherwise (model.k 64, APR on,
# lists refreshed during the run as configured).
#   (a) advrecd starts its embedded broker (16 partitions; the mock broker
#       keeps only ~5 MiB per partition), advrec-produce replays the file
#       into it while advrecd consumes.
#   (b) the file is produced to the real broker first, then advrecd starts
#       and consumes it (a fresh consumer group per run).
# advrecd is stopped with SIGTERM after each run (it refreshes every stale
# user first; not timed).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
file=${2:-}
runs=${RUNS:-2}
parts=${PARTITIONS:-16}
advrecd=$build/advrecd
produce=$build/advrec-produce
kafka_sh=$here/tests/kafka/kafka.sh
[ -x "$advrecd" ] && [ -x "$produce" ] || { echo "no advrecd/advrec-produce in $build" >&2; exit 1; }
if [ -z "$file" ]; then
  d=$here
  while [ "$d" != / ]; do
    d=$(dirname "$d")
    f=$d/shared/data/taobao-userbehavior/UserBehavior_timesorted_head.csv
    [ -f "$f" ] && { file=$f; break; }
  done
fi
[ -f "$file" ] || { echo "no input file (the shared Taobao sample is absent; pass FILE)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-bench.XXXXXX")
dpid=
cleanup() {
  if [ -n "$dpid" ]; then kill -KILL "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; fi
  "$kafka_sh" stop "$tmp/kafka" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

# stamp: prefixes every stdin line with the arrival time (s, µs resolution).
stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

# rate LOG N: from the stamped stats lines, "seconds events/s".
rate() {
  awk -v n="$2" '
    /(stats|final): / && match($0, /total [0-9]+ clicks, [0-9]+ purchases/) {
      split(substr($0, RSTART, RLENGTH), f, " "); got = f[2] + f[4]
      if (got == 0) t0 = $1
      else if (got >= n && !t1) t1 = $1
    }
    END { if (!t0 || !t1) { print "none"; exit 1 }
          printf "%.3f %.0f\n", t1 - t0, n / (t1 - t0) }' "$1"
}

# await_total LOG N SECONDS: waits until a stats line counts N events.
await_total() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    rate "$1" "$2" >/dev/null 2>&1 && return 0
    kill -0 "$dpid" 2>/dev/null || return 1
    sleep 0.2 # polling interval of a bounded wait
  done
  return 1
}

stop_daemon() {
  kill -TERM "$dpid" 2>/dev/null
  local deadline=$((SECONDS + 120))
  while kill -0 "$dpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  kill -KILL "$dpid" 2>/dev/null
  wait "$dpid" 2>/dev/null
  dpid=
}

# produced SUMMARY: the number of delivered events in advrec-produce's summary.
produced() { sed -nE 's/.*delivered ([0-9]+) \(.*/\1/p' "$1" | head -n 1; }

common=(-X stats.interval.ms=20 -X log.level=info)
# DAEMON_ARGS: extra advrecd arguments, e.g. "-X recs.debounce.ms=600000
# -X recs.max.staleness.ms=600000" to measure consumption and training alone.
read -r -a extra <<<"${DAEMON_ARGS:-}"
common+=("${extra[@]}")
declare -a ra rb

for i in $(seq 1 "$runs"); do
  dir=$tmp/a$i
  mkdir -p "$dir"
  mkfifo "$dir/out"
  "$advrecd" "${common[@]}" -X broker.embedded=true \
    -X broker.embedded.partitions="$parts" -X state.dir="$dir/state" \
    >"$dir/out" 2> >(stamp >"$dir/log") &
  dpid=$!
  exec 3<"$dir/out"
  read -r -t 30 -u 3 bs || { echo "embedded: no address from advrecd" >&2; exit 1; }
  "$produce" -b "$bs" -q "$file" 2>"$dir/produce" || { cat "$dir/produce" >&2; exit 1; }
  n=$(produced "$dir/produce")
  await_total "$dir/log" "$n" 120 || { echo "embedded: advrecd did not apply $n events" >&2; tail "$dir/log" >&2; exit 1; }
  exec 3<&-
  r=$(rate "$dir/log" "$n")
  ra+=("${r#* }")
  echo "embedded broker, run $i: $n events in ${r% *} s: ${r#* } events/s"
  stop_daemon
done

"$kafka_sh" start --fresh "$tmp/kafka" >/dev/null || { echo "kafka.sh start failed" >&2; exit 1; }
kbs=$("$kafka_sh" bootstrap "$tmp/kafka")
for i in $(seq 1 "$runs"); do
  dir=$tmp/b$i
  mkdir -p "$dir"
  # retention.ms=-1: the records carry 2017 event times.
  "$kafka_sh" topics "$tmp/kafka" "b$i.clicks:$parts:retention.ms=-1" \
    "b$i.purchases:$parts:retention.ms=-1" "b$i.recs:$parts:compact" \
    "b$i.anomalies:1" "b$i.dlq:1" >/dev/null 2>&1 || { echo "topics failed" >&2; exit 1; }
  "$produce" -b "$kbs" -q --click-topic "b$i.clicks" --purchase-topic "b$i.purchases" \
    "$file" 2>"$dir/produce" || { cat "$dir/produce" >&2; exit 1; }
  n=$(produced "$dir/produce")
  "$advrecd" "${common[@]}" -X broker.embedded=false -X kafka.bootstrap.servers="$kbs" \
    -X topic.clicks="b$i.clicks" -X topic.purchases="b$i.purchases" \
    -X topic.recommendations="b$i.recs" -X topic.anomalies="b$i.anomalies" \
    -X topic.dlq="b$i.dlq" -X group.id="bench-b$i" -X state.dir="$dir/state" \
    >/dev/null 2> >(stamp >"$dir/log") &
  dpid=$!
  await_total "$dir/log" "$n" 120 || { echo "kafka: advrecd did not apply $n events" >&2; tail "$dir/log" >&2; exit 1; }
  r=$(rate "$dir/log" "$n")
  rb+=("${r#* }")
  echo "Apache Kafka 4.1.1, run $i: $n events in ${r% *} s: ${r#* } events/s"
  stop_daemon
done

echo "summary ($(basename "$file"), $parts partitions, $(nproc) cores):" \
  "embedded ${ra[*]} events/s; Apache Kafka ${rb[*]} events/s"
