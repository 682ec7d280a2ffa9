"""gunicorn settings for the web process (deploy/leaderboard-web.service)."""

import os

bind = os.getenv("BIND", "127.0.0.1:8000")
workers = int(os.getenv("WEB_WORKERS", "3"))
threads = int(os.getenv("WEB_THREADS", "4"))
timeout = 60
accesslog = "-"
forwarded_allow_ips = os.getenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
