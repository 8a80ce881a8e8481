#!/usr/bin/env bash
# memory.sh - resident memory of advrecd against the number of distinct
# users, with and without state.memory.limit (issue 10, point 5): USERS
# distinct users with one event each, produced once to a real Apache Kafka
# broker (started here), then consumed by advrecd once per mode, one after
# the other, in one run. Not part of CI.
#
#   bench/memory.sh [BUILD_DIR]                  (default: build)
#   USERS (1000000), ITEMS (10000), PARTITIONS (4 per topic),
#   LIMIT (256M: the budget of the `budget` mode), MODES ("budget none"),
#   KEEP=DIR: keep the budget mode's state dir there (for bench/restart.sh),
#   DAEMON_ARGS="-X k=v ..." more advrecd settings for every mode.
#
# The real broker, not the embedded one: the embedded broker lives inside
# advrecd's process, so the stream it holds would count in the very figure
# measured (and it keeps only ~5 MiB per partition).
#
# The stream is advrec-gen's (item popularity, timestamps) with every event
# given a user of its own ("u" + line number: short ids). Each mode starts
# on a fresh state dir in a fresh group, at the beginning of the topics,
# with the shipped configuration (lists refreshed as they fall due), and
# runs until every event is applied and no list is owed; then the peak
# resident set (VmHWM of /proc/PID/status), the users in memory and the
# daemon's own estimates of resident bytes per user in memory and per item
# (/metrics: advrec_state_user_resident_bytes, _item_resident_bytes) are
# read, and it is stopped with SIGTERM. One line per mode:
#   MODE limit L: N users, peak RSS P MiB (P/L of the budget), U users in
#   memory, peak RSS per user B, estimated bytes per user in memory E, per
#   item I, read back R, evicted V, T s
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
users=${USERS:-1000000}
items=${ITEMS:-10000}
parts=${PARTITIONS:-4}
limit=${LIMIT:-256M}
modes=${MODES:-budget none}
for t in advrecd advrec-produce advrec-gen; do
  [ -x "$build/$t" ] || { echo "memory.sh: no $t in $build" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "memory.sh: python3 missing" >&2; exit 1; }
command -v curl >/dev/null || { echo "memory.sh: curl missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-memory.XXXXXX")
dpid=
cleanup() {
  [ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
  wait 2>/dev/null
  "$here/tests/kafka/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

say "memory: starting Apache Kafka (tests/kafka/kafka.sh) in $tmp/kafka"
bs=$("$here/tests/kafka/kafka.sh" start --fresh "$tmp/kafka") || { say "broker did not start"; exit 1; }
"$here/tests/kafka/kafka.sh" topics "$tmp/kafka" "mem.clicks:$parts" "mem.purchases:$parts" \
  "mem.recs:$parts:compact" "mem.anomalies:$parts" "mem.dlq:$parts" >/dev/null ||
  { say "cannot create topics"; exit 1; }

say "memory: generating $users events, one user each ($items items)"
"$build/advrec-gen" -q --seed 7 --events "$users" --users 100000 --items "$items" \
  --purchase-prob 0 -o "$tmp/gen.csv" || exit 1
awk -F, -v OFS=, 'NR == 1 { print; next } { $1 = "u" (NR - 1); print }' "$tmp/gen.csv" \
  >"$tmp/stream.csv"
rm -f "$tmp/gen.csv"
say "memory: producing them to $bs ($parts partitions per topic)"
"$build/advrec-produce" -q -b "$bs" -f csv --click-topic mem.clicks --purchase-topic mem.purchases \
  "$tmp/stream.csv" >"$tmp/produce.out" 2>&1 || { cat "$tmp/produce.out" >&2; exit 1; }
n=$(($(wc -l <"$tmp/stream.csv") - 1))

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
metric() { # NAME: its value from /metrics
  awk -v m="$1" '$1 == m { print $2; exit }' "$tmp/metrics"
}

for mode in $modes; do
  lim=0
  [ "$mode" = budget ] && lim=$limit
  port=$(free_port)
  state=$tmp/state.$mode
  log=$tmp/$mode.err
  # shellcheck disable=SC2086 # DAEMON_ARGS: words on purpose
  "$build/advrecd" -c "$here/conf/advrecd.conf" -X broker.embedded=false \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks=mem.clicks -X topic.purchases=mem.purchases \
    -X topic.recommendations=mem.recs -X topic.anomalies=mem.anomalies -X topic.dlq=mem.dlq \
    -X group.id="mem.$mode.$$" -X group.instance.id= -X state.dir="$state" \
    -X state.memory.limit="$lim" -X stats.interval.ms=1000 -X log.level=info \
    -X http.listen="127.0.0.1:$port" ${DAEMON_ARGS:-} 2>"$log" >/dev/null &
  dpid=$!
  t0=$SECONDS
  deadline=$((SECONDS + 1800))
  # Done when every event is applied, no list is owed, none in flight.
  until grep -qE "stats: .*total $n clicks.* 0 outputs pending; .* 0 stale$" "$log"; do
    kill -0 "$dpid" 2>/dev/null || { say "advrecd exited:"; tail -5 "$log" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { say "$mode: not done in 30 min"; tail -3 "$log" >&2; exit 1; }
    sleep 1
  done
  secs=$((SECONDS - t0))
  sleep 2 # one more eviction pass after the last acknowledgements
  hwm=$(awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$dpid/status")
  curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics"
  resident=$(metric advrec_state_users_resident)
  per_user=$(metric advrec_state_user_resident_bytes)
  per_item=$(metric advrec_state_item_resident_bytes)
  reads=$(metric advrec_state_user_reads_total)
  evicted=$(metric advrec_state_user_evictions_total)
  kill -TERM "$dpid"
  wait "$dpid" || say "$mode: advrecd exited $?"
  dpid=
  lim_b=$(awk -v l="$lim" 'BEGIN { m = 1; if (l ~ /[kK]$/) m = 1024; if (l ~ /M$/) m = 1048576;
                                   if (l ~ /G$/) m = 1073741824; print (l + 0) * m }')
  awk -v mode="$mode" -v lim="$lim" -v lb="$lim_b" -v n="$n" -v hwm="$hwm" -v r="$resident" \
      -v pu="$per_user" -v pi="$per_item" -v rd="$reads" -v ev="$evicted" -v s="$secs" 'BEGIN {
    printf "%-6s limit %-5s %d users, peak RSS %.0f MiB%s, %d users in memory, peak RSS per user %.0f B, estimated per user in memory %.0f B, per item %.0f B, read back %d, evicted %d, %d s\n",
      mode, lim, n, hwm / 1048576, (lb > 0 ? sprintf(" (%.2f x the budget)", hwm / lb) : ""),
      r, hwm / n, pu, pi, rd, ev, s }'
  if [ "$mode" = budget ] && [ -n "${KEEP:-}" ]; then
    rm -rf "$KEEP" && cp -a "$state" "$KEEP" && say "memory: state kept in $KEEP"
  fi
  rm -rf "$state"
done
