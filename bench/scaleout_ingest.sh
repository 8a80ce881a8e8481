#!/usr/bin/env bash
# scaleout_ingest.sh - events/s of 1, 2 and 3 advrecd in one consumer group
# (topic.changelog: user state follows its partition) against one generated
# stream, produced once to a real Apache Kafka broker (started here), and the
# rate at which a new daemon restores state from the changelog (issue 12,
# point 6). Every reader in one run; the ratios are what count on a shared
# machine. Not part of CI. (bench/scaleout.sh is the quality evaluation.)
#
#   bench/scaleout_ingest.sh [BUILD_DIR]       (default: build; use a Release build)
#   EVENTS (300000), USERS (100000), ITEMS (50000), PARTITIONS (12 per input
#   topic), RUNS (1) runs of every mode (with more, medians at the end),
#   MODES (default: all, in this order):
#     single  1 advrecd without topic.changelog
#     cl1     1 advrecd with topic.changelog
#     cl2     2 advrecd with topic.changelog, one group
#     cl3     3 advrecd with topic.changelog, one group
#   RESTORE (cl3): after that mode, one more advrecd in a NEW group with an
#     empty state dir and that mode's topic.changelog, so that every
#     partition is restored from the changelog; its read rate is measured.
#     RESTORE= skips it. RESTORE_ARGS="-X k=v ..." more settings for that
#     daemon only.
#   DAEMON_ARGS="-X k=v ..." more advrecd settings for every daemon.
#   STOP_TIMEOUT (300) seconds a daemon gets to stop after SIGTERM.
#   KEEP=1 keeps the temporary directory (logs, broker data) at the end.
#
# Every daemon runs conf/advrecd.conf with RocksDB state (a fresh state dir
# each), lists deferred (recs.debounce.ms and recs.max.staleness.ms an hour:
# refreshed only at the stop, not timed), stats.interval.ms=20 and
# http.listen=127.0.0.1:0; every mode uses a fresh consumer group and a fresh
# changelog topic (created here, PARTITIONS partitions, compacted). The
# broker runs with group.initial.rebalance.delay.ms=3000, so that the
# instances of a mode, all started at once, join the group's first
# generation: no partition moves while the stream is read (each line says
# how many partitions each instance owned and how many restores happened).
#
# Time is from the first event any instance applied to the moment the sum
# of the events applied over the instances reached the stream's size, from
# their stats lines stamped on arrival (up to two intervals too long: lower
# bounds); kcat's as in bench/ingest.sh (its output lines stamped in 64 KiB
# chunks). Start-up and the group join are outside the time. Each mode's
# line ends in "of bare consumer: R" (R = events/s over kcat's in the same
# run); cl1 adds "of no changelog: R" (over single), cl2 and cl3 add "of 1
# instance: R" (over cl1). "changelog B/event" is advrec_changelog_bytes_total
# (key and value bytes produced) summed over the instances, read from
# /metrics 1.5 s after the last event (a commit interval later), over the
# events; "rows/event" is advrec_changelog_records_total{kind="row"} the same
# way. "CPU" is the instances' user + system time (/proc/PID/stat) at that
# moment, start-up and group join included: less sensitive than events/s to
# what else the machine runs.
#
# The restore line: the changelog topic's size on the broker's disk (its
# partitions' segment files: what the restore reads), the records and users
# the daemon's "changelog: restored" lines count, and the time from its
# first "changelog: restoring ... into the state" line to its last
# "changelog: restored" line (all partitions are restored one after the
# other in one rebalance callback), split into "reading" (each partition's
# "restoring" line to its "restored" line, summed) and the time between
# partitions (a fixed cost per partition); "ready" adds the commit of the
# restored rows to RocksDB (up to its first stats line after the last
# restore).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
events=${EVENTS:-300000}
users=${USERS:-100000}
items=${ITEMS:-50000}
parts=${PARTITIONS:-12}
runs=${RUNS:-1}
modes=${MODES:-single cl1 cl2 cl3}
restore_after=${RESTORE-cl3}
stop_timeout=${STOP_TIMEOUT:-300}
advrecd=$build/advrecd
for t in advrecd advrec-produce advrec-gen; do
  [ -x "$build/$t" ] || { echo "scaleout_ingest.sh: no $t in $build" >&2; exit 1; }
