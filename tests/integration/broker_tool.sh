#!/usr/bin/env bash
# tools/advrec-broker as a process: prints its bootstrap address on stdout
# (awaited through a FIFO), serves advrec's topics (advrec-produce delivers a
# small CSV to them and exits 0 only when every event is acknowledged), and
# exits 0 on SIGTERM.
#   broker_tool.sh ADVREC_BROKER ADVREC_PRODUCE
set -uo pipefail
broker=$1
produce=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-broker-tool.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }

mkfifo "$tmp/out"
"$broker" --partitions 3 -f "$tmp/bootstrap" >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3<"$tmp/out"
read -r -t 30 -u 3 bootstrap || fail "no address on stdout within 30 s"
[[ "$bootstrap" == 127.0.0.1:* ]] || fail "address '$bootstrap'"
[ "$(cat "$tmp/bootstrap")" = "$bootstrap" ] || fail "--bootstrap-file differs"

printf 'user,item,type,ts\nu1,i1,click,1700000000000\nu1,i2,purchase,1700000001000\nu2,i1,click,1700000002000\n' >"$tmp/ev.csv"
timeout 60 "$produce" -b "$bootstrap" --format csv --quiet "$tmp/ev.csv" \
  >"$tmp/produce.out" 2>&1 || { cat "$tmp/produce.out"; fail "advrec-produce did not deliver"; }

kill -TERM "$pid"
rc=0
timeout 30 tail --pid="$pid" -f /dev/null || fail "no exit within 30 s of SIGTERM"
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit $rc on SIGTERM"
echo "1 passed, 0 failed"
