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
# The dataset mirror (README: "Getting the benchmark data"). Without one the site still starts: the check
# below records that it holds nothing, and the submit form says so instead of queueing runs that would fail.
mirror=$(python -c 'import os, django; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings"); django.setup()
from django.conf import settings; print(settings.DATASET_MIRROR)')
if [ -d "$mirror" ] && [ -n "$(ls -A "$mirror" 2>/dev/null)" ]; then
    mirror_note="$mirror (being checked: var/log/mirror_verify.log; About lists what it serves)"
else
    mirror_note="NONE at $mirror: benchmarks cannot run until you set DATASET_MIRROR to a mirror
          (README: \"Getting the benchmark data\"); the rest of the site works"
fi
# In the background (indexing lm-eval's tasks takes seconds); its result is saved for this mirror folder.
python manage.py mirror_verify --no-fail >var/log/mirror_verify.log 2>&1 &
verify_pid=$!

celery -A config worker -Q gpu,cpu --concurrency 1 --prefetch-multiplier 1 -B \
    --scheduler django_celery_beat.schedulers:DatabaseScheduler \
    -n "embedded@%h" --loglevel INFO >var/log/worker.log 2>&1 &
worker_pid=$!
trap 'kill $worker_pid $verify_pid 2>/dev/null; wait $worker_pid $verify_pid 2>/dev/null' EXIT INT TERM

echo
echo "  Site:   http://$HOST:$PORT/"
echo "  Login:  ${DEMO_USERNAME:-demo} / ${DEMO_PASSWORD:-demo-leaderboard}"
echo "  Worker: running (log in var/log/worker.log)"
echo "  Data:   $mirror_note"
echo
gunicorn config.wsgi:application --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile -
