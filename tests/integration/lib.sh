# tests/integration/lib.sh - what the integration shell tests share.
# Sourced, not run:
#
#   . "$(dirname "$0")/lib.sh"
#   itest_init NAME            $tmp (a fresh directory, removed at exit), the
#                              pids array (every process in it is killed at
#                              exit), and the EXIT trap that does both
#   spawn CMD...               runs CMD in the background, adds its pid to
#                              pids, and sets $spawned to it (redirect to
#                              files only: redirecting the call to a FIFO
#                              blocks this shell in open() before the fork;
#                              for a FIFO write `cmd >fifo & pids+=($!)`)
#   die MSG                    prints "FAIL MSG" and the summary line, exits 1
#   await_line FILE ERE SECS   prints FILE's first line matching the extended
#                              regex ERE; non-zero if none within SECS
#   await_fixed FILE STR SECS  0 once FILE has a line holding the fixed
#                              string STR; non-zero if none within SECS
#   applied FILE               clicks + purchases of FILE's last stats (or
#                              final) line; 0 when there is none
#   await_applied FILE N SECS  0 once applied FILE >= N; non-zero otherwise
#
# Every wait polls with a deadline (never a fixed sleep) and every process
# started with spawn is cleaned up, whatever way the script ends.

itest_init() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-$1.XXXXXX")
  pids=()
  trap itest_cleanup EXIT
}

itest_cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}

spawn() {
  "$@" &
  spawned=$!
  pids+=("$spawned")
}

die() {
  echo "FAIL $*"
  echo "0 passed, 1 failed"
  exit 1
}

await_line() {
  local deadline=$((SECONDS + $3)) m
  while [ "$SECONDS" -lt "$deadline" ]; do
    m=$(grep -m1 -E -- "$2" "$1" 2>/dev/null) && { echo "$m"; return 0; }
    sleep 0.1 # polling interval of a bounded wait
  done
  return 1
}

await_fixed() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1 # polling interval of a bounded wait
  done
  return 1
}

applied() {
  grep -oE '(stats|final): .* total [0-9]+ clicks, [0-9]+ purchases' "$1" 2>/dev/null |
    tail -n 1 | sed -E 's/.* total ([0-9]+) clicks, ([0-9]+) purchases/\1 \2/' |
    awk '{ n = $1 + $2 } END { print n + 0 }'
}

await_applied() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(applied "$1")" -ge "$2" ] && return 0
    sleep 0.1 # polling interval of a bounded wait
  done
  return 1
}