done
for t in kcat python3 curl; do
  command -v "$t" >/dev/null || { echo "scaleout_ingest.sh: $t missing" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-scaleout-ingest.XXXXXX")
pids=() # every process started here (advrecd, kcat), killed by id at exit
tag=sbench$$
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$here/tests/kafka/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then say "scaleout_ingest: logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
say() { printf '%s\n' "$*" >&2; }
# forget PID: a process waited for leaves the list (its pid may be reused).
forget() {
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

say "scaleout_ingest: starting Apache Kafka (tests/kafka/kafka.sh) in $tmp/kafka"
bs=$("$here/tests/kafka/kafka.sh" start --fresh "$tmp/kafka" group.initial.rebalance.delay.ms=3000) ||
  { say "broker did not start"; exit 1; }
# Every mode of every run gets its own changelog topic, made here at once.
cltopics=()
for r in $(seq 1 "$runs"); do
  for m in $modes; do
    case $m in cl*) cltopics+=("bench.changelog.$m.$r:$parts:compact") ;; esac
  done
done
"$here/tests/kafka/kafka.sh" topics "$tmp/kafka" "bench.clicks:$parts" "bench.purchases:$parts" \
  "bench.recs:$parts:compact" "bench.anomalies:$parts" "bench.dlq:$parts" "${cltopics[@]}" >/dev/null ||
  { say "cannot create topics"; exit 1; }

say "scaleout_ingest: generating $events events ($users users, $items items)"
"$build/advrec-gen" -q --seed 7 --events "$events" --users "$users" --items "$items" -o "$tmp/stream.csv" ||
  exit 1
say "scaleout_ingest: producing them to $bs ($parts partitions per topic)"
"$build/advrec-produce" -q -b "$bs" -f csv --click-topic bench.clicks --purchase-topic bench.purchases \
  "$tmp/stream.csv" >"$tmp/produce.out" 2>&1 || { cat "$tmp/produce.out" >&2; exit 1; }
n=$(($(wc -l <"$tmp/stream.csv") - 1)) # less the header line
[ "$n" -gt 0 ] || { say "empty stream"; exit 1; }

# count_lines N: reads stdin until N lines arrived; prints "seconds" from the
# first chunk to the chunk holding line N.
count_lines() {
  python3 -c '
import os, sys, time
n = int(sys.argv[1]); got = 0; t0 = None
while got < n:
    b = os.read(0, 1 << 16)
    if not b:
        break
    if t0 is None:
        t0 = time.monotonic()
    got += b.count(b"\n")
t1 = time.monotonic()
if got < n:
    print("short %d" % got); sys.exit(1)
print("%.3f" % (t1 - t0))' "$1"
}

# all_applied N LOG...: true once the instances' latest stats lines sum to N
# or more (cheap: polled while the daemons run).
all_applied() {
  local want=$1; shift
  awk -v n="$want" '
    /(stats|final): / && match($0, /total [0-9]+ clicks, [0-9]+ purchases/) {
      split(substr($0, RSTART, RLENGTH), f, " "); g[FILENAME] = f[2] + f[4] }
    END { s = 0; for (k in g) s += g[k]; exit !(s >= n) }' "$@" 2>/dev/null
}

# summed_rate N LOG...: "seconds split" from the instances' stamped stats
# lines: from the first instance's last line with nothing applied to the
# first moment the instances' latest totals sum to N; split is each
# instance's total at that moment.
cat >"$tmp/summed_rate.py" <<'PY'
import re, sys
n = int(sys.argv[1]); logs = sys.argv[2:]
pat = re.compile(r"^(\S+) .*(?:stats|final): .*total (\d+) clicks, (\d+) purchases")
ev, starts = [], []
for i, path in enumerate(logs):
    zero = None; started = False
    for line in open(path, errors="replace"):
        m = pat.match(line)
        if not m:
            continue
        t = float(m.group(1)); got = int(m.group(2)) + int(m.group(3))
        if got == 0:
            zero = t
        elif not started:
            started = True
            starts.append(zero if zero is not None else t)
        ev.append((t, i, got))
ev.sort()
cur = [0] * len(logs)
for t, i, got in ev:
    cur[i] = got
    if sum(cur) >= n and starts:
        print("%.3f %s" % (t - min(starts), "/".join(str(c) for c in cur)))
        sys.exit(0)
print("none"); sys.exit(1)
PY

stamp() { while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

# alive PID: the process runs (a child that exited stays a zombie until
# waited for, and kill -0 would still succeed on it).
alive() {
  local s
  s=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $s != " Z"* ]]
}

