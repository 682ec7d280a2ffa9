"""The one settings module. Every value can come from the environment; see deploy/env.example.

With no environment at all it runs the *embedded default*: SQLite and a SQLite-backed Celery
broker under var/, so one box needs no other service. Production sets DB=postgres and a
redis:// broker.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    "runs",
    "leaderboard",
    "evaluator",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login: this is an internal tool for private models.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

# --- Celery ---------------------------------------------------------------------------------
# The longest a single run may take. The broker must not redeliver an unacknowledged message
# before that (late acks + Redis visibility timeout), or a second worker would start the
# same run; the claim in runs.services makes that harmless, but it wastes a GPU.
RUN_TIME_LIMIT_S = envint("RUN_TIME_LIMIT_S", 24 * 3600)
RUN_HEARTBEAT_S = envint("RUN_HEARTBEAT_S", 15)
# A RUNNING row whose heartbeat is older than this has lost its worker.
RUN_STALE_AFTER_S = envint("RUN_STALE_AFTER_S", 300)
# A QUEUED row older than this is re-sent to the broker (the message may have been lost).
RUN_REQUEUE_AFTER_S = envint("RUN_REQUEUE_AFTER_S", 1800)
RUN_MAX_ATTEMPTS = envint("RUN_MAX_ATTEMPTS", 2)
REAPER_INTERVAL_S = envint("REAPER_INTERVAL_S", 60)

CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}")
# Only Redis knows a visibility timeout; kombu's SQLAlchemy transport hands every option to
# create_engine() and fails on unknown ones.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": RUN_TIME_LIMIT_S + 3600} if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else {}
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
    "reap-stale-runs": {"task": "runs.reap_stale_runs", "schedule": float(REAPER_INTERVAL_S), "options": {"queue": "cpu"}},
    "refresh-mirror-reports": {"task": "leaderboard.refresh_mirror_reports", "schedule": 6 * 3600.0, "options": {"queue": "cpu"}},
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
