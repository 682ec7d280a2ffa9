"""A local model folder behind the OpenAI chat API, in process.

Judges and models under test can be a Hugging Face folder loaded on the worker. Rather than a second
code path, the model is put behind an ``httpx`` transport that answers ``/v1/chat/completions`` and
``/v1/models`` the way an OpenAI-compatible server does; an ``AsyncOpenAI`` client built on it is then
what ``ragas.llms.llm_factory`` and the generation code get, so concurrency, timeouts, retries and the
capture of raw judge output work the same for both kinds. No socket is opened.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx

LOCAL_BASE_URL = "http://local-model.invalid/v1"  # never resolved: the transport answers every request


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class LocalChatModel:
    """A causal LM folder answering chat messages greedily, one generation at a time."""

    def __init__(self, path: str, *, device: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {path} does not exist")
        self.path = str(folder)
        self.name = folder.name
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        dtype = torch.float32 if self.device == "cpu" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype)
        self.model.to(self.device)
        self.model.eval()
        # One model object: generations are serialised (a GPU runs one batch at a time anyway).
        self._lock = threading.Lock()
        config = self.model.config
        self.max_positions = int(getattr(config, "max_position_embeddings", 0) or 2048)

    def _prompt_ids(self, messages: list[dict]) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return list(ids)
        # A base model without a chat template: a plain transcript ending with the assistant's turn.
        text = "\n\n".join(f"{m.get('role', 'user')}: {_content_text(m.get('content'))}" for m in messages)
        return self.tokenizer(text + "\n\nassistant:", add_special_tokens=True)["input_ids"]

    def chat(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0) -> str:
        """Greedy answer to ``messages`` (temperature is ignored: evaluation wants determinism)."""
        import torch

        ids = self._prompt_ids(messages)
        budget = max(16, self.max_positions - max_tokens)
        if len(ids) > budget:
            # Keep the end: the instructions that matter most (the input, "Output:") are last.
            ids = ids[-budget:]
        input_ids = torch.tensor([ids], device=self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self._lock, torch.no_grad():
            output = self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return self.tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class LocalModelTransport(httpx.AsyncBaseTransport):
    """Answers OpenAI chat requests with a LocalChatModel, in a worker thread."""

    def __init__(self, model: LocalChatModel, *, default_max_tokens: int = 256):
        self.model = model
        self.default_max_tokens = default_max_tokens

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/models"):
            return _json_response(
                200, {"object": "list", "data": [{"id": self.model.name, "object": "model"}]}, request
            )
        if request.method != "POST" or not path.endswith("/chat/completions"):
            return _json_response(404, {"error": {"message": f"no route {request.method} {path}"}}, request)
        body = json.loads(await request.aread() or b"{}")
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or self.default_max_tokens)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        work = asyncio.to_thread(self.model.chat, body.get("messages") or [], max_tokens=max_tokens)
        try:
            text = await (asyncio.wait_for(work, timeout) if timeout else work)
        except TimeoutError as exc:
            # What a network transport raises: openai turns it into APITimeoutError (and retries).
            raise httpx.ReadTimeout(f"local model gave no answer within {timeout:g} s", request=request) from exc
        return _json_response(
            200,
            {
                "id": f"chatcmpl-local-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.model.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
            request,
        )


def _json_response(status: int, payload: dict, request: httpx.Request) -> httpx.Response:
    return httpx.Response(status, json=payload, request=request)


def local_openai_client(model: LocalChatModel, *, timeout_s: float, max_retries: int, max_tokens: int = 256):
    """An ``AsyncOpenAI`` client whose requests the local model answers."""
    from openai import AsyncOpenAI

    http_client = httpx.AsyncClient(
        transport=LocalModelTransport(model, default_max_tokens=max_tokens), timeout=httpx.Timeout(timeout_s)
    )
    return AsyncOpenAI(
        base_url=LOCAL_BASE_URL, api_key="local", timeout=timeout_s, max_retries=max_retries, http_client=http_client
    )
