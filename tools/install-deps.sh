#!/usr/bin/env bash
# Installs every system package advrec needs to build, test and run, on
# Debian 12 (bookworm). Idempotent: on a machine that has them it only checks.
# Run as root, or as a user with sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format
  librdkafka-dev libavro-dev librocksdb-dev libopenblas-dev libjansson-dev
  libsystemd-dev
  # schema.registry.url: the Schema Registry client (HTTP)
  libcurl4-openssl-dev
  # recs.retrieval = ann: approximate inner-product retrieval (Faiss C API)
  libfaiss-dev
  # tests: the unit's sandbox reproduced by hand (integration.systemd_sandbox)
  bubblewrap
  # the .deb (cpack: dpkg-shlibdeps for Depends) and e2e.package (man -l)
  dpkg-dev man-db
  # the HTTP endpoint (/metrics, /health); promtool checks the scraped text
  libmicrohttpd-dev prometheus
  # tests: real Kafka (Java 17 + Maven) and independent Python clients
  openjdk-17-jre-headless maven python3 python3-venv
  # bench/ingest.sh: kcat, the bare librdkafka consumer it compares against
  kcat
  # fuzz/run.sh: clang with libFuzzer and the sanitizer runtimes
  # (libclang-rt is only a Recommends of clang, which we do not install)
  clang llvm libclang-rt-14-dev
  # ... and clang's OpenMP, which lib/ann_faiss.cpp (Faiss) needs when the
  # fuzz build compiles it with clang++
  libomp-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
    || missing+=("$p")
done
# A JDK, Maven or Python installed outside dpkg (as on our CI machines) is as
# good as Debian's.
drop() {
  local keep=() m
  for m in "${missing[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
  missing=("${keep[@]}")
}
command -v java >/dev/null 2>&1 && drop openjdk-17-jre-headless
command -v mvn >/dev/null 2>&1 && drop maven
if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  drop python3
  drop python3-venv
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
