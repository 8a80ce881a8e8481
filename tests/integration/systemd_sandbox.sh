#!/usr/bin/env bash
# advrecd under the unit's sandbox, reproduced by hand (no systemd as PID 1
# here, so no systemd-run): it must still consume a stream on its embedded
# broker and exit 0 on SIGTERM.
#   systemd_sandbox.sh ADVRECD ITEST_PRODUCE SOURCE_DIR
#
# Reproduced from systemd/advrecd.service.in:
#   DynamicUser=yes            an unprivileged uid/gid (65534), no groups
#   CapabilityBoundingSet=, AmbientCapabilities=
#                              bounding, inheritable and ambient sets empty
#                              (setpriv as root; bwrap --cap-drop ALL else)
#   NoNewPrivileges=yes        setpriv --no-new-privs
#   UMask=0027                 umask 0027; checked: no file in the state dir
#                              is world-readable afterwards
#   ProtectSystem=strict       / bound read-only (bwrap --ro-bind / /)
#   StateDirectory=advrec advrec-checkpoints, StateDirectoryMode=0750
#                              two writable binds at /var/lib/advrec* (on
#                              a tmpfs /var/lib: mount points cannot be
#                              made under the read-only root); the config
#                              file read-only at /run/advrec, standing in
#                              for /etc/advrec for the same reason
#   ProtectHome=yes            empty tmpfs over /home and /root
#   PrivateTmp=yes             a tmpfs /tmp
#   PrivateDevices=yes         a minimal /dev (bwrap --dev)
#   ProtectProc=invisible, ProcSubset=pid
#                              a new PID namespace and its own /proc: only
#                              the sandbox's processes are visible (the
#                              rest of /proc is not hidden as ProcSubset=pid
#                              would; advrecd reads nothing there anyway)
#   ProtectKernelTunables=, ProtectControlGroups=
#                              /proc/sys and /sys read-only (under the
#                              read-only /)
#   MemoryDenyWriteExecute=yes prctl(PR_SET_MDWE, REFUSE_EXEC_GAIN) when the
#                              kernel has it (6.3+; said when it does not):
#                              inherited, so OpenBLAS, RocksDB and
#                              librdkafka run with W^X enforced
#   RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
#                              not enforced; checked instead with strace
#                              (when installed): every socket() advrecd
#                              opens is one of those three, or AF_NETLINK
#                              (reported): glibc's getaddrinfo(AI_ADDRCONFIG),
#                              called by librdkafka's resolver, asks
#                              NETLINK_ROUTE for the host's address families
#                              and assumes both when that is refused, so the
#                              unit leaves AF_NETLINK out
#   Environment=OPENBLAS_NUM_THREADS=1
# Not reproduced (seccomp or kernel state set up by systemd): the other
# protections are SystemCallFilter=@system-service ~@privileged,
# SystemCallArchitectures=native, LockPersonality, RestrictNamespaces,
# RestrictRealtime, RestrictSUIDSGID, ProtectClock, ProtectHostname,
# ProtectKernelModules, ProtectKernelLogs, PrivateUsers, PrivateMounts,
# RemoveIPC, KeyringMode, DevicePolicy. They can only be shown under
# systemd: `systemd-run -p ... advrecd` on a host that has it.
set -uo pipefail
advrecd=$1
produce=$2
src=$3
command -v bwrap >/dev/null 2>&1 || {
  echo "SKIP: no bwrap (tools/install-deps.sh installs bubblewrap)"
  exit 77
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-sandbox.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# The state directories as systemd makes them: owned by the service user,
# 0750. The test's own files stay outside the sandbox.
chmod 0755 "$tmp"
mkdir -p "$tmp/state" "$tmp/checkpoints" "$tmp/etc"
cat >"$tmp/etc/advrecd.conf" <<CONF
state.dir = /var/lib/advrec/state
state.checkpoint.dir = /var/lib/advrec-checkpoints
stats.interval.ms = 200
recs.debounce.ms = 100
recs.max.staleness.ms = 500
CONF
chmod 0755 "$tmp/etc" && chmod 0644 "$tmp/etc/advrecd.conf"

# How to become an unprivileged user without capabilities.
if [ "$(id -u)" -eq 0 ]; then
  chown 65534:65534 "$tmp/state" "$tmp/checkpoints"
  chmod 0750 "$tmp/state" "$tmp/checkpoints"
  userns=()
  drop=(setpriv --reuid=65534 --regid=65534 --clear-groups
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs --)
else
  userns=(--unshare-user --uid 65534 --gid 65534 --cap-drop ALL)
  drop=(setpriv --no-new-privs --)
fi
mdwe=()
if python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.prctl(65, 1, 0, 0, 0) == 0 else 1)' 2>/dev/null; then
  # PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1; then exec the rest.
  mdwe=(python3 -c 'import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): errno %d" % ctypes.get_errno())
os.execvp(sys.argv[1], sys.argv[1:])')
  echo "MemoryDenyWriteExecute: reproduced with PR_SET_MDWE"
else
  echo "MemoryDenyWriteExecute: NOT reproduced (no PR_SET_MDWE in this kernel)"
fi
trace=()
if command -v strace >/dev/null 2>&1; then
  trace=(strace -f -qq -e trace=socket -o /var/lib/advrec/strace.out)
  # LeakSanitizer cannot run under ptrace and aborts at exit: in the
  # sanitizer build, leaks are checked by the other tests, not this one.
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

# advrecd_pid PID: the host pid of the advrecd process below PID.
advrecd_pid() {
  local todo=("$1") p c
  while [ "${#todo[@]}" -gt 0 ]; do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = advrecd ]; then
      echo "$p"
      return 0
    fi
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
      todo+=("$c")
    done
  done
  return 1
}

