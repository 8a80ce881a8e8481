#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ADVREC_FUZZ=ON, in build-fuzz/) and
# runs each for a bounded time from its seed corpus, printing per target the
# executions and the coverage of libFuzzer's final stats. Exits 1 if any
# target crashed, leaked, hit UB, timed out or ran out of memory; the input
# that did is kept in build-fuzz/artifacts/ and its log is printed.
#
#   fuzz/run.sh [SECONDS] [TARGET...]   default 30 s; targets: decode config reader
#
# Environment: ADVREC_JOBS (build parallelism, default nproc),
# ADVREC_FUZZ_BUILD (build directory, default build-fuzz),
# ADVREC_FUZZ_CORPUS (keep the grown corpus in this directory, one
# subdirectory per target, so a later run goes on from it; default: a
# temporary directory, so every run starts from the committed seeds).
# Seeds (fuzz/corpus/<target>/) are only read, never written.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode config reader)
jobs=${ADVREC_JOBS:-$(nproc 2>/dev/null || echo 2)}
build=${ADVREC_FUZZ_BUILD:-$root/build-fuzz}

case $secs in
  ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 64 ;;
esac

# clang and libFuzzer come from tools/install-deps.sh.
if ! command -v clang >/dev/null 2>&1 \
   || ! clang -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
  tools/install-deps.sh
fi

CC=clang CXX=clang++ cmake -S . -B "$build" -DADVREC_FUZZ=ON -DADVREC_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" $(printf -- '--target fuzz_%s ' "${targets[@]}") \
  >"$build/fuzz-build.log" 2>&1 || { cat "$build/fuzz-build.log"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$build/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
printf '%-8s %8s %12s %8s %8s %8s  %s\n' target seconds executions cov ft corpus result
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  seeds=$root/fuzz/corpus/$t
  work=${ADVREC_FUZZ_CORPUS:+$ADVREC_FUZZ_CORPUS/$t}
  work=${work:-$tmp/$t}
  mkdir -p "$work"
  dict=()
  [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
  log=$build/fuzz-$t.log
  start=$(date +%s)
  rc=0
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
    -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$t-" "${dict[@]}" \
    "$work" "$seeds" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # The last status line (DONE, or the last pulse before a crash).
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$rc" -eq 0 ]; then result=ok; else result="FAILED (exit $rc)"; failed+=("$t"); fi
  printf '%-8s %8s %12s %8s %8s %8s  %s\n' "$t" "$took" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done

for t in "${failed[@]}"; do
  printf '\n== fuzz_%s failed; log %s (tail), input kept as:\n' "$t" "$build/fuzz-$t.log"
  ls "$build/artifacts/$t-"* 2>/dev/null || true
  tail -60 "$build/fuzz-$t.log"
done
[ ${#failed[@]} -eq 0 ]
