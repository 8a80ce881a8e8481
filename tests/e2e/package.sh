#!/usr/bin/env bash
# e2e.package: the .deb, built and installed on this machine, runs against
# the real broker as the unit would run it, and purges cleanly.
#
#   package.sh SRC KAFKA_DIR KAFKA_SH
#
# 1. configures SRC for the package (prefix /usr, no source-tree schemas) in a
#    temporary directory, builds it and runs `cpack -G DEB` there;
# 2. `dpkg -i` (apt-get -f install if dependencies are missing);
# 3. checks the layout: binaries, unit (User=advrec, /usr/sbin/advrecd),
#    sysusers.d/tmpfiles.d, the advrec user, /var/lib/advrec and the
#    checkpoints directory advrec:advrec 0750, the config 0640 root:advrec,
#    every man page rendering with `man -l`;
# 4. runs the INSTALLED advrecd as user advrec (setpriv, as User=/Group=)
#    with the installed config plus -X broker.embedded=false, the broker's
#    address and test-unique topics and group, state in /var/lib/advrec;
#    produces a generated stream with the installed advrec-gen and
#    advrec-produce; waits for a list on the recommendations topic (Kafka's
#    own console consumer); SIGUSR1 makes a checkpoint as advrec; SIGTERM
#    must exit 0;
# 5. `dpkg --purge advrec`: every file the package installed is gone, the
#    state and checkpoints too, the advrec user stays (packaging/debian/postrm).
#
# The machine is restored on any exit (trap): the daemon killed, the package
# purged, the advrec user and group deleted if this test created them.
# Skipped (77) when not root, or when advrec is already installed or its
# directories exist (this test must not touch an installation it did not make).
set -euo pipefail

src=$1 kdir=$2 kafka_sh=$3
say() { echo "package.sh: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || { say "skipped: needs root (dpkg -i)"; exit 77; }
pkg_state() { dpkg-query -W -f='${db:Status-Status}' advrec 2>/dev/null || true; }
case $(pkg_state) in "" | not-installed) ;; *)
  say "skipped: package advrec is already on this machine ($(pkg_state))"; exit 77 ;;
esac
for d in /etc/advrec /var/lib/advrec /var/lib/advrec-checkpoints; do
  [ ! -e "$d" ] || { say "skipped: $d exists (not made by this test)"; exit 77; }
done
user_existed=0
getent passwd advrec >/dev/null && user_existed=1
group_existed=0
getent group advrec >/dev/null && group_existed=1

tmp=$(mktemp -d /tmp/advrec-pkg.XXXXXX)
pid=
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  case $(pkg_state) in "" | not-installed) ;; *)
    dpkg --purge advrec >/dev/null 2>&1 || say "cleanup: dpkg --purge advrec failed" ;;
  esac
  [ "$user_existed" = 1 ] || ! getent passwd advrec >/dev/null || userdel advrec || true
  [ "$group_existed" = 1 ] || ! getent group advrec >/dev/null || groupdel advrec || true
  if [ "$rc" -ne 0 ] && [ -f "$tmp/daemon.log" ]; then
    say "daemon log (tail):"; tail -n 30 "$tmp/daemon.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$SECONDS

# 1. The package, as packaging/cpack.cmake says to build it.
cmake -S "$src" -B "$tmp/build" -DCMAKE_INSTALL_PREFIX=/usr -DADVREC_TESTS=OFF \
  -DADVREC_SOURCE_SCHEMAS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 \
  || { cat "$tmp/cmake.log" >&2; fail "cmake configure"; }
cmake --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1 \
  || { tail -n 40 "$tmp/build.log" >&2; fail "build"; }