# The binary and the source tree (schemas/) stay visible read-only, as the
# installed /usr does under the unit, even when they live below a directory
# the sandbox replaces (a checkout in /tmp or /home).
bin_dir=$(dirname "$(readlink -f "$advrecd")")
src_dir=$(readlink -f "$src")

mkfifo "$tmp/out.fifo"
(
  umask 0027
  exec "${mdwe[@]}" bwrap "${userns[@]}" \
    --ro-bind / / \
    --tmpfs /home --tmpfs /root --tmpfs /tmp \
    --dev /dev --unshare-pid --proc /proc --die-with-parent \
    --tmpfs /var/lib \
    --bind "$tmp/state" /var/lib/advrec \
    --bind "$tmp/checkpoints" /var/lib/advrec-checkpoints \
    --tmpfs /run --ro-bind "$tmp/etc" /run/advrec \
    --ro-bind "$src_dir" "$src_dir" --ro-bind "$bin_dir" "$bin_dir" \
    --setenv OPENBLAS_NUM_THREADS 1 \
    -- "${drop[@]}" "${trace[@]}" "$advrecd" -c /run/advrec/advrecd.conf
) >"$tmp/out.fifo" 2>"$tmp/err" &
dpid=$!
pids+=("$dpid")
exec 3<"$tmp/out.fifo"
if ! read -r -t 60 -u 3 bootstrap || [[ "$bootstrap" != 127.0.0.1:* ]]; then
  echo "FAIL no bootstrap address on stdout within 60 s (got '${bootstrap:-}')"
  cat "$tmp/err"
  exit 1
fi
if ! "$produce" "$bootstrap" 3000 0 5 >"$tmp/prod.out" 2>"$tmp/prod.err"; then
  fail "itest_produce failed"
  cat "$tmp/prod.err"
fi
# Bounded wait for the stream to be applied.
deadline=$((SECONDS + 60))
n=0
while [ "$SECONDS" -lt "$deadline" ]; do
  n=$(grep -oE 'stats: .* total [0-9]+ clicks' "$tmp/err" | tail -n 1 |
    sed -E 's/.* total ([0-9]+) clicks/\1/')
  [ -n "$n" ] && [ "$n" -gt 0 ] && break
  sleep 0.1 # polling interval of a bounded wait
done
[ -n "$n" ] && [ "$n" -gt 0 ] || fail "no clicks applied within 60 s"
# SIGTERM goes to advrecd itself, as systemd's KillMode would send it: it is
# a descendant of the wrapper we started (bwrap, setpriv, strace in between).
apid=$(advrecd_pid "$dpid")
if [ -z "$apid" ]; then
  fail "advrecd not found among the sandbox's processes"
  apid=$dpid
fi
kill -TERM "$apid"
deadline=$((SECONDS + 40))
while kill -0 "$dpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.1 # polling interval of a bounded wait
done
if kill -0 "$dpid" 2>/dev/null; then
  fail "advrecd still running 40 s after SIGTERM"
else
  rc=0
  wait "$dpid" || rc=$?
  # bwrap exits with its child's status.
  [ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM, want 0"
fi
exec 3<&-
grep -qE 'final: .* total [1-9][0-9]* clicks' "$tmp/err" ||
  fail "no final stats line with clicks"
echo "$(grep -oE 'final: .*' "$tmp/err" | tail -n 1)"

# UMask=0027 and the service user: nothing world-readable, all its own.
if [ -n "$(find "$tmp/state" -perm /o+rwx -print -quit)" ]; then
  fail "world-accessible files in the state dir (umask 0027 not honoured):"
  find "$tmp/state" -perm /o+rwx -ls | head
fi
if [ "$(id -u)" -eq 0 ] && [ -n "$(find "$tmp/state" ! -uid 65534 -print -quit)" ]; then
  fail "files in the state dir not owned by the service user"
fi
[ -n "$(find "$tmp/state" -name CURRENT -print -quit)" ] ||
  fail "no RocksDB state written in the state dir"

if [ -f "$tmp/state/strace.out" ]; then
  fams=$(grep -oE 'socket\((AF|PF)_[A-Z0-9]+' "$tmp/state/strace.out" |
    sed -E 's/socket\(//' | sort | uniq -c | tr '\n' ' ')
  echo "socket() families opened: $fams"
  if grep -oE 'socket\((AF|PF)_[A-Z0-9]+' "$tmp/state/strace.out" |
    grep -vqE 'AF_INET|AF_INET6|AF_UNIX|AF_LOCAL|AF_NETLINK|PF_NETLINK'; then
    fail "advrecd opened a socket outside RestrictAddressFamilies"
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  tail -n 30 "$tmp/err"
  exit 1
fi
echo "all checks passed"