# start_daemon LOG GROUP STATE_DIR [CHANGELOG_TOPIC [MORE_ARGS]]: one
# advrecd in the background, its stderr stamped into LOG; its pid in
# $started.
start_daemon() {
  local log=$1 group=$2 st=$3 cl=${4:-} extra=()
  [ -n "$cl" ] && extra=(-X topic.changelog="$cl")
  # shellcheck disable=SC2206 # MORE_ARGS is a list of words
  [ -n "${5:-}" ] && extra+=($5)
  # shellcheck disable=SC2086 # DAEMON_ARGS is a list of words
  "$advrecd" -c "$here/conf/advrecd.conf" -X broker.embedded=false -X http.listen=127.0.0.1:0 \
    -X kafka.bootstrap.servers="$bs" -X topic.clicks=bench.clicks -X topic.purchases=bench.purchases \
    -X topic.recommendations=bench.recs -X topic.anomalies=bench.anomalies -X topic.dlq=bench.dlq \
    -X group.id="$group" -X state.dir="$st" -X stats.interval.ms=20 -X log.level=info \
    -X recs.debounce.ms=3600000 -X recs.max.staleness.ms=3600000 \
    "${extra[@]}" ${DAEMON_ARGS:-} 2> >(stamp >"$log") >/dev/null &
  started=$!
  pids+=("$started")
}

# stop_daemons PID...: SIGTERM, each waited for up to STOP_TIMEOUT s in
# all, then SIGKILL.
stop_daemons() {
  local p deadline=$((SECONDS + stop_timeout))
  kill -TERM "$@" 2>/dev/null
  for p in "$@"; do
    while alive "$p"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        say "advrecd $p did not stop within $stop_timeout s: killed"; kill -KILL "$p" 2>/dev/null; break
      fi
      sleep 0.2 # polling interval of a bounded wait
    done
    wait "$p" 2>/dev/null
    forget "$p"
  done
}

# port_of LOG: the HTTP port advrecd logged (waits up to 60 s).
port_of() {
  local p deadline=$((SECONDS + 60))
  until p=$(sed -n 's/.*http: serving .*(port \([0-9]*\)).*/\1/p' "$1" | head -1) && [ -n "$p" ]; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1 # polling interval of a bounded wait
  done
  echo "$p"
}

# metric PORT NAME_REGEX: the sum of the samples whose name and labels match.
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $NF } END { printf "%.0f\n", s }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

bare_eps= single_eps= one_eps=
line() { # NAME SECONDS [EXTRA] [RATIOS]
  local eps
  eps=$(awk -v n="$n" -v s="$2" 'BEGIN { printf "%.0f", n / s }')
  [ -z "$bare_eps" ] && bare_eps=$eps
  printf '%-46s %7d events in %7.3f s, %7d events/s%s%s, of bare consumer: %s\n' \
    "$1" "$n" "$2" "$eps" "${3:-}" "${4:-}" "$(ratio "$eps" "$bare_eps")"
  last_eps=$eps
}

bare() {
  local s kpid
  rm -f "$tmp/kcat.fifo"; mkfifo "$tmp/kcat.fifo"
  # -e: exit at the end of every partition (its output is block-buffered
  # until then; count_lines stamps the chunks, so the last lands at exit).
  kcat -q -e -b "$bs" -G "$tag.kcat.$1" -X auto.offset.reset=earliest -f '%o\n' \
    bench.clicks bench.purchases >"$tmp/kcat.fifo" 2>"$tmp/kcat.err" &
  kpid=$!
  pids+=("$kpid")
  s=$(timeout 180 bash -c "$(declare -f count_lines); count_lines $n" <"$tmp/kcat.fifo")
  kill "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null; forget "$kpid"
  case $s in short*|"") say "kcat: ${s:-timeout}"; cat "$tmp/kcat.err" >&2; return 1 ;; esac
  line "kcat (bare librdkafka consumer)" "$s"
  printf 'bare\t%s\t%s\t\t\t\n' "$last_eps" "$bare_eps" >>"$tmp/results"
}

