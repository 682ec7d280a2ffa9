"""A loopback OpenAI-compatible judge for the evaluator tests and the judge benchmark.

It serves ``/v1/chat/completions`` and ``/v1/models`` on 127.0.0.1 from a thread and answers each chat
call with JSON that is valid for the schema the caller asked for: instructor (under ragas) writes the
answer's JSON schema into the system message, ragas' own prompts repeat it in the user message. The
answer is built from that schema with a random generator seeded by a hash of the messages, so scores vary
across samples and are the same on every run. A call that carries no schema (the model under test
answering a question) gets a short plain-text answer.

Failure modes for the unscored paths: ``garbage`` (a fraction of calls, chosen by the prompt hash, get
unparseable text), ``mode="500"`` (every call answers HTTP 500), ``mode="hang"`` (every call sleeps
``hang_s`` before answering, past the client's timeout), and ``fail_first`` (the first N calls answer
HTTP 500, then normal answers: transient errors that a retry gets past).

Run it as a separate process (``python -m tests.evaluator.loopback_judge --port 0 --delay 0.05``) for
the benchmark, so the server does not share the scorer's interpreter lock; ``GET /_stats`` reports
the counters then.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GARBAGE_TEXT = "I think the answer is good {not json at all"


class LoopbackJudge:
    """Context manager: ``with LoopbackJudge(delay=0.05) as judge: judge.base_url``."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        garbage: float = 0.0,
        mode: str = "ok",
        hang_s: float = 30.0,
        fail_first: int = 0,
        model: str = "loopback-judge",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        if mode not in {"ok", "500", "hang"}:
            raise ValueError(f"unknown mode {mode!r}")
        self.delay = delay
        self.garbage = garbage
        self.mode = mode
        self.hang_s = hang_s
        self.fail_first = fail_first
        self.model = model
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.calls = 0  # chat completion requests received
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests: list[dict] = []  # the request bodies, in arrival order
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LoopbackJudge:
        judge = self

        class Handler(_Handler):
            owner = judge

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-judge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes hanging handlers so shutdown does not wait for them
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackJudge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the judge is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def reset_counters(self) -> None:
        with self._lock:
            self.calls = 0
            self.peak_in_flight = 0
            self.requests.clear()

    def stats(self) -> dict:
        with self._lock:
            return {"calls": self.calls, "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight}

    # -- answering ---------------------------------------------------------------------------------
    def answer(self, body: dict) -> tuple[int, dict]:
        """Return (HTTP status, JSON body) for one chat completion request."""
        with self._lock:
            self.calls += 1
            number = self.calls
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.requests.append(body)
        try:
            if self.delay:
                self._closing.wait(self.delay)
            if self.mode == "hang":
                self._closing.wait(self.hang_s)
            if self.mode == "500" or number <= self.fail_first:
                return 500, {"error": {"message": "loopback judge: internal error (test mode)", "type": "server_error"}}
            messages = body.get("messages") or []
            text = "\n".join(_content_text(m.get("content")) for m in messages)
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
            rng = random.Random(seed)
            schema = find_schema(messages)
            if self.garbage and rng.random() < self.garbage:
                content = GARBAGE_TEXT
            elif schema is None:
                last = _content_text(messages[-1].get("content")) if messages else ""
                content = f"Loopback answer: {last.strip()[-80:]}"
            else:
                content = json.dumps(build_instance(schema, rng), ensure_ascii=False)
            return 200, {
                "id": f"chatcmpl-loopback-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": len(text) // 4,
                    "completion_tokens": len(content) // 4,
                    "total_tokens": (len(text) + len(content)) // 4,
                },
            }
        finally:
            with self._lock:
                self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackJudge
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm holds the body until
    # the client's delayed ACK (~40 ms on Linux), which would swamp any delay under test.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: the tests read the counters, not a log
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._send(
                200, {"object": "list", "data": [{"id": self.owner.model, "object": "model", "owned_by": "loopback"}]}
            )
        elif self.path.startswith("/_stats"):
            self._send(200, self.owner.stats())
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "request body is not JSON"}})
            return
        status, payload = self.owner.answer(body)
        self._send(status, payload)


