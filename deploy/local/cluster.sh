#!/usr/bin/env bash
# A throwaway Orchestrator cluster on this machine: PostgreSQL (membership + results), the schema migration,
# one coordinator silo and N worker silos on loopback.
#
#   deploy/local/cluster.sh start [N] [--unsafe-fast] [--tls]
#                                       start (default N=2 workers); prints how to point the CLI at it.
#                                       --unsafe-fast runs PostgreSQL with fsync off: faster, but a machine crash or
#                                       power loss can corrupt the database and lose acknowledged results
#                                       --tls: mutual TLS on the silo and gateway ports with a generated cluster
#                                       certificate ($STATE/secrets/cluster.pfx, its password in tls.password; needs openssl)
#   deploy/local/cluster.sh status      what is running
#   deploy/local/cluster.sh stop        stop exactly what `start` started (recorded PIDs) and delete the database
#   deploy/local/cluster.sh stop --keep-data   stop everything but keep the database (results, queue state) on disk;
#                                       a later `start [N]` restarts on it and the sweeps carry on where they stopped
#
# State (database, logs, PIDs) lives in $ORCHESTRATOR_LOCAL_DIR (default: .orchestrator/local-cluster; as root in a checkout
# the postgres user cannot reach, /var/tmp/orchestrator-local-cluster-HASH).
# Security: PostgreSQL listens on 127.0.0.1 only and asks every client for a password (scram-sha-256), also on its
# unix socket, whose folder ($STATE/pgsocket) only the PostgreSQL user may enter. Two passwords are generated:
# the owner's (postgres: applies the schema with `db migrate`) and the runtime role's (orchestrator_runtime: rows
# only, and never orleansquery or schema_migrations). Each connection string is in a 0600 file, passed by path
# (--cluster-file, ORCHESTRATOR_CLUSTER_FILE), so no password appears in a process's arguments:
#   $STATE/connection                   runtime role: the silos and the CLI
#   $STATE/secrets/owner-connection     owner: `db migrate`
# Each worker gets --workers-on-machine N, so its slots (cells at once, one torch thread each) default to its share of the cores (cores / N).
# Extra worker switches can be passed with ORCHESTRATOR_WORKER_ARGS (e.g. "--slots 2" to override the share).
# ORCHESTRATOR_DASHBOARD_PORT=N serves the Orleans Dashboard from the coordinator on http://127.0.0.1:N/
# (the coordinator gets --dashboard-port N, the workers --dashboard so that it shows them too).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
STATE=${ORCHESTRATOR_LOCAL_DIR:-$ROOT/.orchestrator/local-cluster}
# As root, PostgreSQL runs as the postgres user, which must pass through every folder above $STATE. A checkout under a
# private folder (/root, a `mktemp -d` folder) does not let it: the state then lives under /var/tmp, in a folder named by
# the checkout's path so that status and stop find it again. ORCHESTRATOR_LOCAL_DIR, when set, is used as given.
if [ -z "${ORCHESTRATOR_LOCAL_DIR:-}" ] && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 \
   && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  STATE=/var/tmp/orchestrator-local-cluster-$(printf %s "$ROOT" | sha256sum | cut -c1-12)
fi
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

