#!/usr/bin/env bash
# Install and start a PostgreSQL server from the Debian packages and create an empty test database,
# then print the SQLAlchemy URL of that database. Used by .ci/run; safe to run twice.
# Prints nothing (exit 1) when this machine cannot run one (not root, no apt-get).
set -euo pipefail
ROLE=optistock
DATABASE=optistock_test
PASSWORD=optistock

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "postgres.sh: needs root and apt-get" >&2
    exit 1
fi
if ! command -v pg_lsclusters >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(basename "$(dirname "$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")")")
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
    pg_isready -q && break
    sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$PASSWORD'\"" >&2
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$DATABASE'\"" | grep -q 1 ||
    su postgres -c "createdb -O $ROLE $DATABASE" >&2
echo "postgresql+psycopg://$ROLE:$PASSWORD@localhost/$DATABASE"
