#!/usr/bin/env bash
# advrecd as a separate process on its embedded broker, stopped by a signal
# while a stream is still being produced into it.
#   daemon_sigterm.sh ADVRECD ITEST_PRODUCE SOURCE_DIR
# For SIGTERM and then SIGINT: start advrecd, read the embedded broker's
# address from its stdout through a FIFO (printed once it is consuming),
# start itest_produce against it in the background, await a stats line
# showing events applied, check the producer is still running (mid-stream),
# send the signal and assert: exit 0 within STOP_S seconds, the stop's
# refresh and the final stats line logged, with events counted.
set -uo pipefail
advrecd=$1
produce=$2
src=$3
STOP_S=40
. "$(dirname "$0")/lib.sh"
itest_init sigterm
failures=0

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# await_stats FILE SECONDS: waits until FILE has a stats or final line whose
# click total is > 0; prints that total. Non-zero on timeout.
await_stats() {
  local file=$1 deadline=$((SECONDS + $2)) n
  while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(grep -oE '(stats|final): .* total [0-9]+ clicks' "$file" 2>/dev/null |
      tail -n 1 | sed -E 's/.* total ([0-9]+) clicks/\1/')
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
      echo "$n"
      return 0
    fi
    sleep 0.1 # polling interval of a bounded wait
  done
  return 1
}

# await_exit PID SECONDS: waits for PID (a child of this shell) to end and
# sets exit_rc to its exit code. Non-zero when it is still running at the
# deadline. Not for $(...): a subshell cannot wait for our children.
await_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.1 # polling interval of a bounded wait
  done
  exit_rc=0
  wait "$pid" || exit_rc=$?
}

run_one() {
  local sig=$1 dir="$tmp/$1" bootstrap dpid ppid n rc t0 exit_rc
  mkdir -p "$dir"
  mkfifo "$dir/out.fifo"
  "$advrecd" -c "$src/conf/advrecd.conf" -X stats.interval.ms=200 \
    -X state.dir="$dir/state" -X log.level=info -X recs.debounce.ms=100 -X recs.max.staleness.ms=500 \
    >"$dir/out.fifo" 2>"$dir/err" &
  dpid=$!
  pids+=("$dpid")
  exec 3<"$dir/out.fifo"
  if ! read -r -t 30 -u 3 bootstrap || [[ "$bootstrap" != 127.0.0.1:* ]]; then
    fail "$sig: no bootstrap address on stdout within 30 s (got '${bootstrap:-}')"
    cat "$dir/err"
    exec 3<&-
    return
  fi
  # 100000 events at 2000/s: still producing long after the first stats.
  "$produce" "$bootstrap" 100000 2000 7 >"$dir/prod.out" 2>"$dir/prod.err" &
  ppid=$!
  pids+=("$ppid")
  if ! n=$(await_stats "$dir/err" 60); then
    fail "$sig: no stats line with events applied within 60 s"
    tail -n 20 "$dir/err"
    cat "$dir/prod.err"
    exec 3<&-
    return
  fi
  if ! kill -0 "$ppid" 2>/dev/null; then
    fail "$sig: the producer already ended; the signal would not be mid-stream"
  fi
  t0=$SECONDS
  kill -"$sig" "$dpid"
  if ! await_exit "$dpid" "$STOP_S"; then
    fail "$sig: advrecd still running $STOP_S s after SIG$sig"
    tail -n 20 "$dir/err"
    exec 3<&-
    return
  fi
  exec 3<&-
  rc=$exit_rc
  if [ "$rc" -ne 0 ]; then
    fail "$sig: exit $rc, want 0"
    tail -n 20 "$dir/err"
  fi
  grep -q "stopping: refreshing" "$dir/err" ||
    fail "$sig: no 'stopping: refreshing' line"
  if ! grep -qE 'final: .* total [0-9]+ clicks' "$dir/err"; then
    fail "$sig: no final stats line"
    tail -n 20 "$dir/err"
  else
    n=$(grep -oE 'final: .* total [0-9]+ clicks' "$dir/err" | tail -n 1 |
      sed -E 's/.* total ([0-9]+) clicks/\1/')
    [ "$n" -gt 0 ] || fail "$sig: final stats line counts no clicks"
    echo "SIG$sig: exit $rc after $((SECONDS - t0)) s, $n clicks applied;" \
      "$(grep -oE 'final: .*' "$dir/err" | tail -n 1)"
  fi
  kill -TERM "$ppid" 2>/dev/null || true
  wait "$ppid" 2>/dev/null || true
}

run_one TERM
run_one INT

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
