#!/usr/bin/env bash
# SIGHUP reloads advrecd's configuration (docs/OPERATIONS.md).
#   daemon_reload.sh ADVRECD ITEST_PRODUCE
# Starts advrecd on its embedded broker with a config file and two -X
# overrides, produces a stream, then:
#  1. edits the file (recs.debounce.ms 500 -> 200, model.k 64 -> 32, and
#     anomaly.flag.score, which -X overrides) and sends SIGHUP: awaits
#     "reload: recs.debounce.ms 500 -> 200" and "reload: model.k changed;
#     needs a restart, kept 64"; no line for anomaly.flag.score (the -X is
#     applied again over the file);
#  2. a file with an unknown key: awaits the refusal of the whole file, and
#     checks nothing changed (recs.debounce.ms stays 200 at the next reload);
#  3. after that, the daemon still consumes (more clicks counted), and
#     SIGTERM makes it exit 0.
set -uo pipefail
advrecd=$1
produce=$2
. "$(dirname "$0")/lib.sh"
itest_init reload
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}


# clicks FILE: the click total of the last stats line (0 when none).
clicks() {
  grep -oE 'stats: .* total [0-9]+ clicks' "$1" 2>/dev/null | tail -n 1 |
    sed -E 's/.* total ([0-9]+) clicks/\1/;t;s/.*/0/' | grep . || echo 0
}

write_conf() { # debounce model.k flag.score [extra line]
  cat >"$tmp/advrecd.conf.new" <<CONF
# daemon_reload.sh
state.dir = $tmp/state
stats.interval.ms = 200
recs.debounce.ms = $1
recs.max.staleness.ms = 5000
model.k = $2
anomaly.flag.score = $3
${4:-}
CONF
  mv "$tmp/advrecd.conf.new" "$tmp/advrecd.conf" # as an editor's save
}

write_conf 500 64 0.6
mkfifo "$tmp/out.fifo"
"$advrecd" -c "$tmp/advrecd.conf" -X log.level=info \
  -X anomaly.flag.score=0.65 >"$tmp/out.fifo" 2>"$tmp/err" &
dpid=$!
pids+=("$dpid")
exec 3<"$tmp/out.fifo"
if ! read -r -t 30 -u 3 bootstrap || [[ "$bootstrap" != 127.0.0.1:* ]]; then
  echo "FAIL no bootstrap address on stdout within 30 s"
  cat "$tmp/err"
  exit 1
fi
"$produce" "$bootstrap" 20000 1000 11 >"$tmp/prod.out" 2>"$tmp/prod.err" &
ppid=$!
pids+=("$ppid")

# 1. An accepted change, a refused key, and an -X that still wins.
write_conf 200 32 0.7
kill -HUP "$dpid"
await_fixed "$tmp/err" "reload: recs.debounce.ms 500 -> 200" 20 ||
  fail "no 'reload: recs.debounce.ms 500 -> 200' line"
await_fixed "$tmp/err" "reload: model.k changed; needs a restart, kept 64" 20 ||
  fail "no 'reload: model.k changed; needs a restart, kept 64' line"
await_fixed "$tmp/err" "reload: 1 change(s) applied, 1 refused" 20 ||
  fail "no 'reload: 1 change(s) applied, 1 refused' summary"
grep -F "reload: anomaly.flag.score" "$tmp/err" &&
  fail "anomaly.flag.score reloaded from the file over its -X"

# 2. A file that does not parse is refused whole; the daemon goes on.
write_conf 100 64 0.6 "no.such.key = 1"
kill -HUP "$dpid"
await_fixed "$tmp/err" "configuration refused, nothing changed" 20 ||
  fail "no 'configuration refused, nothing changed' line"
grep -F "reload: recs.debounce.ms 200 -> 100" "$tmp/err" &&
  fail "a refused file changed recs.debounce.ms"
kill -0 "$dpid" 2>/dev/null || fail "advrecd ended after a refused reload"

# 3. Still consuming, and a clean stop.
before=$(clicks "$tmp/err")
deadline=$((SECONDS + 30))
while [ "$(clicks "$tmp/err")" -le "$before" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.1 # polling interval of a bounded wait
done
after=$(clicks "$tmp/err")
[ "$after" -gt "$before" ] ||
  fail "no more clicks counted after the reloads ($before, then $after)"
kill -TERM "$dpid"
deadline=$((SECONDS + 40))
while kill -0 "$dpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.1 # polling interval of a bounded wait
done
if kill -0 "$dpid" 2>/dev/null; then
  fail "advrecd still running 40 s after SIGTERM"
else
  rc=0
  wait "$dpid" || rc=$?
  [ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM, want 0"
fi
exec 3<&-
grep -E "reload|refused" "$tmp/err"
echo "clicks counted: $before before the last reload's check, $after after"
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  tail -n 30 "$tmp/err"
  exit 1
fi
echo "all checks passed"
