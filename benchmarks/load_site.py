"""The site as deployed, on loopback, for benchmarks/load_submissions.py: a throw-away PostgreSQL database,
a throw-away Redis (deploy/redis.conf), gunicorn with deploy/gunicorn.conf.py and DEBUG off, and real Celery
workers as the deploy/ units start them. Nothing here touches the site's own database or broker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, log: Path | None = None, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


class ThrowawayDatabase:
    """A PostgreSQL database of its own on the configured server, created here and dropped at the end."""

    def __init__(self, *, host: str, port: str, user: str, password: str):
        self.name = f"load_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.params = {"host": host, "port": port, "user": user, "password": password, "dbname": "postgres"}

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(**self.params, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        # FORCE: a worker killed by --chaos may leave a connection the server has not noticed yet.
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Service:
    """A child process in its own session (so a kill reaches its children), logging to a file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        self._log.close()


class Site:
    """Everything the load test runs against; ``env`` is what every process of the site sees."""

    def __init__(self, work: Path, *, web_workers: int, web_threads: int, executor: str):
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.executor = executor
        self.database = ThrowawayDatabase(
            host=os.getenv("DB_HOST", "127.0.0.1"),
            port=os.getenv("DB_PORT", "5432"),
            user=os.getenv("DB_USER", "postgres"),
            password=os.getenv("DB_PASSWORD", ""),
        )
        self.redis_port = free_port()
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.redis: Service | None = None
        self.web: Service | None = None
        self.workers: dict[str, Service] = {}
        self._worker_serial = 0
        self.env = self._environment(web_workers=web_workers, web_threads=web_threads)

    def _environment(self, *, web_workers: int, web_threads: int) -> dict[str, str]:
        """deploy/env.example's production settings, pointed at loopback and at this run's own services."""
        from cryptography.fernet import Fernet

        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "CELERY_", "DJANGO_", "RUN_", "TEST_"))}
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": self.base_url,
            # No TLS on loopback: the production settings otherwise, without the redirect to https and HSTS.
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "VAR_DIR": str(self.work / "var"),
            "STATIC_ROOT": str(self.work / "var" / "staticfiles"),
            "LOG_LEVEL": "INFO",
            "DB": "postgres",
            "DB_NAME": self.database.name,
            "DB_HOST": self.database.params["host"],
            "DB_PORT": self.database.params["port"],
            "DB_USER": self.database.params["user"],
            "DB_PASSWORD": self.database.params["password"],
            "DB_CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # Short clocks, so that a worker killed by --chaos is noticed within the benchmark's time bound.
            "RUN_HEARTBEAT_S": "2",
            "RUN_STALE_AFTER_S": "30",
            "WORKER_REPORT_INTERVAL_S": "30",
            "ENDPOINT_ALLOWED_HOSTS": "localhost",
            "MODEL_ROOTS": str(self.work / "models"),
            "DATASET_MIRROR": str(self.work / "mirror"),
            "ARTIFACTS_DIR": str(self.work / "artifacts"),
            "HF_DATASETS_CACHE": str(self.work / "hf_datasets"),
            "BIND": f"127.0.0.1:{self.web_port}",
            "WEB_WORKERS": str(web_workers),
            "WEB_THREADS": str(web_threads),
            "PYTHONUNBUFFERED": "1",
            "TQDM_DISABLE": "1",
        }

    def start_services(self) -> None:
        """The database and Redis, then migrate and collectstatic as deploy/upgrade.sh does."""
        self.database.create()
        (self.work / "redis").mkdir()
        Path(self.env["MODEL_ROOTS"]).mkdir()
        conf = BASE_DIR / "deploy" / "redis.conf"
        self.redis = Service(
            "redis",
            [
                shutil.which("redis-server"),
                str(conf),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.work / "redis"),
                "--logfile",
                "",
            ],
            env=self.env,
            log_dir=self.logs,
        )
        wait_until(
            lambda: "Ready to accept connections" in self.redis.output(), 30, "redis-server", self.redis.log_path
        )
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run([PYTHON, "manage.py", *command, "-v", "0"], cwd=BASE_DIR, env=self.env, check=True)

    def mirror_verify(self, *, suite_name: str) -> None:
        """Check the suite against DATASET_MIRROR and save the check, as deploy/upgrade.sh does."""
        subprocess.run(
            [PYTHON, "manage.py", "mirror_verify", "--no-fail", "--suite", suite_name, "-v", "0"],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start_web(self) -> None:
        self.web = Service(
            "gunicorn",
            [PYTHON, "-m", "gunicorn", "config.wsgi:application", "-c", str(BASE_DIR / "deploy" / "gunicorn.conf.py")],
            env=self.env,
            log_dir=self.logs,
        )

        def answers() -> bool:
            if not self.web.alive():
                raise RuntimeError(f"gunicorn exited:\n{self.web.output()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.web_port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(answers, 60, "gunicorn", self.web.log_path)

    def start_worker(self) -> Service:
        """`celery -A config worker -Q gpu,cpu --concurrency 1`, as deploy/leaderboard-worker-gpu@.service."""
        self._worker_serial += 1
        name = f"worker{self._worker_serial}"
        env = dict(self.env)
        if self.executor == "scripted":
            env["DJANGO_SETTINGS_MODULE"] = "tests.worker_settings"
        worker = Service(
            name,
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "gpu,cpu",
                "--concurrency",
                "1",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
            ],
            env=env,
            log_dir=self.logs,
        )
        self.workers[name] = worker
        return worker

    def wait_workers_ready(self, timeout: float = 180) -> None:
        for worker in self.workers.values():
            if worker.alive():
                wait_until(
                    lambda w=worker: " ready." in w.output(), timeout, f"{worker.name} to start", worker.log_path
                )

    def node_name(self, worker: Service) -> str:
        return f"{worker.name}@{socket.gethostname()}"

    def stop(self) -> None:
        for service in [*self.workers.values(), self.web, self.redis]:
            if service is not None:
                service.stop()
        try:
            self.database.drop()
        except Exception as exc:  # keep going: the report must still come out
            print(f"could not drop database {self.database.name}: {exc}", file=sys.stderr)


__all__ = ["Service", "Site", "ThrowawayDatabase", "free_port", "wait_until"]
