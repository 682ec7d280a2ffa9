"""A real HTTP server on 127.0.0.1 that answers every request with one fixed reply and records what it got.

For the security tests: a non-OpenAI server answering a canary body (nothing of it may reach a page), an
OpenAI-shaped one that records the Authorization header (the key arrives, and only there), a redirect.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_reply(text: str = "OK") -> bytes:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "canned",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        }
    ).encode()


class CannedServer:
    """``with CannedServer(status=200, body=b"...") as server: server.base_url``; ``server.requests`` lists
    (method, path, headers) of what arrived."""

    def __init__(
        self,
        *,
        status: int = 200,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ):
        self.host = host
        self.status, self.body, self.content_type = status, body, content_type
        self.extra_headers = headers or {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> CannedServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body)))
                for name, value in owner.extra_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(owner.body)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    @property
    def authorizations(self) -> list[str]:
        return [headers.get("Authorization", "") for _method, _path, headers in self.requests]
