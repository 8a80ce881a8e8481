#!/usr/bin/env bash
# SIGUSR1 makes advrecd write a consistent checkpoint of its state, and a
# daemon started from the checkpoint (state.dir=<it>) loads that state.
#   checkpoint.sh ADVRECD ITEST_PRODUCE ADVREC_INSPECT SOURCE_DIR
# Start advrecd on its embedded broker with a state dir, feed it a stream,
# await events applied, send SIGUSR1, await the "checkpoint written to DIR"
# line, stop it (SIGTERM, exit 0); then advrec-inspect reads the checkpoint
# (users > 0), and advrecd started on it logs the same user count on load.
# After the clean stop, advrec-inspect's `pending` shows nothing owed: no
# user waiting for a list, no flag or dead letter unacknowledged.
set -uo pipefail
advrecd=$1
produce=$2
inspect=$3
src=$4
. "$(dirname "$0")/lib.sh"
itest_init checkpoint
fail() { die "$@"; }

mkfifo "$tmp/out"
"$advrecd" -c "$src/conf/advrecd.conf" -X state.dir="$tmp/state" \
  -X state.checkpoint.dir="$tmp/ckpt" -X stats.interval.ms=200 \
  >"$tmp/out" 2>"$tmp/err" &
dpid=$!
pids+=("$dpid")
exec 3<"$tmp/out"
read -r -t 30 -u 3 bootstrap || fail "no bootstrap address within 30 s"
"$produce" "$bootstrap" 2000 0 7 >"$tmp/produce.log" 2>&1 || fail "producer failed"
await_line "$tmp/err" 'stats: .* total [1-9][0-9]* clicks' 60 >/dev/null ||
  fail "no events applied within 60 s"
kill -USR1 "$dpid"
line=$(await_line "$tmp/err" 'checkpoint written to .* \(start a daemon' 30) ||
  { cat "$tmp/err"; fail "no checkpoint within 30 s of SIGUSR1"; }
ckpt=$(sed -E 's/.*checkpoint written to ([^ ]+) .*/\1/' <<<"$line")
[ -d "$ckpt" ] || fail "checkpoint dir '$ckpt' missing"
kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
[ "$rc" -eq 0 ] || fail "advrecd exit $rc on SIGTERM"

owed=$("$inspect" "$tmp/state" pending --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["users_owed_a_list"], len(d["outputs"]))') ||
  fail "advrec-inspect pending failed"
[ "$owed" = "0 0" ] || fail "after a clean stop the state still owes (users, outputs): $owed"

users=$("$inspect" "$ckpt" summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])') ||
  fail "advrec-inspect cannot read the checkpoint"
[ "$users" -gt 0 ] || fail "checkpoint holds $users users"

# A daemon started from the checkpoint loads exactly that state.
mkfifo "$tmp/out2"
"$advrecd" -c "$src/conf/advrecd.conf" -X state.dir="$ckpt" \
  >"$tmp/out2" 2>"$tmp/err2" &
dpid=$!
pids+=("$dpid")
exec 4<"$tmp/out2"
read -r -t 30 -u 4 _ || { cat "$tmp/err2"; fail "daemon on the checkpoint did not start"; }
grep -qE "state $ckpt: $users users" "$tmp/err2" ||
  { cat "$tmp/err2"; fail "daemon on the checkpoint did not load $users users"; }
kill -TERM "$dpid"
wait "$dpid" || fail "daemon on the checkpoint: non-zero exit"
echo "1 passed, 0 failed"
