#!/usr/bin/env bash
# Local runner for the project's real infrastructure, without Docker:
#   Apache Kafka (KRaft, single node)   127.0.0.1:9092   (controller 9093)
#   mongo: EscrowMongoServer            127.0.0.1:27017  (the project's MongoDB-wire server on
#          (mongo-java-server)                             mongo-java-server: atomic single-document
#                                                          updates, indexed, journaled in .run/mongo)
#   mailbox.py (SMTP that keeps mail)   127.0.0.1:1025   (read-only inbox on http://127.0.0.1:8025)
#   FerretDB v1 (SQLite), only with     127.0.0.1:27019  (neither atomic nor indexed: for comparison)
#   `up --with-ferretdb`
#
# Usage: deploy/local/infra.sh up [--with-ferretdb] | down [--purge] | status | env [--export]
#        | prune [--older-than MINUTES]
#
# Binaries and jars are built once into a cache outside the repo,
#   ${ESCROW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/escrow-platform}
# so every clone reuses them. Data, logs and pid files live in <repo>/.run/
# (override with ESCROW_RUN_DIR). `up` writes <repo>/.run/infra.env for clients.
#
# Environment overrides: INFRA_HOST (127.0.0.1), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# MONGO_PORT (27017), FERRETDB_PORT (27019), SMTP_PORT (1025), MAIL_HTTP_PORT (8025),
# MONGO_STORAGE (fsync: journal fsynced before each reply | nofsync: written before each reply,
# survives kill -9 of the server but not a power cut | memory: nothing kept),
# KAFKA_HEAP_OPTS (-Xms256m -Xmx1g), MONGO_HEAP_OPTS (-Xms64m -Xmx2g), JAVA_HOME,
# INFRA_READY_TIMEOUT (120 s), FERRETDB_LOG_LEVEL (error), INFRA_WITH_FERRETDB (0; 1 = --with-ferretdb).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
PROG="deploy/local/infra.sh"

# ---------------------------------------------------------------- versions (pinned)
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n 1)"
MONGO_SRC="$SCRIPT_DIR/mongo-java-server"
MONGO_POM="$MONGO_SRC/pom.xml"
MONGO_JAVA_SERVER_VERSION="$(sed -n 's:.*<mongo-java-server.version>\(.*\)</mongo-java-server.version>.*:\1:p' "$MONGO_POM" | head -n 1)"
FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_VERSION="v1.24.2"
JAVA_MIN=17
GO_MIN_MINOR=21   # go 1.21+ fetches the newer toolchain FerretDB's go.mod asks for (1.24) by itself

# ---------------------------------------------------------------- addresses
INFRA_HOST="${INFRA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
FERRETDB_PORT="${FERRETDB_PORT:-27019}"
SMTP_PORT="${SMTP_PORT:-1025}"
MAIL_HTTP_PORT="${MAIL_HTTP_PORT:-8025}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
MONGO_HEAP_OPTS="${MONGO_HEAP_OPTS:--Xms64m -Xmx2g}"
MONGO_STORAGE="${MONGO_STORAGE:-fsync}"
INFRA_WITH_FERRETDB="${INFRA_WITH_FERRETDB:-0}"
FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-error}"
INFRA_READY_TIMEOUT="${INFRA_READY_TIMEOUT:-120}"

KAFKA_BOOTSTRAP="$INFRA_HOST:$KAFKA_PORT"
MONGO_URL="mongodb://$INFRA_HOST:$MONGO_PORT/?directConnection=true"
FERRETDB_URL="mongodb://$INFRA_HOST:$FERRETDB_PORT/?directConnection=true"
MAIL_URL="http://$INFRA_HOST:$MAIL_HTTP_PORT"

# ---------------------------------------------------------------- places
CACHE_DIR="${ESCROW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/escrow-platform}"
RUN_DIR="${ESCROW_RUN_DIR:-$REPO_ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"
PID_DIR="$RUN_DIR/pids"
ENV_FILE="$RUN_DIR/infra.env"
VENV_PY="$REPO_ROOT/.venv/bin/python"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIB_DIR="$KAFKA_HOME/libs"
FERRETDB_HOME="$CACHE_DIR/ferretdb-$FERRETDB_VERSION"
FERRETDB_BIN="$FERRETDB_HOME/ferretdb"
MONGO_HOME="$CACHE_DIR/mongo-java-server-$MONGO_JAVA_SERVER_VERSION"
MONGO_LIB_DIR="$MONGO_HOME/libs"

if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

