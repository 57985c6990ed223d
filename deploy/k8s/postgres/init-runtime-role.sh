#!/bin/sh
# First-start script of the official postgres image (mounted into /docker-entrypoint-initdb.d; it runs once,
# when the data directory is empty). It creates the runtime role the silos and the CLI use:
#   - $POSTGRES_USER (superuser of the image) owns the schema: `orchestrator db migrate` runs as it;
#   - orchestrator_runtime may read and write rows of the tables the owner creates, and nothing else (no DDL).
# The default privileges below cover tables and sequences that the migration creates later.
# Used by deploy/compose/compose.yaml and deploy/k8s (configMapGenerator). For an external database, run the
# same statements by hand (deploy/k8s/README.md).
set -eu
: "${ORCHESTRATOR_RUNTIME_PASSWORD:?ORCHESTRATOR_RUNTIME_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" -v runtime_password="$ORCHESTRATOR_RUNTIME_PASSWORD" <<'SQL'
CREATE ROLE orchestrator_runtime LOGIN PASSWORD :'runtime_password';
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO orchestrator_runtime;
GRANT USAGE ON SCHEMA public TO orchestrator_runtime;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orchestrator_runtime;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO orchestrator_runtime;
SQL
