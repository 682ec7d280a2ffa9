#!/usr/bin/env bash
# Run the whole site on one box with the embedded default: SQLite, the SQLite broker, one
# worker (both queues, with the beat scheduler inside it) and the web server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}

python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0
python manage.py setup_demo

mkdir -p var/log
celery -A config worker -Q gpu,cpu --concurrency 1 --prefetch-multiplier 1 -B \
    --scheduler django_celery_beat.schedulers:DatabaseScheduler \
    -n "embedded@%h" --loglevel INFO >var/log/worker.log 2>&1 &
worker_pid=$!
trap 'kill $worker_pid 2>/dev/null; wait $worker_pid 2>/dev/null' EXIT INT TERM

echo
echo "  Site:   http://$HOST:$PORT/"
echo "  Login:  ${DEMO_USERNAME:-demo} / ${DEMO_PASSWORD:-demo-leaderboard}"
echo "  Worker: running (log in var/log/worker.log)"
echo
gunicorn config.wsgi:application --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile -
