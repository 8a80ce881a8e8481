#!/usr/bin/env bash
# advrecd (a separate process, embedded broker) on bad state dirs.
#   state_errors.sh ADVRECD ITEST_PRODUCE STATE_DUMP SOURCE_DIR
# 1. missing: state.dir with missing parents is created; the daemon runs,
#    applies a stream, and SIGTERM exits 0 (this state is "good" below).
# 2. corrupt: garbage in CURRENT -> non-zero sysexits code, the reason on
#    stderr, every file byte-identical afterwards.
# 3. read-only: a read-only bind mount of a good state (root ignores mode
#    bits, so chmod would prove nothing); without mount rights, the daemon
#    runs as nobody (setpriv) over a root-owned dir. Non-zero sysexits
#    code, the reason on stderr, every file byte-identical.
# 4. full: a good state copied onto a 2 MiB tmpfs. The store refuses a
#    commit without 64 MiB + twice the batch free (a failed WAL append
#    aborts the Debian RocksDB build, docs/STATE.md), so the first round
#    with events fails: exit 74 (EX_IOERR) with "filesystem full", and the
#    state still opens and holds exactly what it held (state_dump equal).
#    Skipped with the reason printed when tmpfs cannot be mounted.
set -uo pipefail
advrecd=$1
produce=$2
dump=$3
src=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-state-errors.XXXXXX")
chmod 755 "$tmp"
pids=()
mounts=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# sums DIR: every file's sha256, sorted by path.
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# await_exit PID SECONDS: sets exit_rc; non-zero if still running.
await_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1 # polling interval of a bounded wait
  done
  exit_rc=0
  wait "$pid" || exit_rc=$?
}

# start NAME STATE_DIR [PREFIX...]: advrecd in the background (pid in dpid,
# stderr in $tmp/NAME.err); reads the broker address into bootstrap (empty
# when the daemon ended before printing it).
start() {
  local name=$1 state=$2
  shift 2
  rm -f "$tmp/$name.fifo"
  mkfifo "$tmp/$name.fifo"
  chmod 666 "$tmp/$name.fifo"
  "$@" "$advrecd" -c "$src/conf/advrecd.conf" -X state.dir="$state" \
    -X log.level=info -X stats.interval.ms=200 \
    >"$tmp/$name.fifo" 2>"$tmp/$name.err" &
  dpid=$!
  pids+=("$dpid")
  exec 3<"$tmp/$name.fifo"
  bootstrap=
  read -r -t 30 -u 3 bootstrap || true
  exec 3<&-
}

# expect_refusal NAME WANT_RC PATTERN: the daemon must exit WANT_RC within
# 30 s, saying PATTERN on stderr.
expect_refusal() {
  local name=$1 want=$2 pattern=$3
  if ! await_exit "$dpid" 30; then
    fail "$name: still running after 30 s"
    return
  fi
  [ "$exit_rc" -eq "$want" ] || fail "$name: exit $exit_rc, want $want"
  grep -qE "$pattern" "$tmp/$name.err" ||
    fail "$name: stderr does not say /$pattern/: $(tail -n 3 "$tmp/$name.err")"
  echo "$name: exit $exit_rc: $(grep -E 'err(or)?:' "$tmp/$name.err" | tail -n 1)"
}

# 1. missing
good="$tmp/missing/a/b/state"
start missing "$good"
if [ -z "$bootstrap" ]; then
  fail "missing: advrecd did not start: $(tail -n 5 "$tmp/missing.err")"
else
  [ -f "$good/CURRENT" ] || fail "missing: $good/CURRENT not created"
  "$produce" "$bootstrap" 3000 0 3 >/dev/null 2>"$tmp/prod.err" ||
    fail "missing: itest_produce failed: $(cat "$tmp/prod.err")"
  deadline=$((SECONDS + 60))
  until grep -qE 'stats: .* total [1-9][0-9]* clicks' "$tmp/missing.err"; do
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.1 # polling interval of a bounded wait
  done
  kill -TERM "$dpid"
  if await_exit "$dpid" 30 && [ "$exit_rc" -eq 0 ]; then
    echo "missing: created $good, applied a stream, SIGTERM -> exit 0"
  else
    fail "missing: SIGTERM: exit ${exit_rc:-none}"
  fi
fi
"$dump" "$good" >"$tmp/good.dump" || fail "missing: state_dump of the new state failed"
grep -q '^user ' "$tmp/good.dump" || fail "missing: the new state holds no user"

# 2. corrupt CURRENT
cp -a "$good" "$tmp/corrupt"
printf 'garbage\x00\x01 not a manifest name\n' >"$tmp/corrupt/CURRENT"
sums "$tmp/corrupt" >"$tmp/corrupt.before"
start corrupt "$tmp/corrupt"
[ -z "$bootstrap" ] || fail "corrupt: advrecd started on a corrupt state"
expect_refusal corrupt 74 "CURRENT"
sums "$tmp/corrupt" | cmp -s - "$tmp/corrupt.before" ||
  fail "corrupt: files changed: $(sums "$tmp/corrupt" | diff - "$tmp/corrupt.before")"

# 3. read-only
cp -a "$good" "$tmp/ro"
sums "$tmp/ro" >"$tmp/ro.before"
if mount --bind "$tmp/ro" "$tmp/ro" 2>/dev/null && mounts+=("$tmp/ro") &&
  mount -o remount,ro,bind "$tmp/ro" 2>/dev/null; then
  echo "read-only: a read-only bind mount"
  start ro "$tmp/ro"
else
  echo "read-only: no mount rights; running advrecd as nobody over a root-owned dir"
  chmod -R a+rX "$tmp/ro"
  start ro "$tmp/ro" setpriv --reuid=nobody --regid=nogroup --clear-groups
fi
[ -z "$bootstrap" ] || fail "read-only: advrecd started on a read-only state"
expect_refusal ro 74 "Read-only file system|Permission denied"
sums "$tmp/ro" | cmp -s - "$tmp/ro.before" || fail "read-only: files changed"

# 4. full
if ! mkdir -p "$tmp/full" || ! mount -t tmpfs -o size=2m tmpfs "$tmp/full" 2>/dev/null; then
  echo "SKIP full: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
else
  mounts+=("$tmp/full")
  if ! cp -a "$good" "$tmp/full/state"; then
    echo "SKIP full: the good state ($(du -sh "$good" | cut -f1)) does not fit 2 MiB"
  else
    start full "$tmp/full/state"
    if [ -z "$bootstrap" ]; then
      # Opening may already need more room than there is: a refusal too.
      expect_refusal full 74 "state|space"
    else
      "$produce" "$bootstrap" 500 0 9 >/dev/null 2>&1 &
      pids+=("$!")
      expect_refusal full 74 "filesystem full"
    fi
    "$dump" "$tmp/full/state" >"$tmp/full.dump" ||
      fail "full: the state does not open afterwards"
    cmp -s "$tmp/full.dump" "$tmp/good.dump" ||
      fail "full: the state's rows or offsets changed"
    echo "full: state intact ($(grep -c '^user ' "$tmp/full.dump") users, same dump)"
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
