#!/bin/bash
# As the official postgres image's entrypoint, for what framefleet uses: on an empty PGDATA,
# initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD, create POSTGRES_DB; local socket
# trust, scram-sha-256 over TCP from anywhere; run as user postgres, listening on all interfaces.
#
# Unlike the official image there is no temporary server during initialisation (the database is
# created in single-user mode), so pg_isready never answers before POSTGRES_DB exists.
set -euo pipefail

if [ "${1:0:1}" = - ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode reads the statement from stdin; the name is quoted as an identifier.
    printf 'CREATE DATABASE "%s";\n' "${db//\"/\"\"}" \
      | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "PostgreSQL $PG_MAJOR initialised in $PGDATA (user $user, database $db)"
fi

if [ "$1" = postgres ]; then
  set -- "$@" -c listen_addresses='*'
fi
exec "$@"
