"""Real faults for tests: a throwaway Redis a test may stop and restart empty, and a TCP proxy in front of
PostgreSQL that a test cuts. Never the shared servers on 6379/5432 themselves."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a server that a test stops and starts again on it
    must not find it taken meanwhile by some outgoing connection's local end."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


class ThrowawayRedis:
    """`redis-server` on a free port that keeps nothing on disk: a restart empties it."""

    def __init__(self, workdir, config_file=None):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # With a config file (deploy/redis.conf), only where it listens, writes and logs is changed.
        self.arguments = ([str(config_file)] if config_file else ["--save", "", "--appendonly", "no"]) + [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--logfile",
            "",
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), *self.arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except Exception:
                time.sleep(0.05)
        raise AssertionError("the throwaway redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Killed (-9) and started again: empty, unless its configuration keeps data."""
        self.stop()
        self.start()

    restart_empty = restart

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

    def llen(self, queue: str) -> int:
        return self.client().llen(queue)


@contextmanager
def celery_broker(url: str):
    """Point the project's Celery app (its connection and producer pools) at ``url`` for a while."""
    from config.celery import app

    def switch(to):
        # Not closed: kombu keeps one pool per URL for the process, and hands the same one back later.
        # The read/write URLs, because CELERY_BROKER_URL in the environment overrides broker_url.
        app.conf.broker_write_url = app.conf.broker_read_url = to
        app._after_fork()  # drops the connection and producer pools, as after a fork

    switch(url)
    try:
        yield app
    finally:
        switch(None)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target. ``cut()`` closes every connection and refuses new ones
    (nothing listens) until ``restore()``: to the client, the server went away and is down."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self, seconds: float | None = None) -> None:
        with self._lock:
            self.cuts += 1
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for sock in list(self._sockets):
                self._close(sock)
        if seconds is not None:
            threading.Timer(seconds, self.restore).start()

    def close(self) -> None:
        self.cut()

    def _close(self, sock: socket.socket) -> None:
        self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._close(source)
            self._close(sink)