# FerretDB joins only when asked (up --with-ferretdb); mongo-strict is what earlier versions of
# this script started on 27018: `down` still stops it.
SERVERS=(kafka mongo mailbox)
ferretdb_wanted() { [[ "$INFRA_WITH_FERRETDB" == 1 || -f "$RUN_DIR/pids/ferretdb.pid" ]]; }

# ---------------------------------------------------------------- helpers
say() { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
now_ms() { local t; t="$(date +%s%N 2>/dev/null)"; if [[ "$t" =~ ^[0-9]+$ ]]; then echo $((t / 1000000)); else echo $(($(date +%s) * 1000)); fi; }
secs_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%ds' $((d / 1000)) $(((d % 1000) / 100)); }
rel() { local p="$1"; [[ "$p" == "$REPO_ROOT/"* ]] && p="${p#"$REPO_ROOT/"}"; printf '%s' "$p"; }

sha256_of() {
  if have sha256sum; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# The marker a server's command line must contain, so a recycled pid is never mistaken for ours.
marker_of() {
  case "$1" in
    kafka) echo "kafka.Kafka" ;;
    ferretdb) echo "ferretdb" ;;
    mongo | mongo-strict) echo "EscrowMongoServer" ;;
    mailbox) echo "mailbox.py" ;;
  esac
}

pid_of() {  # prints the pid from the server's pid file, if any
  local f="$PID_DIR/$1.pid"
  [[ -s "$f" ]] || return 1
  local pid; pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

pid_alive() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 1
  # an exited process that nobody reaped yet is not alive
  if [[ -r "/proc/$pid/stat" ]]; then
    local state; state="$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)"
    [[ "$state" != "Z" ]] || return 1
  fi
}

is_running() {  # our server $1 is alive: pid file, live pid, matching command line
  local pid; pid="$(pid_of "$1")" || return 1
  pid_alive "$pid" || return 1
  # captured, not piped into grep -q: under pipefail an early grep exit can fail the pipe (SIGPIPE)
  local args; args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
  [[ "$args" == *"$(marker_of "$1")"* ]]
}

port_busy() {  # something accepts TCP connections on host $1 port $2
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

ports_of() {
  case "$1" in
    kafka) echo "$KAFKA_PORT:KAFKA_PORT $KAFKA_CONTROLLER_PORT:KAFKA_CONTROLLER_PORT" ;;
    ferretdb) echo "$FERRETDB_PORT:FERRETDB_PORT" ;;
    mongo) echo "$MONGO_PORT:MONGO_PORT" ;;
    mailbox) echo "$SMTP_PORT:SMTP_PORT $MAIL_HTTP_PORT:MAIL_HTTP_PORT" ;;
  esac
}

checks_of() {  # wait_ready.py arguments for server $1
  case "$1" in
    kafka) echo "--check kafka kafka $KAFKA_BOOTSTRAP" ;;
    ferretdb) echo "--check ferretdb mongo $FERRETDB_URL" ;;
    mongo) echo "--check mongo mongo $MONGO_URL" ;;
    mailbox) echo "--check mailbox smtp $INFRA_HOST:$SMTP_PORT --check mailbox http $MAIL_URL/api/messages" ;;
  esac
}

lock_run_dir() {  # one up/down at a time per run dir
  mkdir -p "$RUN_DIR"
  if have flock; then
    exec 9>"$RUN_DIR/.infra.lock"
    flock -w 300 9 || die "another infra.sh is still running on $RUN_DIR (lock $RUN_DIR/.infra.lock)"
  fi
}

lock_cache() {  # one build at a time per cache
  mkdir -p "$CACHE_DIR"
  if have flock; then
    exec 8>"$CACHE_DIR/.build.lock"
    flock -w 1800 8 || die "another build holds $CACHE_DIR/.build.lock"
  fi
}

# ---------------------------------------------------------------- prerequisites
java_major() {
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n 1)"
  v="${v#1.}"  # 1.8 -> 8
  echo "${v%%.*}"
}

kafka_cached() { [[ -f "$KAFKA_LIB_DIR/.complete" && "$(cat "$KAFKA_LIB_DIR/.complete")" == "$(sha256_of "$KAFKA_POM")" ]]; }
ferretdb_cached() { [[ -x "$FERRETDB_BIN" ]]; }
# the launcher is compiled from the repo, so its cache is keyed by the pom and every source file
mongo_sources() { find "$MONGO_SRC/src" -type f -name '*.java' | LC_ALL=C sort; }
mongo_fingerprint() { { cat "$MONGO_POM"; mongo_sources | while read -r f; do echo "${f#"$MONGO_SRC"}"; cat "$f"; done; } | sha256_of /dev/stdin; }
mongo_cached() { [[ -f "$MONGO_LIB_DIR/.complete" && "$(cat "$MONGO_LIB_DIR/.complete")" == "$(mongo_fingerprint)" ]]; }