# -- schema handling ---------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


_SCHEMA_MARKERS = ("json_schema:", "JSON Schema:")


def find_schema(messages: list[dict]) -> dict | None:
    """The JSON schema the caller expects: instructor's system message first, then the prompt text."""
    ordered = sorted(messages, key=lambda m: 0 if m.get("role") == "system" else 1)
    decoder = json.JSONDecoder()
    for message in ordered:
        text = _content_text(message.get("content"))
        for marker in _SCHEMA_MARKERS:
            at = text.find(marker)
            while at != -1:
                brace = text.find("{", at)
                if brace != -1:
                    try:
                        schema, _ = decoder.raw_decode(text[brace:])
                    except ValueError:
                        schema = None
                    if isinstance(schema, dict) and ("properties" in schema or "type" in schema):
                        return schema
                at = text.find(marker, at + 1)
    return None


def _resolve(node: dict, root: dict) -> dict:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def _int_choices(node: dict) -> list[int]:
    """Allowed integers: from enum or bounds, else read from the description ("0, 2, or 4", "0/1", "1-5")."""
    if "enum" in node:
        return [int(v) for v in node["enum"]]
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return list(range(int(low), int(high) + 1))
    description = node.get("description", "") or node.get("title", "")
    span = re.search(r"(-?\d+)\s*(?:-|to|~)\s*(-?\d+)", description)
    if span and "/" not in span.group(0):
        a, b = int(span.group(1)), int(span.group(2))
        if a < b <= a + 20:
            return list(range(a, b + 1))
    numbers = [int(n) for n in re.findall(r"(?<![\w.])-?\d+(?![\w.])", description)]
    if len(numbers) >= 2:
        return sorted(set(numbers))
    return [0, 1]


def build_instance(
    schema: dict, rng: random.Random, root: dict | None = None, name: str = "value", depth: int = 0
) -> Any:
    """A value valid for ``schema`` (objects, arrays, $refs, enums, const, anyOf, numbers with ranges)."""
    root = root if root is not None else schema
    node = _resolve(schema, root)
    if depth > 8:
        return None
    if "const" in node:
        return node["const"]
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if _resolve(o, root).get("type") != "null"] or node[key]
            return build_instance(options[0], rng, root, name, depth + 1)
    if "allOf" in node and node["allOf"]:
        return build_instance(node["allOf"][0], rng, root, name, depth + 1)
    if "enum" in node:
        return rng.choice(node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        kind = "object" if "properties" in node else "string"
    if kind == "object":
        properties = node.get("properties", {})
        return {key: build_instance(sub, rng, root, key, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        low = int(node.get("minItems", 1))
        high = int(node.get("maxItems", max(low, 3)))
        count = rng.randint(low, max(low, high))
        return [build_instance(node.get("items", {}), rng, root, name, depth + 1) for _ in range(count)]
    if kind == "integer":
        return rng.choice(_int_choices(node))
    if kind == "number":
        low = float(node.get("minimum", 0.0))
        high = float(node.get("maximum", 1.0 if low < 1.0 else low + 1.0))
        return round(rng.uniform(low, high), 4)
    if kind == "boolean":
        return rng.random() < 0.5
    # Korean in every free-text answer: the judge's JSON must parse and store non-ASCII text.
    return f"loopback {name} {rng.randint(1, 9999)} 판단"


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Serve the loopback judge until killed.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--garbage", type=float, default=0.0)
    parser.add_argument("--mode", default="ok", choices=["ok", "500", "hang"])
    args = parser.parse_args(argv)
    judge = LoopbackJudge(delay=args.delay, garbage=args.garbage, mode=args.mode, port=args.port).start()
    print(judge.base_url, flush=True)  # the parent process reads the URL from the first line
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        judge.stop()


if __name__ == "__main__":
    main()
