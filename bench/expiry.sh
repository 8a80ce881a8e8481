#!/usr/bin/env bash
# expiry.sh - a full user table is never a permanent refusal (issue 14,
# point 1): USERS distinct users (two events each) and ACTIVE users with an
# event every 15 records throughout, produced once to a real Apache Kafka
# broker (started here), consumed by advrecd twice in one run: with
# model.max.users = CAP (`cap`) and with no cap in reach (`nocap`). Not part
# of CI.
#
#   bench/expiry.sh [BUILD_DIR]                 (default: build)
#   USERS (300000), ACTIVE (1000), CAP (100000), PARTITIONS (4 per topic),
#   CHECK (200: active users whose lists are compared),
#   MODES ("cap nocap nocap2": nocap2 is a second uncapped run, the noise
#   floor of the list comparison: with more than one partition the order
#   in which partitions interleave differs from run to run, and so does
#   the model; with PARTITIONS=1 a run is deterministic),
#   DAEMON_ARGS="-X k=v ..." more advrecd settings for both modes.
#
# Each mode starts on a fresh state dir in a fresh group with the shipped
# configuration and runs until every record is consumed and no list is
# owed; then /metrics gives the dead letters (all reasons, and table-full),
# the users deleted to make room and the users live, and it is stopped with
# SIGTERM. One line per mode:
#   MODE max.users M: N events, A applied, D dead letters (F table-full),
#   L users live, R deleted to make room, peak RSS P MiB, T s
# Then the active users of the runs, read with advrec-inspect, each run
# against nocap:
#   active users, RUN vs nocap: C compared, counters equal E, lists
#   overlap@10 O (mean), identical lists I
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
users=${USERS:-300000}
active=${ACTIVE:-1000}
cap=${CAP:-100000}
parts=${PARTITIONS:-4}
check=${CHECK:-200}
modes=${MODES:-cap nocap nocap2}
for t in advrecd advrec-produce advrec-gen advrec-inspect; do
  [ -x "$build/$t" ] || { echo "expiry.sh: no $t in $build" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "expiry.sh: python3 missing" >&2; exit 1; }