check_prereqs() {
  local missing=()
  local apt_hint=""
  have apt-get && apt_hint=1

  if ! have "$JAVA"; then
    missing+=("java (Java runtime >= $JAVA_MIN, runs the Kafka broker and the MongoDB-wire server) — install it with: ${apt_hint:+apt-get install openjdk-17-jre-headless, or }any JDK/JRE >= $JAVA_MIN; set JAVA_HOME to use one that is not on PATH")
  else
    local jm; jm="$(java_major)"
    if [[ ! "$jm" =~ ^[0-9]+$ ]] || ((jm < JAVA_MIN)); then
      missing+=("java >= $JAVA_MIN (found '$("$JAVA" -version 2>&1 | head -n 1)' at $(command -v "$JAVA")) — install ${apt_hint:+openjdk-17-jre-headless (apt-get) or }a JDK/JRE >= $JAVA_MIN and put it first on PATH or set JAVA_HOME")
    fi
  fi

  if ! kafka_cached && ! have mvn; then
    missing+=("mvn (Apache Maven >= 3.6, fetches the Kafka $KAFKA_VERSION jars once into $KAFKA_LIB_DIR) — install it with: ${apt_hint:+apt-get install maven, or }an Apache Maven release on PATH")
  elif ! mongo_cached && ! have mvn; then
    missing+=("mvn (Apache Maven >= 3.6, builds the MongoDB-wire server on mongo-java-server $MONGO_JAVA_SERVER_VERSION once into $MONGO_LIB_DIR) — install it with: ${apt_hint:+apt-get install maven, or }an Apache Maven release on PATH")
  fi

  if ferretdb_wanted && ! ferretdb_cached; then
    if ! have go; then
      missing+=("go (Go toolchain >= 1.$GO_MIN_MINOR, builds FerretDB $FERRETDB_VERSION once into $FERRETDB_HOME) — install it with: ${apt_hint:+apt-get install golang-go (Debian 13 / Ubuntu 24.04 or newer; Debian 12 ships 1.19, too old), or }an official Go release on PATH")
    else
      local gv minor
      gv="$(go env GOVERSION 2>/dev/null || true)"
      minor="$(sed -n 's/^go1\.\([0-9]*\).*/\1/p' <<<"$gv")"
      if [[ -z "$minor" ]] || ((minor < GO_MIN_MINOR)); then
        missing+=("go >= 1.$GO_MIN_MINOR (found '${gv:-unknown}' at $(command -v go)) — install a newer Go toolchain and put it first on PATH")
      elif ((minor < 24)) && [[ "$(go env GOTOOLCHAIN 2>/dev/null)" == "local" ]]; then
        missing+=("go >= 1.24 (found $gv with GOTOOLCHAIN=local, so it cannot fetch the 1.24 toolchain FerretDB needs) — unset GOTOOLCHAIN or install Go >= 1.24")
      fi
    fi
  fi

  if [[ ! -x "$VENV_PY" ]]; then
    if have uv; then
      say "The project's virtualenv $(rel "$REPO_ROOT/.venv") is missing: running 'uv sync' in $REPO_ROOT ..."
      (cd "$REPO_ROOT" && uv sync) || missing+=("$(rel "$VENV_PY") — 'uv sync' failed in $REPO_ROOT; fix that and run it again")
    else
      missing+=("$(rel "$VENV_PY") (the project's virtualenv, runs mailbox.py and wait_ready.py) — run 'uv sync' in $REPO_ROOT (install uv first: pip install uv)")
    fi
  fi
  if [[ -x "$VENV_PY" ]] && ! "$VENV_PY" -c 'import aiokafka, pymongo, aiosmtpd' 2>/dev/null; then
    missing+=("aiokafka, pymongo and aiosmtpd in $(rel "$REPO_ROOT/.venv") — run 'uv sync' in $REPO_ROOT")
  fi

  if ((${#missing[@]})); then
    local m
    for m in "${missing[@]}"; do printf '%s: missing prerequisite: %s\n' "$PROG" "$m" >&2; done
    exit 2
  fi
}

# ---------------------------------------------------------------- builds (cached)
PROGRESS_EVERY="${INFRA_PROGRESS_EVERY:-5}"

# run_logged LABEL LOG CMD...: CMD's output goes to LOG; while it runs, a line every
# $PROGRESS_EVERY seconds says how long it has taken and what the log said last, so a first
# build (Maven downloads, the Go build) never sits silent for minutes.
run_logged() {
  local label="$1" log="$2"; shift 2
  "$@" >>"$log" 2>&1 &
  local pid=$! t0 next last
  t0="$(now_ms)"
  next=$((SECONDS + PROGRESS_EVERY))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= next)); then
      last="$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-100)" || last=""
      say "  ... $label: $(secs_since "$t0")${last:+   (log: $last)}"
      next=$((SECONDS + PROGRESS_EVERY))
    fi
    sleep 0.5
  done
  wait "$pid"
}

build_kafka() {
  kafka_cached && return 0
  lock_cache
  kafka_cached && return 0
  local t0 work log
  t0="$(now_ms)"
  work="$KAFKA_HOME/build.$$"
  log="$LOG_DIR/build-kafka.log"
  say "Fetching Apache Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIB_DIR (first time only; about a minute, log $(rel "$log"))..."
  rm -rf "$work" && mkdir -p "$work"
  : >"$log"
  cp "$KAFKA_POM" "$work/pom.xml"   # build outside the repo: Maven writes nothing into the work tree
  if ! (cd "$work" && run_logged "Maven (Kafka jars)" "$log" mvn -B -Dstyle.color=never package "-Dkafka.libdir=$work/libs"); then
    rm -rf "$work"
    die "Maven could not fetch the Kafka jars; read $log"
  fi
  [[ -f "$work/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$work"; die "Maven ran but $work/libs lacks kafka_2.13-$KAFKA_VERSION.jar; read $log"; }
  rm -rf "$KAFKA_LIB_DIR"
  mv "$work/libs" "$KAFKA_LIB_DIR"
  sha256_of "$KAFKA_POM" >"$KAFKA_LIB_DIR/.complete"
  rm -rf "$work"
  say "  $(find "$KAFKA_LIB_DIR" -name '*.jar' | wc -l | tr -d ' ') jars in $(secs_since "$t0")"
}

build_ferretdb() {
  ferretdb_cached && return 0
  lock_cache
  ferretdb_cached && return 0
  local t0 work log dir version
  t0="$(now_ms)"
  work="$FERRETDB_HOME/build.$$"
  log="$LOG_DIR/build-ferretdb.log"
  say "Building FerretDB $FERRETDB_VERSION with Go into $FERRETDB_BIN (first time only; 1 to 6 minutes, log $(rel "$log"))..."
  rm -rf "$work" && mkdir -p "$work"
  : >"$log"
  export GOFLAGS='' GOWORK=off GO111MODULE=on
  # The module zip lacks the generated build/version/version.txt, so `go install` gives a binary
  # that panics at start: build from a writable copy of the module with that file written.
  # shellcheck disable=SC2016  # $1 and $2 belong to the inner bash
  if ! (cd "$work" && run_logged "go mod download (FerretDB)" "$log" \
        bash -c 'go mod download -x -json "$1" >"$2"' _ "$FERRETDB_MODULE@$FERRETDB_VERSION" "$work/module.json"); then
    rm -rf "$work"
    die "go mod download of $FERRETDB_MODULE@$FERRETDB_VERSION failed; read $log"
  fi
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$work/module.json" | head -n 1)"
  [[ -n "$dir" && -d "$dir" ]] || { cat "$work/module.json" >>"$log"; rm -rf "$work"; die "go mod download gave no module directory; read $log"; }
  cp -R "$dir" "$work/src"
  chmod -R u+w "$work/src"
  printf '%s\n' "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
  if ! (cd "$work/src" && CGO_ENABLED=0 run_logged "go build (FerretDB)" "$log" \
        go build -v -trimpath -buildvcs=false -o "$work/ferretdb" ./cmd/ferretdb); then
    rm -rf "$work"
    die "go build of FerretDB failed; read $log"
  fi
  # captured, not piped into grep -q: under pipefail grep's early exit can SIGPIPE the writer
  version="$("$work/ferretdb" --version 2>>"$log")" || true
  if [[ "$version" != *"version: $FERRETDB_VERSION"* ]]; then
    printf '%s\n' "$version" >>"$log"
    rm -rf "$work"
    die "the FerretDB binary built does not report version $FERRETDB_VERSION; read $log"
  fi
  mv "$work/ferretdb" "$FERRETDB_BIN"
  rm -rf "$work"
  say "  built in $(secs_since "$t0")"
}

build_mongo() {
  mongo_cached && return 0
  lock_cache
  mongo_cached && return 0
  local t0 work log
  t0="$(now_ms)"
  work="$MONGO_HOME/build.$$"
  log="$LOG_DIR/build-mongo.log"
  say "Building the MongoDB-wire server (mongo-java-server $MONGO_JAVA_SERVER_VERSION) with Maven into $MONGO_LIB_DIR (first time and after each change to it; about a minute, log $(rel "$log"))..."
  rm -rf "$work" && mkdir -p "$work/src"
  : >"$log"
  # build outside the repo: Maven writes nothing into the work tree
  cp "$MONGO_POM" "$work/src/pom.xml"
  cp -R "$MONGO_SRC/src" "$work/src/src"
  if ! (cd "$work/src" && run_logged "Maven (MongoDB-wire server)" "$log" mvn -B -Dstyle.color=never package "-Dmongo.libdir=$work/libs"); then
    rm -rf "$work"
    die "Maven could not build the MongoDB-wire server; read $log"
  fi
  [[ -f "$work/libs/mongo-java-server-core-$MONGO_JAVA_SERVER_VERSION.jar" && -f "$work/libs/escrow-mongo-server-1.jar" ]] \
    || { rm -rf "$work"; die "Maven ran but $work/libs lacks the launcher or mongo-java-server-core-$MONGO_JAVA_SERVER_VERSION.jar; read $log"; }
  rm -rf "$MONGO_LIB_DIR"
  mv "$work/libs" "$MONGO_LIB_DIR"
  mongo_fingerprint >"$MONGO_LIB_DIR/.complete"
  rm -rf "$work"
  say "  $(find "$MONGO_LIB_DIR" -name '*.jar' | wc -l | tr -d ' ') jars in $(secs_since "$t0")"
}

# ---------------------------------------------------------------- start
launch() {  # launch NAME CMD...: detached (own session), output appended to its log, pid file written
  local name="$1"; shift
  local pidfile="$PID_DIR/$name.pid" log="$LOG_DIR/$name.log"
  rm -f "$pidfile"
  printf '\n===== %s infra.sh: starting %s =====\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$name" >>"$log"
  local starter=()
  if have setsid; then starter=(setsid); else starter=(nohup); fi
  # The wrapper writes its own pid and then execs the server, so the pid file holds the server's pid.
  # fds 8/9 hold infra.sh's locks: the long-lived server must not inherit them.
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner bash
  (exec 8>&- 9>&-; cd "$RUN_DIR" && exec "${starter[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@") \
    >>"$log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidfile" ]] && break
    sleep 0.05
  done
  [[ -s "$pidfile" ]] || die "$name did not start (no pid file $pidfile); read $log"
}