# mode MODE RUN: its instances started at once in a fresh group, timed until
# they applied the stream together, then stopped.
mode() {
  local m=$1 r=$2 k cl= i logs=() mpids=() ports=() s split deadline
  case $m in
    single) k=1 ;;
    cl[1-9]) k=${m#cl}; cl=bench.changelog.$m.$r ;;
    *) say "unknown mode $m"; return 1 ;;
  esac
  for i in $(seq 1 "$k"); do
    logs+=("$tmp/$m.$r.$i.log")
    start_daemon "$tmp/$m.$r.$i.log" "$tag.$m.$r" "$tmp/state.$m.$r.$i" "$cl"
    mpids+=("$started")
  done
  deadline=$((SECONDS + 900))
  until all_applied "$n" "${logs[@]}"; do
    for i in "${!mpids[@]}"; do
      if ! alive "${mpids[$i]}"; then
        say "advrecd $m #$((i + 1)) exited before the stream was applied; its log:"; tail -20 "${logs[$i]}" >&2
        stop_daemons "${mpids[@]}"; return 1
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "advrecd ($m): did not apply $n events within 900 s"; tail -5 "${logs[@]}" >&2
      stop_daemons "${mpids[@]}"; return 1
    fi
    sleep 0.2 # polling interval of a bounded wait
  done
  sleep 1.5 # the commit after the last events (state.commit.interval.ms=1000)
  local owned=() clb=0 rows=0 restores=0 rss=0 cpu=0 p v
  for i in "${!mpids[@]}"; do
    p=$(port_of "${logs[$i]}") || { say "no HTTP port in ${logs[$i]}"; stop_daemons "${mpids[@]}"; return 1; }
    owned+=("$(metric "$p" '^advrec_partition_assigned[{]topic="bench[.]clicks"')")
    clb=$((clb + $(metric "$p" '^advrec_changelog_bytes_total$')))
    rows=$((rows + $(metric "$p" '^advrec_changelog_records_total[{]kind="row"[}]$')))
    restores=$((restores + $(metric "$p" '^advrec_changelog_restores_total$')))
    # utime + stime in clock ticks (fields 14 and 15; comm holds no space)
    cpu=$((cpu + $(awk '{ print $14 + $15 }' "/proc/${mpids[$i]}/stat" 2>/dev/null || echo 0)))
    v=$(awk '/VmHWM/ { print $2 }' "/proc/${mpids[$i]}/status" 2>/dev/null)
    [ "${v:-0}" -gt "$rss" ] && rss=${v:-0}
  done
  stop_daemons "${mpids[@]}"
  read -r s split < <(python3 "$tmp/summed_rate.py" "$n" "${logs[@]}")
  [ -n "${s:-}" ] && [ "$s" != none ] || { say "advrecd ($m): no rate from its stats lines"; return 1; }
  local own_txt extra ratios=
  own_txt=$(IFS=/; echo "${owned[*]}")
  local cpu_s
  cpu_s=$(awk -v c="$cpu" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", c / hz }')
  extra=", partitions $own_txt, CPU $cpu_s s ($(awk -v c="$cpu_s" -v n="$n" 'BEGIN { printf "%.1f", c * 1e6 / n }') us/event), peak RSS $((rss / 1024)) MiB"
  [ -n "$cl" ] && extra+=", changelog $(awk -v b="$clb" -v n="$n" 'BEGIN { printf "%.0f", b / n }') B/event ($(awk -v b="$rows" -v n="$n" 'BEGIN { printf "%.3f", b / n }') rows/event), $restores restores"
  [ "$k" -gt 1 ] && extra+=", events $split"
  local eps
  eps=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
  case $m in
    single) line "advrecd x1, no changelog" "$s" "$extra"; single_eps=$last_eps ;;
    cl1) line "advrecd x1, topic.changelog" "$s" "$extra" ", of no changelog: $(ratio "$eps" "$single_eps")"
      one_eps=$last_eps ;;
    *) line "advrecd x$k, topic.changelog, one group" "$s" "$extra" ", of 1 instance: $(ratio "$eps" "$one_eps")" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$last_eps" "$bare_eps" "$single_eps" "$one_eps" \
    "$(awk -v b="$clb" -v n="$n" 'BEGIN { printf "%.1f", b / n }')" \
    "$(awk -v c="$cpu_s" -v n="$n" 'BEGIN { printf "%.2f", c * 1e6 / n }')" >>"$tmp/results"
  [ "$m" = "$restore_after" ] && { restore "$cl" "$r" || return 1; }
  return 0
}

