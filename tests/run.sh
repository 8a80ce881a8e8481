#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds, and runs
# every test ring (unit, integration, e2e against a real Apache Kafka broker),
# then the unit and integration rings again under AddressSanitizer + UBSan,
# then each libFuzzer target for 20 s (fuzz/run.sh; docs/RELIABILITY.md).
#
#   tests/run.sh            everything
#   tests/run.sh -L unit    pass ctest arguments through (one ring, -R NAME, ...)
#
# Caches outside the repository: Maven's ~/.m2 (Kafka jars, the registry's
# tar.gz) and ${ADVREC_CACHE:-~/.cache/advrec} (the Python virtualenv, the
# Kafka classpath, the unpacked Apicurio Registry).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

step() { printf '\n== %s\n' "$*"; }

step "system packages"
tools/install-deps.sh

step "format check (.clang-format)"
mapfile -t csrc < <(git ls-files '*.c' '*.h' 2>/dev/null || find lib daemon tools tests -name '*.[ch]')
clang-format --dry-run -Werror "${csrc[@]}"

step "build (warnings are errors)"
cmake -S . -B build -DADVREC_WERROR=ON -DADVREC_TESTS=ON >/dev/null
cmake --build build -j"$jobs"

if [ -x tests/py/venv.sh ]; then
  step "Python test clients (virtualenv)"
  tests/py/venv.sh
fi
if [ -x tests/kafka/kafka.sh ]; then
  step "Apache Kafka jars (Maven Central)"
  tests/kafka/kafka.sh fetch
  tests/kafka/kafka.sh fetch --secure  # Kafka 3.9 for e2e.secure.sasl_ssl
fi
if [ -x tests/registry/registry.sh ]; then
  step "Apicurio Registry (Maven Central), for e2e.registry"
  tests/registry/registry.sh fetch
fi

step "tests"
(cd build && ctest --output-on-failure --timeout 600 "$@")

if [ $# -eq 0 ]; then
  step "sanitizers: ASan + UBSan build, unit and integration rings"
  cmake -S . -B build-asan -DADVREC_SANITIZE=ON -DADVREC_WERROR=ON \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 600 -L 'unit|integration')

  step "fuzzing (bounded): each libFuzzer target 20 s from its seeds"
  ADVREC_JOBS=$jobs fuzz/run.sh 20
fi
