#!/bin/sh
# Entry point of the silo image (deploy/docker/Dockerfile.silo).
#
# Orleans advertises one address to the other silos and to clients (it is written into the membership table
# in PostgreSQL). Without ORCHESTRATOR_AdvertiseAddress the silo advertises loopback, which only works on one
# machine. So:
#   - ORCHESTRATOR_AdvertiseAddress set and not empty (Kubernetes: from status.podIP): used as given;
#   - otherwise: this container's own IPv4 address, i.e. what its host name resolves to (Docker and
#     Compose write it into /etc/hosts), unless that is a loopback address.
# A --advertise-address switch among the arguments wins over both (command line over environment).
#
# The Orleans Dashboard stays off: it has no authentication. Turn it on with ORCHESTRATOR_DashboardPort; even then it
# listens on loopback inside the container unless ORCHESTRATOR_DashboardAddress (e.g. 0.0.0.0) says otherwise.
set -eu

if [ -z "${ORCHESTRATOR_AdvertiseAddress:-}" ]; then
  unset ORCHESTRATOR_AdvertiseAddress
  addr=$(getent ahostsv4 "$(uname -n)" 2>/dev/null | head -n 1 | cut -d ' ' -f 1 || true)
  case "$addr" in
    '' | 127.*)
      echo "silo-entrypoint: no non-loopback address for host name $(uname -n); advertising loopback (one machine only)" >&2
      ;;
    *)
      export ORCHESTRATOR_AdvertiseAddress="$addr"
      ;;
  esac
fi

exec dotnet /app/Orchestrator.Silo.dll "$@"