render_kafka_config() {
  local out="$RUN_DIR/kafka/server.properties"
  sed -e "s|@HOST@|$INFRA_HOST|g" \
      -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@LOG_DIRS@|$RUN_DIR/kafka/data|g" \
      "$SCRIPT_DIR/kafka/server.properties.template" >"$out"
}

start_kafka() {
  mkdir -p "$RUN_DIR/kafka/data"
  render_kafka_config
  local props="$RUN_DIR/kafka/server.properties"
  if [[ ! -f "$RUN_DIR/kafka/data/meta.properties" ]]; then
    local cid
    if [[ -s "$RUN_DIR/kafka/cluster.id" ]]; then
      cid="$(cat "$RUN_DIR/kafka/cluster.id")"
    else
      # 16 random bytes, url-safe base64 without padding, not starting with '-' (as Kafka's Uuid)
      cid="$("$VENV_PY" -c '
import base64, os
while True:
    c = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not c.startswith("-"):
        print(c)
        break')"
      echo "$cid" >"$RUN_DIR/kafka/cluster.id"
    fi
    say "Formatting the Kafka data dir $(rel "$RUN_DIR/kafka/data") (cluster id $cid)..."
    printf '\n===== %s infra.sh: formatting storage =====\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" >>"$LOG_DIR/kafka.log"
    "$JAVA" -cp "$KAFKA_LIB_DIR/*" kafka.tools.StorageTool format -t "$cid" -c "$props" >>"$LOG_DIR/kafka.log" 2>&1 \
      || die "formatting Kafka storage failed; read $LOG_DIR/kafka.log"
  fi
  local heap=()
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  launch kafka "$JAVA" "${heap[@]}" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.showDateTime=true "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS" \
    -cp "$KAFKA_LIB_DIR/*" kafka.Kafka "$props"
}

