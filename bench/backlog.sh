#!/usr/bin/env bash
# backlog.sh - refreshes on a budget under overload: recs.backlog.policy
# consume against pause, on advrecd's embedded broker. Not part of CI.
#
#   bench/backlog.sh [BUILD_DIR]
#       BUILD_DIR  default: build (needs advrecd, advrec-gen, advrec-produce)
#   SECONDS_RUN (default 40) per policy; USERS (100000), ITEMS (100000),
#   EVENTS (400000) of advrec-gen --seed 7; STALENESS (2000) ms for
#   recs.max.staleness.ms; POLICIES ("consume pause"); DAEMON_ARGS more -X.
#
# advrecd starts with its embedded broker, state in memory, exact retrieval
# (recs.retrieval=exact: every list scores every item, so the lists cannot
# keep up with the input), recs.debounce.ms=200, stats every 5 s; advrec-gen
# is produced into it as fast as advrec-produce goes, while it consumes.
# After SECONDS_RUN the stats lines are printed (events/s, lists/s, the
# backlog, the oldest list owed, the staleness p99 of the interval's lists)
# and advrecd is killed (not stopped: the stop would refresh everyone).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
secs=${SECONDS_RUN:-40}
users=${USERS:-100000}
items=${ITEMS:-100000}
events=${EVENTS:-400000}
staleness=${STALENESS:-2000}
policies=${POLICIES:-consume pause}
for b in advrecd advrec-gen advrec-produce; do
  [ -x "$build/$b" ] || { echo "no $b in $build" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-backlog.XXXXXX")
dpid=
ppid_=
cleanup() {
  [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null
  [ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

"$build/advrec-gen" --seed 7 --users "$users" --items "$items" \
  --events "$events" -q -o "$tmp/events.csv" || exit 1

for policy in $policies; do
  OPENBLAS_NUM_THREADS=1 "$build/advrecd" -X state.dir= -X http.listen= \
    -X stats.interval.ms=5000 -X recs.retrieval=exact \
    -X recs.debounce.ms=200 -X recs.max.staleness.ms="$staleness" \
    -X recs.backlog.policy="$policy" ${DAEMON_ARGS:-} >/dev/null 2>"$tmp/$policy.err" &
  dpid=$!
  boot=
  for _ in $(seq 100); do
    boot=$(grep -oE 'embedded broker .* at [^;]+' "$tmp/$policy.err" | sed 's/.* at //')
    [ -n "$boot" ] && break
    sleep 0.1 # polling the log for the bound address, bounded
  done
  [ -n "$boot" ] || { echo "advrecd did not start:" >&2; cat "$tmp/$policy.err" >&2; exit 1; }
  "$build/advrec-produce" -b "$boot" -f csv "$tmp/events.csv" >/dev/null 2>&1 &
  ppid_=$!
  sleep "$secs" # the run's length
  echo "== recs.backlog.policy=$policy (recs.max.staleness.ms=$staleness)"
  grep -E 'stats: |refresh backlog' "$tmp/$policy.err" | sed 's/^.*advrec: [a-z]*: //'
  kill "$ppid_" 2>/dev/null
  kill -KILL "$dpid" 2>/dev/null
  wait 2>/dev/null
  dpid=
  ppid_=
done
