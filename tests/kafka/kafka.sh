#!/usr/bin/env bash
# A real Apache Kafka broker for tests: single node, KRaft (broker and
# controller in one JVM), on 127.0.0.1 only, on free ports, in a directory the
# caller names. The jars come from Maven Central (tests/kafka/pom.xml holds the
# versions) into a cache outside the repository, one classpath per version.
#
#   kafka.sh [--kafka-version V] COMMAND ...
#   kafka.sh fetch [--secure]            lay the classpath in the cache (idempotent);
#                                        --secure: the secure broker's version
#   kafka.sh start [--fresh] [--env] [--secure] DIR [key=value ...]
#                                        start a broker in DIR; print host:port
#   kafka.sh stop DIR                    SIGTERM, bounded wait, SIGKILL (idempotent)
#   kafka.sh topics DIR name:partitions[:compact][:key=value...] ...
#                                        create topics (if they do not exist)
#   kafka.sh consume DIR TOPIC [ConsoleConsumer args ...]
#                                        Kafka's own Java console consumer
#   kafka.sh tool CLASS [args ...]       run any Kafka main class (tools classpath)
#   kafka.sh bootstrap DIR               print DIR's bootstrap address
#   kafka.sh classpath                   print the classpath directory
#
# What DIR holds after start: server.properties, data/ (log dirs and KRaft
# metadata), broker.log (INFO), broker.out (JVM stdout/stderr), bootstrap
# (one line, host:port), pid, kafka.version. `start DIR` on a DIR whose broker was
# stopped restarts it on the same ports with the same data (a broker-restart
# test needs exactly that); --fresh wipes DIR's broker state first. Extra
# key=value arguments are appended to server.properties (fresh start only).
# --env: when ADVREC_KAFKA_BOOTSTRAP is set, start nothing and write that
# address to DIR/bootstrap instead (e2e against an already-running broker).
#
# --secure (fresh start): clients get a SASL_SSL listener with SCRAM-SHA-512,
# on Kafka 3.9 (see Versions). A throw-away CA and a broker certificate for
# 127.0.0.1 are made with openssl in DIR/tls (ca.pem, the broker's PKCS12
# keystore; truststore.p12 for Java clients); the SCRAM user `advrec` with a
# random password is added at format time (kafka-storage format --add-scram);
# the same user and password also work with SASL PLAIN on that listener.
# DIR/bootstrap is then the SASL_SSL address, and DIR/client.properties (mode
# 0600) holds what a librdkafka client needs: security.protocol,
# sasl.mechanisms, sasl.username, sasl.password, ssl.ca.location. The
# inter-broker and controller listeners stay PLAINTEXT on 127.0.0.1; `topics`
# and `consume` use that listener (DIR/bootstrap.plaintext).
#
# Versions: a broker runs pom.xml's kafka.version (4.x), a --secure broker its
# kafka.secure.version (3.9.x): Kafka 4.x refuses the SCRAM of librdkafka
# before 2.6.1 (librdkafka#4895), Kafka 3.9 accepts it, so every client can
# use SCRAM-SHA-512 there. ADVREC_KAFKA_VERSION (plain brokers) and
# ADVREC_KAFKA_SECURE_VERSION (--secure) override those; --kafka-version V
# overrides both. `start` records the version in DIR/kafka.version; a restart
# of DIR, `topics DIR` and `consume DIR` use that one. Any Kafka 3.9 or later
# works (KRaft with controller.quorum.bootstrap.servers, format --standalone);
# a 3.x version logs through reload4j (log4j-*.properties), 4.x through log4j2
# (log4j2-*.properties).
#
# Environment: ADVREC_CACHE (default ~/.cache/advrec) holds kafka-<version>/lib-*;
# Maven keeps its own ~/.m2. ADVREC_KAFKA_START_TIMEOUT (s, default 90) bounds
# start-up; ADVREC_KAFKA_STOP_TIMEOUT (s, default 30) bounds a graceful stop.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "kafka.sh: $*" >&2; exit 1; }
note() { echo "kafka.sh: $*" >&2; }

