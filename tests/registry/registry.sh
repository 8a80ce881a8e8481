#!/usr/bin/env bash
# A real Schema Registry for tests: Apicurio Registry (the Quarkus app, its
# in-memory storage) on 127.0.0.1 only, on a free port, in a directory the
# caller names. It serves the Confluent-compatible API (ccompat v7) that
# advrecd's schema.registry.url and the Confluent clients speak. The app
# comes from Maven Central (io.apicurio:apicurio-registry-app:VERSION, the
# tar.gz classifier `all`) into a cache outside the repository.
#
#   registry.sh fetch              lay the app in the cache (idempotent)
#   registry.sh start DIR          start a registry in DIR; print its URL
#   registry.sh stop DIR           SIGTERM, bounded wait, SIGKILL (idempotent)
#   registry.sh pause DIR          SIGSTOP the JVM: "registry down" (requests
#                                  are accepted by the kernel and time out)
#   registry.sh resume DIR         SIGCONT the JVM
#   registry.sh url DIR            print DIR's URL
#   registry.sh home               print the app's directory in the cache
#
# What DIR holds after start: url (one line, the ccompat base URL
# http://127.0.0.1:PORT/apis/ccompat/v7), pid, port, registry.log (the JVM's
# stdout and stderr). start waits (at most ADVREC_REGISTRY_START_TIMEOUT,
# 120 s) until GET /health/ready answers 200, then sets the global
# compatibility level to BACKWARD (PUT {url}/config) and checks it. Storage
# is in memory: a stopped registry forgets every schema, and `start DIR`
# again gives an empty one, on DIR's port if DIR had one. A paused registry
# is resumed by stop (a stopped JVM cannot act on SIGTERM).
#
# Environment: ADVREC_CACHE (default ~/.cache/advrec) holds
# apicurio-registry-VERSION/; Maven keeps its own ~/.m2 (the tar.gz, about
# 105 MB; -Dmaven.repo.local= in MAVEN_OPTS moves it).
# ADVREC_REGISTRY_START_TIMEOUT (s, default 120) bounds start-up;
# ADVREC_REGISTRY_STOP_TIMEOUT (s, default 30) bounds a graceful stop.

set -euo pipefail

# Apicurio 3.0.9's ccompat API as measured (docs/TESTING.md, "The schema
# registry (tests/registry/)", has every request and answer in full):
#   - ids are content ids: global across subjects, the first is 1; the same
#     schema text under two subjects gets one id; they are not dense
#     (putting a known text into another subject uses a number up). Texts
#     are compared byte for byte (whitespace counts) unless ?normalize=true.
#   - GET /schemas/ids/N -> 200 {"schema":"<text as registered>",
#     "schemaType":"AVRO","references":[]}; unknown -> 404 {"message":
#     "No content with ID 'N' was found.","error_code":40403}.
#   - POST /subjects/S/versions -> 200 {"id":N} (the same id again for a
#     text already in S); refused by the compatibility rule -> 409
#     {"message":"...RuleViolationException: Incompatible artifact: ...",
#     "error_code":409}; not a schema -> 422, error_code 42201.
#   - "schemaType" may be left out (AVRO is assumed). Content-Type must be
#     application/vnd.schemaregistry.v1+json or application/json (else 415).
#   - PUT /config/S only works on a subject that exists (else 404, 40401),
#     and NONE there deletes the subject's rule, so the global BACKWARD
#     applies again: a schema that breaks the rules goes into a subject of
#     its own (a subject's first version is never checked).

version=3.0.9
artifact=io.apicurio:apicurio-registry-app:$version:tar.gz:all
jar=apicurio-registry-app-$version-runner.jar
home=${ADVREC_CACHE:-$HOME/.cache/advrec}/apicurio-registry-$version

die() { echo "registry.sh: $*" >&2; exit 1; }
note() { echo "registry.sh: $*" >&2; }

# fetch: the app directory appears by rename only, so its existence means it
# is complete. Maven downloads into its own cache (~/.m2) and copies the
# tar.gz out of it; -Dtransitive=false because the app's parent POM is not
# on Maven Central (nothing in the tar.gz needs it).
cmd_fetch() {
  [ -f "$home/$jar" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (tools/install-deps.sh installs maven)"
  mkdir -p "$(dirname "$home")"
  local work
  work=$(mktemp -d "$home.fetch.XXXXXX")
  note "fetching Apicurio Registry $version (Maven Central) into $home"
  (cd "$work" && mvn -B -q -Dstyle.color=never dependency:copy -Dartifact="$artifact" \
     -Dtransitive=false -DoutputDirectory="$work" 2>&1 \
     | sed 's/\x1b\[[0-9;]*m//g' >&2) \
    || { rm -rf "$work"; die "mvn dependency:copy $artifact failed"; }
  mkdir "$work/app"
  tar xzf "$work"/apicurio-registry-app-*.tar.gz -C "$work/app" \
    || { rm -rf "$work"; die "unpacking the Apicurio tar.gz failed"; }
  [ -f "$work/app/$jar" ] || { rm -rf "$work"; die "$jar missing from the tar.gz"; }
  # A concurrent fetch may have won: keep its copy.
  mv -T "$work/app" "$home" 2>/dev/null || [ -f "$home/$jar" ] \
    || { rm -rf "$work"; die "cannot move the app to $home"; }
  rm -rf "$work"
}

absdir() { mkdir -p "$1" && (cd "$1" && pwd); }

# The pid in DIR/pid is ours only if that process is the registry started
# for DIR (the -Dadvrec.registry.dir marker): a reused pid is never signalled.
registry_pid() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "-Dadvrec.registry.dir=$dir" || return 1
  echo "$pid"
}

