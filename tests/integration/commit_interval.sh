#!/usr/bin/env bash
# State commits by time (state.commit.interval.ms): rounds apply events
# without committing until the interval has passed, and what was applied is
# committed before a checkpoint and at a clean stop, with exactly the
# offsets it reflects.
#   commit_interval.sh ADVRECD ITEST_PRODUCE ADVREC_INSPECT SOURCE_DIR
# advrecd runs on its embedded broker with an interval of 10 minutes:
#  1. 2,000 events applied (stats lines), and the state on disk still holds
#     no offset and no user (advrec-inspect reads it live): no round
#     committed on its own;
#  2. SIGUSR1: the checkpoint commits first, so the state and the checkpoint
#     hold offsets summing to exactly the 2,000 records consumed;
#  3. 1,000 more events, SIGTERM: exit 0 and the stored offsets sum to 3,000.
set -uo pipefail
advrecd=$1
produce=$2
inspect=$3
src=$4
. "$(dirname "$0")/lib.sh"
itest_init commit-interval
fail() { die "$@"; }

# offsets_sum DIR: the sum of the next offsets stored per partition (the
# topics start at offset 0, so: the records the state reflects).
offsets_sum() {
  "$inspect" "$1" offsets --json |
    python3 -c 'import json,sys; print(sum(o["next"] for o in json.load(sys.stdin)))'
}

mkfifo "$tmp/out"
"$advrecd" -c "$src/conf/advrecd.conf" -X state.dir="$tmp/state" \
  -X state.checkpoint.dir="$tmp/ckpt" -X stats.interval.ms=100 -X http.listen= \
  -X state.commit.interval.ms=600000 >"$tmp/out" 2>"$tmp/err" &
dpid=$!
pids+=("$dpid")
exec 3<"$tmp/out"
read -r -t 30 -u 3 bootstrap || fail "no bootstrap address within 30 s"

"$produce" "$bootstrap" 2000 0 7 >"$tmp/produce.log" 2>&1 || fail "producer failed"
await_line "$tmp/err" 'stats: .* total [0-9]+ clicks, [0-9]+ purchases, [0-9]+ lists, [0-9]+ dlq' 60 >/dev/null ||
  fail "no stats line within 60 s"
# consumed = applied + dead letters; the generated stream has no bad records
await_applied "$tmp/err" 2000 60 ||
  { tail -3 "$tmp/err"; fail "2000 events not applied within 60 s"; }
n=$(offsets_sum "$tmp/state") || fail "advrec-inspect offsets failed"
users=$("$inspect" "$tmp/state" summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')
[ "$n" = 0 ] && [ "$users" = 0 ] ||
  fail "before the interval the state holds offsets summing to $n and $users users (no commit expected)"

kill -USR1 "$dpid"
line=$(await_line "$tmp/err" 'checkpoint written to .* \(start a daemon' 30) ||
  { cat "$tmp/err"; fail "no checkpoint within 30 s of SIGUSR1"; }
ckpt=$(sed -E 's/.*checkpoint written to ([^ ]+) .*/\1/' <<<"$line")
n=$(offsets_sum "$ckpt") || fail "advrec-inspect cannot read the checkpoint"
[ "$n" = 2000 ] || fail "the checkpoint's offsets sum to $n, not the 2000 records applied"
n=$(offsets_sum "$tmp/state")
[ "$n" = 2000 ] || fail "after the checkpoint the state's offsets sum to $n, not 2000"

"$produce" "$bootstrap" 1000 0 8 >>"$tmp/produce.log" 2>&1 || fail "second producer failed"
await_applied "$tmp/err" 3000 60 ||
  { tail -3 "$tmp/err"; fail "3000 events not applied within 60 s"; }
kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
[ "$rc" -eq 0 ] || fail "advrecd exit $rc on SIGTERM"
n=$(offsets_sum "$tmp/state")
[ "$n" = 3000 ] || fail "after a clean stop the state's offsets sum to $n, not 3000"
echo "1 passed, 0 failed"