pom_property() {
  local v
  v=$(sed -n "s:.*<$1>\\(.*\\)</$1>.*:\\1:p" "$here/pom.xml")
  [ -n "$v" ] || die "no <$1> in $here/pom.xml"
  echo "$v"
}
default_version=$(pom_property kafka.version)
secure_version=$(pom_property kafka.secure.version)

# use_version V: the Kafka version the command runs, its logging backend
# (log4j2 for 4.x, reload4j for 3.x), the Maven arguments that select both,
# and its classpath directory: lib-HASH, HASH naming pom.xml's content and
# those arguments, so that checkouts with different poms (worktrees, branches)
# sharing one cache each get their own classpath and never replace another's.
version="" cache="" lib="" logging="" mvn_args=()
use_version() {
  [[ $1 =~ ^([0-9]+)\.[0-9]+\.[0-9]+$ ]] || die "bad Kafka version '$1' (want N.N.N)"
  version=$1
  if [ "${BASH_REMATCH[1]}" -ge 4 ]; then logging=log4j2; else logging=reload4j; fi
  mvn_args=()
  [ "$version" = "$default_version" ] || mvn_args+=(-Dkafka.version="$version")
  [ "$logging" = log4j2 ] || mvn_args+=(-P"$logging")
  local key
  key=$( (cat "$here/pom.xml"; echo "${mvn_args[*]}") | sha256sum | cut -c1-16)
  cache=${ADVREC_CACHE:-$HOME/.cache/advrec}/kafka-$version
  lib=$cache/lib-$key
}

# --kafka-version V before the command wins over everything else.
opt_version=""
if [ "${1:-}" = --kafka-version ]; then
  [ $# -ge 2 ] || die "--kafka-version needs a version"
  opt_version=$2
  shift 2
fi
use_version "${opt_version:-${ADVREC_KAFKA_VERSION:-$default_version}}"

# The version of a broker in DIR (recorded at start) unless --kafka-version
# names one.
use_dir_version() {
  if [ -z "$opt_version" ] && [ -s "$1/kafka.version" ]; then
    use_version "$(cat "$1/kafka.version")"
  fi
}

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found (Kafka $version needs Java 17+)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Java $v found, Kafka $version needs 17+"
}

# fetch: an existing classpath directory is complete (it appears by rename
# only), so this is a directory test unless pom.xml or the version changed.
# Maven's own cache is ~/.m2. The default version runs the pom as it is.
cmd_fetch() {
  [ -d "$lib" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (tools/install-deps.sh installs maven)"
  mkdir -p "$cache"
  # Maven runs on a copy of the pom in a directory of its own in the cache,
  # so that nothing (target/) is written into the repository and concurrent
  # fetches do not share one.
  local work
  work=$(mktemp -d "$cache/fetch.XXXXXX")
  cp "$here/pom.xml" "$work/pom.xml"
  note "fetching Apache Kafka $version jars (Maven Central) into $lib"
  (cd "$work" && mvn -B -q -Dstyle.color=never "${mvn_args[@]}" dependency:copy-dependencies \
     -DincludeScope=runtime -DoutputDirectory="$work/lib" 2>&1 \
     | sed 's/\x1b\[[0-9;]*m//g' >&2) \
    || { rm -rf "$work"; die "mvn dependency:copy-dependencies failed for Kafka $version"; }
  [ -f "$work/lib/kafka_2.13-$version.jar" ] \
    || { rm -rf "$work"; die "kafka_2.13-$version.jar missing after fetch"; }
  # A concurrent fetch of the same classpath may have won: keep its copy.
  mv -T "$work/lib" "$lib" 2>/dev/null || [ -d "$lib" ] \
    || { rm -rf "$work"; die "cannot move the classpath to $lib"; }
  rm -rf "$work"
  note "Kafka $version: $(ls "$lib" | wc -l) jars"
}

# Runs a short-lived Kafka tool with warnings to stderr only. The JIT flags
# trade peak speed for a faster start, which is what a one-shot tool needs.
run_tool() {
  local class=$1
  shift
  need_java
  cmd_fetch
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "$(log_config tools)" -cp "$lib/*" "$class" "$@"
}

# The JVM option naming the logging configuration tests/kafka/*-NAME.properties
# for this version's backend.
log_config() {
  case $logging in
    log4j2) echo "-Dlog4j2.configurationFile=$here/log4j2-$1.properties" ;;
    reload4j) echo "-Dlog4j.configuration=file:$here/log4j-$1.properties" ;;
  esac
}