url_of() {
  [ -s "$1/url" ] || die "$1/url missing: no registry started in $1"
  cat "$1/url"
}

# http METHOD URL [JSON]: prints the status line "HTTP nnn" and the body;
# exit 0 even for 4xx/5xx, non-zero only when nothing answered. Python, not
# curl: python3 is a test dependency already, the curl program is not.
http() {
  python3 - "$@" <<'EOF'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, method=method)
if data is not None:
    req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except OSError as e:
    print("no answer: %s" % e)
    sys.exit(1)
print("HTTP %d" % status)
print(body.decode(errors="replace"))
EOF
}

free_port() {
  python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

cmd_start() {
  [ $# -eq 1 ] || die "usage: registry.sh start DIR"
  local dir
  dir=$(absdir "$1")
  if registry_pid "$dir" >/dev/null; then
    note "registry already running in $dir"
    url_of "$dir"
    return 0
  fi
  command -v java >/dev/null 2>&1 || die "java not found (Apicurio $version needs Java 17+)"
  cmd_fetch
  local port t0
  if [ -s "$dir/port" ]; then
    port=$(cat "$dir/port")
  else
    port=$(free_port)
  fi
  t0=$(date +%s%3N)
  [ -f "$dir/registry.log" ] && mv "$dir/registry.log" "$dir/registry.log.prev"
  # Own session, no inherited descriptors: the registry outlives this
  # script and holds no pipe of its caller open. The working directory is
  # DIR, so that nothing the app might write lands elsewhere.
  (cd "$dir" && exec setsid java -Xmx256m -Djava.awt.headless=true \
    -Dadvrec.registry.dir="$dir" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -jar "$home/$jar" </dev/null >"$dir/registry.log" 2>&1) &
  local pid=$!
  echo "$pid" >"$dir/pid"
  echo "$port" >"$dir/port"
  local base=http://127.0.0.1:$port
  local limit=${ADVREC_REGISTRY_START_TIMEOUT:-120}
  local deadline=$((SECONDS + limit))
  while [ "$(http GET "$base/health/ready" 2>/dev/null | head -n 1)" != "HTTP 200" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/registry.log" >&2 2>/dev/null || true
      rm -f "$dir/pid"
      die "registry in $dir exited during start-up (see $dir/registry.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$dir/registry.log" >&2 2>/dev/null || true
      cmd_stop "$dir"
      die "registry in $dir not ready within ${limit}s"
    fi
    sleep 0.2
  done
  local url=$base/apis/ccompat/v7 out
  out=$(http PUT "$url/config" '{"compatibility":"BACKWARD"}') \
    || { cmd_stop "$dir"; die "PUT $url/config: no answer"; }
  [[ $out == *'"compatibilityLevel":"BACKWARD"'* ]] \
    || { cmd_stop "$dir"; die "PUT $url/config BACKWARD: $out"; }
  echo "$url" >"$dir/url"
  note "Apicurio Registry $version ready in $dir in $(( $(date +%s%3N) - t0 )) ms (pid $pid)"
  echo "$url"
}

cmd_stop() {
  [ $# -eq 1 ] || die "usage: registry.sh stop DIR"
  [ -d "$1" ] || return 0
  local dir pid
  dir=$(cd "$1" && pwd)
  if ! pid=$(registry_pid "$dir"); then
    rm -f "$dir/pid"
    return 0
  fi
  # CONT after TERM: a paused JVM acts on the TERM only once it runs.
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  local limit=${ADVREC_REGISTRY_STOP_TIMEOUT:-30}
  local deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "registry $pid in $dir ignored SIGTERM for ${limit}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/pid"
  note "registry in $dir stopped"
}

# pause/resume DIR: SIGSTOP/SIGCONT; the JVM must be running.
cmd_signal() {
  local sig=$1
  shift
  [ $# -eq 1 ] || die "usage: registry.sh pause|resume DIR"
  local dir pid
  dir=$(absdir "$1")
  pid=$(registry_pid "$dir") || die "no registry running in $dir"
  kill -"$sig" "$pid"
}

case ${1:-} in
  fetch) shift; [ $# -eq 0 ] || die "usage: registry.sh fetch"; cmd_fetch ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  pause) shift; cmd_signal STOP "$@" ;;
  resume) shift; cmd_signal CONT "$@" ;;
  url) shift; [ $# -eq 1 ] || die "usage: registry.sh url DIR"; url_of "$1" ;;
  home) cmd_fetch; echo "$home" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