start_ferretdb() {
  mkdir -p "$RUN_DIR/ferretdb"
  # launch runs in $RUN_DIR, so the relative SQLite URL needs no escaping of the absolute path
  launch ferretdb "$FERRETDB_BIN" --handler=sqlite --sqlite-url=file:ferretdb/ \
    "--listen-addr=$INFRA_HOST:$FERRETDB_PORT" --state-dir=- --telemetry=disable --debug-addr=- \
    "--log-level=$FERRETDB_LOG_LEVEL"
}

mongo_storage_args() {  # EscrowMongoServer's storage options for $MONGO_STORAGE
  case "$MONGO_STORAGE" in
    fsync) echo "--data-dir $RUN_DIR/mongo" ;;
    nofsync) echo "--data-dir $RUN_DIR/mongo --no-fsync" ;;
    memory) echo "" ;;
    *) die "MONGO_STORAGE must be fsync, nofsync or memory (not '$MONGO_STORAGE')" ;;
  esac
}

mongo_storage_text() {
  case "$MONGO_STORAGE" in
    fsync) echo "data $(rel "$RUN_DIR/mongo") (journal fsynced before each reply)" ;;
    nofsync) echo "data $(rel "$RUN_DIR/mongo") (journal written before each reply, no fsync)" ;;
    memory) echo "data in memory only" ;;
  esac
}