absdir() { mkdir -p "$1" && (cd "$1" && pwd); }

# The pid in DIR/pid is ours only if that process is a Kafka broker started on
# DIR's server.properties: a stale pid reused by another process is never
# signalled.
broker_pid() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

bootstrap_of() {
  [ -s "$1/bootstrap" ] || die "$1/bootstrap missing: no broker started in $1"
  cat "$1/bootstrap"
}

free_ports() {
  python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "${1:-2}"
}

# The address the admin tools use: the PLAINTEXT listener of a --secure
# broker, else the one address there is.
admin_bootstrap_of() {
  if [ -s "$1/bootstrap.plaintext" ]; then
    cat "$1/bootstrap.plaintext"
  else
    bootstrap_of "$1"
  fi
}

# --secure: CA, broker certificate and keystores in DIR/tls, SCRAM password,
# client.properties. Sets scram_password and store_password.
make_secure() {
  local dir=$1 tls=$1/tls
  command -v openssl >/dev/null 2>&1 || die "--secure needs openssl"
  command -v keytool >/dev/null 2>&1 || die "--secure needs keytool (the JDK)"
  rm -rf "$tls"
  mkdir -p "$tls"
  chmod 700 "$tls"
  # Hex only: the password goes into --add-scram's [name=..,password=..].
  scram_password=$(openssl rand -hex 16)
  store_password=$(openssl rand -hex 16)
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=advrec test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$tls/broker.key" -out "$tls/broker.csr"
    # Both SAN forms: librdkafka (OpenSSL) and Python match the IP entry.
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1\n' >"$tls/san.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 2 -extfile "$tls/san.ext" -out "$tls/broker.pem"
    openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" \
      -certfile "$tls/ca.pem" -name broker -out "$tls/broker.p12" \
      -passout "pass:$store_password"
    keytool -importcert -noprompt -alias ca -file "$tls/ca.pem" -storetype PKCS12 \
      -keystore "$tls/truststore.p12" -storepass "$store_password"
  } >"$dir/tls.out" 2>&1 || { cat "$dir/tls.out" >&2; die "making the test CA in $tls failed"; }
  (
    umask 077
    cat >"$dir/client.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanisms=SCRAM-SHA-512
sasl.username=advrec
sasl.password=$scram_password
ssl.ca.location=$tls/ca.pem
EOF
  )
}

write_properties() {
  local dir=$1 port=$2 cport=$3 sport=$4
  shift 4
  cat >"$dir/server.properties" <<EOF
# Written by tests/kafka/kafka.sh: one node, KRaft combined mode, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# Test streams replay old event times (Taobao is from 2017, generated streams
# start in the past) and producers stamp records with them: with the default
# 7-day retention the broker's first retention check (30 s after start)
# would silently delete them under a running test. Tests keep everything.
log.retention.ms=-1
num.network.threads=2
num.io.threads=4
EOF
  if [ "$logging" = log4j2 ]; then
    # Kafka 4.x only (share groups); 3.x would warn about unknown keys.
    cat >>"$dir/server.properties" <<EOF
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  fi
  if [ -n "$sport" ]; then
    # Clients on SASL_SSL + SCRAM-SHA-512; PLAINTEXT stays for the broker
    # itself and the admin tools, on loopback. Later keys win.
    cat >>"$dir/server.properties" <<EOF
# --secure: a SASL_SSL listener for clients (SCRAM-SHA-512, TLS from DIR/tls).
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_advrec="$scram_password";
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$store_password
ssl.client.auth=none
EOF
  fi
  local kv
  for kv in "$@"; do
    case $kv in
      *=*) echo "$kv" >>"$dir/server.properties" ;;
      *) die "start: '$kv' is not key=value" ;;
    esac
  done
}

