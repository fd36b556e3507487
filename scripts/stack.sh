#!/usr/bin/env bash
# Fetches, starts, checks and stops the real parts Concord runs against on one
# machine: an Apache Kafka 4 broker in KRaft mode (plaintext admin listener and
# mutual-TLS agency listener, StandardAuthorizer with ACLs from config/topics.toml)
# and an Apicurio Registry 3 reached through its Confluent-compatible API.
#
#   scripts/stack.sh fetch    download the jars (Maven Central) into the cache
#   scripts/stack.sh up       fetch, dev PKI, start both, topics + ACLs, schemas; idempotent
#   scripts/stack.sh status   say what runs and whether it answers
#   scripts/stack.sh down     stop both; leaves no process behind
#   scripts/stack.sh reset    down, then forget broker data (the PKI stays)
#   scripts/stack.sh restart-kafka   stop and start the broker (crash tests)
#
# Environment: CONCORD_CACHE (default ~/.cache/concord), CONCORD_STACK_DIR (default
# ./.stack), CONCORD_PKI_DIR (default ./.pki), CONCORD (the concord binary), ports
# CONCORD_ADMIN_PORT 19092, CONCORD_SSL_PORT 19093, CONCORD_CONTROLLER_PORT 19094,
# CONCORD_REGISTRY_PORT 18081.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KAFKA_VERSION=4.1.1
APICURIO_VERSION=3.0.9
CACHE=${CONCORD_CACHE:-$HOME/.cache/concord}
STACK=${CONCORD_STACK_DIR:-$ROOT/.stack}
PKI=${CONCORD_PKI_DIR:-$ROOT/.pki}
CONCORD=${CONCORD:-concord}
ADMIN_PORT=${CONCORD_ADMIN_PORT:-19092}
SSL_PORT=${CONCORD_SSL_PORT:-19093}
CONTROLLER_PORT=${CONCORD_CONTROLLER_PORT:-19094}
REGISTRY_PORT=${CONCORD_REGISTRY_PORT:-18081}
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
APICURIO_HOME=$CACHE/apicurio-registry-$APICURIO_VERSION
REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

need_java() {
  command -v java >/dev/null || die "Java is missing: install a JDK 17 or newer (apt-get install openjdk-17-jre-headless)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Java $v found, Kafka $KAFKA_VERSION needs 17 or newer"
}