start_mongo() {
  local heap=() storage=()
  read -r -a heap <<<"$MONGO_HEAP_OPTS"
  read -r -a storage <<<"$(mongo_storage_args)"
  launch mongo "$JAVA" "${heap[@]}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -cp "$MONGO_LIB_DIR/*" EscrowMongoServer "$MONGO_PORT" "$INFRA_HOST" "${storage[@]}"
}

start_mailbox() {
  mkdir -p "$RUN_DIR/mail"
  launch mailbox "$VENV_PY" -u "$SCRIPT_DIR/mailbox.py" --dir "$RUN_DIR/mail" --host "$INFRA_HOST" \
    --smtp-port "$SMTP_PORT" --http-port "$MAIL_HTTP_PORT"
}

env_value() {  # quote a value only when a shell would need it
  local v="$1" q="'"
  if [[ "$v" =~ ^[A-Za-z0-9_./:@?=,+%-]*$ ]]; then
    printf '%s' "$v"
  else
    printf '%s%s%s' "$q" "${v//$q/$q\\$q$q}" "$q"
  fi
}

write_env_file() {
  local tmp="$ENV_FILE.tmp"
  {
    echo "# Written by $PROG up at $(date '+%Y-%m-%dT%H:%M:%S%z'); removed by '$PROG down'."
    echo "KAFKA_BOOTSTRAP_SERVERS=$(env_value "$KAFKA_BOOTSTRAP")"
    echo "MONGODB_URL=$(env_value "$MONGO_URL")"
    # the same server: atomic like MongoDB (kept for scripts written when it was a second server)
    echo "MONGODB_STRICT_URL=$(env_value "$MONGO_URL")"
    if is_running ferretdb; then echo "FERRETDB_URL=$(env_value "$FERRETDB_URL")"; fi
    echo "ESCROW_MONGO_SERVER_LIBS=$(env_value "$MONGO_LIB_DIR")"
    echo "SMTP_HOST=$(env_value "$INFRA_HOST")"
    echo "SMTP_PORT=$(env_value "$SMTP_PORT")"
    echo "MAILBOX_DIR=$(env_value "$RUN_DIR/mail")"
    echo "MAILBOX_URL=$(env_value "$MAIL_URL")"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

cmd_up() {
  case "${1:-}" in
    "") ;;
    --with-ferretdb) INFRA_WITH_FERRETDB=1 ;;
    *) die "unknown option for up: $1 (expected --with-ferretdb)" ;;
  esac
  local t0; t0="$(now_ms)"
  lock_run_dir
  mkdir -p "$LOG_DIR" "$PID_DIR"
  mongo_storage_args >/dev/null
  if ferretdb_wanted; then SERVERS+=(ferretdb); fi
  if is_running mongo-strict; then
    die "mongo-strict (pid $(pid_of mongo-strict)) was started by an earlier infra.sh: run '$PROG down' first"
  fi

  local to_start=() running=() name
  for name in "${SERVERS[@]}"; do
    if is_running "$name"; then running+=("$name"); else to_start+=("$name"); fi
  done

  if ((${#to_start[@]})); then
    check_prereqs
    # a port taken by someone else would make the readiness check talk to the wrong server
    local busy=() spec port var
    for name in "${to_start[@]}"; do
      for spec in $(ports_of "$name"); do
        port="${spec%%:*}" var="${spec#*:}"
        if port_busy "$INFRA_HOST" "$port"; then
          busy+=("$INFRA_HOST:$port ($name) is already in use by a process infra.sh did not start — stop it, or pick another port with $var=...")
        fi
      done
    done
    if ((${#busy[@]})); then
      local b; for b in "${busy[@]}"; do warn "port $b"; done
      exit 1
    fi
    for name in "${to_start[@]}"; do
      case "$name" in
        kafka) build_kafka ;;
        ferretdb) build_ferretdb ;;
        mongo) build_mongo ;;
      esac
    done
  elif [[ ! -x "$VENV_PY" ]]; then
    check_prereqs
  fi

  for name in "${running[@]}"; do say "$name: already running (pid $(pid_of "$name"))"; done
  for name in "${to_start[@]}"; do
    rm -f "$PID_DIR/$name.pid"
    "start_$name"
    say "$name: started (pid $(pid_of "$name")), log $(rel "$LOG_DIR/$name.log")"
  done

  local args=() c
  for name in "${SERVERS[@]}"; do
    read -r -a c <<<"$(checks_of "$name")"
    args+=("${c[@]}" --pid "$name" "$(pid_of "$name")" --log "$name" "$LOG_DIR/$name.log")
  done
  say "Waiting until every server answers a client (deadline ${INFRA_READY_TIMEOUT}s)..."
  if ! "$VENV_PY" "$SCRIPT_DIR/wait_ready.py" --timeout "$INFRA_READY_TIMEOUT" "${args[@]}"; then
    die "infrastructure is not ready (see above); '$PROG status' shows what runs, '$PROG down' stops it"
  fi
  write_env_file

  say ""
  say "Infrastructure is up (infra.sh up took $(secs_since "$t0")):"
  say "  Kafka $KAFKA_VERSION (KRaft)   $KAFKA_BOOTSTRAP   data $(rel "$RUN_DIR/kafka/data")"
  say "  mongo (EscrowMongoServer, mongo-java-server $MONGO_JAVA_SERVER_VERSION)   $MONGO_URL   $(mongo_storage_text)"
  if is_running ferretdb; then
    say "  FerretDB $FERRETDB_VERSION (comparison only)   $FERRETDB_URL   data $(rel "$RUN_DIR/ferretdb")"
  fi
  say "  mailbox (SMTP)        $INFRA_HOST:$SMTP_PORT   mail $(rel "$RUN_DIR/mail")   inbox $MAIL_URL/"
  say "  logs   $LOG_DIR/{$(IFS=,; echo "${SERVERS[*]}")}.log"
  say "  env    $ENV_FILE   (print it with '$PROG env'; load it with: set -a; . $(rel "$ENV_FILE"); set +a)"
  say "  cache  $CACHE_DIR"
}

# ---------------------------------------------------------------- stop
stop_server() {  # stop_server NAME DEADLINE_SECONDS
  local name="$1" deadline="$2" pidfile="$PID_DIR/$1.pid" pid
  if ! pid="$(pid_of "$name")"; then
    rm -f "$pidfile"
    say "$name: not running"
    return 0
  fi
  if ! pid_alive "$pid"; then
    rm -f "$pidfile"
    say "$name: not running (removed stale pid file)"
    return 0
  fi
  local args; args="$(ps -o args= -p "$pid" 2>/dev/null)" || args=""
  if [[ "$args" != *"$(marker_of "$name")"* ]]; then
    rm -f "$pidfile"
    warn "$name: pid $pid now belongs to another program; left it alone and removed the stale pid file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local t0 i=0; t0="$(now_ms)"
  while pid_alive "$pid"; do
    if (( $(now_ms) - t0 >= deadline * 1000 )); then
      warn "$name (pid $pid) still running ${deadline}s after SIGTERM: sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true   # its process group (launched with setsid)
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  if pid_alive "$pid"; then
    die "$name (pid $pid) could not be stopped"
  fi
  rm -f "$pidfile"
  say "$name: stopped (pid $pid, in $(secs_since "$t0"))"
}

cmd_down() {
  local purge=""
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "unknown option for down: $1 (expected --purge)" ;;
  esac
  if [[ ! -d "$RUN_DIR" ]]; then
    say "nothing to stop ($RUN_DIR does not exist)"
    return 0
  fi
  lock_run_dir
  stop_server mailbox 10
  stop_server mongo 30
  if [[ -f "$PID_DIR/mongo-strict.pid" ]]; then stop_server mongo-strict 15; fi
  if [[ -f "$PID_DIR/ferretdb.pid" ]]; then stop_server ferretdb 15; fi
  stop_server kafka 60
  rm -f "$ENV_FILE"
  if [[ -n "$purge" ]]; then
    # only what infra.sh itself creates; anything else in the run dir is left alone
    rm -rf "$RUN_DIR/kafka" "$RUN_DIR/mongo" "$RUN_DIR/ferretdb" "$RUN_DIR/mail" "$RUN_DIR/logs" "$RUN_DIR/pids" \
           "$RUN_DIR/.infra.lock"
    rmdir "$RUN_DIR" 2>/dev/null || true
    say "purged data, mail, logs and pid files under $RUN_DIR (the build cache $CACHE_DIR stays)"
  fi
}

# ---------------------------------------------------------------- status / env
cmd_status() {
  local name all_up=1 args=() c
  if ferretdb_wanted; then SERVERS+=(ferretdb); fi
  for name in "${SERVERS[@]}"; do
    if is_running "$name"; then
      printf '%-12s running  pid %-8s log %s\n' "$name" "$(pid_of "$name")" "$(rel "$LOG_DIR/$name.log")"
      read -r -a c <<<"$(checks_of "$name")"
      args+=("${c[@]}")
    else
      printf '%-12s stopped\n' "$name"
      all_up=""
    fi
  done
  if ((${#args[@]})); then
    if [[ -x "$VENV_PY" ]]; then
      say "readiness (one attempt each):"
      "$VENV_PY" "$SCRIPT_DIR/wait_ready.py" --once "${args[@]}" | sed 's/^/  /' || all_up=""
    else
      warn "cannot check readiness: $(rel "$VENV_PY") is missing (run 'uv sync')"
      all_up=""
    fi
  fi
  say "cache: $CACHE_DIR  (kafka $KAFKA_VERSION: $(kafka_cached && echo built || echo 'not built'); ferretdb $FERRETDB_VERSION: $(ferretdb_cached && echo built || echo 'not built'); MongoDB-wire server on mongo-java-server $MONGO_JAVA_SERVER_VERSION: $(mongo_cached && echo built || echo 'not built'))"
  [[ -f "$ENV_FILE" ]] && say "env:   $ENV_FILE"
  if [[ -n "$all_up" ]]; then say "all up"; return 0; fi
  say "not all up"
  return 3
}

cmd_env() {
  [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: the infrastructure is not up; run '$PROG up' first"
  if [[ "${1:-}" == "--export" ]]; then
    grep -v '^#' "$ENV_FILE" | sed 's/^/export /'
  else
    cat "$ENV_FILE"
  fi
}

cmd_prune() {
  # Test runs leave their topics and databases behind; on a long-lived server they pile up
  # until the broker runs out of file descriptors (deploy/local/prune.py says more).
  [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: the infrastructure is not up; run '$PROG up' first"
  local older_than=30
  if [[ "${1:-}" == "--older-than" ]]; then older_than="${2:?--older-than needs minutes}"; fi
  local mongodb_url
  mongodb_url="$(sed -n 's/^MONGODB_URL=//p' "$ENV_FILE")"
  "$VENV_PY" "$SCRIPT_DIR/prune.py" --kafka "$KAFKA_BOOTSTRAP" --data-dir "$RUN_DIR/kafka/data" \
    --mongodb-url "$mongodb_url" --older-than "$older_than"
}

usage() {
  cat <<EOF
Usage: $PROG COMMAND

  up [--with-ferretdb]
                  build what is missing (once, into $CACHE_DIR), start Kafka, the
                  MongoDB-wire server (EscrowMongoServer) and the mailbox detached (servers
                  already running are left alone), wait until each answers a client, write
                  .run/infra.env; --with-ferretdb also starts FerretDB v1 on FERRETDB_PORT
                  (for comparison: neither atomic nor indexed)
  down [--purge]  stop them (SIGTERM, then SIGKILL after a deadline); --purge also deletes
                  their data, mail and logs under .run/
  status          which servers run and answer (exit 0 when all do, 3 otherwise)
  env [--export]  print .run/infra.env (with --export: as shell export lines)
  prune [--older-than MINUTES]
                  delete the topics and databases test runs left behind, of runs idle for
                  longer than MINUTES (30); a long-lived server needs it now and then

Environment: INFRA_HOST KAFKA_PORT KAFKA_CONTROLLER_PORT MONGO_PORT MONGO_STORAGE
             (fsync | nofsync | memory) FERRETDB_PORT INFRA_WITH_FERRETDB SMTP_PORT
             MAIL_HTTP_PORT KAFKA_HEAP_OPTS MONGO_HEAP_OPTS JAVA_HOME INFRA_READY_TIMEOUT
             INFRA_PROGRESS_EVERY ESCROW_CACHE ESCROW_RUN_DIR
EOF
}

main() {
  [[ -n "$KAFKA_VERSION" ]] || die "cannot read <kafka.version> from $KAFKA_POM"
  [[ -n "$MONGO_JAVA_SERVER_VERSION" ]] || die "cannot read <mongo-java-server.version> from $MONGO_POM"
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    prune) cmd_prune "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 64 ;;
  esac
}

main "$@"
