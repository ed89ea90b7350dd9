#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker+controller) on
# loopback, for the Floodgate demo and tests. Jars come from Maven Central via
# scripts/kafka/pom.xml and are cached in .cache/kafka/<version>/libs.
#
# Usage: scripts/kafka.sh <command> [DIR]
#   fetch              download the broker jars (no-op when the cache is complete)
#   start [DIR]        start a broker whose files live in DIR (default .run/kafka),
#                      wait until it answers, print its bootstrap address (last line)
#   stop [DIR]         stop that broker and delete its data (no-op if none runs)
#   bounce DIR [SECS]  stop that broker, wait SECS (5), start it again with its data
#   bootstrap [DIR]    print the bootstrap address of the broker running in DIR
#   sasl-env [DIR]     print shell exports for the SASL_SSL listener of the broker in DIR
#                      (KAFKA_SASL_SSL_BOOTSTRAP, KAFKA_SASL_SSL_CA, KAFKA_SASL_USERNAME,
#                      KAFKA_SASL_PASSWORD), for a broker started with KAFKA_SASL_SSL=1
#   classpath          print the classpath (a 'libs/*' wildcard) of the cached jars
#   tool CLASS [ARGS]  run a Kafka tool class from the cached classpath, e.g.
#                      tool org.apache.kafka.tools.TopicCommand --bootstrap-server B --list
#
# If KAFKA_BOOTSTRAP is set, start/bootstrap just print it (an external broker).
# Several brokers can run at once, each in its own DIR with its own free ports.
# Environment: JAVA_HOME, KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g),
# KAFKA_START_TIMEOUT (seconds, default 90), KAFKA_STOP_TIMEOUT (default 30),
# KAFKA_PORT (the client port; default a free one: a test that starts nodes before their broker
# needs to know it in advance), KAFKA_SASL_SSL=1 (start: add a SASL_SSL listener on a third port,
# with a self-signed certificate made by keytool (DIR/tls/ca.pem is its PEM) and one user,
# floodgate / floodgate-secret, for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; the PLAINTEXT listener
# stays for the broker's own readiness check and the other tests), KAFKA_HOST (the address the
# client listeners bind to and advertise, default 127.0.0.1; scripts/k8s/cluster.sh gives the
# node's IP so that pods reach the broker; the controller listener stays on loopback),
# KAFKA_PROXIED_ADVERTISED=PORT (start: add a PLAINTEXT listener named PROXIED on a fourth free
# port, written to DIR/proxied_listener, that advertises 127.0.0.1:PORT instead: a client that
# bootstraps at PORT, where a test's TCP proxy forwards to that listener, then reaches the broker
# only through the proxy, so the test can cut that one client off Kafka while the others go on).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | sed -n 1p)"
[[ -n "$KAFKA_VERSION" ]] || { echo "kafka.sh: no <kafka.version> in $POM" >&2; exit 1; }
CACHE="$ROOT/.cache/kafka/$KAFKA_VERSION"
LIBS="$CACHE/libs"
DEFAULT_RUN_DIR="$ROOT/.run/kafka"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Absolute run dir from an optional argument (relative to the caller's cwd).
run_dir() {
  local d="${1:-$DEFAULT_RUN_DIR}"
  [[ "$d" = /* ]] || d="$PWD/$d"
  echo "$d"
}

cache_complete() { [[ -f "$LIBS/.complete" ]]; }

cmd_fetch() {
  cache_complete && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once, to fetch Kafka $KAFKA_VERSION)"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.fetch.lock"
  flock 8
  if ! cache_complete; then
    log "fetching Kafka $KAFKA_VERSION jars into $LIBS"
    local tmp="$CACHE/libs.tmp.$$"
    rm -rf "$tmp" "$LIBS"
    # mvn -q prints errors (and, on Maven 3.8, stray colour resets) on stdout:
    # keep our stdout for results only.
    if ! mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 \
        | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
      rm -rf "$tmp"
      die "mvn failed to fetch Kafka $KAFKA_VERSION"
    fi
    compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "kafka_2.13 jar missing after fetch"; }
    (cd "$tmp" && ls -1 ./*.jar) >"$tmp/.complete"
    mv "$tmp" "$LIBS"
  fi
  exec 8>&-
}

# java for short-lived Kafka tools: small heap, fast start-up, warnings on stderr.
TOOL_JAVA=("$JAVA" -Xms32m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2-tools.properties"
  -cp "$LIBS/*")
tool_java() { "${TOOL_JAVA[@]}" "$@"; }

cmd_classpath() { cmd_fetch; echo "$LIBS/*"; }

cmd_tool() {
  [[ $# -ge 1 ]] || die "usage: kafka.sh tool CLASS [ARGS...]"
  cmd_fetch
  tool_java "$@"
}

# Four distinct free TCP ports on 127.0.0.1 (all held open while choosing).
free_ports() {
  python3 -c '
import socket
ss = []
for _ in range(4):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss:
    s.close()
'
}

# Kafka Uuid string: base64url of 16 random bytes, no padding, not starting with "-".
new_cluster_id() {
  python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
'
}

# Is the pid in DIR/broker.pid a live broker started from DIR?
broker_pid() {
  local dir="$1" pid
  [[ -f "$dir/broker.pid" ]] || return 1
  pid="$(cat "$dir/broker.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be our kafka.Kafka for this DIR.
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"kafka.Kafka $dir/server.properties"* ]] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

HOST="${KAFKA_HOST:-127.0.0.1}"
[[ "$HOST" =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "KAFKA_HOST must be an IPv4 address, not '$HOST'"

SASL_USER=floodgate
SASL_PASSWORD=floodgate-secret
TLS_STOREPASS=floodgate-store

# A self-signed certificate for 127.0.0.1 (and KAFKA_HOST) in a PKCS12 keystore, and its PEM
# for clients.
make_tls() {
  local tls="$1/tls" keytool=keytool san="ip:127.0.0.1,dns:localhost"
  [[ "$HOST" == 127.0.0.1 ]] || san+=",ip:$HOST"
  [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/keytool" ]] && keytool="$JAVA_HOME/bin/keytool"
  rm -rf "$tls" && mkdir -p "$tls"
  "$keytool" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 30 \
    -dname "CN=127.0.0.1" -ext "SAN=$san" \
    -keystore "$tls/broker.p12" -storetype PKCS12 -storepass "$TLS_STOREPASS" >/dev/null 2>&1
  "$keytool" -exportcert -rfc -alias broker -keystore "$tls/broker.p12" \
    -storepass "$TLS_STOREPASS" -file "$tls/ca.pem" >/dev/null 2>&1
}

write_config() {
  local dir="$1" port="$2" cport="$3" sport="$4" pport="$5"
  local listeners="PLAINTEXT://$HOST:$port,CONTROLLER://127.0.0.1:$cport"
  local advertised="PLAINTEXT://$HOST:$port" map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n "${KAFKA_PROXIED_ADVERTISED:-}" ]]; then
    listeners+=",PROXIED://127.0.0.1:$pport"
    advertised+=",PROXIED://127.0.0.1:$KAFKA_PROXIED_ADVERTISED"
    map+=",PROXIED:PLAINTEXT"
  fi
  if [[ "${KAFKA_SASL_SSL:-}" == 1 ]]; then
    listeners+=",SASL_SSL://$HOST:$sport"
    advertised+=",SASL_SSL://$HOST:$sport"
    map+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh: single-node KRaft broker+controller on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.check.interval.ms=300000
num.network.threads=2
num.io.threads=4
EOF
  if [[ "${KAFKA_SASL_SSL:-}" == 1 ]]; then
    cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$TLS_STOREPASS
ssl.key.password=$TLS_STOREPASS
EOF
  fi
}

# One attempt to format and launch the broker; returns 0 once it answers,
# 2 if the chosen ports were taken meanwhile (caller retries), 1 otherwise.
launch() {
  local dir="$1" deadline="$2" port cport sport pport
  read -r port cport sport pport < <(free_ports) && [[ -n "${pport:-}" ]] || { log "could not pick free ports"; return 1; }
  if [[ -n "${KAFKA_PORT:-}" ]]; then
    port="$KAFKA_PORT"
    [[ "$cport" != "$port" && "$sport" != "$port" && "$pport" != "$port" ]] || { log "a chosen port collides with KAFKA_PORT"; return 2; }
  fi
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  write_config "$dir" "$port" "$cport" "$sport" "$pport"
  if [[ -n "${KAFKA_PROXIED_ADVERTISED:-}" ]]; then
    echo "127.0.0.1:$pport" >"$dir/proxied_listener"
  fi
  : >"$dir/broker.log"
  local scram=()
  if [[ "${KAFKA_SASL_SSL:-}" == 1 ]]; then
    make_tls "$dir" || { log "keytool could not make the TLS keystore"; return 1; }
    scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]"
      --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
    echo "$HOST:$sport" >"$dir/sasl_ssl_bootstrap"
  fi

  if ! tool_java kafka.tools.StorageTool format --config "$dir/server.properties" \
      --cluster-id "$(new_cluster_id)" --ignore-formatted "${scram[@]}" >>"$dir/broker.log" 2>&1; then
    log "storage format failed"
    return 1
  fi

  spawn_broker "$dir"
  echo "$HOST:$port" >"$dir/bootstrap"
  await_broker "$dir" "$port" "$deadline"
}

# Launches the broker configured in DIR (detached: own session, no stdin, no inherited lock
# fd; all output to its log) and records its pid.
spawn_broker() {
  local dir="$1"
  # shellcheck disable=SC2086
  setsid "$JAVA" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2-broker.properties" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >>"$dir/broker.log" 2>&1 9>&- &
  echo "$!" >"$dir/broker.pid"
}

# Waits until the broker of DIR answers on PORT; 0 once it does, 2 if its port was taken.
await_broker() {
  local dir="$1" port="$2" deadline="$3" pid
  pid="$(cat "$dir/broker.pid")"
  # 1) cheap polling until the broker says it started and its port accepts TCP.
  while :; do
    kill -0 "$pid" 2>/dev/null || {
      grep -q 'Address already in use' "$dir/broker.log" && return 2
      log "broker exited during start-up"; return 1; }
    if grep -q 'Kafka Server started' "$dir/broker.log" && port_open "$port"; then break; fi
    (( SECONDS < deadline )) || { log "timed out waiting for the broker to start"; return 1; }
    sleep 0.2
  done
  # 2) make sure it really answers Kafka requests (metadata through the admin client).
  while :; do
    local left=$(( deadline - SECONDS ))
    (( left > 0 )) || { log "timed out waiting for the broker to answer"; return 1; }
    if timeout "$left" "${TOOL_JAVA[@]}" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$HOST:$port" --list >>"$dir/broker.log" 2>&1; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "broker exited during start-up"; return 1; }
    sleep 0.5
  done
}

kill_broker() {
  local dir="$1" pid
  if pid="$(broker_pid "$dir")"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( SECONDS + STOP_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "broker $pid did not stop in ${STOP_TIMEOUT}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -rf "$dir/data" "$dir/tls"
  rm -f "$dir/broker.pid" "$dir/bootstrap" "$dir/sasl_ssl_bootstrap" "$dir/server.properties"
}

cmd_start() {
  if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then echo "$KAFKA_BOOTSTRAP"; return 0; fi
  local dir; dir="$(run_dir "${1:-}")"
  cmd_fetch
  command -v python3 >/dev/null || die "python3 not found (used to pick free ports)"
  if [[ -n "${KAFKA_PROXIED_ADVERTISED:-}" ]]; then
    [[ "$KAFKA_PROXIED_ADVERTISED" =~ ^[0-9]{1,5}$ ]] && ((KAFKA_PROXIED_ADVERTISED >= 1 && KAFKA_PROXIED_ADVERTISED <= 65535)) ||
      die "KAFKA_PROXIED_ADVERTISED: expected a TCP port (1-65535), got '$KAFKA_PROXIED_ADVERTISED'"
  fi
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if broker_pid "$dir" >/dev/null; then
    log "broker already running in $dir"
    cat "$dir/bootstrap"
    return 0
  fi
  kill_broker "$dir"   # clean up after a crashed or killed broker
  local deadline=$(( SECONDS + START_TIMEOUT )) attempt rc
  for attempt in 1 2 3; do
    rc=0; launch "$dir" "$deadline" || rc=$?
    if (( rc == 0 )); then
      log "Kafka $KAFKA_VERSION ready in $dir (log: $dir/broker.log)"
      cat "$dir/bootstrap"
      return 0
    fi
    kill_broker "$dir"
    (( rc == 2 )) && { log "port taken, retrying ($attempt)"; continue; }
    break
  done
  log "failed to start Kafka; last lines of $dir/broker.log:"
  tail -n 40 "$dir/broker.log" >&2 || true
  exit 1
}

# Stops the broker for SECONDS and starts it again on the same ports with the same data, as a
# broker restart does (the fault tests' outage).
cmd_bounce() {
  local dir secs="${2:-5}" pid port
  dir="$(run_dir "${1:-}")"
  exec 9>"$dir/.lock"
  flock 9
  pid="$(broker_pid "$dir")" || die "no broker running in $dir"
  port="$(sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/bootstrap")"
  kill -TERM "$pid"
  local deadline=$(( SECONDS + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; }
  log "broker stopped; starting it again in ${secs}s"
  sleep "$secs"
  : >"$dir/broker.log"
  spawn_broker "$dir"
  await_broker "$dir" "$port" $(( SECONDS + START_TIMEOUT )) || die "the broker did not come back"
  log "broker back in $dir"
}

cmd_stop() {
  local dir; dir="$(run_dir "${1:-}")"
  [[ -d "$dir" ]] || return 0
  exec 9>"$dir/.lock"
  flock 9
  kill_broker "$dir"
}

cmd_bootstrap() {
  if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then echo "$KAFKA_BOOTSTRAP"; return 0; fi
  local dir; dir="$(run_dir "${1:-}")"
  broker_pid "$dir" >/dev/null || die "no broker running in $dir"
  cat "$dir/bootstrap"
}

cmd_sasl_env() {
  local dir; dir="$(run_dir "${1:-}")"
  broker_pid "$dir" >/dev/null || die "no broker running in $dir"
  [[ -f "$dir/sasl_ssl_bootstrap" ]] || die "the broker in $dir has no SASL_SSL listener (start it with KAFKA_SASL_SSL=1)"
  echo "export KAFKA_SASL_SSL_BOOTSTRAP=$(cat "$dir/sasl_ssl_bootstrap")"
  echo "export KAFKA_SASL_SSL_CA=$dir/tls/ca.pem"
  echo "export KAFKA_SASL_USERNAME=$SASL_USER"
  echo "export KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  fetch) cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  bounce) cmd_bounce "$@" ;;
  bootstrap) cmd_bootstrap "$@" ;;
  sasl-env) cmd_sasl_env "$@" ;;
  classpath) cmd_classpath ;;
  tool) cmd_tool "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