(cd "$tmp/build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) \
  || { cat "$tmp/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$tmp"/out/advrec_*.deb)
say "built $(basename "$deb") in $((SECONDS - t0)) s"

# 2. Install.
if ! dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
  say "dpkg -i failed; apt-get -f install"; cat "$tmp/dpkg.log" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq >&2 || fail "apt-get -f install"
fi
[ "$(pkg_state)" = installed ] || fail "advrec not installed ($(pkg_state))"
dpkg -L advrec >"$tmp/files"

# 3. Layout.
for f in /usr/sbin/advrecd /usr/bin/advrec-produce /usr/bin/advrec-gen \
  /usr/bin/advrec-inspect /usr/bin/advrec-eval /usr/bin/advrec-demo \
  /usr/bin/advrec-broker; do
  [ -x "$f" ] || fail "$f missing or not executable"
done
for f in /usr/lib/systemd/system/advrecd.service /usr/lib/sysusers.d/advrec.conf \
  /usr/lib/tmpfiles.d/advrec.conf /usr/share/advrec/schemas/click.avsc \
  /usr/share/advrec/schemas/purchase.avsc /usr/share/advrec/schemas/recommendation.avsc \
  /usr/share/advrec/schemas/anomaly.avsc /usr/share/doc/advrec/README.md; do
  [ -f "$f" ] || fail "$f missing"
done
unit=/usr/lib/systemd/system/advrecd.service
grep -qx 'User=advrec' "$unit" && grep -qx 'Group=advrec' "$unit" || fail "unit lacks User/Group=advrec"
grep -q '^DynamicUser=' "$unit" && fail "unit still has DynamicUser="
grep -qx 'ExecStart=/usr/sbin/advrecd -c /etc/advrec/advrecd.conf' "$unit" \
  || fail "unit's ExecStart: $(grep ExecStart "$unit")"
getent passwd advrec >/dev/null || fail "no user advrec"
getent group advrec >/dev/null || fail "no group advrec"
[ "$(stat -c '%a %U %G' /etc/advrec/advrecd.conf)" = "640 root advrec" ] \
  || fail "config is $(stat -c '%a %U %G' /etc/advrec/advrecd.conf), want 640 root advrec"
grep -qx '/etc/advrec/advrecd.conf' /var/lib/dpkg/info/advrec.conffiles || fail "config not a conffile"
for d in /var/lib/advrec /var/lib/advrec-checkpoints; do
  [ "$(stat -c '%a %U %G' "$d")" = "750 advrec advrec" ] \
    || fail "$d is $(stat -c '%a %U %G' "$d"), want 750 advrec advrec"
done
for m in man8/advrecd.8 man5/advrecd.conf.5 man1/advrec-produce.1 man1/advrec-gen.1 \
  man1/advrec-inspect.1 man1/advrec-eval.1 man1/advrec-demo.1 man1/advrec-broker.1; do
  f=/usr/share/man/$m
  [ -f "$f" ] || fail "$f missing"
  name=$(basename "$m"); name=${name%.*}
  MANWIDTH=80 man -l "$f" 2>"$tmp/man.err" | grep -q "^NAME" || fail "man -l $f: $(cat "$tmp/man.err")"
  [ ! -s "$tmp/man.err" ] || fail "man -l $f warns: $(cat "$tmp/man.err")"
done
MANWIDTH=80 man -l /usr/share/man/man5/advrecd.conf.5 | grep -q 'kafka.property' \
  || fail "advrecd.conf(5) lacks the kafka.* section"
say "layout ok ($(grep -c . "$tmp/files") paths)"

# 4. The installed daemon as the unit runs it: user advrec, the installed
# config, state in /var/lib/advrec; test-unique topics and group.
bs=$(cat "$kdir/bootstrap")
p=advrec-pkg-$$-$(date +%s)
"$kafka_sh" topics "$kdir" "$p.clicks:2" "$p.purchases:2" "$p.recs:2:compact" \
  "$p.anomalies:1" "$p.dlq:1" >"$tmp/topics.log" 2>&1 || { cat "$tmp/topics.log" >&2; fail "topics"; }
(cd / && exec setpriv --reuid=advrec --regid=advrec --init-groups \
  env OPENBLAS_NUM_THREADS=1 /usr/sbin/advrecd -c /etc/advrec/advrecd.conf \
  -X broker.embedded=false -X kafka.bootstrap.servers="$bs" -X group.id="$p" \
  -X topic.clicks="$p.clicks" -X topic.purchases="$p.purchases" \
  -X topic.recommendations="$p.recs" -X topic.anomalies="$p.anomalies" \
  -X topic.dlq="$p.dlq" -X recs.debounce.ms=200 -X stats.interval.ms=1000) \
  >"$tmp/daemon.out" 2>"$tmp/daemon.log" &
pid=$!
/usr/bin/advrec-gen --events 3000 --users 100 --items 200 --seed 7 -q -o "$tmp/events.csv"
/usr/bin/advrec-produce -b "$bs" -f csv --click-topic "$p.clicks" \
  --purchase-topic "$p.purchases" -q "$tmp/events.csv" || fail "advrec-produce"
# Kafka's own client reads a list the installed daemon published.
"$kafka_sh" consume "$kdir" "$p.recs" --from-beginning --max-messages 1 \
  --timeout-ms 60000 --property print.key=true >"$tmp/recs.out" 2>"$tmp/consume.err" || true
grep -q . "$tmp/recs.out" || { cat "$tmp/consume.err" >&2; fail "no recommendation list within 60 s"; }
kill -0 "$pid" 2>/dev/null || fail "advrecd exited early"
say "a list arrived, key $(head -c 40 "$tmp/recs.out" | cut -f1 | head -n1)"
# A checkpoint, written as advrec into the packaged checkpoints directory.
kill -USR1 "$pid"
for _ in $(seq 100); do
  [ -n "$(ls -A /var/lib/advrec-checkpoints)" ] && break
  sleep 0.1
done
[ -n "$(ls -A /var/lib/advrec-checkpoints)" ] || fail "no checkpoint after SIGUSR1"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "advrecd exited $rc after SIGTERM"
[ "$(stat -c %U /var/lib/advrec/CURRENT)" = advrec ] || fail "state not written as advrec"
say "daemon ok: SIGTERM -> 0, state in /var/lib/advrec"

# 5. Purge.
dpkg --purge advrec >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "dpkg --purge"; }
while read -r f; do
  if [ -f "$f" ] || [ -L "$f" ]; then fail "$f left after purge"; fi
done <"$tmp/files"
for d in /etc/advrec /usr/share/advrec /usr/share/doc/advrec /var/lib/advrec /var/lib/advrec-checkpoints; do
  [ ! -e "$d" ] || fail "$d left after purge"
done
getent passwd advrec >/dev/null || fail "purge removed the advrec user (documented: kept)"
say "purge ok in $((SECONDS - t0)) s total (user advrec kept, as documented)"
