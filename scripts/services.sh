#!/usr/bin/env bash
# The real-services test bed for integration tests (test/), on loopback only.
#
#   scripts/services.sh up       install what is missing, start what is not running, wait until usable
#   scripts/services.sh status   one line per service; exit 1 if any is not up
#   scripts/services.sh down     stop what this script started (pid files), keep data
#   scripts/services.sh env      print .services/env.json (the endpoints test/helpers/services.ts reads)
#   scripts/services.sh clean    down, then delete .services/ (data, logs)
#
# Services and ports (all 127.0.0.1):
#   Kafka 3.9 KRaft, single combined broker+controller  19092 (PLAINTEXT), 19093 (CONTROLLER)
#   InfluxDB 1.x (Debian `influxdb`), auth enabled        18086 (HTTP), 18088 (RPC/backup)
#   VictoriaMetrics (Debian `victoria-metrics`)           18428 (HTTP, Influx line protocol on /write)
#   Mosquitto, our own instance and config                18883 (the machine's own broker on 1883, with
#                                                               its stock limits, is left alone; if there
#                                                               is none, ours listens on 1883 too)
#
# Everything it owns lives in <repo>/.services/ (gitignored): data dirs, logs/, run/*.pid, env.json.
# Downloads (the Kafka jars from Maven Central) are cached in ${EDGEFLOW_CACHE:-$HOME/.cache/edgeflow}.
# Idempotent and CI-safe (no prompts, every wait bounded); concurrent callers are serialised by a lock,
# since several engineers and test runs share one checkout. See docs/test-bed.md.
set -euo pipefail
# The shared services outlive any test run: without the marks npm test gives a run's processes
# (scripts/test.mjs, scripts/test-guard.mjs), a service started from inside a test is never swept as a leftover.
unset EDGEFLOW_TEST_RUN EDGEFLOW_TEST_FILE_MARK

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SVC=${EDGEFLOW_SERVICES_DIR:-$ROOT/.services}
CACHE=${EDGEFLOW_CACHE:-${HOME:-/root}/.cache/edgeflow}
LOGS=$SVC/logs
RUN=$SVC/run

KAFKA_VERSION=3.9.1
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
# A fixed KRaft cluster id: base64url of the 16 bytes "edgeflow-testbed".
KAFKA_CLUSTER_ID=ZWRnZWZsb3ctdGVzdGJlZA
KAFKA_HEAP=${EDGEFLOW_KAFKA_HEAP:-512m}
INFLUX_PORT=18086
INFLUX_RPC_PORT=18088
INFLUX_ADMIN_USER=admin
INFLUX_ADMIN_PASSWORD=edgeflow-admin-pw
INFLUX_DB=edgeflow
INFLUX_USER=edgeflow
INFLUX_PASSWORD=edgeflow-test-pw
VICTORIA_PORT=18428
MQTT_PORT=18883

START_TIMEOUT=${EDGEFLOW_SERVICES_TIMEOUT:-120}   # seconds, per service

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# fail_service NAME LOGFILE MESSAGE: which service failed, why, and the tail of its log.
fail_service() {
  local name=$1 logfile=$2 msg=$3
  printf '[services] ERROR: %s: %s\n' "$name" "$msg" >&2
  if [[ -f $logfile ]]; then
    printf '[services] ---- last 40 lines of %s ----\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2 || true
    printf '[services] ---- end of %s ----\n' "$logfile" >&2
  fi
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive NAME PATTERN: the pid in run/NAME.pid exists and its command line contains PATTERN
# (guards against a recycled pid after a reboot or a crash).
pid_alive() {
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# wait_until NAME LOGFILE SECONDS PIDNAME PATTERN CMD...: poll CMD until it succeeds; fail early if the
# process died, fail with the log tail at the deadline.
wait_until() {
  local name=$1 logfile=$2 secs=$3 pidname=$4 pattern=$5
  shift 5
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pidname ]] && ! pid_alive "$pidname" "$pattern"; then
      fail_service "$name" "$logfile" "process exited while starting"
    fi
    ((SECONDS < deadline)) || fail_service "$name" "$logfile" "not ready after ${secs}s (waiting for: $*)"
    sleep 0.2
  done
}

