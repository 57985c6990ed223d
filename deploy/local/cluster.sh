#!/usr/bin/env bash
# A throwaway Orchestrator cluster on this machine: PostgreSQL (membership + results), the schema migration,
# one coordinator silo and N worker silos on loopback.
#
#   deploy/local/cluster.sh start [N]   start (default N=2 workers); prints the connection string for the CLI
#   deploy/local/cluster.sh status      what is running
#   deploy/local/cluster.sh stop        stop exactly what `start` started (recorded PIDs) and delete the database
#   deploy/local/cluster.sh stop --keep-data   stop everything but keep the database (results, queue state) on disk;
#                                       a later `start [N]` restarts on it and the sweeps carry on where they stopped
#
# State (database, logs, PIDs) lives in $ORCHESTRATOR_LOCAL_DIR (default: .orchestrator/local-cluster).
# Each worker gets --workers-on-machine N, so its torch threads default to its share of the cores (cores / N).
# Extra worker switches can be passed with ORCHESTRATOR_WORKER_ARGS (e.g. "--slots 2", or "--threads 2" to override the share).
# ORCHESTRATOR_DASHBOARD_PORT=N serves the Orleans Dashboard from the coordinator on http://127.0.0.1:N/
# (the coordinator gets --dashboard-port N, the workers --dashboard so that it shows them too).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
STATE=${ORCHESTRATOR_LOCAL_DIR:-$ROOT/.orchestrator/local-cluster}
CONFIG=${ORCHESTRATOR_CONFIGURATION:-Release}
SILO_DLL=$ROOT/src/Orchestrator.Silo/bin/$CONFIG/net10.0/linux-x64/Orchestrator.Silo.dll
CLI_DLL=$ROOT/src/Orchestrator.Cli/bin/$CONFIG/net10.0/linux-x64/orchestrator.dll

die() { echo "cluster.sh: $*" >&2; exit 1; }