# 32 random letters and digits: safe inside a connection string and in SQL quotes.
generate_password() { local p; p=$(head -c 64 /dev/urandom | base64 -w0 | LC_ALL=C tr -dc 'A-Za-z0-9'); echo "${p:0:32}"; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start_silo() { # name role extra-args...
  local name=$1 role=$2; shift 2
  local sp gp; sp=$(free_port 31000); gp=$(free_port $((sp + 1)))
  nohup dotnet "$SILO_DLL" --role "$role" --cluster-file "$CONN_FILE" --silo-port "$sp" --gateway-port "$gp" --fast-membership "$@" \
    >"$STATE/logs/$name.log" 2>&1 &
  echo "$!" >"$STATE/pids/$name"
  for _ in $(seq 1 240); do
    grep -q "Silo ready" "$STATE/logs/$name.log" 2>/dev/null && { echo "  $name (pid $(cat "$STATE/pids/$name"), silo port $sp, gateway $gp)"; return; }
    alive "$(cat "$STATE/pids/$name")" || { tail -n 20 "$STATE/logs/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.25
  done
  die "$name did not become ready in 60 s (see $STATE/logs/$name.log)"
}

# The cluster's certificate for --tls: self-signed (ECDSA P-256, 10 years), usable by both ends of a connection, in a
# PKCS#12 file with a generated password; every silo and client presents it and accepts only peers that present it too.
# Kept with the secrets (stop --keep-data keeps it); the key exists unwrapped only for a moment, in the 0700 secrets folder.
make_certificate() {
  [ -f "$STATE/secrets/cluster.pfx" ] && [ -f "$STATE/secrets/tls.password" ] && return
  generate_password >"$STATE/secrets/tls.password"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=orchestrator-local-cluster" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth,clientAuth" \
    -keyout "$STATE/secrets/cluster.key" -out "$STATE/secrets/cluster.crt" 2>"$STATE/logs/openssl.log" \
    && openssl pkcs12 -export -inkey "$STATE/secrets/cluster.key" -in "$STATE/secrets/cluster.crt" \
      -out "$STATE/secrets/cluster.pfx" -passout "file:$STATE/secrets/tls.password" 2>>"$STATE/logs/openssl.log" \
    || { rm -f "$STATE/secrets/cluster.key"; cat "$STATE/logs/openssl.log" >&2; die "could not make the cluster's certificate"; }
  rm -f "$STATE/secrets/cluster.key"
  chmod 0600 "$STATE/secrets/cluster.pfx" "$STATE/secrets/tls.password" "$STATE/secrets/cluster.crt"
  echo "  TLS: cluster certificate $STATE/secrets/cluster.pfx (password in tls.password)"
}

cmd_start() {
  local workers=2 unsafe=0 tls=0 arg
  for arg in "$@"; do
    case "$arg" in
      --unsafe-fast) unsafe=1 ;;
      --tls) tls=1 ;;
      *) [[ "$arg" =~ ^[0-9]+$ ]] || die "start [N] [--unsafe-fast] [--tls]: N must be a number of workers, got '$arg'"; workers=$arg ;;
    esac
  done
  [ -f "$STATE/pids/postgres" ] && die "a local cluster is already recorded in $STATE; run '$0 stop' first"
  local dashboard_port=${ORCHESTRATOR_DASHBOARD_PORT:-} coordinator_args="" worker_args="" dashboard_line=""
  if [ -n "$dashboard_port" ]; then
    [[ "$dashboard_port" =~ ^[0-9]+$ ]] || die "ORCHESTRATOR_DASHBOARD_PORT must be a port number, got '$dashboard_port'"
    coordinator_args="--dashboard-port $dashboard_port"; worker_args="--dashboard"
    dashboard_line="Orleans Dashboard: http://127.0.0.1:$dashboard_port/"
  fi
  command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is required"
  [ "$tls" = 0 ] || command -v openssl >/dev/null || die "--tls needs openssl to make the cluster's certificate"
  if [ ! -f "$SILO_DLL" ] || [ ! -f "$CLI_DLL" ] || [ "${ORCHESTRATOR_SKIP_BUILD:-0}" != 1 ]; then
    echo "building ($CONFIG)…"
    dotnet build -c "$CONFIG" -v quiet -nologo "$ROOT/src/Orchestrator.Silo" >/dev/null
    dotnet build -c "$CONFIG" -v quiet -nologo "$ROOT/src/Orchestrator.Cli" >/dev/null
  fi
  local bindir; bindir=$(pg_bindir)
  mkdir -p "$STATE"
  umask 077
  mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/secrets" "$STATE/pgsocket"
  # Only the owner writes here; as root, the postgres user must still pass through $STATE to its own folders.
  chmod 0711 "$STATE"; chmod 0755 "$STATE/logs"; chmod 0700 "$STATE/secrets" "$STATE/pids" "$STATE/pgsocket"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    die "the postgres user cannot reach $STATE (a folder above it is private to root): set ORCHESTRATOR_LOCAL_DIR to a folder it can reach, e.g. /var/tmp/orchestrator-cluster"
  fi
  touch "$STATE/logs/postgres.log"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$STATE/pgdata"
    chown postgres: "$STATE/pgdata" "$STATE/pgsocket" "$STATE/logs/postgres.log"
  fi
  PGPORT=$(free_port 55400)
  local kept=0 owner_password runtime_password
  if [ -f "$STATE/pgdata/PG_VERSION" ]; then
    kept=1
    [ -f "$STATE/secrets/postgres.password" ] && [ -f "$STATE/secrets/runtime.password" ] \
      || die "the kept database in $STATE/pgdata has no passwords in $STATE/secrets (it was made by an older cluster.sh, without password authentication); '$0 stop' deletes it"
    echo "restarting PostgreSQL on the kept database ($STATE/pgdata) on 127.0.0.1:$PGPORT…"
  else
    echo "starting PostgreSQL on 127.0.0.1:$PGPORT…"
    generate_password >"$STATE/secrets/postgres.password"
    generate_password >"$STATE/secrets/runtime.password"
    # initdb reads the owner's password from a file the PostgreSQL user can read; it is deleted right after.
    local pwfile="$STATE/pgsocket/initdb.pw"
    cp "$STATE/secrets/postgres.password" "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
    local sync=""; [ "$unsafe" = 1 ] && sync="--no-sync"
    as_pg "$bindir/initdb" -D "$STATE/pgdata" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" -E UTF8 --no-locale $sync \
      >"$STATE/logs/initdb.log" 2>&1 || { rm -f "$pwfile"; cat "$STATE/logs/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
  fi
  owner_password=$(cat "$STATE/secrets/postgres.password")
  runtime_password=$(cat "$STATE/secrets/runtime.password")
  local durability=""
  if [ "$unsafe" = 1 ]; then
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    echo "  --unsafe-fast: fsync is OFF; a crash of this machine can corrupt the database"
  fi
  as_pg "$bindir/pg_ctl" -D "$STATE/pgdata" -l "$STATE/logs/postgres.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $STATE/pgsocket -c unix_socket_permissions=0700 -c max_connections=300 $durability" >/dev/null \
    || { tail -n 20 "$STATE/logs/postgres.log" >&2; die "PostgreSQL did not start"; }
  head -n 1 "$STATE/pgdata/postmaster.pid" >"$STATE/pids/postgres"
  echo "$bindir" >"$STATE/pg_bindir"
  if [ "$kept" = 0 ]; then
    PGPASSWORD=$owner_password "$bindir/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres orchestrator
    # The runtime role: rows of the tables the owner creates, no DDL. The SQL goes through stdin, not arguments.
    PGPASSWORD=$owner_password "$bindir/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d orchestrator >/dev/null <<SQL
