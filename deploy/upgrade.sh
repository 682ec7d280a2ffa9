#!/usr/bin/env bash
# Run after pulling a new release on a production box (as NetBox's upgrade.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
.venv/bin/python manage.py migrate --noinput
# Ranking rows are derived; a migration may merge or re-point models (0006), so recompute them.
.venv/bin/python manage.py leaderboard_rebuild
# What the dataset mirror serves, saved for its folder: the submit form reads it before queueing. Checks
# saved by older releases (var/mirror_reports/*.json) are no longer read.
.venv/bin/python manage.py mirror_verify --no-fail
.venv/bin/python manage.py collectstatic --noinput
.venv/bin/python manage.py check --deploy --fail-level WARNING
echo "Upgraded. Restart: systemctl restart leaderboard-web leaderboard-worker-gpu@* leaderboard-worker-cpu leaderboard-beat"
