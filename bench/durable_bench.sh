#!/usr/bin/env bash
# events/s of advrecd on the real broker with state.sync=commit, state.sync=
# none and state in memory (state.dir=''), replaying the same stream.
#   bench/durable_bench.sh BUILD_DIR BOOTSTRAP [EVENTS]
# (a broker: tests/kafka/kafka.sh start --fresh DIR; BOOTSTRAP = its address)
# Produces EVENTS (default 200000) generated events once to 4-partition
# topics, then runs advrecd on them three times (own group and state dir
# each) and reports events/s between the first and the last stats line
# (stats.interval.ms=200) that counted events: processing only, start-up
# and group join excluded.
set -euo pipefail
b=$1 bs=$2 n=${3:-200000}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill -KILL $dpid 2>/dev/null || true; rm -rf "$tmp"' EXIT
dpid=
tag=bench.$$
"$b/advrec-gen" -q --seed 3 --events "$n" -o "$tmp/s.csv"
"$b/advrec-produce" -q -b "$bs" -f csv --click-topic "$tag.c" --purchase-topic "$tag.p" \
  -X topic.metadata.refresh.interval.ms=1000 "$tmp/s.csv" 2>&1 | head -1
for mode in commit none memory; do
  dir="$tmp/state.$mode"
  extra=(-X state.dir="$dir" -X state.sync="$mode")
  [ "$mode" = memory ] && extra=(-X state.dir=)
  "$b/advrecd" -c "$src/conf/advrecd.conf" -X broker.embedded=false \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks="$tag.c" -X topic.purchases="$tag.p" \
    -X topic.recommendations="$tag.r" -X topic.anomalies="$tag.a" -X topic.dlq="$tag.d" \
    -X group.id="$tag.$mode" -X stats.interval.ms=200 -X log.level=info "${extra[@]}" \
    2>"$tmp/$mode.err" >/dev/null &
  dpid=$!
  deadline=$((SECONDS + 300))
  until grep -qE "total [0-9]+ clicks" "$tmp/$mode.err" &&
    [ "$(grep -oE 'total [0-9]+ clicks, [0-9]+ purchases' "$tmp/$mode.err" | tail -1 |
      awk '{print $2 + $4}')" -ge "$n" ]; do
    [ "$SECONDS" -ge "$deadline" ] && { echo "$mode: timeout"; break; }
    sleep 0.2 # polling interval of a bounded wait
  done
  kill -TERM $dpid; wait $dpid || true
  # timestamps: stats lines are 200 ms apart; count lines from the first
  # with events to the first at the total.
  awk -v n="$n" -v mode="$mode" '/stats: .* total/ {
      split($0, a, " total "); split(a[2], w, " "); ev = w[1] + w[3];
      if (ev > 0 && first == 0) { first = NR; ev0 = ev }
      if (ev >= n) { printf "%s: %d events in ~%.1f s (stats lines), %.0f events/s\n",
        mode, ev - ev0, (lines) * 0.2, (ev - ev0) / ((lines) * 0.2); exit }
      if (first) lines++ }' "$tmp/$mode.err"
done