cmd_start() {
  local fresh=0 env=0 secure=0
  while [ $# -gt 0 ]; do
    case $1 in
      --fresh) fresh=1; shift ;;
      --env) env=1; shift ;;
      --secure) secure=1; shift ;;
      --) shift; break ;;
      -*) die "start: unknown option $1" ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || die "usage: kafka.sh start [--fresh] [--env] [--secure] DIR [key=value ...]"
  local dir
  dir=$(absdir "$1")
  shift
  # The version: --kafka-version, else the environment's or the pom's for
  # this kind of broker; a restart keeps the one DIR's data was made with.
  if [ -z "$opt_version" ] && [ "$secure" = 1 ]; then
    use_version "${ADVREC_KAFKA_SECURE_VERSION:-$secure_version}"
  fi
  if [ "$fresh" = 0 ] && [ -f "$dir/data/meta.properties" ] && [ -s "$dir/kafka.version" ]; then
    local made
    made=$(cat "$dir/kafka.version")
    [ -z "$opt_version" ] || [ "$opt_version" = "$made" ] \
      || die "start: $dir holds a Kafka $made broker, not $opt_version (use --fresh)"
    use_version "$made"
  fi

  # Fresh means fresh: a broker left running in DIR (an interrupted run whose
  # cleanup never came) is stopped, not reused.
  [ "$fresh" = 1 ] && cmd_stop "$dir"
  if [ "$env" = 1 ] && [ "$secure" = 0 ] && [ -n "${ADVREC_KAFKA_BOOTSTRAP:-}" ]; then
    rm -f "$dir/pid" "$dir/kafka.version"
    echo "$ADVREC_KAFKA_BOOTSTRAP" >"$dir/bootstrap"
    note "using the running broker at $ADVREC_KAFKA_BOOTSTRAP (ADVREC_KAFKA_BOOTSTRAP)"
    echo "$ADVREC_KAFKA_BOOTSTRAP"
    return 0
  fi

  if broker_pid "$dir" >/dev/null; then
    note "broker already running in $dir"
    bootstrap_of "$dir"
    return 0
  fi
  need_java
  cmd_fetch

  if [ "$fresh" = 1 ]; then
    rm -rf "$dir/data" "$dir/server.properties" "$dir/bootstrap" "$dir/pid" \
      "$dir"/broker.log* "$dir/broker.out" "$dir/bootstrap.plaintext" \
      "$dir/client.properties" "$dir/tls" "$dir/tls.out" "$dir/kafka.version"
  fi
  local t0 port cport sport=""
  t0=$(date +%s%3N)
  if [ -f "$dir/data/meta.properties" ] && [ -f "$dir/server.properties" ]; then
    # Restart: same ports, same data (the KRaft voter set recorded at format
    # time names the controller port, so it must not change).
    [ $# -eq 0 ] || die "start: key=value only on a fresh DIR"
    port=$(sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$dir/server.properties" | tail -n 1)
    sport=$(sed -n 's|^listeners=.*SASL_SSL://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/server.properties")
    note "restarting the broker in $dir on port $port"
  else
    rm -rf "$dir/data"
    local scram=()
    if [ "$secure" = 1 ]; then
      local scram_password store_password
      read -r port cport sport < <(free_ports 3)
      make_secure "$dir"
      scram=(--add-scram "SCRAM-SHA-512=[name=advrec,password=$scram_password]")
    else
      read -r port cport < <(free_ports 2)
    fi
    write_properties "$dir" "$port" "$cport" "$sport" "$@"
    local cluster
    # A cluster id as StorageTool random-uuid makes one (16 random bytes,
    # URL-safe base64, not starting with '-'), without a JVM start for it.
    cluster=$(python3 -c '
import base64, os
while True:
    u = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not u.startswith("-"):
        print(u)
        break')
    run_tool kafka.tools.StorageTool format --standalone -t "$cluster" \
      "${scram[@]}" -c "$dir/server.properties" >"$dir/format.out" 2>&1 \
      || { cat "$dir/format.out" >&2; die "storage format failed in $dir"; }
    echo "$version" >"$dir/kafka.version"
  fi
  if [ -n "$sport" ]; then
    echo "127.0.0.1:$port" >"$dir/bootstrap.plaintext"
    echo "127.0.0.1:$sport" >"$dir/bootstrap"
  else
    echo "127.0.0.1:$port" >"$dir/bootstrap"
  fi

  [ -f "$dir/broker.log" ] && mv "$dir/broker.log" "$dir/broker.log.prev"
  # Own session, no inherited descriptors: the broker outlives this script
  # (a ctest fixture step) and holds no pipe of its caller open.
  setsid java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    "$(log_config broker)" -Dadvrec.kafka.log="$dir/broker.log" \
    -cp "$lib/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/broker.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"

  # Ready when the broker says so: the port accepts connections earlier than
  # the broker serves metadata.
  local limit=${ADVREC_KAFKA_START_TIMEOUT:-90}
  local deadline=$((SECONDS + limit))
  while ! grep -q 'Kafka Server started' "$dir/broker.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/broker.log" "$dir/broker.out" >&2 2>/dev/null || true
      rm -f "$dir/pid"
      die "broker in $dir exited during start-up (see $dir/broker.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$dir/broker.log" "$dir/broker.out" >&2 2>/dev/null || true
      cmd_stop "$dir"
      die "broker in $dir not started within ${limit}s"
    fi
    sleep 0.2
  done
  note "Kafka $version started in $dir in $(( $(date +%s%3N) - t0 )) ms (pid $pid)"
  cat "$dir/bootstrap"
}

cmd_stop() {
  [ $# -eq 1 ] || die "usage: kafka.sh stop DIR"
  [ -d "$1" ] || return 0
  local dir pid
  dir=$(cd "$1" && pwd)
  if ! pid=$(broker_pid "$dir"); then
    rm -f "$dir/pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local limit=${ADVREC_KAFKA_STOP_TIMEOUT:-30}
  local deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "broker $pid in $dir ignored SIGTERM for ${limit}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/pid"
  note "broker in $dir stopped"
}

cmd_topics() {
  [ $# -ge 2 ] || die "usage: kafka.sh topics DIR name:partitions[:compact][:key=value...] ..."
  local bs spec
  bs=$(admin_bootstrap_of "$1")
  use_dir_version "$1"
  shift
  for spec in "$@"; do
    local f
    IFS=: read -r -a f <<<"$spec"
    local name=${f[0]} parts=${f[1]:-}
    [ -n "$name" ] && [[ $parts =~ ^[0-9]+$ ]] || die "topics: bad spec '$spec'"
    local args=(--bootstrap-server "$bs" --create --if-not-exists --topic "$name"
      --partitions "$parts" --replication-factor 1)
    local opt
    for opt in "${f[@]:2}"; do
      case $opt in
        compact) args+=(--config cleanup.policy=compact) ;;
        *=*) args+=(--config "$opt") ;;
        *) die "topics: bad option '$opt' in '$spec'" ;;
      esac
    done
    run_tool org.apache.kafka.tools.TopicCommand "${args[@]}" >/dev/null \
      || die "topics: creating '$spec' on $bs failed"
  done
}

cmd_consume() {
  [ $# -ge 2 ] || die "usage: kafka.sh consume DIR TOPIC [ConsoleConsumer args ...]"
  local bs topic=$2
  bs=$(admin_bootstrap_of "$1")
  use_dir_version "$1"
  shift 2
  run_tool org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server "$bs" --topic "$topic" "$@"
}

case ${1:-} in
  fetch)
    shift
    if [ "${1:-}" = --secure ]; then
      shift
      [ -n "$opt_version" ] || use_version "${ADVREC_KAFKA_SECURE_VERSION:-$secure_version}"
    fi
    [ $# -eq 0 ] || die "usage: kafka.sh [--kafka-version V] fetch [--secure]"
    cmd_fetch ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  topics) shift; cmd_topics "$@" ;;
  consume) shift; cmd_consume "$@" ;;
  tool) shift; [ $# -ge 1 ] || die "usage: kafka.sh tool CLASS [args]"; run_tool "$@" ;;
  bootstrap) shift; [ $# -eq 1 ] || die "usage: kafka.sh bootstrap DIR"; bootstrap_of "$1" ;;
  classpath) cmd_fetch; echo "$lib" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