# start_bg NAME CMD...: run CMD detached (own session, so a Ctrl-C of the test run leaves it alone),
# output to logs/NAME.log (previous log kept as NAME.log.1), pid to run/NAME.pid.
start_bg() {
  local name=$1
  shift
  [[ -f $LOGS/$name.log ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
  # 9>&-: the lock fd of with_lock must not be inherited, or the service would hold the lock forever.
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

# Ports fixed for the whole machine: a test bed started from another checkout (a CI clone beside the
# developers' one, say) may already hold them. If it answers like ours, reuse it (tests use unique
# names); if something else holds the port, stop with a clear message. `down` never touches it.
reuse_or_die() {
  local name=$1 port=$2 probe=$3
  if "$probe" >/dev/null 2>&1; then
    log "$name: reusing the test bed already on 127.0.0.1:$port (not started from this checkout)"
    return 0
  fi
  die "$name: 127.0.0.1:$port is taken by a process this script did not start, and it does not answer like the test bed's $name"
}

stop_pid() {
  local name=$1 pattern=$2 pid
  if ! pid_alive "$name" "$pattern"; then
    rm -f "$RUN/$name.pid"
    return 0
  fi
  pid=$(cat "$RUN/$name.pid")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name did not stop in 30s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$RUN/$name.pid"
}

# ---------------------------------------------------------------------------------------------------
# Installation (only what is missing; apt-get update only if something is)

ensure_packages() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v curl >/dev/null || missing+=(curl)
  command -v influxd >/dev/null || missing+=(influxdb)
  command -v influx >/dev/null || missing+=(influxdb-client)
  command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
  command -v mosquitto >/dev/null || missing+=(mosquitto)
  command -v mosquitto_sub >/dev/null || missing+=(mosquitto-clients)
  command -v kcat >/dev/null || missing+=(kcat)
  command -v socat >/dev/null || missing+=(socat)
  # The fleet console's browser test (test/fleet/console.test.ts) drives Debian's chromium via playwright-core.
  command -v chromium >/dev/null || missing+=(chromium)
  # Validates deploy/compose/docker-compose.yml (test/deploy/compose.test.ts); needs no Docker engine.
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  # Runs the arm64 executables under qemu-user (test/binaries, test/update/arm64.test.ts: issue 16).
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  [[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]] || missing+=(libc6-arm64-cross libstdc++6-arm64-cross)
  ((${#missing[@]} == 0)) && return 0
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}) and not root: install them first"
    sudo=(sudo -n)
  fi
  log "installing ${missing[*]} (apt)"
  mkdir -p "$LOGS"
  # The packages' init scripts would start default instances on the default ports; we run our own,
  # and on these machines policy-rc.d already denies service starts. Nothing here relies on systemd.
  if ! timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$LOGS/apt.log" 2>&1 ||
    ! timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >>"$LOGS/apt.log" 2>&1; then
    fail_service apt "$LOGS/apt.log" "could not install ${missing[*]}"
  fi
}

KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs

ensure_kafka_libs() {
  local pom=$ROOT/scripts/kafka/pom.xml stamp sum
  sum=$(sha256sum "$pom" | cut -c1-16)
  stamp=$KAFKA_LIBS/.complete-$sum
  [[ -f $stamp ]] && return 0
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS" "$LOGS"
  if ! timeout 600 mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_LIBS" >"$LOGS/maven.log" 2>&1; then
    fail_service kafka "$LOGS/maven.log" "mvn dependency:copy-dependencies failed"
  fi
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 ||
    fail_service kafka "$LOGS/maven.log" "kafka_2.13-$KAFKA_VERSION.jar missing after download"
  touch "$stamp"
}

# ---------------------------------------------------------------------------------------------------
# Kafka (KRaft, combined broker+controller, single node)

KAFKA_DIR=$SVC/kafka
KAFKA_MAIN=kafka.Kafka

# kafka_java SECONDS CLASS ARGS...: a short-lived Kafka tool JVM (C1 only: starts quicker), bounded in time.
kafka_java() {
  local secs=$1
  shift
  timeout "$secs" java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$KAFKA_DIR/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

kafka_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# Written by scripts/services.sh; edits are overwritten on every \`up\`.
process.id=1
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
# Single node: every internal topic with replication factor 1 and min ISR 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
default.replication.factor=1
min.insync.replicas=1
num.partitions=1
# Topics are never created by a produce or a metadata request: like most production clusters, so a
# missing topic shows up as an error in tests instead of silently appearing (docs/test-bed.md).
auto.create.topics.enable=false
delete.topic.enable=true
# Tests create consumer groups all the time; no 3 s wait for more members to join.
group.initial.rebalance.delay.ms=0
# 2 cores, a test bed: few threads, small segments, short retention.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
EOF
  cat >"$KAFKA_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
  cat >"$KAFKA_DIR/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

kafka_ready() {
  timeout 10 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 -t __probe_none 2>/dev/null | grep -q 'broker 1 at'
}

kafka_up() {
  if pid_alive kafka "$KAFKA_MAIN" && kafka_ready; then
    return 0
  fi
  pid_alive kafka "$KAFKA_MAIN" && stop_pid kafka "$KAFKA_MAIN" # alive but not answering: restart
  if port_open "$KAFKA_PORT"; then
    reuse_or_die kafka "$KAFKA_PORT" kafka_is_testbed
    return 0
  fi
  ensure_kafka_libs
  port_open "$KAFKA_CONTROLLER_PORT" &&
    die "kafka: 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken by a process this script did not start"
  kafka_config
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    log "kafka: formatting storage (cluster id $KAFKA_CLUSTER_ID)"
    if ! kafka_java 120 kafka.tools.StorageTool format --ignore-formatted \
      -t "$KAFKA_CLUSTER_ID" -c "$KAFKA_DIR/server.properties" >"$LOGS/kafka-format.log" 2>&1; then
      fail_service kafka "$LOGS/kafka-format.log" "storage format failed"
    fi
  fi
  log "kafka: starting on 127.0.0.1:$KAFKA_PORT"
  start_bg kafka java "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -Dkafka.logs.dir="$LOGS" -cp "$KAFKA_LIBS/*" "$KAFKA_MAIN" "$KAFKA_DIR/server.properties"
  wait_until kafka "$LOGS/kafka.log" "$START_TIMEOUT" kafka "$KAFKA_MAIN" kafka_ready
  # Usable means: a topic can be created and has a leader (the controller and the broker both work).
  local probe=edgeflow.testbed.probe
  if ! kafka_java 90 org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --create --if-not-exists --topic "$probe" --partitions 1 --replication-factor 1 \
    >"$LOGS/kafka-probe.log" 2>&1; then
    fail_service kafka "$LOGS/kafka-probe.log" "could not create topic $probe"
  fi
  wait_until kafka "$LOGS/kafka.log" 60 kafka "$KAFKA_MAIN" kafka_topic_has_leader "$probe"
  # An idempotent produce and a consumer-group read: creates/loads __transaction_state and
  # __consumer_offsets now, so the first test does not meet "coordinator load in progress" retries.
  if ! echo "up $(date -u +%FT%TZ)" | timeout 60 kcat -P -b "127.0.0.1:$KAFKA_PORT" -t "$probe" \
    -X enable.idempotence=true -X acks=all >"$LOGS/kafka-probe.log" 2>&1; then
    fail_service kafka "$LOGS/kafka-probe.log" "idempotent produce to $probe failed"
  fi
  if ! timeout 60 kcat -b "127.0.0.1:$KAFKA_PORT" -G edgeflow.testbed.probe -o beginning -e -q "$probe" \
    >"$LOGS/kafka-probe.log" 2>&1; then
    fail_service kafka "$LOGS/kafka-probe.log" "consumer-group read of $probe failed"
  fi
}

# Another checkout's broker: answers as node 1 and has the probe topic that kafka_up creates.
kafka_is_testbed() { kafka_ready && kafka_topic_has_leader edgeflow.testbed.probe; }

kafka_topic_has_leader() {
  timeout 10 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 -t "$1" 2>/dev/null | grep -q 'partition 0, leader 1'
}

# ---------------------------------------------------------------------------------------------------
# InfluxDB 1.x

INFLUX_DIR=$SVC/influxdb
INFLUX_URL=http://127.0.0.1:$INFLUX_PORT

influx_config() {
  mkdir -p "$INFLUX_DIR"/{meta,data,wal}
  cat >"$INFLUX_DIR/influxdb.conf" <<EOF
# Written by scripts/services.sh; edits are overwritten on every \`up\`.
reporting-disabled = true
bind-address = "127.0.0.1:$INFLUX_RPC_PORT"
[meta]
  dir = "$INFLUX_DIR/meta"
[data]
  dir = "$INFLUX_DIR/data"
  wal-dir = "$INFLUX_DIR/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "1m"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$INFLUX_PORT"
  auth-enabled = true
  log-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
EOF
}

# influx_q USER PASSWORD QUERY → prints the JSON response; fails on a non-2xx status.
influx_q() {
  curl -sS --fail-with-body -m 10 -XPOST "$INFLUX_URL/query" ${1:+-u "$1:$2"} --data-urlencode "q=$3"
}

influx_ready() { curl -sf -m 2 -o /dev/null "$INFLUX_URL/ping"; }

# Another checkout's InfluxDB: answers /ping and takes the test bed's admin login.
influx_is_testbed() { influx_ready && influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" 'SHOW USERS'; }

influx_setup() {
  local users out
  # The first user can be created unauthenticated only while there are none (InfluxDB 1.x rule).
  if ! users=$(influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" 'SHOW USERS' 2>&1); then
    out=$(influx_q '' '' "CREATE USER \"$INFLUX_ADMIN_USER\" WITH PASSWORD '$INFLUX_ADMIN_PASSWORD' WITH ALL PRIVILEGES" 2>&1) ||
      fail_service influxdb "$LOGS/influxdb.log" "cannot create the admin user (is .services/influxdb from another setup? run: scripts/services.sh clean): $out"
    users=$(influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" 'SHOW USERS' 2>&1) ||
      fail_service influxdb "$LOGS/influxdb.log" "admin login fails after creating the admin: $users"
  fi
  influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" "CREATE DATABASE \"$INFLUX_DB\"" >/dev/null ||
    fail_service influxdb "$LOGS/influxdb.log" "CREATE DATABASE $INFLUX_DB failed"
  if ! grep -q "\"$INFLUX_USER\"" <<<"$users"; then
    influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" \
      "CREATE USER \"$INFLUX_USER\" WITH PASSWORD '$INFLUX_PASSWORD'" >/dev/null ||
      fail_service influxdb "$LOGS/influxdb.log" "CREATE USER $INFLUX_USER failed"
  else
    # Keep the documented password even if someone changed it.
    influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" \
      "SET PASSWORD FOR \"$INFLUX_USER\" = '$INFLUX_PASSWORD'" >/dev/null ||
      fail_service influxdb "$LOGS/influxdb.log" "SET PASSWORD for $INFLUX_USER failed"
  fi
  influx_q "$INFLUX_ADMIN_USER" "$INFLUX_ADMIN_PASSWORD" "GRANT ALL ON \"$INFLUX_DB\" TO \"$INFLUX_USER\"" >/dev/null ||
    fail_service influxdb "$LOGS/influxdb.log" "GRANT ALL ON $INFLUX_DB failed"
  # Proof: the test user can query its database.
  out=$(curl -sS --fail-with-body -m 10 -G "$INFLUX_URL/query" -u "$INFLUX_USER:$INFLUX_PASSWORD" \
    --data-urlencode "db=$INFLUX_DB" --data-urlencode 'q=SHOW MEASUREMENTS' 2>&1) ||
    fail_service influxdb "$LOGS/influxdb.log" "user $INFLUX_USER cannot query $INFLUX_DB: $out"
}

influx_up() {
  if ! { pid_alive influxdb influxd && influx_ready; }; then
    pid_alive influxdb influxd && stop_pid influxdb influxd
    if port_open "$INFLUX_PORT"; then
      reuse_or_die influxdb "$INFLUX_PORT" influx_is_testbed
    else
      port_open "$INFLUX_RPC_PORT" &&
        die "influxdb: 127.0.0.1:$INFLUX_RPC_PORT is taken by a process this script did not start"
      influx_config
      log "influxdb: starting on 127.0.0.1:$INFLUX_PORT"
      start_bg influxdb influxd -config "$INFLUX_DIR/influxdb.conf"
      wait_until influxdb "$LOGS/influxdb.log" "$START_TIMEOUT" influxdb influxd influx_ready
    fi
  fi
  influx_setup
}

# ---------------------------------------------------------------------------------------------------
# VictoriaMetrics

VICTORIA_URL=http://127.0.0.1:$VICTORIA_PORT

victoria_ready() { curl -sf -m 2 "$VICTORIA_URL/health" | grep -q OK; }

victoria_up() {
  if pid_alive victoria victoria-metrics && victoria_ready; then return 0; fi
  pid_alive victoria victoria-metrics && stop_pid victoria victoria-metrics
  if port_open "$VICTORIA_PORT"; then
    reuse_or_die victoria "$VICTORIA_PORT" victoria_ready
    return 0
  fi
  mkdir -p "$SVC/victoria"
  log "victoria: starting on 127.0.0.1:$VICTORIA_PORT"
  # -search.latencyOffset=0: freshly written samples are visible to /api/v1/query at once (tests also
  # call /internal/force_flush); -memory.allowedPercent keeps it small beside Kafka on 2 cores.
  start_bg victoria victoria-metrics -httpListenAddr="127.0.0.1:$VICTORIA_PORT" \
    -storageDataPath="$SVC/victoria" -retentionPeriod=1 -search.latencyOffset=0s \
    -memory.allowedPercent=10 -loggerLevel=WARN
  wait_until victoria "$LOGS/victoria.log" "$START_TIMEOUT" victoria victoria-metrics victoria_ready
}

# ---------------------------------------------------------------------------------------------------
# Mosquitto: our own instance, not the machine's broker on 1883, whose stock limits
# (max_queued_messages 1000, max_inflight_messages 20) make it drop QoS 1 messages ("Outgoing messages
# are being dropped") for a subscriber that falls behind on a loaded 2-core machine, and whose config
# is the machine's, not the repository's.

mqtt_ready() { timeout 5 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t edgeflow/testbed/probe -m up; }

mosquitto_up() {
  if pid_alive mosquitto mosquitto && mqtt_ready >/dev/null 2>&1; then return 0; fi
  pid_alive mosquitto mosquitto && stop_pid mosquitto mosquitto
  if port_open "$MQTT_PORT"; then
    reuse_or_die mosquitto "$MQTT_PORT" mqtt_ready
    return 0
  fi
  mkdir -p "$SVC/mosquitto"
  # Tests written against "the" broker on 1883 keep working on a machine without one: then ours
  # listens there too (the machine's broker, when present, is left alone).
  local default_listener=""
  port_open 1883 || default_listener="listener 1883 127.0.0.1"
  cat >"$SVC/mosquitto/mosquitto.conf" <<EOF
# Written by scripts/services.sh; edits are overwritten on every \`up\`.
listener $MQTT_PORT 127.0.0.1
$default_listener
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
# Tests push tens of thousands of QoS 1 messages through one subscriber: queue, do not drop.
max_queued_messages 1000000
max_inflight_messages 0
set_tcp_nodelay true
connection_messages false
user $(id -un)
EOF
  log "mosquitto: starting on 127.0.0.1:$MQTT_PORT"
  start_bg mosquitto mosquitto -c "$SVC/mosquitto/mosquitto.conf"
  wait_until mosquitto "$LOGS/mosquitto.log" 30 mosquitto mosquitto mqtt_ready
}

# ---------------------------------------------------------------------------------------------------

write_env() {
  mkdir -p "$SVC"
  cat >"$SVC/env.json.tmp" <<EOF
{
  "kafka": { "brokers": ["127.0.0.1:$KAFKA_PORT"] },
  "influx1": {
    "url": "$INFLUX_URL",
    "db": "$INFLUX_DB",
    "username": "$INFLUX_USER",
    "password": "$INFLUX_PASSWORD",
    "adminUser": "$INFLUX_ADMIN_USER",
    "adminPassword": "$INFLUX_ADMIN_PASSWORD"
  },
  "victoria": { "url": "$VICTORIA_URL" },
  "mosquitto": { "url": "mqtt://127.0.0.1:$MQTT_PORT" }
}
EOF
  mv -f "$SVC/env.json.tmp" "$SVC/env.json"
}

with_lock() {
  mkdir -p "$SVC" "$LOGS" "$RUN"
  exec 9>"$SVC/.lock"
  if ! flock -w 600 9; then die "another scripts/services.sh holds $SVC/.lock for more than 600s"; fi
  "$@"
}

cmd_up() {
  local t0=$SECONDS
  ensure_packages
  influx_up
  victoria_up
  mosquitto_up
  kafka_up
  write_env
  log "up in $((SECONDS - t0))s: kafka 127.0.0.1:$KAFKA_PORT, influxdb $INFLUX_URL, victoria $VICTORIA_URL, mqtt://127.0.0.1:$MQTT_PORT (endpoints: ${SVC#"$ROOT"/}/env.json)"
}

cmd_status() {
  local bad=0 line
  status_line() {
    local name=$1 ok=$2 detail=$3
    if [[ $ok == 1 ]]; then line=up; else line=DOWN; bad=1; fi
    printf '%-10s %-5s %s\n' "$name" "$line" "$detail"
  }
  # owner NAME PATTERN: "pid N" if this checkout started it, else "not started here".
  owner() { if pid_alive "$1" "$2"; then echo "pid $(cat "$RUN/$1.pid")"; else echo "not started here"; fi; }
  local k=0 i=0 v=0 m=0
  kafka_ready && k=1
  status_line kafka "$k" "127.0.0.1:$KAFKA_PORT ($(owner kafka "$KAFKA_MAIN"))"
  influx_ready && i=1
  status_line influxdb "$i" "$INFLUX_URL ($(owner influxdb influxd))"
  victoria_ready && v=1
  status_line victoria "$v" "$VICTORIA_URL ($(owner victoria victoria-metrics))"
  mqtt_ready >/dev/null 2>&1 && m=1
  status_line mosquitto "$m" "mqtt://127.0.0.1:$MQTT_PORT ($(owner mosquitto mosquitto))"
  m=0
  MQTT_PORT=1883 mqtt_ready >/dev/null 2>&1 && m=1
  status_line mqtt-1883 "$m" "mqtt://127.0.0.1:1883 (the machine's broker, or ours when there was none)"
  return "$bad"
}

cmd_down() {
  stop_pid kafka "$KAFKA_MAIN"
  stop_pid influxdb influxd
  stop_pid victoria victoria-metrics
  stop_pid mosquitto mosquitto
}

cmd_clean() {
  cmd_down
  rm -rf "$SVC"
  log "removed $SVC"
}

case "${1:-}" in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
env)
  [[ -f $SVC/env.json ]] || write_env
  cat "$SVC/env.json"
  ;;
clean) with_lock cmd_clean ;;
*)
  echo "usage: scripts/services.sh up|status|down|env|clean" >&2
  exit 2
  ;;
esac