command -v curl >/dev/null || { echo "expiry.sh: curl missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-expiry.XXXXXX")
dpid=
cleanup() {
  [ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
  wait 2>/dev/null
  "$here/tests/kafka/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

say "expiry: starting Apache Kafka (tests/kafka/kafka.sh) in $tmp/kafka"
bs=$("$here/tests/kafka/kafka.sh" start --fresh "$tmp/kafka") || { say "broker did not start"; exit 1; }
"$here/tests/kafka/kafka.sh" topics "$tmp/kafka" "ex.clicks:$parts" "ex.purchases:$parts" \
  "ex.recs:$parts:compact" "ex.anomalies:$parts" "ex.dlq:$parts" >/dev/null ||
  { say "cannot create topics"; exit 1; }

# advrec-gen's items and times; users rewritten: every 15th record is one
# of the active users (in turn), the rest go two by two to new users.
events=$((users * 2 * 15 / 14 + 15))
say "expiry: generating $events events: $users users with two each, $active active throughout"
"$build/advrec-gen" -q --seed 11 --events "$events" --users 100000 --items 20000 \
  --purchase-prob 0 -o "$tmp/gen.csv" || exit 1
awk -F, -v OFS=, -v a="$active" -v max="$users" '
  NR == 1 { print; next }
  { i = NR - 2
    if (i % 15 == 0) $1 = "a" (int(i / 15) % a)
    else { if (n >= 2 * max) next; $1 = "u" int(n / 2); n++ }
    print }' "$tmp/gen.csv" >"$tmp/stream.csv"
rm -f "$tmp/gen.csv"
n=$(($(wc -l <"$tmp/stream.csv") - 1))
say "expiry: producing $n events to $bs ($parts partitions per topic)"
"$build/advrec-produce" -q -b "$bs" -f csv --click-topic ex.clicks --purchase-topic ex.purchases \
  "$tmp/stream.csv" >"$tmp/produce.out" 2>&1 || { cat "$tmp/produce.out" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
metric() { # NAME: its value from /metrics
  awk -v m="$1" '$1 == m { print $2; exit }' "$tmp/metrics"
}

for mode in $modes; do
  max=10000000
  [ "$mode" = cap ] && max=$cap
  port=$(free_port)
  state=$tmp/state.$mode
  log=$tmp/$mode.err
  # shellcheck disable=SC2086 # DAEMON_ARGS: words on purpose
  "$build/advrecd" -c "$here/conf/advrecd.conf" -X broker.embedded=false \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks=ex.clicks -X topic.purchases=ex.purchases \
    -X topic.recommendations=ex.recs -X topic.anomalies=ex.anomalies -X topic.dlq=ex.dlq \
    -X group.id="ex.$mode.$$" -X group.instance.id= -X state.dir="$state" \
    -X model.max.users="$max" -X stats.interval.ms=1000 -X log.level=info \
    -X http.listen="127.0.0.1:$port" ${DAEMON_ARGS:-} 2>"$log" >/dev/null &
  dpid=$!
  t0=$SECONDS
  deadline=$((SECONDS + 1800))
  # Done when every record is consumed (applied or dead-lettered) and no
  # list is owed.
  until curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics" 2>/dev/null &&
    [ "$(awk '$1 ~ /^advrec_records_consumed_total/ { s += $2 } END { print s + 0 }' "$tmp/metrics")" -ge "$n" ] &&
    grep -qE "stats: .* 0 outputs pending; .* 0 stale$" <(tail -1 "$log"); do
    kill -0 "$dpid" 2>/dev/null || { say "advrecd exited:"; tail -5 "$log" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { say "$mode: not done in 30 min"; tail -3 "$log" >&2; exit 1; }
    sleep 1
  done
  secs=$((SECONDS - t0))
  hwm=$(awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$dpid/status")
  curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics"
  dead=$(awk '$1 ~ /^advrec_dead_letters_total\{/ { s += $2 } END { print s + 0 }' "$tmp/metrics")
  full=$(metric 'advrec_dead_letters_total{reason="table-full"}')
  applied=$(awk '$1 ~ /^advrec_events_total\{/ { s += $2 } END { print s + 0 }' "$tmp/metrics")
  live=$(metric advrec_users)
  room=$(metric 'advrec_state_users_deleted_total{cause="capacity"}')
  kill -TERM "$dpid"
  wait "$dpid" || say "$mode: advrecd exited $?"
  dpid=
  printf '%-5s max.users %-8s %d events, %d applied, %d dead letters (%d table-full), %d users live, %d deleted to make room, peak RSS %.0f MiB, %d s\n' \
    "$mode" "$max" "$n" "$applied" "$dead" "${full:-0}" "$live" "${room:-0}" \
    "$(awk -v h="$hwm" 'BEGIN { print h / 1048576 }')" "$secs"
done

# The active users' counters and lists in both states.
say "expiry: comparing $check active users' counters and lists"
for ((i = 0; i < check; i++)); do
  for mode in $modes; do
    "$build/advrec-inspect" -j -c "$here/conf/advrecd.conf" "$tmp/state.$mode" user "a$i" \
      >"$tmp/a$i.$mode.json" 2>/dev/null || echo '{}' >"$tmp/a$i.$mode.json"
  done
done
python3 - "$tmp" "$check" $modes <<'EOF'
import json, sys
tmp, n, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(i, mode):
    return json.load(open(f"{tmp}/a{i}.{mode}.json"))
for run in [m for m in modes if m != "nocap"]:
    same = ident = 0
    overlap = []
    for i in range(n):
        a, b = load(i, run), load(i, "nocap")
        if a.get("clicks") is not None and a.get("clicks") == b.get("clicks") \
                and a.get("purchases") == b.get("purchases"):
            same += 1
        la = [x["item"] for x in a.get("top", [])]
        lb = [x["item"] for x in b.get("top", [])]
        if la and lb:
            overlap.append(len(set(la) & set(lb)) / max(len(la), len(lb)))
            ident += la == lb
    print(f"active users, {run} vs nocap: {n} compared, counters equal {same}, "
          f"lists overlap@10 {sum(overlap) / max(len(overlap), 1):.3f} (mean), "
          f"identical lists {ident}")
EOF
