#!/usr/bin/env bash
# Runs advrecd's command line and checks exit codes and messages.
#   cli.sh ADVRECD SOURCE_DIR
set -uo pipefail
advrecd=$1
src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/advrec-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

# run NAME WANT_RC CMD...: runs CMD (bounded to 10 s), stdout in $tmp/out,
# stderr in $tmp/err, and checks the exit code.
run() {
  local name=$1 want=$2 rc
  shift 2
  timeout 10 "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"
    echo "  stdout: $(head -c 400 "$tmp/out")"
    echo "  stderr: $(head -c 400 "$tmp/err")"
    failures=$((failures + 1))
    return 1
  fi
  echo "ok   $name"
}

# has NAME FILE TEXT: FILE (out or err) contains TEXT literally.
has() {
  if ! grep -qF -- "$3" "$tmp/$2"; then
    echo "FAIL $1: $2 lacks \"$3\""
    echo "  $2: $(head -c 400 "$tmp/$2")"
    failures=$((failures + 1))
  fi
}

run version 0 "$advrecd" --version && has version out "advrecd "
run help 0 "$advrecd" --help
has help out "docs/CONFIG.md"
has help out "-X key=value"
has help out "--check-config"
has help out "--dump-config=conf|md|man"

run check-shipped-conf 0 "$advrecd" -c "$src/conf/advrecd.conf" --check-config
has check-shipped-conf out "model.k = 64"
has check-shipped-conf out "topic.clicks = advrec.clicks"

# -X comes after the file, in order, whatever its place on the line.
printf 'model.k = 32\nrecs.n = 5\n' >"$tmp/ok.conf"
run x-overrides-file 0 "$advrecd" -X model.k=16 -c "$tmp/ok.conf" -X model.k=8 --check-config
has x-overrides-file out "model.k = 8"
has x-overrides-file out "recs.n = 5"

run dump-conf 0 "$advrecd" --dump-config=conf
if ! cmp -s "$tmp/out" "$src/conf/advrecd.conf"; then
  echo "FAIL dump-conf: differs from conf/advrecd.conf"
  failures=$((failures + 1))
fi
run dump-md 0 "$advrecd" --dump-config=md
if ! cmp -s "$tmp/out" "$src/docs/CONFIG.md"; then
  echo "FAIL dump-md: differs from docs/CONFIG.md"
  failures=$((failures + 1))
fi
run dump-man 0 "$advrecd" --dump-config=man
if ! cmp -s "$tmp/out" "$src/man/advrecd.conf.5"; then
  echo "FAIL dump-man: differs from man/advrecd.conf.5"
  failures=$((failures + 1))
fi

# Bad configs: EX_CONFIG (78), the message names file:line and the key.
printf '# comment\nmodel.k = 32\nmodel.lr = fast\n' >"$tmp/bad.conf"
run bad-value 78 "$advrecd" -c "$tmp/bad.conf" --check-config
has bad-value err "$tmp/bad.conf:3: model.lr: expected a number"
printf '\n\n\n\nmodel.kk = 3\n' >"$tmp/unknown.conf"
run unknown-key 78 "$advrecd" -c "$tmp/unknown.conf"
has unknown-key err "$tmp/unknown.conf:5: unknown key \"model.kk\" (did you mean \"model.k\"?)"
run bad-x 78 "$advrecd" -X model.k=abc --check-config
has bad-x err "-X model.k=abc: expected an integer"
run bad-kafka 78 "$advrecd" -X kafka.no.such.property=1 --check-config
has bad-kafka err "kafka.no.such.property"
# A memory budget evicts users to RocksDB: no state.dir, no budget.
printf 'state.dir =\nstate.memory.limit = 64M\n' >"$tmp/budget.conf"
run budget-no-dir 78 "$advrecd" -c "$tmp/budget.conf" --check-config
has budget-no-dir err "$tmp/budget.conf:2: state.memory.limit = 67108864 needs a state.dir, but state.dir ($tmp/budget.conf:1) is empty"
run budget-size 0 "$advrecd" -X state.memory.limit=1G --check-config
run cross-key 78 "$advrecd" -X broker.embedded=false --check-config
has cross-key err "kafka.bootstrap.servers"

