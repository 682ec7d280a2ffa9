#!/usr/bin/env bash
# The whole test suite. With CI=true it runs against the real PostgreSQL and Redis (started if
# they are down); otherwise on the embedded default, with the service tests skipped unless
# TEST_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

if [ "${CI:-}" = "true" ] || [ "${TEST_SERVICES:-}" = "1" ]; then
    bash deploy/services.sh
    export DB=${DB:-postgres}
    export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
    export TEST_SERVICES=1
    # The site's own database must exist for makemigrations' consistency check (tests use test_<name>).
    db_name=${DB_NAME:-leaderboard}
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db_name'" | grep -q 1 \
        || createdb -h 127.0.0.1 -U postgres "$db_name"
fi

# Tests never share the broker or the database of a site running on this box.
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-sqla+sqlite:///$PWD/var/test-broker.sqlite3}

python manage.py makemigrations --check --dry-run >/dev/null || {
    echo "Models changed without a migration: run 'python manage.py makemigrations'." >&2
    exit 1
}
exec python -m pytest "$@"