# restore TOPIC RUN: one daemon in a new group, empty state, TOPIC as its
# changelog: every partition restored; timed from its log lines.
restore() {
  local cl=$1 r=$2 log="$tmp/restore.$2.log" deadline bytes c
  bytes=$(du -cb "$tmp"/kafka/data/"$cl"-*/*.log 2>/dev/null | awk 'END { print $1 + 0 }')
  [ "$bytes" -gt 0 ] || { say "restore: no segment files of $cl under $tmp/kafka/data"; return 1; }
  start_daemon "$log" "$tag.restore.$r" "$tmp/state.restore.$r" "$cl" "${RESTORE_ARGS:-}"
  local rpid=$started
  deadline=$((SECONDS + 900))
  until c=$(grep -c 'changelog: restored ' "$log" 2>/dev/null); [ "${c:-0}" -ge "$parts" ] &&
    awk '/changelog: restored / { seen = 1; found = 0; next } seen && /stats: / { found = 1 } END { exit !found }' "$log"; do
    if ! alive "$rpid"; then say "restore: advrecd exited; its log:"; tail -20 "$log" >&2; return 1; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "restore: not done within 900 s"; tail -5 "$log" >&2; stop_daemons "$rpid"; return 1
    fi
    sleep 0.2 # polling interval of a bounded wait
  done
  stop_daemons "$rpid"
  local out
  out=$(awk -v bytes="$bytes" '
    /changelog: restoring .* into the state/ { ts = $1; if (!t0) t0 = $1 }
    /changelog: restored / {
      t1 = $1; np++; rd += $1 - ts
      match($0, /: [0-9]+ records, [0-9]+ user( rows)?/); split(substr($0, RSTART + 2, RLENGTH - 2), f, " ")
      recs += f[1]; users += f[3]; t2 = 0 }
    t1 && /stats: / && !t2 { t2 = $1 }
    END {
      if (!t0 || !t1 || !t2 || t1 <= t0 || rd <= 0) { print "none"; exit 1 }
      mb = bytes / 1e6; gb = bytes / 1e9; s = t1 - t0
      printf "%d partitions, %.1f MB (%d records, %d user rows) in %.3f s: %.1f MB/s, %.0f s per GB; " \
        "reading %.3f s (%.1f MB/s, %.0f s per GB), between partitions %.3f s (%.3f s each); ready in %.3f s\t%.3f\t%.3f\n",
        np, mb, recs, users, s, mb / s, s / gb, rd, mb / rd, rd / gb, s - rd, (s - rd) / (np > 1 ? np - 1 : 1),
        t2 - t0, mb / s, mb / rd }' "$log")
  [ "$out" != none ] || { say "restore: no times in its log"; return 1; }
  printf '%-46s %s\n' "restore from the changelog, 1 new advrecd" "${out%%$'\t'*}"
  printf 'restore\t%s\n' "${out#*$'\t'}" >>"$tmp/results"
}

say "scaleout_ingest: $n events in the topics; readers: kcat $modes, restore after ${restore_after:-none} (RUNS=$runs)"
for r in $(seq 1 "$runs"); do
  bare_eps= single_eps= one_eps=
  bare "$r" || exit 1
  for m in $modes; do mode "$m" "$r" || exit 1; done
done
# With several runs: per mode the median rate and the medians of its
# same-run ratios (the machine is shared: ratios hold, rates drift).
[ "$runs" -gt 1 ] && python3 - "$tmp/results" "$runs" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    f = l.rstrip("\n").split("\t")
    rows.setdefault(f[0], []).append(f[1:])
med = statistics.median
names = {"bare": "kcat (bare librdkafka consumer)", "single": "advrecd x1, no changelog",
         "cl1": "advrecd x1, topic.changelog"}
print("median of %s runs:" % sys.argv[2])
for m, rs in rows.items():
    if m == "restore":
        print("%-46s %.1f MB/s, %.0f s per GB; reading %.1f MB/s, %.0f s per GB" % (
              "restore from the changelog, 1 new advrecd",
              med(float(r[0]) for r in rs), med(1000 / float(r[0]) for r in rs),
              med(float(r[1]) for r in rs), med(1000 / float(r[1]) for r in rs)))
        continue
    eps = med(float(r[0]) for r in rs)
    ob = med(float(r[0]) / float(r[1]) for r in rs)
    extra = ""
    if m == "cl1" and all(r[2] for r in rs):
        extra = ", of no changelog: %.3f" % med(float(r[0]) / float(r[2]) for r in rs)
    elif m != "cl1" and m.startswith("cl") and all(r[3] for r in rs):
        extra = ", of 1 instance: %.3f" % med(float(r[0]) / float(r[3]) for r in rs)
    if m.startswith("cl"):
        extra = ", changelog %.0f B/event" % med(float(r[4]) for r in rs) + extra
    if m != "bare":
        extra = ", CPU %.1f us/event" % med(float(r[5]) for r in rs) + extra
    name = names.get(m, "advrecd x%s, topic.changelog, one group" % m[2:])
    print("%-46s %7d events/s%s, of bare consumer: %.3f" % (name, eps, extra, ob))
PY
exit 0
