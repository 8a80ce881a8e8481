#!/usr/bin/env bash
# Restart time of advrecd on the real broker: kill -9 -> first new event
# applied, with static group membership (group.instance.id=auto, the
# default) and with dynamic membership (group.instance.id=''), each ROUNDS
# times.
#   bench/restart.sh BUILD_DIR KAFKA_DIR [STATE_DIR] [ROUNDS]
# KAFKA_DIR: a broker of tests/kafka/kafka.sh (start --fresh KAFKA_DIR).
# STATE_DIR: a state to restart (e.g. 1 M users from advrec-store-bench;
# it is written to, and becomes the static runs' state); default: a fresh
# one in a temporary directory. ROUNDS: default 3.
#
# Each round: advrecd runs and has applied an event; it is SIGKILLed (t0);
# one new click is produced (advrec-produce); advrecd is started again on
# the same state dir and group; the script polls its log every 20 ms and
# prints, from t0, when the state was loaded ("state ... users"), when
# partitions were assigned ("rebalance: assigned") and when the stats line
# (stats.interval.ms=100) first counted the new click. session.timeout.ms is
# librdkafka's default (45 s), as under systemd.
# MODES ("static dynamic"): the memberships to run; DAEMON_ARGS="-X k=v ..."
# more advrecd settings (e.g. -X state.memory.limit=256M: a start that reads
# no user row).
set -euo pipefail
b=$(cd "$1" && pwd) kdir=$2 state=${3:-} rounds=${4:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
bs=$("$src/tests/kafka/kafka.sh" bootstrap "$kdir")
tmp=$(mktemp -d)
dpid=
trap '[ -n "$dpid" ] && kill -KILL $dpid 2>/dev/null; rm -rf "$tmp"' EXIT
tag=restart.$$
"$src/tests/kafka/kafka.sh" topics "$kdir" "$tag.c:4" "$tag.p:4" "$tag.r:1" \
  "$tag.a:1" "$tag.d:1" >/dev/null
[ -n "$state" ] || state=$tmp/state
now() { date +%s.%N; }
click() { # one click of a user of its own, produced and acknowledged
  printf 'user,item,type,ts\nu-%s-%s,item-1,click,1700000000000\n' "$tag" "$1" >"$tmp/one.csv"
  "$b/advrec-produce" -q -b "$bs" -f csv --click-topic "$tag.c" \
    --purchase-topic "$tag.p" "$tmp/one.csv" 2>/dev/null
}
spawn() { # mode log
  local extra=()
  [ "$1" = dynamic ] && extra=(-X group.instance.id=)
  "$b/advrecd" -c "$src/conf/advrecd.conf" -X broker.embedded=false \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks="$tag.c" \
    -X topic.purchases="$tag.p" -X topic.recommendations="$tag.r" \
    -X topic.anomalies="$tag.a" -X topic.dlq="$tag.d" -X group.id="$tag.$1" \
    -X state.dir="$sdir" -X stats.interval.ms=100 -X log.level=info \
    -X http.listen= "${extra[@]}" ${DAEMON_ARGS:-} 2>"$2" >/dev/null &
  dpid=$!
}
# Seconds from t0 at which each marker first shows in log; "-" if not
# within 120 s. Ends when the new click is counted.
await() { # log t0
  local loaded=- assigned=- applied=- t deadline=$((SECONDS + 120))
  while [ "$applied" = - ] && [ "$SECONDS" -lt "$deadline" ]; do
    t=$(now)
    [ "$loaded" = - ] && grep -qE "state .*: [0-9]+ users" "$1" 2>/dev/null && loaded=$t
    [ "$assigned" = - ] && grep -q "rebalance: assigned" "$1" 2>/dev/null && assigned=$t
    grep -qE "stats: .*total [1-9][0-9]* clicks" "$1" 2>/dev/null && applied=$t
    kill -0 "$dpid" 2>/dev/null || { echo "advrecd exited:"; tail -5 "$1"; exit 1; }
    sleep 0.02 # polling interval of a bounded wait
  done
  for v in "$loaded" "$assigned" "$applied"; do
    [ "$v" = - ] && printf '   -   ' || printf '%6.2f ' "$(echo "$v - $2" | bc)"
  done
  echo
}
echo "membership  round  loaded  assigned  applied   (seconds after kill -9)"
for mode in ${MODES:-static dynamic}; do
  sdir=$state
  [ "$mode" = dynamic ] && sdir=$tmp/state.dynamic &&
    { [ -d "$state" ] && cp -a "$state" "$sdir" || true; }
  spawn "$mode" "$tmp/$mode.0.err"
  click "$mode.0"
  await "$tmp/$mode.0.err" "$(now)" >/dev/null
  for r in $(seq 1 "$rounds"); do
    kill -KILL $dpid
    wait $dpid 2>/dev/null || true
    t0=$(now)
    click "$mode.$r"
    spawn "$mode" "$tmp/$mode.$r.err"
    printf '%-10s  %5d  ' "$mode" "$r"
    await "$tmp/$mode.$r.err" "$t0"
  done
  kill -TERM $dpid
  wait $dpid || true
  dpid=
done