pg_bindir() {
  if [ -n "${ORCHESTRATOR_PG_BINDIR:-}" ]; then echo "$ORCHESTRATOR_PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found: install the 'postgresql' package (apt-get install -y postgresql) or set ORCHESTRATOR_PG_BINDIR"
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  local p
  for p in $(seq "${1:-55400}" 65000); do
    if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start_silo() { # name role extra-args...
  local name=$1 role=$2; shift 2
  local sp gp; sp=$(free_port 31000); gp=$(free_port $((sp + 1)))
  nohup dotnet "$SILO_DLL" --role "$role" --cluster "$CONN" --silo-port "$sp" --gateway-port "$gp" --fast-membership "$@" \
    >"$STATE/logs/$name.log" 2>&1 &
  echo "$!" >"$STATE/pids/$name"
  for _ in $(seq 1 240); do
    grep -q "Silo ready" "$STATE/logs/$name.log" 2>/dev/null && { echo "  $name (pid $(cat "$STATE/pids/$name"), silo port $sp, gateway $gp)"; return; }
    alive "$(cat "$STATE/pids/$name")" || { tail -n 20 "$STATE/logs/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.25
  done
  die "$name did not become ready in 60 s (see $STATE/logs/$name.log)"
}

cmd_start() {
  local workers=${1:-2}
  [[ "$workers" =~ ^[0-9]+$ ]] || die "start N: N must be a number of workers, got '$workers'"
  [ -f "$STATE/pids/postgres" ] && die "a local cluster is already recorded in $STATE; run '$0 stop' first"
  local dashboard_port=${ORCHESTRATOR_DASHBOARD_PORT:-} coordinator_args="" worker_args="" dashboard_line=""
  if [ -n "$dashboard_port" ]; then
    [[ "$dashboard_port" =~ ^[0-9]+$ ]] || die "ORCHESTRATOR_DASHBOARD_PORT must be a port number, got '$dashboard_port'"
    coordinator_args="--dashboard-port $dashboard_port"; worker_args="--dashboard"
    dashboard_line="Orleans Dashboard: http://127.0.0.1:$dashboard_port/"
  fi
  command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is required"
  if [ ! -f "$SILO_DLL" ] || [ ! -f "$CLI_DLL" ] || [ "${ORCHESTRATOR_SKIP_BUILD:-0}" != 1 ]; then
    echo "building ($CONFIG)…"
    dotnet build -c "$CONFIG" -v quiet -nologo "$ROOT/src/Orchestrator.Silo" >/dev/null
    dotnet build -c "$CONFIG" -v quiet -nologo "$ROOT/src/Orchestrator.Cli" >/dev/null
  fi
  local bindir; bindir=$(pg_bindir)
  mkdir -p "$STATE/logs" "$STATE/pids"
  chmod 0777 "$STATE" "$STATE/logs"
  PGPORT=$(free_port 55400)
  local kept=0
  if [ -f "$STATE/pgdata/PG_VERSION" ]; then
    kept=1
    echo "restarting PostgreSQL on the kept database ($STATE/pgdata) on 127.0.0.1:$PGPORT…"
  else
    echo "starting PostgreSQL on 127.0.0.1:$PGPORT…"
    as_pg "$bindir/initdb" -D "$STATE/pgdata" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$STATE/logs/initdb.log" 2>&1 \
      || { cat "$STATE/logs/initdb.log" >&2; die "initdb failed"; }
  fi
  as_pg "$bindir/pg_ctl" -D "$STATE/pgdata" -l "$STATE/logs/postgres.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $STATE -c fsync=off -c max_connections=300" >/dev/null \
    || { tail -n 20 "$STATE/logs/postgres.log" >&2; die "PostgreSQL did not start"; }
  head -n 1 "$STATE/pgdata/postmaster.pid" >"$STATE/pids/postgres"
  echo "$bindir" >"$STATE/pg_bindir"
  [ "$kept" = 1 ] || "$bindir/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres orchestrator
  CONN="Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=orchestrator"
  echo "$CONN" >"$STATE/connection"
  dotnet "$CLI_DLL" db migrate --cluster "$CONN"
  echo "starting silos…"
  # shellcheck disable=SC2086
  start_silo coordinator coordinator $coordinator_args
  local i
  for i in $(seq 1 "$workers"); do
    # shellcheck disable=SC2086
    # --workers-on-machine: each worker's default torch threads are its share of the cores (cores / N), not all of them.
    start_silo "worker-$i" worker --worker-id "local-worker-$i" --workers-on-machine "$workers" $worker_args ${ORCHESTRATOR_WORKER_ARGS:-}
  done
  cat <<MSG

Local cluster is up (1 coordinator, $workers worker(s), each with its share of the $(nproc) cores). Point the CLI at it:

  export ORCHESTRATOR_CLUSTER="$CONN"
  dotnet run -c $CONFIG --project src/Orchestrator.Cli -- submit sweeps/demo.yaml --watch

Logs: $STATE/logs   Stop with: $0 stop
${dashboard_line}
MSG
}

cmd_status() {
  [ -d "$STATE/pids" ] || { echo "no local cluster recorded in $STATE"; return 0; }
  local f name pid
  for f in "$STATE"/pids/*; do
    name=$(basename "$f"); pid=$(cat "$f")
    if alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: not running (pid $pid)"; fi
  done
  [ -f "$STATE/connection" ] && echo "connection: $(cat "$STATE/connection")"
}

cmd_stop() {
  local keep=0
  case "${1:-}" in
    "") ;;
    --keep-data) keep=1 ;;
    *) die "stop: unknown option '$1' (only --keep-data)" ;;
  esac
  if [ ! -d "$STATE/pids" ]; then
    if [ "$keep" = 0 ] && [ -d "$STATE/pgdata" ]; then
      rm -rf "$STATE/pgdata" "$STATE/pg_bindir"
      echo "deleted the kept database in $STATE/pgdata"
    else
      echo "no local cluster recorded in $STATE"
    fi
    return 0
  fi
  local f name pid
  for f in "$STATE"/pids/*; do
    name=$(basename "$f"); [ "$name" = postgres ] && continue
    pid=$(cat "$f")
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for f in "$STATE"/pids/*; do
    name=$(basename "$f"); [ "$name" = postgres ] && continue
    pid=$(cat "$f")
    for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.25; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "stopped $name (pid $pid)"
    rm -f "$f"
  done
  if [ -f "$STATE/pids/postgres" ]; then
    local bindir; bindir=$(cat "$STATE/pg_bindir" 2>/dev/null || pg_bindir)
    # A kept database is shut down cleanly; a throwaway one need not be.
    as_pg "$bindir/pg_ctl" -D "$STATE/pgdata" -m "$([ "$keep" = 1 ] && echo fast || echo immediate)" -w stop >/dev/null 2>&1 || true
    echo "stopped postgres (pid $(cat "$STATE/pids/postgres"))"
    rm -f "$STATE/pids/postgres"
  fi
  if [ "$keep" = 1 ]; then
    rm -rf "$STATE/pids" "$STATE/connection"
    echo "kept the database in $STATE/pgdata: '$0 start [N]' carries on with it, '$0 stop' deletes it"
    return 0
  fi
  rm -rf "$STATE/pgdata" "$STATE/pids" "$STATE/connection" "$STATE/pg_bindir"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [N] | stop [--keep-data] | status" >&2; exit 2 ;;
esac
