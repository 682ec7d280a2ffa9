"""The one settings module. Every value can come from the environment; see deploy/env.example.

With no environment at all it runs the *embedded default*: SQLite and a SQLite-backed Celery
broker under var/, so one box needs no other service. Production sets DB=postgres and a
redis:// broker.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from config.env import envbool, envint, envlist, envsecret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# A placeholder that config/checks.py refuses whenever DEBUG is off.
INSECURE_SECRET_KEY = "dev-only-secret-key-change-me-" + "x" * 30
SECRET_KEY = envsecret("SECRET_KEY", INSECURE_SECRET_KEY)
DEBUG = envbool("DEBUG", True)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    "csp",
    "runs",
    "leaderboard",
    "evaluator",
    "audit",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads a parameter: PostgreSQL refuses NUL in text, so such a request gets a 400 here.
    "config.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # request.htmx: which htmx request this is (config.htmx.wants_fragment reads it).
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login: this is an internal tool for private models.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, as django-axes asks: it refuses a locked-out login before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DB = os.getenv("DB", "sqlite")
if DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.getenv("DB_NAME", "leaderboard"),
            "USER": os.getenv("DB_USER", "postgres"),
            "PASSWORD": envsecret("DB_PASSWORD", ""),
            "HOST": os.getenv("DB_HOST", "127.0.0.1"),
            "PORT": os.getenv("DB_PORT", "5432"),
            "CONN_MAX_AGE": envint("DB_CONN_MAX_AGE", 0),
            "TEST": {"NAME": os.getenv("DB_TEST_NAME", "test_" + os.getenv("DB_NAME", "leaderboard"))},
        }
    }
elif DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.getenv("DB_NAME", str(VAR_DIR / "site.sqlite3")),
            "OPTIONS": {
                # The web process and the worker both write: wait for the lock instead of
                # failing, and take it at BEGIN so a read-then-write cannot deadlock.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not :memory:, so a worker process started by a test sees the test data.
            "TEST": {"NAME": os.getenv("DB_TEST_NAME", str(VAR_DIR / "test.sqlite3"))},
        }
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"DB must be 'sqlite' or 'postgres', not {DB!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "leaderboard:index"
LOGOUT_REDIRECT_URL = "login"

# --- Language and time ---------------------------------------------------------------------
LANGUAGE_CODE = os.getenv("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("ko", "한국어")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Security (only strict when DEBUG is off; `check --deploy` must be clean then) ----------
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# HSTS preload lists are for public hostnames; an on-prem site's internal name can't be on one.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
X_FRAME_OPTIONS = "DENY"

# --- Client address -------------------------------------------------------------------------
# The addresses (or networks) of reverse proxies whose X-Forwarded-For is believed. Empty: the
# header is ignored and the address is the connection's (REMOTE_ADDR). One rule, in
# config/security.py, for login throttling and the audit log.
# Parsed here, so that a typo stops the start instead of failing every request.
TRUSTED_PROXIES = [str(ipaddress.ip_network(entry, strict=False)) for entry in envlist("TRUSTED_PROXIES", [])]

# --- Login throttling (django-axes) ---------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one user name from one address, that pair is
# refused for AXES_COOLOFF_MINUTES (`manage.py axes_reset` lifts every lock at once). Keying on
# the pair means a colleague behind the same NAT, or the same user elsewhere, is not locked out.
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15)) or None  # None: until axes_reset
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_CALLABLE = "config.security.login_lockout_response"
# Its start-up banner on every management command is noise.
AXES_VERBOSE = False

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# Every script and stylesheet is a static file of ours (static/js/site.js wires behaviour by data
# attributes): no inline <script>, no on*= attribute, no style= attribute. The charts need no
# 'unsafe-inline' either: htmx's indicator <style> is switched off (base.html's htmx-config, its
# rules are in static/css/site.css), and plotly.js, which would inject a <style> of its own, finds
# its rules already linked as static/vendor/plotly.css (marked "no-inline-styles", see
# metrics_through_time.html) and otherwise styles through CSSOM properties, which CSP allows.
# img-src adds data: and blob: (images a script of the page made itself): plotly's "download plot as
# PNG" draws the chart's SVG through a blob: image onto a canvas.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Celery ---------------------------------------------------------------------------------
# The longest a single run may take. The broker must not redeliver an unacknowledged message
# before that (late acks + Redis visibility timeout), or a second worker would start the
# same run; the claim in runs.services makes that harmless, but it wastes a GPU.
RUN_TIME_LIMIT_S = envint("RUN_TIME_LIMIT_S", 24 * 3600)
RUN_HEARTBEAT_S = envint("RUN_HEARTBEAT_S", 15)
# A RUNNING row whose heartbeat is older than this has lost its worker.
RUN_STALE_AFTER_S = envint("RUN_STALE_AFTER_S", 300)
# A QUEUED run is sent again when its last send is older than this: a safety net for a message lost
# some way the broker's sentinel does not show (a run never sent, or lost with the broker's data, is
# sent at the reaper's next pass). At most one extra message per period for a run waiting its turn.
RUN_RESEND_AFTER_S = envint("RUN_RESEND_AFTER_S", 6 * 3600)
RUN_MAX_ATTEMPTS = envint("RUN_MAX_ATTEMPTS", 2)
REAPER_INTERVAL_S = envint("REAPER_INTERVAL_S", 60)
# How long a worker whose run has ended keeps retrying to store it while the database is unreachable;
# after that it saves the outcome under ARTIFACTS_DIR/runs/<id>/ (see `manage.py store_run_outcome`).
RUN_FINISH_RETRY_S = envint("RUN_FINISH_RETRY_S", 600)
# Workers write what they are and can run (runs.WorkerNode) this often; a row older than
# WORKER_STALE_AFTER_S is a worker that is gone; the submit form refuses what no live worker can run
# (8-bit/4-bit weights need a GPU worker with bitsandbytes).
WORKER_REPORT_INTERVAL_S = envint("WORKER_REPORT_INTERVAL_S", 60)
WORKER_STALE_AFTER_S = envint("WORKER_STALE_AFTER_S", 180)

CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}")
# Only Redis knows a visibility timeout; kombu's SQLAlchemy transport hands every option to
# create_engine() and fails on unknown ones. The socket timeouts bound how long a submission waits on
# a broker that is down or hung (without them a send can wait forever); runs.services.run_enqueue
# then stores the run unsent and the reaper sends it later.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": RUN_TIME_LIMIT_S + 3600, "socket_connect_timeout": 5, "socket_timeout": 10}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The database row is the record of every run: no result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_TIME_LIMIT = RUN_TIME_LIMIT_S + 600
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "reap-stale-runs": {
        "task": "runs.reap_stale_runs",
        "schedule": float(REAPER_INTERVAL_S),
        "options": {"queue": "cpu"},
    },
    # Cheap unless the mirror changed (or its check is 6 h old): then the suite is verified again.
    "refresh-mirror-reports": {
        "task": "leaderboard.refresh_mirror_reports",
        "schedule": 600.0,
        "options": {"queue": "cpu"},
    },
}

# Which executor runs each kind of run; a dotted path to a callable(run, context) -> RunOutcome.
RUN_EXECUTORS = {
    "benchmark": "leaderboard.harness.executor.execute_benchmark",
    "evaluator": "evaluator.executor.execute_evaluation",
}
# Called with run_id=... when a run of that kind reaches a terminal status, inside the transaction
# that stores its scores (so the leaderboard's ranking rows never disagree with the scores).
RUN_FINISH_HOOKS = {
    "benchmark": ["leaderboard.ranking.leaderboard_entry_refresh_for_run"],
}
# Stores a run's per-sample records (RunOutcome.samples) inside the same transaction: a dotted path to a
# callable(run_id=..., samples=...). Kinds without one keep their samples as files (samples_path).
RUN_SAMPLE_INGESTERS = {
    "evaluator": "evaluator.ingest.sample_results_ingest",
}
# Which Celery queue each kind goes to: benchmark runs need a GPU worker, and so does an evaluator run
# that loads a model (the model under test or a judge from a local folder). An evaluator run that only
# calls endpoints goes to RUN_QUEUE_NO_LOCAL_MODEL, so that it does not wait behind hours of benchmarks.
RUN_QUEUES = {"benchmark": "gpu", "evaluator": "gpu"}
RUN_QUEUE_NO_LOCAL_MODEL = os.getenv("RUN_QUEUE_NO_LOCAL_MODEL", "cpu")

# --- Product settings ----------------------------------------------------------------------
# Submitted model paths must resolve inside one of these folders.
MODEL_ROOTS = [Path(p).resolve() for p in envlist("MODEL_ROOTS", [str(VAR_DIR / "models")], sep=os.pathsep)]
if "MODEL_ROOTS" not in os.environ:
    # The embedded default's own root; configured roots are mounts the operator provides.
    MODEL_ROOTS[0].mkdir(parents=True, exist_ok=True)
# A folder laid out like Hugging Face dataset repos (<org>/<name>/...), read instead of the hub.
DATASET_MIRROR = Path(os.getenv("DATASET_MIRROR", BASE_DIR.parent / "shared" / "benchmarks")).resolve()
HARNESS_TASKS_DIR = Path(os.getenv("HARNESS_TASKS_DIR", BASE_DIR / "harness_tasks")).resolve()
# Where per-sample logs and other run artefacts go.
ARTIFACTS_DIR = Path(os.getenv("ARTIFACTS_DIR", VAR_DIR / "artifacts")).resolve()

# --- Endpoints and secrets (evaluator judges and models under test) -------------------------
# Hosts an endpoint's base URL may name: host names, *.suffix wildcards and networks (10.0.0.0/8).
# Loopback and link-local addresses (cloud metadata) pass only when a listed network lies inside them
# ("localhost" stands for 127.0.0.0/8 and ::1). Production default: nothing until the administrator
# lists hosts; the embedded default allows loopback, for make run's demo.
ENDPOINT_ALLOWED_HOSTS = (
    envlist("ENDPOINT_ALLOWED_HOSTS", [])
    if "ENDPOINT_ALLOWED_HOSTS" in os.environ
    else (["localhost", "127.0.0.0/8", "::1"] if DEBUG else [])
)
# Where named API key secrets may come from: files directly in this folder, and environment variables
# whose names start with this prefix. Users give only the name. Empty: that source is off.
ENDPOINT_SECRETS_DIR = os.getenv("ENDPOINT_SECRETS_DIR", "")
ENDPOINT_SECRETS_ENV_PREFIX = os.getenv("ENDPOINT_SECRETS_ENV_PREFIX", "")
# Fernet keys for API keys typed into the endpoint form (stored encrypted): a comma-separated list,
# the first encrypts, all decrypt (rotation: put the new key first, run `manage.py endpoint_keys_rotate`).
FIELD_ENCRYPTION_KEYS = [key.strip() for key in envsecret("FIELD_ENCRYPTION_KEY", "").split(",") if key.strip()]
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    # Development only, stable across restarts; config/checks.py refuses a missing key when DEBUG is off.
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(b"leaderboard field encryption\0" + SECRET_KEY.encode()).digest()
        ).decode()
    ]

# --- Golden datasets -------------------------------------------------------------------------
# Limits on an uploaded dataset file, enforced while it is read, before its rows are built: a small
# spreadsheet can otherwise declare enough cells to take gigabytes.
DATASET_MAX_BYTES = envint("DATASET_MAX_BYTES", 50 * 1024 * 1024)
DATASET_MAX_ROWS = envint("DATASET_MAX_ROWS", 20_000)
DATASET_MAX_COLUMNS = envint("DATASET_MAX_COLUMNS", 64)
# Per cell (CSV, Excel) or field (JSON); the contexts of a row count together.
DATASET_MAX_FIELD_CHARS = envint("DATASET_MAX_FIELD_CHARS", 200_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Nothing here may reach a network: keep Hugging Face libraries offline in every process.
for _offline_var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_offline_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HOME", str(VAR_DIR / "hf_home"))