# Mistakes the daemon used to find only at start (or never): each names the
# key and the file:line to fix (docs/RELIABILITY.md).
printf 'state.dir = %s/st\nstate.checkpoint.dir = %s/st/./\n' "$tmp" "$tmp" >"$tmp/ckpt.conf"
run checkpoint-is-state 78 "$advrecd" -c "$tmp/ckpt.conf" --check-config
has checkpoint-is-state err "$tmp/ckpt.conf:2: state.checkpoint.dir = $tmp/st/./ is the same directory as state.dir ($tmp/ckpt.conf:1: $tmp/st)"
run checkpoint-in-state 78 "$advrecd" -X state.dir="$tmp/st" -X state.checkpoint.dir="$tmp/st/ckpt" --check-config
has checkpoint-in-state err "-X: state.checkpoint.dir = $tmp/st/ckpt is inside state.dir"
printf 'model.k = 32\nschema.7 = missing.avsc\n' >"$tmp/schema.conf"
run schema-missing 78 "$advrecd" -c "$tmp/schema.conf" --check-config
has schema-missing err "$tmp/schema.conf:2: schema.7 = $tmp/missing.avsc: schema: cannot open $tmp/missing.avsc"
printf 'schema.dir = nowhere\n' >"$tmp/dir.conf"
run schema-dir-missing 78 "$advrecd" -c "$tmp/dir.conf" --check-config
has schema-dir-missing err "$tmp/dir.conf:1: schema.dir = $tmp/nowhere: our reader schemas"
printf '\nschema.recommendation.id = 1\n' >"$tmp/kind.conf"
run schema-wrong-kind 78 "$advrecd" -c "$tmp/kind.conf" --check-config
has schema-wrong-kind err "$tmp/kind.conf:2: schema.recommendation.id = 1 names a schema of kind click, expected recommendation"
printf 'schema.12 = %s/schemas/anomaly.avsc\nschema.click.id = 12\n' "$src" >"$tmp/input.conf"
run schema-input-kind 78 "$advrecd" -c "$tmp/input.conf" --check-config
has schema-input-kind err "$tmp/input.conf:2: schema.click.id = 12 names a schema of kind anomaly, expected click: $tmp/input.conf:1: schema.12 ="

# Unreadable file: EX_NOINPUT (66). Bad arguments: EX_USAGE (64).
run missing-file 66 "$advrecd" -c "$tmp/nonexistent.conf" --check-config
has missing-file err "$tmp/nonexistent.conf"
run bad-option 64 "$advrecd" --bogus
run bad-dump 64 "$advrecd" --dump-config=xml
run stray-arg 64 "$advrecd" extra
run x-without-eq 64 "$advrecd" -X model.k
has x-without-eq err "-X model.k: expected key=value"

# The run path: on the embedded broker advrecd prints the broker's address
# alone on stdout once it is consuming, and SIGTERM stops it cleanly (exit 0,
# final stats logged). Reading the address from a FIFO awaits that moment.
mkfifo "$tmp/run.fifo"
"$advrecd" -c "$src/conf/advrecd.conf" -X stats.interval.ms=0 -X state.dir="$tmp/state" \
  >"$tmp/run.fifo" 2>"$tmp/run.err" &
pid=$!
exec 3<"$tmp/run.fifo"
if read -r -t 30 -u 3 bootstrap && [[ "$bootstrap" == 127.0.0.1:* ]]; then
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAIL sigterm: exit $rc, want 0"; failures=$((failures + 1))
    cat "$tmp/run.err"
  elif ! grep -q "final:" "$tmp/run.err"; then
    echo "FAIL sigterm: no final stats line"; failures=$((failures + 1))
  fi
else
  echo "FAIL run: no bootstrap address on stdout within 30 s (got '${bootstrap:-}')"
  failures=$((failures + 1))
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cat "$tmp/run.err"
fi
exec 3<&-

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
