#!/usr/bin/env bash
# Starts and stops the five services and the console (services/console) as local processes against the servers of
# deploy/local/infra.sh (reads .run/infra.env). Logs: .run/logs/<service>.log.
#
# Usage: deploy/local/services.sh up | down | status
# Ports: ORDER_HTTP_PORT, PAYMENT_HTTP_PORT, SHIPPING_HTTP_PORT, DISPUTE_HTTP_PORT, NOTIFY_HTTP_PORT, CONSOLE_HTTP_PORT,
# else each service's settings default (8001-8006; deploy/local/service_ports.py); ESCROW_RUN_DIR as for infra.sh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${ESCROW_RUN_DIR:-$REPO_ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"
PID_DIR="$RUN_DIR/pids"
VENV_PY="$REPO_ROOT/.venv/bin/python"
READY_TIMEOUT="${SERVICES_READY_TIMEOUT:-60}"

declare -A PORTS=()
SERVICES=(order payment shipping dispute notify console)

die() { printf 'deploy/local/services.sh: %s\n' "$*" >&2; exit 1; }

load_ports() {  # <SERVICE>_HTTP_PORT, else each service's settings default (service_ports.py)
  [[ -x "$VENV_PY" ]] || die "no .venv: run 'make setup' (uv sync) first"
  local name port
  while read -r name port; do PORTS[$name]="$port"; done < <("$VENV_PY" "$SCRIPT_DIR/service_ports.py")
  ((${#PORTS[@]} == ${#SERVICES[@]})) || die "could not read the services' ports (deploy/local/service_ports.py)"
}

pid_alive() { [[ -f "$PID_DIR/$1.pid" ]] && kill -0 "$(cat "$PID_DIR/$1.pid")" 2>/dev/null; }

ready() {  # the service answers its readiness probe (MongoDB and Kafka reachable)
  "$VENV_PY" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health/ready", timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

cmd_up() {
  [[ -x "$VENV_PY" ]] || die "no .venv: run 'make setup' (uv sync) first"
  [[ -f "$RUN_DIR/infra.env" ]] || die "the infrastructure is not up: run 'deploy/local/infra.sh up' first"
  mkdir -p "$LOG_DIR" "$PID_DIR"
  set -a; . "$RUN_DIR/infra.env"; set +a
  local service  # the console's proxy reaches each service's public API here
  for service in order payment shipping dispute notify; do
    export "${service^^}_URL=http://127.0.0.1:${PORTS[$service]}"
  done
  for name in "${SERVICES[@]}"; do
    if pid_alive "$name"; then echo "  $name already running (pid $(cat "$PID_DIR/$name.pid"))"; continue; fi
    # Detached in a session of its own; every descriptor goes to the log, so nothing keeps
    # the caller's terminal or pipe open.
    (cd "$REPO_ROOT" && HTTP_PORT="${PORTS[$name]}" ESCROW_ENV="${ESCROW_ENV:-development}" exec setsid "$VENV_PY" -m "services.$name") \
        >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$PID_DIR/$name.pid"
  done
  local deadline=$((SECONDS + READY_TIMEOUT))
  for name in "${SERVICES[@]}"; do
    until ready "${PORTS[$name]}"; do
      pid_alive "$name" || die "$name exited while starting; read $LOG_DIR/$name.log"
      (( SECONDS < deadline )) || die "$name not ready after ${READY_TIMEOUT}s; read $LOG_DIR/$name.log"
      sleep 0.5
    done
    printf '  %-9s ready  http://127.0.0.1:%s/docs   log %s\n' "$name" "${PORTS[$name]}" "$LOG_DIR/$name.log"
  done
}

cmd_down() {
  for name in "${SERVICES[@]}"; do
    pid_alive "$name" || { rm -f "$PID_DIR/$name.pid"; continue; }
    local pid; pid="$(cat "$PID_DIR/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PID_DIR/$name.pid"
    echo "  $name stopped"
  done
}

cmd_status() {
  for name in "${SERVICES[@]}"; do
    if pid_alive "$name" && ready "${PORTS[$name]}"; then s=ready; elif pid_alive "$name"; then s=starting; else s=stopped; fi
    printf '  %-9s %-8s http://127.0.0.1:%s\n' "$name" "$s" "${PORTS[$name]}"
  done
}

case "${1:-}" in
  up) load_ports; cmd_up ;;
  down) cmd_down ;;
  status) load_ports; cmd_status ;;
  *) die "usage: deploy/local/services.sh up | down | status" ;;
esac