CREATE ROLE orchestrator_runtime LOGIN PASSWORD '$runtime_password';
GRANT CONNECT, TEMPORARY ON DATABASE orchestrator TO orchestrator_runtime;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO orchestrator_runtime;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orchestrator_runtime;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO orchestrator_runtime;
SQL
  fi
  echo "Host=127.0.0.1;Port=$PGPORT;Username=postgres;Password=$owner_password;Database=orchestrator" >"$STATE/secrets/owner-connection"
  echo "Host=127.0.0.1;Port=$PGPORT;Username=orchestrator_runtime;Password=$runtime_password;Database=orchestrator" >"$STATE/connection"
  chmod 0600 "$STATE/secrets/"* "$STATE/connection"
  CONN_FILE="$STATE/connection"
  local tls_lines="" tls_args=()
  if [ "$tls" = 1 ]; then
    make_certificate
    tls_args=(--tls-cert "$STATE/secrets/cluster.pfx" --tls-cert-password-file "$STATE/secrets/tls.password")
    tls_lines="  export ORCHESTRATOR_TLS_CERT=\"$STATE/secrets/cluster.pfx\" ORCHESTRATOR_TLS_CERT_PASSWORD_FILE=\"$STATE/secrets/tls.password\""
  fi
  dotnet "$CLI_DLL" db migrate --cluster-file "$STATE/secrets/owner-connection"
  echo "starting silos…"
  # shellcheck disable=SC2086
  start_silo coordinator coordinator $coordinator_args "${tls_args[@]}"
  local i
  for i in $(seq 1 "$workers"); do
    # shellcheck disable=SC2086
    # --workers-on-machine: each worker's default slots are its share of the cores (cores / N), not all of them.
    start_silo "worker-$i" worker --worker-id "local-worker-$i" --workers-on-machine "$workers" $worker_args "${tls_args[@]}" ${ORCHESTRATOR_WORKER_ARGS:-}
  done
  cat <<MSG

Local cluster is up (1 coordinator, $workers worker(s), each with its share of the $(nproc) cores). Point the CLI at it:

  export ORCHESTRATOR_CLUSTER_FILE="$CONN_FILE"
${tls_lines}
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
  [ -f "$STATE/connection" ] && echo "connection file (runtime role; for ORCHESTRATOR_CLUSTER_FILE): $STATE/connection"
  return 0
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
      rm -rf "$STATE/pgdata" "$STATE/pg_bindir" "$STATE/secrets" "$STATE/pgsocket"
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
  rm -rf "$STATE/pgdata" "$STATE/pids" "$STATE/connection" "$STATE/pg_bindir" "$STATE/secrets" "$STATE/pgsocket"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [N] [--unsafe-fast] [--tls] | stop [--keep-data] | status" >&2; exit 2 ;;
esac
