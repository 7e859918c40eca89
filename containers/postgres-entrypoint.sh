#!/bin/sh
# Start PostgreSQL in the foreground as PID 1, creating the cluster in
# $PGDATA the first time. Arguments go to the postgres server.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile"
        rm -f "$pwfile"
    else
        echo "postgres-entrypoint: POSTGRES_PASSWORD unset: TCP clients are trusted" >&2
        initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=trust
    fi
    # Accept TCP clients from anywhere the server listens (listen_addresses
    # decides where that is); initdb only allows 127.0.0.1 and ::1.
    printf 'host all all 0.0.0.0/0 %s\nhost all all ::/0 %s\n' \
        "$([ -n "${POSTGRES_PASSWORD:-}" ] && echo scram-sha-256 || echo trust)" \
        "$([ -n "${POSTGRES_PASSWORD:-}" ] && echo scram-sha-256 || echo trust)" \
        >> "$PGDATA/pg_hba.conf"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
