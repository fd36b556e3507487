#!/usr/bin/env bash
# Fetches, starts, checks and stops the real parts Concord runs against on one
# machine: an Apache Kafka 4 broker in KRaft mode (plaintext admin listener and
# mutual-TLS agency listener, StandardAuthorizer with ACLs from config/topics.toml),
# an Apicurio Registry 3 reached through its Confluent-compatible API, and a
# local EVM chain (anvil) with the token contract (scripts/evm.sh).
#
#   scripts/stack.sh fetch    download the jars (Maven Central) into the cache
#   scripts/stack.sh up       fetch, dev PKI, start both, topics + ACLs, schemas; idempotent
#   scripts/stack.sh status   say what runs and whether it answers
#   scripts/stack.sh down     stop both; leaves no process behind
#   scripts/stack.sh reset    down, then forget broker data (the PKI stays)
#   scripts/stack.sh restart-kafka   stop and start the broker (crash tests)
#   scripts/stack.sh cluster-up      three more brokers (replication 3, min ISR 2) beside
#                                    the dev stack, for the broker-failure test; cluster-down,
#                                    cluster-kill N, cluster-start N
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
  mkdir -p "$CACHE"
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

# write_broker_config DIR NODE ADMIN_PORT SSL_PORT CONTROLLER_PORT VOTERS REPLICAS
write_broker_config() {
  local dir=$1 node=$2 admin=$3 ssl=$4 controller=$5 voters=$6 replicas=$7
  local min_isr=$(( replicas > 1 ? 2 : 1 ))
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=ADMIN://127.0.0.1:$admin,SSL://127.0.0.1:$ssl,CONTROLLER://127.0.0.1:$controller
advertised.listeners=ADMIN://127.0.0.1:$admin,SSL://localhost:$ssl
listener.security.protocol.map=ADMIN:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=ADMIN
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=false
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
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
  cat >"$dir/log4j2.properties" <<'LOG'
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

# start_node DIR HEAP CLUSTER_ID: formats the storage once, starts the node, writes DIR.pid.
start_node() {
  local dir=$1 heap=$2 cluster_id=$3
  if [ ! -f "$dir/data/meta.properties" ]; then
    java -Xmx256m -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || die "formatting Kafka storage in $dir failed; see $dir/format.log"
  fi
  nohup java -Xms256m -Xmx"$heap" -XX:+UseG1GC -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir.pid"
}

start_kafka() {
  if alive "$STACK/kafka.pid"; then say "kafka already running (pid $(cat "$STACK/kafka.pid"))"; return; fi
  check_port_free "$ADMIN_PORT" "Kafka admin listener" CONCORD_ADMIN_PORT
  check_port_free "$SSL_PORT" "Kafka SSL listener" CONCORD_SSL_PORT
  check_port_free "$CONTROLLER_PORT" "Kafka controller" CONCORD_CONTROLLER_PORT
  write_broker_config "$STACK/kafka" 1 "$ADMIN_PORT" "$SSL_PORT" "$CONTROLLER_PORT" "1@127.0.0.1:$CONTROLLER_PORT" 1
  say "starting kafka $KAFKA_VERSION (admin 127.0.0.1:$ADMIN_PORT, agencies SSL localhost:$SSL_PORT)"
  start_node "$STACK/kafka" 1g "$(java -Xmx128m -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid)"
}

# The three-node cluster (replication factor 3, min.insync.replicas 2) beside the
# dev stack, for the broker-failure test. Node N listens on 192N2 (admin), 192N3
# (SSL), 192N4 (controller); it shares the dev stack's PKI and registry.
CLUSTER=$STACK/cluster
node_port() { echo $((19200 + 10 * $1 + $2)); } # node, 2|3|4
cluster_voters() { echo "1@127.0.0.1:$(node_port 1 4),2@127.0.0.1:$(node_port 2 4),3@127.0.0.1:$(node_port 3 4)"; }
cluster_ssl() { echo "localhost:$(node_port 1 3),localhost:$(node_port 2 3),localhost:$(node_port 3 3)"; }
cluster_admin() { echo "127.0.0.1:$(node_port 1 2),127.0.0.1:$(node_port 2 2),127.0.0.1:$(node_port 3 2)"; }

cluster_start_node() {
  local n=$1 dir=$CLUSTER/kafka-$1
  if alive "$dir.pid"; then say "cluster node $n already running"; return; fi
  check_port_free "$(node_port "$n" 3)" "cluster node $n SSL listener" CONCORD_STACK_DIR
  write_broker_config "$dir" "$n" "$(node_port "$n" 2)" "$(node_port "$n" 3)" "$(node_port "$n" 4)" "$(cluster_voters)" 3
  [ -f "$CLUSTER/cluster.id" ] || java -Xmx128m -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid >"$CLUSTER/cluster.id"
  say "starting cluster node $n (SSL localhost:$(node_port "$n" 3))"
  start_node "$dir" 768m "$(cat "$CLUSTER/cluster.id")"
}

cluster_up() {
  fetch
  command -v "$CONCORD" >/dev/null || [ -x "$CONCORD" ] || die "the concord binary ($CONCORD) is missing: run 'make up', which builds it"
  [ -f "$PKI/ca.pem" ] || die "the PKI is missing: run 'scripts/stack.sh up' first (the cluster shares its PKI and registry)"
  mkdir -p "$CLUSTER"
  for n in 1 2 3; do cluster_start_node "$n"; done
  for n in 1 2 3; do
    wait_for "cluster node $n" 120 port_open "$(node_port "$n" 3)" || { tail -20 "$CLUSTER/kafka-$n/server.log" >&2 || true; die "cluster node $n did not open its SSL port in 120 s"; }
  done
  # The topic model with three replicas and two in sync, as on a real cluster.
  sed -e 's/^replication_factor = .*/replication_factor = 3/' -e 's/^min_insync_replicas = .*/min_insync_replicas = 2/' \
    "$ROOT/config/topics.toml" >"$CLUSTER/topics.toml"
  "$CONCORD" topics plan --topics "$CLUSTER/topics.toml" --directory "$PKI/agencies.toml" >"$CLUSTER/plan.txt"
  local tries=0
  until java -Xmx256m -cp "$KAFKA_LIBS/*" "$ROOT/scripts/stack/KafkaSetup.java" "$(cluster_admin)" "$CLUSTER/plan.txt" >"$CLUSTER/setup.log" 2>&1; do
    tries=$((tries + 1)); [ $tries -lt 10 ] || { cat "$CLUSTER/setup.log" >&2; die "creating topics and ACLs on the cluster failed"; }
    sleep 3 # the quorum may still be electing
  done
  cat >"$CLUSTER/concord.toml" <<HUB
# The three-node test cluster (scripts/stack.sh cluster-up).
bootstrap_servers = "$(cluster_ssl)"
admin_bootstrap_servers = "$(cluster_admin)"
registry_url = "$REGISTRY_URL"
pki_dir = "$PKI"
directory = "$PKI/agencies.toml"
topics = "$CLUSTER/topics.toml"
state_dir = "$CLUSTER/state"
HUB
  # A broker applies the ACLs a moment after the controller committed them;
  # until then it refuses the agencies, and an idempotent producer's refusal is
  # fatal (the cluster test failed so in CI). Up means: an agency's signed
  # publish, through each node alone, is authorized.
  for n in 1 2 3; do
    sed "s|^bootstrap_servers = .*|bootstrap_servers = \"localhost:$(node_port "$n" 3)\"|" "$CLUSTER/concord.toml" >"$CLUSTER/probe-$n.toml"
    wait_for "agencies authorized on cluster node $n" 90 probe_publish "$CLUSTER/probe-$n.toml" \
      || die "cluster node $n does not authorize the agencies within 90 s; see $CLUSTER/probe.log"
  done
  say "cluster up: SSL $(cluster_ssl); hub config $CLUSTER/concord.toml"
}

# One signed alert published as law enforcement with the hub config $1 (quietly).
probe_publish() {
  "$CONCORD" --config "$1" publish --as enforcement-us --file "$ROOT/config/samples/alert-pig-butchering-wallet.json" >>"$CLUSTER/probe.log" 2>&1
}

cluster_down() {
  # The test cluster is thrown away with its data: no orderly shutdown needed.
  for n in 1 2 3; do
    if alive "$CLUSTER/kafka-$n.pid"; then kill -9 "$(cat "$CLUSTER/kafka-$n.pid")" 2>/dev/null || true; say "cluster node $n stopped"; fi
  done
  rm -rf "$CLUSTER"
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
  # The demo issuer's compliance staff (config/issuer.toml [review]): personal review keys.
  for staff in ana.ruiz ben.okafor dana.hughes carla.diaz; do
    [ -f "$PKI/staff/issuer-usdx/$staff.key" ] || "$CONCORD" review keygen --out "$PKI/staff/issuer-usdx/$staff" >/dev/null
  done
  # The hub's directory governors (2 of 3 sign a directory version; docs/operations.md).
  if [ ! -f "$PKI/governors.toml" ]; then
    local g gov="# The pinned root of trust of directory versions (made by scripts/stack.sh up).\nthreshold = 2\n"
    for g in governor-1 governor-2 governor-3; do
      [ -f "$PKI/governors/$g.key" ] || "$CONCORD" directory keygen --out "$PKI/governors/$g" >/dev/null
      gov="$gov\n[[keys]]\nid = \"$g\"\npublic_key = \"$(cat "$PKI/governors/$g.pub")\"\n"
    done
    printf "$gov" >"$PKI/governors.toml"
  fi
  [ -f "$PKI/gateway/server.pem" ] || die "$PKI predates the partner gateway (no gateway/server.pem): run 'scripts/stack.sh reset && rm -rf $PKI', then 'make up'"
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
  # The chain freezes happen on: anvil and the token contract (scripts/evm.sh).
  "$ROOT/scripts/evm.sh" up
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
  [ -d "$CLUSTER" ] && cluster_down
  "$ROOT/scripts/evm.sh" down
  stop_one registry "$STACK/registry.pid"
  stop_one kafka "$STACK/kafka.pid"
}

status() {
  local rc=0
  if alive "$STACK/kafka.pid" && port_open "$SSL_PORT"; then say "kafka: running (pid $(cat "$STACK/kafka.pid")), SSL port $SSL_PORT open"
  else say "kafka: not running"; rc=1; fi
  if alive "$STACK/registry.pid" && registry_ready; then say "registry: running (pid $(cat "$STACK/registry.pid")), $REGISTRY_URL answers"
  else say "registry: not running"; rc=1; fi
  "$ROOT/scripts/evm.sh" status || rc=1
  return $rc
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  reset) # the services' state (.state: ledgers, audit log, gateway) describes that broker's data, so it goes too
    down; rm -rf "$STACK" "$ROOT/.state"; say "broker data and service state removed" ;;
  restart-kafka) # a broker restart, for crash tests
    stop_one kafka "$STACK/kafka.pid"; start_kafka
    wait_for kafka 90 port_open "$SSL_PORT" || die "kafka did not come back in 90 s" ;;
  acls) # apply a directory version's plan (`concord directory acls --out FILE`): acls FILE
    [ -f "${2:-}" ] || die "usage: $0 acls PLAN (written by 'concord directory acls --out PLAN')"
    alive "$STACK/kafka.pid" || die "kafka is not running: 'make up' first"
    kafka_java "$ROOT/scripts/stack/KafkaSetup.java" "127.0.0.1:$ADMIN_PORT" "$2" || die "applying $2 failed" ;;
  cluster-up) cluster_up ;;
  cluster-down) cluster_down ;;
  cluster-kill) # SIGKILL one node of the cluster: cluster-kill N
    [ -n "${2:-}" ] && alive "$CLUSTER/kafka-$2.pid" || die "no running cluster node ${2:-?}"
    kill -9 "$(cat "$CLUSTER/kafka-$2.pid")"; rm -f "$CLUSTER/kafka-$2.pid"; say "cluster node $2 killed" ;;
  cluster-start) # start one node of the cluster again: cluster-start N
    cluster_start_node "${2:?node}"; wait_for "cluster node $2" 120 port_open "$(node_port "$2" 3)" || die "cluster node $2 did not come back" ;;
  *) echo "usage: $0 fetch|up|down|status|reset|restart-kafka|acls PLAN|cluster-up|cluster-down|cluster-kill N|cluster-start N" >&2; exit 2 ;;
esac