fetch() {
  need_java
  command -v mvn >/dev/null || die "Maven (mvn) is missing: it fetches the broker and registry from Maven Central (apt-get install maven)"
  if [ ! -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    say "fetching Apache Kafka $KAFKA_VERSION from Maven Central"
    mvn -B -q -f "$ROOT/scripts/stack/pom.xml" -Dkafka.version=$KAFKA_VERSION \
      dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS.part" >"$CACHE/fetch-kafka.log" 2>&1 \
      || die "download of Kafka refused or failed; see $CACHE/fetch-kafka.log"
    rm -rf "$KAFKA_LIBS" && mv "$KAFKA_LIBS.part" "$KAFKA_LIBS"
  fi
  if [ -z "$(apicurio_jar)" ]; then
    say "fetching Apicurio Registry $APICURIO_VERSION from Maven Central"
    mvn -B -q dependency:copy -Dartifact=io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all \
      -DoutputDirectory="$CACHE" >"$CACHE/fetch-apicurio.log" 2>&1 \
      || die "download of Apicurio Registry refused or failed; see $CACHE/fetch-apicurio.log"
    rm -rf "$APICURIO_HOME.part" && mkdir -p "$APICURIO_HOME.part"
    tar xzf "$CACHE/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$APICURIO_HOME.part"
    rm -rf "$APICURIO_HOME" && mv "$APICURIO_HOME.part" "$APICURIO_HOME"
  fi
}

# The runnable jar: quarkus-run.jar (fast-jar layout) or *-runner.jar (legacy layout).
apicurio_jar() { ls "$APICURIO_HOME"/quarkus-run.jar "$APICURIO_HOME"/*-runner.jar 2>/dev/null | head -n 1; }

# A pid file names a live process of ours (a recycled pid of another program does not count).
alive() {
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && grep -qE 'kafka\.Kafka|apicurio' "/proc/$pid/cmdline" 2>/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_port_free() {
  if port_open "$1"; then
    die "port $1 ($2) is taken by another process: stop it, or set $3 to a free port"
  fi
}

wait_for() { # what, seconds, command...
  local what=$1 limit=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    [ $((SECONDS - start)) -lt "$limit" ] || return 1
    sleep 0.5
  done
  say "$what answers after $((SECONDS - start)) s"
}

write_broker_config() {
  mkdir -p "$STACK/kafka"
  cat >"$STACK/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=ADMIN://127.0.0.1:$ADMIN_PORT,SSL://127.0.0.1:$SSL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=ADMIN://127.0.0.1:$ADMIN_PORT,SSL://localhost:$SSL_PORT
listener.security.protocol.map=ADMIN:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=ADMIN
log.dirs=$STACK/kafka/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# Access: agencies authenticate with client certificates; their principal is the
# certificate's CN (the agency id). The admin and controller listeners are
# loopback-only plaintext and act as super user (see docs/operations.md).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
listener.name.ssl.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$PKI/broker/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$PKI/ca.pem
ssl.endpoint.identification.algorithm=https
PROPS
  cat >"$STACK/kafka/log4j2.properties" <<'LOG'
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
LOG
}

kafka_java() {
  java -Xms256m -Xmx1g -Dkafka.logs.dir="$STACK/kafka" \
    -Dlog4j2.configurationFile="$STACK/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

start_kafka() {
  if alive "$STACK/kafka.pid"; then say "kafka already running (pid $(cat "$STACK/kafka.pid"))"; return; fi
  check_port_free "$ADMIN_PORT" "Kafka admin listener" CONCORD_ADMIN_PORT
  check_port_free "$SSL_PORT" "Kafka SSL listener" CONCORD_SSL_PORT
  check_port_free "$CONTROLLER_PORT" "Kafka controller" CONCORD_CONTROLLER_PORT
  write_broker_config
  if [ ! -f "$STACK/kafka/data/meta.properties" ]; then
    local id
    id=$(kafka_java kafka.tools.StorageTool random-uuid)
    kafka_java kafka.tools.StorageTool format -t "$id" -c "$STACK/kafka/server.properties" >"$STACK/kafka/format.log" 2>&1 \
      || die "formatting Kafka storage failed; see $STACK/kafka/format.log"
  fi
  say "starting kafka $KAFKA_VERSION (admin 127.0.0.1:$ADMIN_PORT, agencies SSL localhost:$SSL_PORT)"
  nohup java -Xms512m -Xmx1g -XX:+UseG1GC -Dkafka.logs.dir="$STACK/kafka" \
    -Dlog4j2.configurationFile="$STACK/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$STACK/kafka/server.properties" >"$STACK/kafka/stdout.log" 2>&1 &
  echo $! >"$STACK/kafka.pid"
}

start_registry() {
  if alive "$STACK/registry.pid"; then say "registry already running (pid $(cat "$STACK/registry.pid"))"; return; fi
  check_port_free "$REGISTRY_PORT" "schema registry" CONCORD_REGISTRY_PORT
  mkdir -p "$STACK/registry"
  # Schemas persist in an H2 file next to the broker's data: a registry restart
  # must not renumber the schema ids that records on the topics refer to.
  say "starting apicurio registry $APICURIO_VERSION (http://127.0.0.1:$REGISTRY_PORT)"
  (cd "$STACK/registry"
    nohup java -Xms256m -Xmx768m \
    -Dquarkus.http.port="$REGISTRY_PORT" -Dquarkus.http.host=127.0.0.1 \
    -Dapicurio.datasource.url="jdbc:h2:file:$STACK/registry/schemas;DB_CLOSE_ON_EXIT=FALSE" \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -jar "$(apicurio_jar)" >"$STACK/registry/stdout.log" 2>&1 &
    echo $! >"$STACK/registry.pid")
}

registry_ready() { curl -fs -o /dev/null "$REGISTRY_URL/subjects"; }

up() {
  fetch
  command -v "$CONCORD" >/dev/null || [ -x "$CONCORD" ] || die "the concord binary ($CONCORD) is missing: run 'make up', which builds it"
  mkdir -p "$STACK"
  [ -f "$PKI/ca.pem" ] || "$CONCORD" pki init --agencies "$ROOT/config/agencies.toml" --out "$PKI"
  start_kafka
  start_registry
  wait_for kafka 90 port_open "$SSL_PORT" || { tail -20 "$STACK/kafka/server.log" >&2 || true; die "kafka did not open port $SSL_PORT in 90 s; see $STACK/kafka/server.log"; }
  wait_for registry 120 registry_ready || { tail -20 "$STACK/registry/stdout.log" >&2 || true; die "registry did not answer in 120 s; see $STACK/registry/stdout.log"; }
  "$CONCORD" topics plan --topics "$ROOT/config/topics.toml" --directory "$PKI/agencies.toml" >"$STACK/plan.txt"
  kafka_java "$ROOT/scripts/stack/KafkaSetup.java" "127.0.0.1:$ADMIN_PORT" "$STACK/plan.txt" \
    || die "creating topics and ACLs failed"
  # Compatibility is only enforced at registration once it is configured.
  curl -fsS -X PUT -H 'Content-Type: application/json' -d '{"compatibility":"BACKWARD"}' \
    "$REGISTRY_URL/config" >/dev/null || die "setting BACKWARD compatibility on the registry failed"
  "$CONCORD" schemas register --registry "$REGISTRY_URL" --dir "$ROOT/schemas"
  say "up: kafka localhost:$SSL_PORT (mTLS), admin 127.0.0.1:$ADMIN_PORT, registry $REGISTRY_URL, PKI $PKI"
}

stop_one() { # name pidfile
  if alive "$2"; then
    local pid; pid=$(cat "$2")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { say "$1 did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; }
    say "$1 stopped"
  fi
  rm -f "$2"
}

down() {
  stop_one registry "$STACK/registry.pid"
  stop_one kafka "$STACK/kafka.pid"
}

status() {
  local rc=0
  if alive "$STACK/kafka.pid" && port_open "$SSL_PORT"; then say "kafka: running (pid $(cat "$STACK/kafka.pid")), SSL port $SSL_PORT open"
  else say "kafka: not running"; rc=1; fi
  if alive "$STACK/registry.pid" && registry_ready; then say "registry: running (pid $(cat "$STACK/registry.pid")), $REGISTRY_URL answers"
  else say "registry: not running"; rc=1; fi
  return $rc
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  reset) down; rm -rf "$STACK"; say "broker data removed" ;;
  restart-kafka) # a broker restart, for crash tests
    stop_one kafka "$STACK/kafka.pid"; start_kafka
    wait_for kafka 90 port_open "$SSL_PORT" || die "kafka did not come back in 90 s" ;;
  *) echo "usage: $0 fetch|up|down|status|reset|restart-kafka" >&2; exit 2 ;;
esac
