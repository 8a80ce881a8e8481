#!/usr/bin/env bash
# A low file-descriptor limit (issue 14, point 4): advrecd started with a
# soft RLIMIT_NOFILE of 24 opens its state but cannot open the sockets of
# its Kafka clients. It must say so (librdkafka's "Too many open files",
# routed into our log), keep running, and once the limit is lifted on the
# running process (prlimit --pid) connect and apply every event, with a
# state that holds exactly what it consumed (no corruption).
#   resource_limits.sh ADVRECD ITEST_PRODUCE ADVREC_INSPECT SOURCE_DIR
set -uo pipefail
advrecd=$1
produce=$2
inspect=$3
src=$4
. "$(dirname "$0")/lib.sh"
itest_init resource-limits

command -v prlimit >/dev/null || die "prlimit (util-linux) is missing"
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
mkfifo "$tmp/out"
prlimit --nofile=24: -- "$advrecd" -c "$src/conf/advrecd.conf" \
  -X state.dir="$tmp/state" -X stats.interval.ms=200 -X http.listen= \
  >"$tmp/out" 2>"$tmp/err" &
dpid=$!
pids+=("$dpid")
exec 3<"$tmp/out"
read -r -t 30 -u 3 bootstrap || { cat "$tmp/err"; die "no bootstrap address within 30 s"; }
await_fixed "$tmp/err" "Too many open files" 60 ||
  { tail -5 "$tmp/err"; die "no 'Too many open files' in the log within 60 s at 24 descriptors"; }
kill -0 "$dpid" 2>/dev/null || die "advrecd exited at the descriptor limit"
[ "$(applied "$tmp/err")" = 0 ] || die "events applied before any was produced"
echo "ok   at 24 descriptors: 'Too many open files' logged, still running"

prlimit --pid "$dpid" --nofile="$hard": || die "prlimit --pid $dpid failed"
"$produce" "$bootstrap" 2000 0 7 >"$tmp/produce.log" 2>&1 ||
  { cat "$tmp/produce.log"; die "producer failed"; }
await_applied "$tmp/err" 2000 120 ||
  { tail -5 "$tmp/err"; die "the 2000 events not applied within 120 s of lifting the limit"; }
kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
[ "$rc" -eq 0 ] || die "advrecd exit $rc on SIGTERM"
n=$("$inspect" "$tmp/state" offsets --json |
  python3 -c 'import json,sys; print(sum(o["next"] for o in json.load(sys.stdin)))') ||
  die "advrec-inspect cannot read the state"
[ "$n" = 2000 ] || die "the state's offsets sum to $n, not the 2000 records applied"
echo "ok   limit lifted: 2000 events applied, exit 0, the state's offsets sum to 2000"
echo "2 passed, 0 failed"
